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
    OTHER = "OTHER"
    """A type the broker holds that the engine does not model (IB's MIT, TRAIL LIMIT, REL, ...): only ever an
    order adopted from the broker, never one the engine sends or modifies."""

    @property
    def modelled(self) -> bool:
        """The engine can send an order of this type (and re-send one in a modify)."""
        return self is not OrderType.OTHER

    @property
    def is_stop(self) -> bool:
        """A stop, stop limit or trailing stop: the protection to keep over a target when a position's protective
        orders are judged or fitted together."""
        return self in (OrderType.STP, OrderType.STP_LMT, OrderType.TRAIL)


class TimeInForce(StrEnum):
    """How long an order stays working, spelled as IB spells it.

    The engine sends DAY and GTC only. The others are what the broker may hold in an order adopted from it
    (placed in TWS or by another tool): a GTD order's date is not kept, so it cannot be re-sent as it is.
    """

    DAY = "DAY"
    GTC = "GTC"
    GTD = "GTD"
    """Good till a date (IB's ``goodTillDate``)."""
    IOC = "IOC"
    """Immediate or cancel."""
    OPG = "OPG"
    """At the opening auction."""
    OTHER = "OTHER"
    """Another the broker reported (FOK, DTC, ...), or none."""

    @property
    def modelled(self) -> bool:
        """The engine sends orders with this time in force (and can re-send one in a modify)."""
        return self is TimeInForce.DAY or self is TimeInForce.GTC


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


LINK_UP = (ConnectionState.CONNECTED, ConnectionState.DEGRADED)
"""The states of a link that is up (orders and quotes flow, if perhaps not all of them)."""
