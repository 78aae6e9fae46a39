"""Enumerations shared by every layer: sides, order types, statuses, trading states, modes."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Direction of an order."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The side that closes a position opened by this one."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """Order types, spelled as IB spells them."""

    MKT = "MKT"
    LMT = "LMT"
    STP = "STP"
    STP_LMT = "STP LMT"
    TRAIL = "TRAIL"


class TimeInForce(StrEnum):
    """How long an order stays working."""

    DAY = "DAY"
    GTC = "GTC"


class OrderStatus(StrEnum):
    """The full lifecycle of an order inside the engine."""

    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    SENDING = "SENDING"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        """True when nothing more can happen to the order."""
        return self in FINAL_STATUSES

    @property
    def is_working(self) -> bool:
        """True when the order is (or may be) live at the broker."""
        return self in WORKING_STATUSES


FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
WORKING_STATUSES = frozenset(
    {OrderStatus.SENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN}
)


class TradingState(StrEnum):
    """Engine-wide trading state, after NautilusTrader."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class AlertLevel(StrEnum):
    """Severity of an alert."""

    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """Ordering key: INFO < WARNING < ERROR < CRITICAL."""
        return _ALERT_RANK[self]


_ALERT_RANK = {AlertLevel.INFO: 0, AlertLevel.WARNING: 1, AlertLevel.ERROR: 2, AlertLevel.CRITICAL: 3}


class Mode(StrEnum):
    """Where the engine sends orders."""

    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


class ConnectionState(StrEnum):
    """Broker connection as the console shows it."""

    DISCONNECTED = "DISCONNECTED"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    DEGRADED = "DEGRADED"
