"""Pure risk engine: pre-trade checks, trading states, post-trade monitors, kill switch, sizing.

Imports nothing from the project but :mod:`tui_trader.domain`, and nothing outside the standard
library: no asyncio, no I/O.
"""

from tui_trader.risk.book import Book, Leg, build_book, counted_orders
from tui_trader.risk.checks import RecentOrder, TicketContext, check_cancel, pre_trade_check
from tui_trader.risk.engine import KillSwitchLatchedError, RiskEngine, TriggerResponse
from tui_trader.risk.kill_cancels import KillCancels, kill_cancels
from tui_trader.risk.kill_switch import (
    CONFIRM_SAME_DAY,
    KillAction,
    KillDecision,
    KillState,
    KillSwitch,
    KillTrigger,
    ResetDecision,
    Verification,
)
from tui_trader.risk.limits import CancelScope, CollarReference, RiskLimits, TriggerAction
from tui_trader.risk.monitors import MonitorMemory, MonitorReading, TriggerHit
from tui_trader.risk.sizing import SizeResult, SizingMethod, SizingRule, quantity_headroom, round_down, size_order
from tui_trader.risk.throttle import Throttle, TokenBucket

__all__ = [
    "CONFIRM_SAME_DAY",
    "Book",
    "CancelScope",
    "CollarReference",
    "KillAction",
    "KillCancels",
    "KillDecision",
    "KillState",
    "KillSwitch",
    "KillSwitchLatchedError",
    "KillTrigger",
    "Leg",
    "MonitorMemory",
    "MonitorReading",
    "RecentOrder",
    "ResetDecision",
    "SizeResult",
    "SizingMethod",
    "SizingRule",
    "RiskEngine",
    "RiskLimits",
    "Throttle",
    "TicketContext",
    "TokenBucket",
    "TriggerAction",
    "TriggerHit",
    "TriggerResponse",
    "Verification",
    "build_book",
    "check_cancel",
    "counted_orders",
    "kill_cancels",
    "pre_trade_check",
    "quantity_headroom",
    "round_down",
    "size_order",
]
