"""The dialogs around exits: the flatten preview says when its estimate rests on a stale quote, and the kill
reset names the positions left without a stop (as the quit dialog does). Found by QA: the preview estimated a
fill on a quote 38 s old without a word, and the reset said only "Trading resumes in the state before the
kill." while AAPL, NVDA and QQQ had no stop at the broker."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Static

from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.snapshots import EngineSnapshot, FlattenPreview
from tui_trader.ui.demo import halted_state, protected_state
from tui_trader.ui.modals.flatten import FlattenModal
from tui_trader.ui.modals.quit import QuitModal
from tui_trader.ui.modals.reset_kill import ResetKillModal
from tui_trader.ui.scripted_engine import ScriptedEngine

from .conftest import running


class StaleQuotes(ScriptedEngine):
    """A scripted engine whose flatten preview warns that the quotes are old (the market data stalled)."""

    async def flatten(self, preview: bool = True, symbol: str | None = None,
                      expected: tuple[OrderTicket, ...] | None = None) -> FlattenPreview:
        shown = await super().flatten(preview, symbol, expected)
        return replace(shown, warnings=tuple(f"{t.symbol}: quote 38 s old: the estimate may be stale"
                                             for t in shown.tickets[:2]))


async def test_flatten_preview_when_the_quotes_are_stale_then_it_says_so_before_y() -> None:
    async with running(engine=StaleQuotes(halted_state())) as c:
        await c.pilot.press("f")
        await c.settle(3)
        modal = c.app.screen
        assert isinstance(modal, FlattenModal)
        first, second = (t.symbol for t in modal.preview.tickets[:2])  # type: ignore[union-attr]

        summary = str(modal.query_one("#flatten-summary", Static).render())

        assert summary.startswith(f"{first}: quote 38 s old: the estimate may be stale.\n"
                                  f"{second}: quote 38 s old: the estimate may be stale.\n"
                                  "5 closing market order(s)")


async def test_reset_kill_when_positions_have_no_stop_then_the_dialog_names_them_as_the_quit_dialog_does() -> None:
    # Arrange: HALTED by the operator's kill, which cancelled the five positions' stops.
    async with running(halted_state()) as c:
        await c.pilot.press("ctrl+q")
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)
        quit_names = str(c.app.screen.query_one("#quit-unprotected", Static).render()).split(". ")[0]
        await c.pilot.press("escape")
        await c.settle()

        # Act
        await c.pilot.press("ctrl+r")
        await c.settle()

        # Assert: the same words, then what the reset does not do.
        assert isinstance(c.app.screen, ResetKillModal)
        text = str(c.app.screen.query_one("#reset-unprotected", Static).render())
        assert quit_names.startswith("No protective stop works at the broker for: ")
        assert quit_names.count(" LONG ") + quit_names.count(" SHORT ") == 5
        assert text == (f"{quit_names}. The reset does not put stops back: they stay open without one, and "
                        "strategies trade again beside them.")


def _kept_stops() -> EngineSnapshot:
    """HALTED by an automatic trip that kept the positions' stops: the positions that have one, each protected by
    its stop working at the broker (the trip cancelled the entries)."""
    calm, halted = protected_state(), halted_state()
    stops = tuple(o for o in calm.orders if o.ticket.reduce_only)
    protected = {s: p for s, p in calm.account.positions.items() if p.stop_price}
    return replace(halted, orders=(*stops, *halted.orders),
                   account=replace(halted.account, positions=protected, working_orders=stops))


async def test_reset_kill_when_every_position_keeps_its_stop_then_no_such_line() -> None:
    async with running(_kept_stops()) as c:
        await c.pilot.press("ctrl+r")
        await c.settle()
        assert isinstance(c.app.screen, ResetKillModal)
        assert not c.app.screen.query("#reset-unprotected")
