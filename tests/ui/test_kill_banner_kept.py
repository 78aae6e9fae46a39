"""The kill banner after an automatic trip that kept the positions' protective orders, around the real engine.

The banner named the stop and target the trip keeps on purpose as STILL WORKING (and the verification's
CRITICAL alert did too); it says them kept, until Ctrl+K cancels them as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.orders import Bracket, OrderTicket
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.status_bar import KillBanner

from .test_real_engine import RealConsole, limits_for_tests, real_console


async def test_real_engine_daily_loss_trip_then_one_critical_row_and_the_banner_says_the_stops_kept_until_ctrl_k(
        tmp_path: Path) -> None:
    async with real_console(tmp_path, limits=limits_for_tests(daily_loss_limit=500)) as c:
        children, resting = await bracketed_long_beside_a_resting_limit(c)
        pane = c.app.main.query_one(AlertsPane)
        before = len(pane.alerts)

        # Act: a loss over the limit, the stop at 90 untouched.
        c.gw.control.set_price("AAPL", 94.0)

        # Assert
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "remaining 0 · verified · kept 2 protective" in str(banner.render()),
                      "the banner saying the stop and target kept")
        assert c.engine.trading_state is TradingState.HALTED
        assert re.match(r"KILL SWITCH ENGAGED — daily_loss limit reached: \$6\d\d\.\d\d \(limit \$500\.00\) -> HALTED "
                        r"\(by risk:daily_loss\) · cancelled 1 ·", str(banner.render())), str(banner.render())
        # One critical row for the trip (it was two, and two messages on the phone: the monitor's "daily_loss limit
        # reached: …" beside the kill switch's), in the kill's words: what tripped, the figures, what the kill did.
        critical = [a for a in pane.alerts[before:] if a.level is AlertLevel.CRITICAL]
        assert [(a.source, a.kind) for a in critical] == [("kill_switch", "kill")]
        assert re.fullmatch(r"kill switch engaged by risk:daily_loss \(daily_loss\): daily_loss limit reached: "
                            r"\$6\d\d\.\d\d \(limit \$500\.00\) -> HALTED\. Entries cancelled; the open positions' "
                            r"protective orders \(stops, targets, exits\) are kept working\. Ctrl\+K cancels "
                            r"everything, those too", critical[0].text), critical[0].text
        assert sorted(c.working_at_sim([*children, resting])) == sorted(children)

        await c.pilot.press("ctrl+k")
        await c.until(lambda: not c.working_at_sim(children), "the stop and target cancelled at the simulator")
        await c.until(lambda: "remaining 0 · verified · reset" in str(banner.render()), "nothing kept any more")


async def bracketed_long_beside_a_resting_limit(c: RealConsole) -> tuple[list[str], str]:
    """AAPL long 100 at 100 with its stop (90) and target (110) working, and a resting MSFT limit: the refs of the
    stop and target, and of the limit."""
    c.gw.control.set_price("AAPL", 100.0)
    await c.until(lambda: c.engine.market.quotes["AAPL"].mark == pytest.approx(100.0), "AAPL at 100")
    entry = await c.engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.MKT, strategy="manual",
                                              bracket=Bracket(stop_price=90.0, take_profit_price=110.0)))
    resting = await c.engine.submit(c.resting_limit("MSFT"))
    await c.until(lambda: c.engine.orders.orders[entry.order_ref].status is OrderStatus.FILLED, "entry filled")
    children = [o.order_ref for o in c.engine.orders.children(entry.order_ref)]
    await c.until(lambda: len(c.working_at_sim([*children, resting.order_ref])) == 3, "stop, target, limit working")
    return children, resting.order_ref
