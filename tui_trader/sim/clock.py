"""Clocks of the simulator: wall time (optionally sped up) or a manual clock tests step explicitly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

DEFAULT_MANUAL_START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
"""A Tuesday, 10:00 New York time: inside regular trading hours."""


class Clock:
    """Base clock: simulated time as an aware UTC datetime.

    Subclasses say whether time runs by itself (``manual`` is False) or only when advanced.
    """

    manual = False

    def now(self) -> datetime:
        """The current simulated time (aware, UTC)."""
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by ``seconds``."""
        raise NotImplementedError


class RealClock(Clock):
    """Wall-clock time, running ``speed`` times faster than real time from the moment of creation."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        """Start at the current wall time (or at ``start``, e.g. the beginning of a replay).

        Args:
            speed: simulated seconds per real second.
            start: aware datetime simulated time starts at (default: now).
        """
        self._speed = speed
        self._origin = start or datetime.now(UTC)
        self._mono0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> datetime:
        """Wall time scaled by speed, plus whatever was advanced explicitly."""
        elapsed = (time.monotonic() - self._mono0) * self._speed + self._offset
        return self._origin + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> None:
        """Jump ahead (used by ``control.step`` with a real clock)."""
        self._offset += seconds


class ManualClock(Clock):
    """A clock that moves only when advanced: deterministic tests step it instead of sleeping."""

    manual = True

    def __init__(self, start: datetime | None = None) -> None:
        """Start at ``start`` (aware) or at a fixed Tuesday 10:00 New York time."""
        start = start or DEFAULT_MANUAL_START
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The current simulated time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += timedelta(seconds=seconds)
