"""The refresh timer's draws are staged: status bar at once, the panes one loop step at a time."""

from __future__ import annotations

from dataclasses import replace

from tui_trader.domain.enums import TradingState
from tui_trader.ui.demo import halted_state, normal_state
from tui_trader.ui.messages import SnapshotPulled
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.status_bar import StatusBar

from .conftest import Console, running


def watchlist_rows(c: Console) -> int:
    return len(c.app.main.query_one("#watchlist-table", LineTable).rows)


async def test_pulled_snapshot_when_staged_then_status_first_and_panes_step_by_step() -> None:
    async with running() as c:
        main = c.app.main
        assert watchlist_rows(c) == 8
        halted = halted_state()
        halted = replace(halted, quotes=dict(list(halted.quotes.items())[:3]))
        main.on_snapshot_pulled(SnapshotPulled(halted))
        assert main.query_one(StatusBar).trading_state is TradingState.HALTED
        assert watchlist_rows(c) == 8, "the panes wait for their own loop steps"
        assert c.app._batch_count == 1, "no repaint between the steps"
        main.draw_next()
        assert watchlist_rows(c) == 3
        main.draw_next()
        main.draw_next()
        assert c.app._batch_count == 0
        main.draw_next()  # the step the loop queued finds nothing left
        assert c.app._batch_count == 0


async def test_newer_snapshot_when_steps_queued_then_replaces_them() -> None:
    async with running() as c:
        main = c.app.main
        main.on_snapshot_pulled(SnapshotPulled(normal_state(n_symbols=5)))
        main.on_snapshot_pulled(SnapshotPulled(normal_state(n_symbols=3)))
        assert c.app._batch_count == 1
        for _ in range(3):
            main.draw_next()
        assert watchlist_rows(c) == 3
        assert c.app._batch_count == 0


async def test_pulled_snapshot_then_the_loop_draws_every_pane() -> None:
    async with running() as c:
        c.app.main.post_message(SnapshotPulled(normal_state(n_symbols=3)))
        for _ in range(100):  # bounded: the steps are loop callbacks
            if watchlist_rows(c) == 3 and c.app._batch_count == 0:
                break
            await c.pilot.pause(0.01)
        assert watchlist_rows(c) == 3
        assert c.app._batch_count == 0


async def test_command_refresh_when_steps_queued_then_draws_everything_now() -> None:
    async with running() as c:
        main = c.app.main
        main.on_snapshot_pulled(SnapshotPulled(normal_state(n_symbols=5)))
        c.engine.state = normal_state(n_symbols=3)
        main.request_refresh()
        assert watchlist_rows(c) == 3
        assert c.app._batch_count == 0
