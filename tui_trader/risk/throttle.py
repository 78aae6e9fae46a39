"""Message throttle: token buckets for submits, modifies and cancels, as pure values.

Nothing here reads a clock: every method takes ``now`` and returns a new value. A bucket may go
below zero when a cancel is sent on an empty bucket (cancels are never refused), which makes the
next submits wait until the bucket has refilled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A bucket of ``capacity`` tokens refilled at ``capacity / period_s`` tokens per second.

    ``updated_at`` is ``None`` until the first message: a fresh bucket is full.
    """

    capacity: float
    period_s: float
    tokens: float
    updated_at: datetime | None = None

    @classmethod
    def full(cls, capacity: float, period_s: float) -> TokenBucket:
        """A bucket that has not been used yet."""
        return cls(capacity=capacity, period_s=period_s, tokens=capacity)

    def available(self, now: datetime) -> float:
        """Tokens in the bucket at ``now`` (may be negative after forced cancels)."""
        if self.updated_at is None:
            return self.tokens
        elapsed = max((now - self.updated_at).total_seconds(), 0.0)
        return min(self.capacity, self.tokens + elapsed * self.capacity / self.period_s)

    def take(self, now: datetime, count: float = 1.0) -> TokenBucket:
        """The bucket after ``count`` messages at ``now`` (never refuses; see :meth:`available`)."""
        return TokenBucket(self.capacity, self.period_s, self.available(now) - count, now)

    def seconds_until(self, now: datetime, count: float = 1.0) -> float:
        """Seconds to wait at ``now`` before ``count`` tokens are available."""
        missing = count - self.available(now)
        return max(missing, 0.0) * self.period_s / self.capacity


@dataclass(frozen=True, slots=True)
class Throttle:
    """The per-second and per-minute message buckets; either may be off (``None``)."""

    per_second: TokenBucket | None = None
    per_minute: TokenBucket | None = None

    @classmethod
    def from_rates(cls, per_second: float | None, per_minute: float | None) -> Throttle:
        """Full buckets for the configured rates (``None`` or 0 leaves a bucket off)."""
        return cls(
            per_second=TokenBucket.full(per_second, 1.0) if per_second else None,
            per_minute=TokenBucket.full(per_minute, 60.0) if per_minute else None,
        )

    def record(self, now: datetime, count: float = 1.0) -> Throttle:
        """The throttle after ``count`` messages (submit, modify or cancel) sent at ``now``."""
        return Throttle(
            per_second=self.per_second.take(now, count) if self.per_second else None,
            per_minute=self.per_minute.take(now, count) if self.per_minute else None,
        )

    def allows(self, now: datetime) -> bool:
        """True when one more message fits in both buckets at ``now``."""
        return all(b.available(now) >= 1.0 for b in (self.per_second, self.per_minute) if b is not None)
