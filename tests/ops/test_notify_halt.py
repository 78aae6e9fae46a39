"""A symbol's trading halt on the operator's phone: the halt (WARNING) is sent as any warning, and its end (INFO)
where the halt was told, whatever the channel's levels, one symbol's end only for that symbol."""

from __future__ import annotations

from tui_trader.domain.enums import AlertLevel
from tui_trader.engine.broker_events import HALT_OVER, HALTED

from .test_notify_recovery import ERROR_UP, alert, channel, offered

SPY_HALTED = alert(AlertLevel.WARNING, "market", "SPY halted: trading halt at the exchange; no order of SPY is sent "
                   "until it resumes, exits included (a position's stop and target stay at the broker)", HALTED)
SPY_RESUMED = alert(AlertLevel.INFO, "market", "SPY resumed: the trading halt at the exchange is over", HALT_OVER)
AAPL_RESUMED = alert(AlertLevel.INFO, "market", "AAPL resumed: the trading halt at the exchange is over", HALT_OVER)


def test_channel_told_a_halt_then_takes_that_symbols_resume_at_info_only() -> None:
    assert offered(channel(), SPY_HALTED, AAPL_RESUMED, SPY_RESUMED, SPY_RESUMED) == [
        "market: " + SPY_HALTED.alert.text, "market: " + SPY_RESUMED.alert.text]


def test_channel_not_told_the_halt_then_not_its_end_either() -> None:
    assert offered(channel(ERROR_UP), SPY_HALTED, SPY_RESUMED) == []
