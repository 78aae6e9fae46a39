"""Market data state: latest quotes, instruments, staleness, and bars aggregated per bar size.

The broker streams 5-second bars; each strategy asks for its own bar size (a multiple of 5 s).
:class:`BarSeries` aggregates 5-second bars into bars aligned on the bar size and keeps a bounded
history that strategies read as a pandas DataFrame.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tui_trader.domain.market import Bar, Instrument, MarketSnapshot, Quote

if TYPE_CHECKING:  # pandas is needed at the first completed bar, not on the start path
    import pandas as pd

BAR_COLUMNS = ["open", "high", "low", "close", "volume", "wap", "count"]


def bar_start(when: datetime, size_s: int) -> datetime:
    """Start of the ``size_s``-second bucket containing ``when`` (aligned on the epoch)."""
    ts = when.timestamp()
    return datetime.fromtimestamp(ts - ts % size_s, tz=UTC)


def merge_bars(current: Bar, bar: Bar) -> Bar:
    """``current`` extended by the later ``bar`` (volume-weighted average price kept)."""
    volume = current.volume + bar.volume
    wap = _wap(current, bar, volume)
    return replace(current, high=max(current.high, bar.high), low=min(current.low, bar.low),
                   close=bar.close, volume=volume, wap=wap, count=current.count + bar.count)


def _wap(a: Bar, b: Bar, volume: float) -> float:
    if volume <= 0 or math.isnan(a.wap) or math.isnan(b.wap):
        return b.close
    return (a.wap * a.volume + b.wap * b.volume) / volume


class BarSeries:
    """Bars of one symbol at one size: aggregation of incoming bars and a bounded history.

    Args:
        symbol: The symbol.
        size_s: Bar length in seconds.
        maxlen: Bars of history kept.
    """

    def __init__(self, symbol: str, size_s: int, maxlen: int = 500) -> None:
        self.symbol, self.size_s = symbol, size_s
        self.bars: deque[Bar] = deque(maxlen=maxlen)
        self._current: Bar | None = None
        self._frame: pd.DataFrame | None = None

    def warm(self, bars: list[Bar]) -> None:
        """Seed history with completed bars (historical, already at this size or smaller)."""
        for bar in bars:
            self.add(bar)
        self.flush()

    def add(self, bar: Bar) -> Bar | None:
        """Fold in a (5-second) bar; returns the bar that completed, if one did.

        A bar completes as soon as its last 5-second slice arrives, not one slice later.
        """
        start = bar_start(bar.time, self.size_s)
        completed = None
        if self._current is not None and start > self._current.time:
            completed = self._close_current()
        if self._current is None:
            self._current = replace(bar, time=start)
        elif start == self._current.time:
            self._current = merge_bars(self._current, bar)
        if bar.time.timestamp() + 5 >= start.timestamp() + self.size_s:
            completed = self._close_current()
        return completed

    def _close_current(self) -> Bar:
        assert self._current is not None
        bar, self._current = self._current, None
        if not self.bars or bar.time > self.bars[-1].time:
            self.bars.append(bar)
            self._frame = None
        return bar

    def flush(self) -> None:
        """Close the bar in progress (after a warm-up from history)."""
        if self._current is not None:
            self._close_current()

    def frame(self) -> pd.DataFrame:
        """History as a DataFrame indexed by bar start (cached until the next bar)."""
        if self._frame is None:
            import pandas as pd

            rows = [(b.open, b.high, b.low, b.close, b.volume, b.wap, b.count) for b in self.bars]
            index = pd.DatetimeIndex([b.time for b in self.bars], name="time")
            self._frame = pd.DataFrame(rows, index=index, columns=BAR_COLUMNS)
        return self._frame


@dataclass
class MarketState:
    """Latest quotes and instruments, and when data last arrived."""

    quotes: dict[str, Quote]
    instruments: dict[str, Instrument]
    last_data_at: datetime | None = None
    stale: bool = False
    instruments_version: int = 0
    """Bumped by every :meth:`set_instruments`: readers of the hours (the schedule) refresh on a change."""

    @classmethod
    def empty(cls) -> MarketState:
        """No data yet."""
        return cls({}, {})

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """Fresh contract details (after a connect, at a new trading day).

        An instrument that came back without hours (its details timed out) keeps the hours it
        had: older sessions beat none, which would deny every entry of the symbol.
        """
        for symbol, fresh in instruments.items():
            old = self.instruments.get(symbol)
            if old is not None and not (fresh.trading_sessions or fresh.liquid_sessions):
                fresh = replace(fresh, trading_sessions=old.trading_sessions, liquid_sessions=old.liquid_sessions)
            self.instruments[symbol] = fresh
        self.instruments_version += 1

    def on_quote(self, quote: Quote, now: datetime) -> None:
        """Store a quote (keeping the last known price fields the broker left unset)."""
        self.quotes[quote.symbol] = quote
        self.last_data_at = now

    def snapshot(self) -> MarketSnapshot:
        """A frozen view for the risk gate."""
        return MarketSnapshot(dict(self.quotes), dict(self.instruments))

    def view(self) -> MarketSnapshot:
        """The quotes and instruments as they are, not copied: for the risk gate, which reads them
        synchronously and keeps nothing (:meth:`snapshot` copies both dicts for anything that is kept)."""
        return MarketSnapshot(self.quotes, self.instruments)

    def mark(self, symbol: str) -> float:
        """Best valuation price for ``symbol`` (NaN when unknown)."""
        quote = self.quotes.get(symbol)
        return quote.mark if quote is not None else math.nan

    def age_s(self, now: datetime) -> float:
        """Seconds since market data last arrived (inf before any)."""
        return math.inf if self.last_data_at is None else (now - self.last_data_at).total_seconds()
