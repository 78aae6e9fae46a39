"""Market data state: latest quotes, instruments, staleness, and bars aggregated per bar size.

The broker streams 5-second bars; each strategy asks for its own bar size (a multiple of 5 s).
:class:`BarSeries` aggregates 5-second bars into bars aligned on the bar size and keeps a bounded
history that strategies read as a pandas DataFrame.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tui_trader.domain.market import Bar, Instrument, MarketSnapshot, Quote

if TYPE_CHECKING:  # pandas is needed at the first completed bar, not on the start path
    import pandas as pd

log = logging.getLogger(__name__)
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

    A bar is stored (and returned to strategies) only when it is whole: its 5-second slices ran
    unbroken from the start of its bucket to its end. A bar cut off by a gap (a disconnect, a
    halt) or begun in the middle of its bucket (the first after a subscription) is dropped and
    logged, never passed off as complete; the warm-up's history fills its place.

    Args:
        symbol: The symbol.
        size_s: Bar length in seconds.
        maxlen: Bars of history kept.
    """

    def __init__(self, symbol: str, size_s: int, maxlen: int = 500) -> None:
        self.symbol, self.size_s = symbol, size_s
        self.bars: deque[Bar] = deque(maxlen=maxlen)
        self.warmup_bars = 0
        """Bars of history the strategies on this series need before their first signal."""
        self._current: Bar | None = None
        self._whole = False
        self._next_slice: datetime | None = None
        self._held: list[Bar] | None = None
        self._frame: pd.DataFrame | None = None

    def hold(self) -> None:
        """Keep live slices aside until :meth:`warm` (a warm-up is on its way): folded first, they
        would make every older history bar look late."""
        if self._held is None:
            self._held = []

    def warm(self, bars: list[Bar], asked: datetime) -> Bar | None:
        """Merge historical bars (at this size or a divisor of it) by time, then fold the held slices.

        A bar already stored from live slices wins over history of the same start. The history was
        asked for at ``asked`` and ends there or a little later (IB takes a moment to answer). Its
        newest bucket, if in progress at ``asked``, is not stored: it seeds the bar in progress, and
        the live slices from the one holding ``asked`` on (held meanwhile) finish it. The seconds of
        that overlap count twice in its volume; none go missing, as they would with the answer's
        arrival as the cut: a bucket that ended meanwhile would be stored without its last seconds.

        Returns:
            The newest bar the held slices completed: a live bar, which strategies see as one.
        """
        buckets = self._fold_history(bars)
        if buckets and buckets[-1].time.timestamp() + self.size_s > asked.timestamp():
            self._seed(buckets.pop(), asked)
        known = {b.time for b in self.bars}
        merged = sorted([*self.bars, *(b for b in buckets if b.time not in known)], key=lambda b: b.time)
        self.bars = deque(merged[-(self.bars.maxlen or len(merged)):], maxlen=self.bars.maxlen)
        self._frame = None
        held, self._held = self._held or [], None
        completed = None
        for bar in held:
            completed = self.add(bar) or completed
        return completed

    def _fold_history(self, bars: list[Bar]) -> list[Bar]:
        """History at this size; an oldest bucket that history covers only in part is left out."""
        bars = sorted(bars, key=lambda b: b.time)
        if bars and bars[0].time != bar_start(bars[0].time, self.size_s):
            bars = [b for b in bars if bar_start(b.time, self.size_s) != bar_start(bars[0].time, self.size_s)]
        buckets: list[Bar] = []
        for bar in bars:
            start = bar_start(bar.time, self.size_s)
            if buckets and buckets[-1].time == start:
                buckets[-1] = merge_bars(buckets[-1], bar)
            else:
                buckets.append(replace(bar, time=start))
        return buckets

    def _seed(self, partial: Bar, asked: datetime) -> None:
        """The bar in progress from history up to ``asked``, unless live slices hold it whole up to there
        (after a reconnect within the bar, the live slices from before the outage are not)."""
        cut = max(bar_start(asked, 5), partial.time)  # history answered in the next bucket: live from its start
        if self._current is not None and self._current.time > partial.time:
            return
        if (self._current is not None and self._current.time == partial.time and self._whole
                and self._next_slice is not None and self._next_slice >= cut):
            return
        self._current, self._whole = partial, True
        self._next_slice = cut

    def add(self, bar: Bar) -> Bar | None:
        """Fold in a live 5-second slice; returns the bar it completed, if it completed a whole one.

        A bar completes as soon as its last 5-second slice arrives, not one slice later. A slice
        older than the one expected (late, or sent twice) is ignored.
        """
        if self._held is not None:
            self._held.append(bar)
            return None
        if self._is_stale(bar):
            log.info("%s %ss bars: ignored the late or repeated slice of %s", self.symbol, self.size_s,
                     bar.time.isoformat())
            return None
        start = bar_start(bar.time, self.size_s)
        if self._current is not None and start > self._current.time:
            self._drop_current("its last slices never came")
        if self._current is None:
            self._current, self._whole = replace(bar, time=start), bar.time == start
        else:
            self._current = merge_bars(self._current, bar)
            self._whole = self._whole and bar.time == self._next_slice
        self._next_slice = bar.time + timedelta(seconds=5)
        if self._next_slice >= start + timedelta(seconds=self.size_s):
            return self._close_current()
        return None

    def _is_stale(self, bar: Bar) -> bool:
        if self._next_slice is not None and bar.time < self._next_slice:
            return True
        return bool(self.bars) and bar_start(bar.time, self.size_s) <= self.bars[-1].time

    def _drop_current(self, why: str) -> None:
        assert self._current is not None
        log.info("%s %ss bar of %s dropped, not whole (%s; trade count %d)", self.symbol, self.size_s,
                 self._current.time.isoformat(), why, self._current.count)
        self._current = None

    def _close_current(self) -> Bar | None:
        """Store the bar in progress if it is whole and newer than the last stored; None otherwise."""
        assert self._current is not None
        if not self._whole:
            self._drop_current("it began after the start of its bucket or skipped a slice")
            return None
        bar, self._current = self._current, None
        if self.bars and bar.time <= self.bars[-1].time:
            return None
        self.bars.append(bar)
        self._frame = None
        return bar

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
