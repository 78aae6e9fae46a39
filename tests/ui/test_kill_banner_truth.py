"""The kill banner says what the broker said, around the real engine on the simulator.

Found by QA: with the gateway down, Ctrl+K's banner read "remaining 1 · STILL WORKING: tt…-1" although the
broker could not be asked (a stop may have filled meanwhile); and after an automatic trip that kept the
positions' stops, a flatten's own cancels of those stops were counted as the kill's ("cancelled 0" became
"cancelled 3").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.helpers import CLIENT_ID, limits_for_tests

from tui_trader.domain.enums import TradingState
from tui_trader.ops.kill_journal import latch
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.status_bar import KillBanner

from .test_kill_banner_kept import bracketed_long_beside_a_resting_limit
from .test_real_engine import real_console


async def test_real_engine_ctrl_k_with_the_gateway_down_then_not_verified_and_last_known_working_not_still(
        tmp_path: Path) -> None:
    async with real_console(tmp_path, ack_timeout_s=0.5) as c:
        order = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([order.order_ref]), "the limit working at the simulator")
        c.gw.control.refuse_connections(3600)
        c.gw.control.drop_sessions(CLIENT_ID)
        await c.until(lambda: not c.engine.broker.is_connected, "the link down")

        await c.pilot.press("ctrl+k")

        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: banner.verification is not None, "the kill's check, the broker not asked")
        await c.until(lambda: "working: " in str(banner.render()).lower(), "the order named on the banner")
        text = str(banner.render())
        assert f"remaining 1 · NOT VERIFIED: disconnected · last known working: {order.order_ref} ·" in text
        assert "STILL WORKING" not in text
        assert c.working_at_sim([order.order_ref])  # nothing could be cancelled: it is last known, and so it is
        (verify,) = [a.text for a in c.app.main.query_one(AlertsPane).alerts if a.kind == "kill_verify"]
        assert verify == ("kill NOT VERIFIED (the broker could not be asked); orders last known working: "
                          f"{order.order_ref} BUY 5 AAPL")


async def test_real_engine_flatten_after_a_trip_kept_the_stops_then_their_cancels_are_not_the_kills(
        tmp_path: Path) -> None:
    async with real_console(tmp_path, limits=limits_for_tests(daily_loss_limit=500)) as c:
        await bracketed_long_beside_a_resting_limit(c)
        c.gw.control.set_price("AAPL", 94.0)  # the daily loss trips: the limit cancelled, stop and target kept
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "cancelled 1 · remaining 0 · verified · kept 2 protective" in str(banner.render()),
                      "the trip's banner")

        await c.engine.flatten(preview=False)

        await c.until(lambda: c.engine.portfolio.quantity("AAPL") == 0, "flat")
        await c.until(lambda: "kept" not in str(banner.render()), "the stop and target gone")
        assert "cancelled 1 · remaining 0 · verified · reset" in str(banner.render())  # the flatten's 2 are its own
        assert c.engine.trading_state is TradingState.HALTED


async def test_real_engine_cli_kill_after_a_reset_then_the_banner_counts_this_kills_cancels_only(
        tmp_path: Path) -> None:
    # The engine records a `tui-trader kill` latch as taken (KillLatchTaken), not as a second engagement: the banner
    # starts a new count on it, as on an engagement, not on top of the kill before the reset.
    async with real_console(tmp_path) as c:
        first = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([first.order_ref]), "the first limit working")
        await c.pilot.press("ctrl+k")
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "cancelled 1 · remaining 0 · verified" in str(banner.render()), "the first kill's")
        c.engine.reset_kill("checked the orders")
        second = await c.engine.submit(c.resting_limit("MSFT"))
        await c.until(lambda: c.working_at_sim([second.order_ref]), "the second limit working")
        journal = c.engine.config.journal_path
        assert journal is not None

        await latch(journal, "kill-cli:ops@host", "console frozen", datetime.now(UTC))

        await c.until(lambda: "(by kill-cli:ops@host)" in str(banner.render()) and "verified" in str(banner.render()),
                      "the command's kill checked")
        assert "cancelled 1 · remaining 0 · verified" in str(banner.render())
        assert not c.working_at_sim([second.order_ref])
