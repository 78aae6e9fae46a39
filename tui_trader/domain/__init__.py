"""Pure domain values: no I/O, no asyncio, nothing beyond the standard library."""

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import (
    AlertLevel,
    ConnectionState,
    Mode,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
)
from tui_trader.domain.market import Bar, Instrument, MarketSnapshot, Quote, Session
from tui_trader.domain.orders import Bracket, Fill, Order, OrderTicket, StatusChange, WhatIf
from tui_trader.domain.portfolio import AccountSnapshot, Position
from tui_trader.domain.verdicts import CheckResult, RiskVerdict

__all__ = [
    "AccountSnapshot",
    "Alert",
    "AlertLevel",
    "Bar",
    "Bracket",
    "CheckResult",
    "ConnectionState",
    "Fill",
    "Instrument",
    "MarketSnapshot",
    "Mode",
    "Order",
    "OrderStatus",
    "OrderTicket",
    "OrderType",
    "Position",
    "Quote",
    "RiskVerdict",
    "Session",
    "Side",
    "StatusChange",
    "TimeInForce",
    "TradingState",
    "WhatIf",
]
