"""Pre-trade checks of the order flow: the message throttle, duplicates of what was sent recently, the cooldown
after a losing streak.

Each is a small pure function returning a :class:`CheckResult`; :mod:`tui_trader.risk.checks` runs them in the
gate (and names them in its ``__all__``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tui_trader.domain import AccountSnapshot, CheckResult, Order, OrderTicket, Side
from tui_trader.risk.limits import RiskLimits
from tui_trader.risk.results import NO_DUPLICATE, upper_bound
from tui_trader.risk.throttle import TokenBucket


@dataclass(frozen=True, slots=True)
class RecentOrder:
    """An order the engine sent recently, remembered for the duplicate check."""

    symbol: str
    side: Side
    quantity: float
    price: float | None
    time: datetime

    @classmethod
    def of(cls, ticket: OrderTicket, time: datetime) -> RecentOrder:
        """The memory of ``ticket`` sent at ``time``."""
        return cls(ticket.symbol, ticket.side, ticket.quantity, order_price(ticket), time)


def order_price(ticket: OrderTicket) -> float | None:
    """The price that identifies a ticket for duplicates: limit, else stop, else None (market)."""
    return ticket.limit_price if ticket.limit_price is not None else ticket.stop_price


def check_throttle(name: str, bucket: TokenBucket, now: datetime) -> CheckResult:
    """One more message fits in the bucket (value = messages used of its capacity)."""
    used = bucket.capacity - bucket.available(now)
    limit = bucket.capacity - 1
    result = upper_bound(name, used, limit, "msgs")
    if result.passed:
        return result
    wait = bucket.seconds_until(now)
    return CheckResult(name, False, used, limit, limit - used, f"message rate exceeded; retry in {wait:.2f}s", "msgs")


def check_duplicate(
    ticket: OrderTicket,
    working: Sequence[Order],
    recent: Sequence[RecentOrder],
    now: datetime,
    window_s: float,
) -> CheckResult:
    """No working or recently sent order with the same symbol, side, quantity and price within the window."""
    since = now - _seconds(window_s)
    symbol = ticket.symbol
    key = (symbol, ticket.side, ticket.quantity, order_price(ticket))
    hits = 0
    for r in recent:
        if r.symbol == symbol and r.time >= since and _same((r.symbol, r.side, r.quantity, r.price), key):
            hits += 1
    for o in working:
        t = o.ticket
        if t.symbol == symbol and o.created_at >= since and _same((symbol, t.side, t.quantity, order_price(t)), key):
            hits += 1
    if not hits:
        return NO_DUPLICATE
    return CheckResult("duplicate", False, hits, 0, -hits, f"same order sent within {window_s:g}s", "orders")


@functools.lru_cache(maxsize=16)
def _seconds(seconds: float) -> timedelta:
    """``timedelta(seconds=seconds)``, built once per window: from a float it costs ~0.8 µs, on every check."""
    return timedelta(seconds=seconds)


_Key = tuple[str, Side, float, float | None]


def _same(a: _Key, b: _Key) -> bool:
    """Same symbol, side, quantity and price (market orders match market orders)."""
    if a[0] != b[0] or a[1] is not b[1] or abs(a[2] - b[2]) > 1e-9:
        return False
    pa, pb = a[3], b[3]
    if pa is None or pb is None:
        return pa is pb
    return abs(pa - pb) <= 1e-9


def check_cooldown(account: AccountSnapshot, limits: RiskLimits, now: datetime) -> CheckResult:
    """After ``max_losing_streak`` losses, no entry until ``cooldown_s`` after the last loss."""
    streak, cap, cooldown = account.losing_streak, limits.max_losing_streak, limits.cooldown_s or 0.0
    if cap is None or streak < cap or account.last_loss_at is None:
        return CheckResult("cooldown", True, 0.0, cooldown, cooldown, "", "s")
    left = cooldown - (now - account.last_loss_at).total_seconds()
    ok = left <= 0
    msg = "" if ok else f"{streak} losses in a row: cooling down {left:.0f}s more"
    return CheckResult("cooldown", ok, max(left, 0.0), cooldown, min(-left, cooldown), msg, "s")

