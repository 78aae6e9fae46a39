"""The orders pane after a restart shows the day's finished orders beside the working one, as before it.

A real engine on the simulator fills one order, cancels another and leaves a third working, then stops; the
console starts on a second engine over the same journal. Before, the pane showed only the working order.
"""

from __future__ import annotations

from pathlib import Path

from engine.helpers import make_config, make_engine, running
from engine.test_day_orders_restart import morning_orders

from tui_trader.sim import ManualClock, SimGateway
from tui_trader.ui.app import create_app

from .piloted import PilotedConsole

STATUS = 7
"""The status column of the orders pane."""


async def test_console_after_a_restart_the_same_day_then_the_orders_pane_shows_the_finished_orders(
        tmp_path: Path) -> None:
    config = make_config(tmp_path)
    clock = ManualClock()
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        # Arrange: a morning's orders on a first engine, stopped.
        async with running(gw, config, clock.now) as (first, _):
            filled, cancelled, working = await morning_orders(first)
        # Act: the console on a new engine over the same journal.
        engine = make_engine(gw, config, clock=clock.now)
        app = create_app(engine)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                console = PilotedConsole(app, gw, pilot)
                await console.until(lambda: working.order_ref in console.rows("orders-table"), "the working order")
                # Assert: the engine restored them together, before the console's first snapshot.
                shown = {ref: cells[STATUS] for ref, cells in console.rows("orders-table").items()}
                assert shown == {filled.order_ref: "FILLED", cancelled.order_ref: "CANCELLED",
                                 working.order_ref: "SUBMITTED"}
        finally:
            await engine.stop()
