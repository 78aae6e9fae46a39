"""The dialogs around exits: the flatten preview says when its estimate rests on a stale quote, and the kill
reset names the positions left without a stop (as the quit dialog does). Found by QA: the preview estimated a
fill on a quote 38 s old without a word, and the reset said only "Trading resumes in the state before the
kill." while AAPL, NVDA and QQQ had no stop at the broker."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Static

from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.snapshots import FlattenPreview
from tui_trader.ui.demo import halted_state
from tui_trader.ui.modals.flatten import FlattenModal
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
