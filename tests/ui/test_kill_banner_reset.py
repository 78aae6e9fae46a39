"""The kill banner's check and count belong to one engagement: a reset ends them.

Found in review: after Ctrl+K (3 cancelled, verified) and a reset, a later latch with no event of its own (the
console's, when the engine process died) read "cancelled 3 · remaining 0 · verified": the broker never asked.
"""

from __future__ import annotations

from dataclasses import replace

from textual.app import App, ComposeResult

from tui_trader.domain.enums import ConnectionState, TradingState
from tui_trader.domain.events import KillChecked, KillReport
from tui_trader.ui import demo
from tui_trader.ui.widgets.status_bar import KillBanner


class _BannerApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KillBanner()


async def test_banner_when_a_kill_is_reset_then_the_next_latch_without_an_event_is_not_verified_by_the_last() -> None:
    async with _BannerApp().run_test() as pilot:
        banner = pilot.app.query_one(KillBanner)
        now = demo.FROZEN
        banner.engage(now)
        banner.record_check(KillChecked(now, KillReport(("a", "b", "c"), checked=True)))
        banner.show(demo.halted_state(now))
        assert "cancelled 3 · remaining 0 · verified" in str(banner.render())

        banner.show(demo.normal_state(now))  # reset: trading again
        died = replace(demo.normal_state(now), trading_state=TradingState.HALTED, kill_engaged=True,
                       kill_reason="latched when the engine process died (killed by signal 9)", kill_by="console",
                       connection=replace(demo.healthy_connection(now), state=ConnectionState.DISCONNECTED))
        banner.show(died)

        text = str(banner.render())
        assert "cancelled 0 ·" in text
        assert "NOT VERIFIED: disconnected" in text
        assert "· verified" not in text


async def test_banner_when_the_link_is_degraded_then_the_broker_still_answers_its_check() -> None:
    # DEGRADED (a data farm down) is a live link: the check is awaited, not "NOT VERIFIED: disconnected".
    async with _BannerApp().run_test() as pilot:
        banner = pilot.app.query_one(KillBanner)
        now = demo.FROZEN
        halted = demo.halted_state(now)
        banner.engage(now)
        banner.show(replace(halted, connection=replace(halted.connection, state=ConnectionState.DEGRADED)))

        assert "verifying…" in str(banner.render())
