"""Market values: instruments, trading sessions, quotes and bars."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session, as timezone-aware start and end instants."""

    start: datetime
    end: datetime

    def contains(self, when: datetime) -> bool:
        """True when ``when`` falls inside the session (start inclusive, end exclusive)."""
        return self.start <= when < self.end


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable contract as the engine knows it after qualification."""

    symbol: str
    con_id: int = 0
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    long_name: str = ""
    min_tick: float = 0.01
    size_increment: float = 1.0
    time_zone: str = "America/New_York"
    trading_sessions: tuple[Session, ...] = ()
    liquid_sessions: tuple[Session, ...] = ()

    def round_price(self, price: float) -> float:
        """Round ``price`` to the instrument's tick grid."""
        tick = Decimal(str(self.min_tick))
        return float((Decimal(str(price)) / tick).quantize(Decimal(1)) * tick)


class MarketPhase(StrEnum):
    """Where a symbol's market is in its day, by the broker's hours (its contract details)."""

    OPEN = "OPEN"
    """Regular (liquid) hours."""
    PRE = "PRE"
    """Trading hours before the day's regular session (pre-market, a future's overnight)."""
    POST = "POST"
    """Trading hours after the day's regular session."""
    CLOSED = "CLOSED"
    """Outside every trading session: nothing trades, quotes stand still."""


def session_at(sessions: Sequence[Session], when: datetime) -> Session | None:
    """The session containing ``when``, if any."""
    return next((s for s in sessions if s.contains(when)), None)


def market_phase(instrument: Instrument, now: datetime) -> MarketPhase | None:
    """The phase of ``instrument``'s market at ``now``; ``None`` when its hours are not known (no contract details).

    Outside liquid hours but inside trading hours it is PRE when a regular session is still to come before the
    market closes or on the same exchange day (in the instrument's ``time_zone``: a pre-market at 05:00 New York,
    a Tokyo pre-open at 08:30 JST, which is the evening before in UTC), else POST. Hours with one kind of session
    only (liquid or trading) stand for both: inside one is OPEN.
    """
    trading = instrument.trading_sessions or instrument.liquid_sessions
    if not trading:
        return None
    session = session_at(trading, now)
    if session is None:
        return MarketPhase.CLOSED
    liquid = instrument.liquid_sessions or trading
    if session_at(liquid, now) is not None:
        return MarketPhase.OPEN
    later = [s.start for s in liquid if s.start > now]
    if not later:
        return MarketPhase.POST
    nearest = min(later)
    zone = _zone(instrument.time_zone) or nearest.tzinfo  # else the zone the hours were read in
    same_day = nearest.astimezone(zone).date() == now.astimezone(zone).date()
    return MarketPhase.PRE if same_day or nearest < session.end else MarketPhase.POST


def open_for(instrument: Instrument | None, now: datetime) -> float | None:
    """How long ``instrument``'s market has been trading at ``now``, in seconds (its trading session's start, pre-market
    included): ``None`` while it is closed, ``inf`` when its hours are not known (nothing waits on hours we lack)."""
    sessions = (instrument.trading_sessions or instrument.liquid_sessions) if instrument is not None else ()
    if not sessions:
        return math.inf
    session = session_at(sessions, now)
    return None if session is None else max((now - session.start).total_seconds(), 0.0)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):  # not a zone zoneinfo knows
        return None


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book and last trade for one symbol at one instant."""

    symbol: str
    time: datetime
    bid: float = math.nan
    ask: float = math.nan
    last: float = math.nan
    bid_size: float = 0.0
    ask_size: float = 0.0
    last_size: float = 0.0
    volume: float = 0.0
    close: float = math.nan
    delayed: bool = False
    halted: bool | None = False
    """Trading in the symbol is halted at its exchange (IB's "Halted" tick, 49): orders are refused, nothing fills.
    ``None`` while the broker has not said (a new subscription's prices can come before its halted tick): not
    known, which ends no halt."""

    @property
    def has_two_sides(self) -> bool:
        """True when both bid and ask are known and positive."""
        return self.bid > 0 and self.ask > 0

    @property
    def mid(self) -> float:
        """Midpoint, or NaN without two sides."""
        return (self.bid + self.ask) / 2 if self.has_two_sides else math.nan

    @property
    def spread(self) -> float:
        """Ask minus bid, or NaN without two sides."""
        return self.ask - self.bid if self.has_two_sides else math.nan

    @property
    def is_crossed(self) -> bool:
        """True when the bid is above the ask."""
        return self.has_two_sides and self.bid > self.ask

    def far_side(self, buy: bool) -> float:
        """The side an order trades against: the ask for a buy (``buy``), the bid for a sell.

        NaN when that side is missing (a one-sided quote counts: a buy needs only the ask) or the
        quote is crossed.
        """
        bid, ask = self.bid, self.ask
        price = ask if buy else bid
        return price if price > 0 and not bid > ask > 0 else math.nan

    @property
    def mark(self) -> float:
        """Best price to value a position at: mid (two sides, not crossed), else last, else close.

        Read for every quote of a held symbol, so the side checks are spelled out here rather
        than through :attr:`has_two_sides`, :attr:`is_crossed` and :attr:`mid` (same result).
        """
        bid, ask = self.bid, self.ask
        if bid > 0 and ask >= bid:
            return (bid + ask) / 2
        if self.last > 0:
            return self.last
        return self.close


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``time`` is the bar's start."""

    symbol: str
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    wap: float = math.nan
    count: int = 0


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Latest quotes and instruments keyed by symbol."""

    quotes: dict[str, Quote] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
