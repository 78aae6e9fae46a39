"""Market data state: latest quotes, instruments, staleness, and bars aggregated per bar size.

The broker streams 5-second bars; each strategy asks for its own bar size (a multiple of 5 s).
:class:`BarSeries` aggregates 5-second bars into bars whose boundaries a :class:`BarClock` places on the
exchange's clock, and keeps a bounded history that strategies read as a pandas DataFrame.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import math
import zoneinfo
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tui_trader.domain.market import Bar, Instrument, MarketPhase, MarketSnapshot, Quote, market_phase

if TYPE_CHECKING:  # pandas is needed at the first completed bar, not on the start path
    import pandas as pd

log = logging.getLogger(__name__)
BAR_COLUMNS = ["open", "high", "low", "close", "volume", "wap", "count"]
DAY_S = 86_400
DEFAULT_ZONE = "America/New_York"
"""The exchange's zone until the broker says the symbol's (the engine's trading-day zone)."""
STEADY_S = 3600
"""How long a clock is taken not to change after a check: no zone changes its clock twice within an hour."""
_NEVER = datetime.min.replace(tzinfo=UTC)
PHASES_FOR = timedelta(seconds=1)
"""How long the market phases are kept before they are worked out again (hours change at minutes, not ms)."""


def same_clock(a: str, b: str) -> bool:
    """Whether the zones named ``a`` and ``b`` keep one clock: one name, or two names of one zone (IB names New
    York's "US/Eastern", a link to "America/New_York" in the tz database: the same compiled rules). Each connect
    logged "SPY 5s bars follow US/Eastern's clock, not America/New_York's: 0 bars dropped"."""
    return a == b or (rules := _zone_rules(a)) is not None and rules == _zone_rules(b)


@functools.cache
def _zone_rules(key: str) -> bytes | None:
    """The compiled tz database file of zone ``key`` (which ``ZoneInfo`` accepted), where ``zoneinfo`` finds it:
    the system's zone directories, then the ``tzdata`` package; ``None`` if neither has it."""
    for root in zoneinfo.TZPATH:
        if (path := Path(root) / key).is_file():
            return path.read_bytes()
    try:
        return importlib.resources.files("tzdata.zoneinfo").joinpath(key).read_bytes()
    except (ImportError, OSError):
        return None


class BarClock:
    """Where the bars of one size begin and end, on an exchange's clock.

    A size that divides a day (86,400 s; every size over an hour must, the config refuses others) has its
    boundaries wherever the exchange's clock reads a whole number of sizes since its midnight: 4-hour bars
    begin at 00:00, 04:00, 08:00... New York time in winter and in summer, and a 1-day bar is the
    exchange's calendar day, midnight to midnight. The bar holding a clock change is as long as the clock
    says: when New York's clock jumps from 02:00 to 03:00 the 2-hour bar from 00:00 runs to 04:00 (three
    hours; 02:00 never happens) and the day has 23 hours; when 01:00-02:00 happens twice the 2-hour bar
    from 00:00 runs three hours, the 1-hour bar of 01:00 comes twice, and the day has 25 hours.

    A size that does not divide a day (up to an hour: 7 minutes, say) recurs at no fixed time of day;
    its boundaries lie on the Unix epoch, as they always did.

    Args:
        size_s: Bar length in seconds.
        zone: The exchange's IANA time zone.
    """

    def __init__(self, size_s: int, zone: str = DEFAULT_ZONE) -> None:
        self.size_s = size_s
        self.zone = zone if DAY_S % size_s == 0 else "UTC"
        """The zone whose clock the boundaries follow ("UTC" for a size that does not divide a day)."""
        self._tz = ZoneInfo(self.zone)
        self._steady = (0, 0, 0)
        """An hour (epoch seconds, from, to) over which the clock does not change, and its offset: 5-second
        bars look their bounds up every 5 seconds, and the zone is asked only once an hour for them."""

    def span(self, when: datetime) -> tuple[datetime, datetime]:
        """Start (inclusive) and end (exclusive) of the bar holding ``when``, as UTC instants."""
        t = math.floor(when.timestamp())
        first, last, offset = self._steady
        start = t - (t + offset) % self.size_s
        if not (first <= start and start + self.size_s <= last):
            start, end = self._start(t), self._end(t)
            if self._offset(t) == self._offset(t + STEADY_S):  # no clock changes twice within an hour
                self._steady = (t, t + STEADY_S, self._offset(t))
            return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + self.size_s, UTC)

    def _start(self, t: int) -> int:
        """The last boundary at or before ``t`` (epoch seconds)."""
        offset = self._offset(t)
        while True:
            grid = t - (t + offset) % self.size_s  # the last boundary at or before t, were the clock not to change
            if self._offset(grid) == offset:
                return grid
            changed = self._change(grid, t)  # the clock changed after grid: t's stretch of clock began there
            t = changed - 1
            offset = self._offset(t)

    def _end(self, t: int) -> int:
        """The first boundary after ``t`` (epoch seconds)."""
        offset = self._offset(t)
        grid = t - (t + offset) % self.size_s + self.size_s
        while self._offset(grid) != offset:  # the clock changes before grid: the boundary is on the new clock
            t = self._change(t, grid)
            offset = self._offset(t)
            grid = t + -(t + offset) % self.size_s
        return grid

    def _offset(self, t: int) -> int:
        """The exchange clock's distance from UTC at ``t``, in seconds."""
        offset = datetime.fromtimestamp(t, self._tz).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def _change(self, before: int, after: int) -> int:
        """The second the clock changes, between ``before`` and ``after`` (whose offsets differ)."""
        offset = self._offset(before)
        while after - before > 1:
            middle = (before + after) // 2
            if self._offset(middle) == offset:
                before = middle
            else:
                after = middle
        return after


def slice_start(when: datetime) -> datetime:
    """Start of the 5-second slice holding ``when`` (slices lie on the epoch, as IB sends them)."""
    ts = when.timestamp()
    return datetime.fromtimestamp(ts - ts % 5, tz=UTC)


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

    Bars begin and end where its :class:`BarClock` says, on the exchange's clock; live slices and the
    warm-up's history are bucketed by the same clock, so they agree on every boundary.

    A bar is stored (and returned to strategies) only when it is whole: its 5-second slices ran
    unbroken from the start of its bucket to its end. A bar cut off by a gap (a disconnect, a
    halt) or begun in the middle of its bucket (the first after a subscription) is dropped and
    logged, never passed off as complete; the warm-up's history fills its place.

    Args:
        symbol: The symbol.
        size_s: Bar length in seconds.
        maxlen: Bars of history kept.
        zone: The exchange's time zone (until :meth:`use_zone` is told the symbol's own).
    """

    def __init__(self, symbol: str, size_s: int, maxlen: int = 500, zone: str = DEFAULT_ZONE) -> None:
        self.symbol, self.size_s = symbol, size_s
        self.clock = BarClock(size_s, zone)
        self.bars: deque[Bar] = deque(maxlen=maxlen)
        self.warmup_bars = 0
        """Bars of history the strategies on this series need before their first signal."""
        self._current: Bar | None = None
        self._current_end = _NEVER
        self._stored_end = _NEVER
        """End of the newest stored bar: a slice before it is late."""
        self._span = (_NEVER, _NEVER)
        """The bar (start, end) last looked up: slices look up their bar once, not once each."""
        self._whole = False
        self._next_slice: datetime | None = None
        self._held: list[Bar] | None = None
        self._frame: pd.DataFrame | None = None

    def use_zone(self, zone: str) -> None:
        """Place the boundaries on ``zone``'s clock (the symbol's exchange's, once the broker said it).

        Bars already made on another clock are dropped, not mixed with the new ones: the warm-up that
        follows brings them back from history, on the new clock.
        """
        clock = BarClock(self.size_s, zone)
        if same_clock(clock.zone, self.clock.zone):  # IB's "US/Eastern" is New York's clock: nothing to redo
            return
        log.info("%s %ss bars follow %s's clock, not %s's: %d bars dropped for the warm-up to refill",
                 self.symbol, self.size_s, clock.zone, self.clock.zone, len(self.bars))
        self.clock, self._span = clock, (_NEVER, _NEVER)
        self.bars.clear()
        self._current, self._current_end, self._stored_end, self._next_slice = None, _NEVER, _NEVER, None
        self._frame = None

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
        if buckets and self._bucket(buckets[-1].time)[1] > asked:
            self._seed(buckets.pop(), asked)
        known = {b.time for b in self.bars}
        merged = sorted([*self.bars, *(b for b in buckets if b.time not in known)], key=lambda b: b.time)
        self.bars = deque(merged[-(self.bars.maxlen or len(merged)):], maxlen=self.bars.maxlen)
        self._stored_end = self.clock.span(self.bars[-1].time)[1] if self.bars else _NEVER
        self._frame = None
        held, self._held = self._held or [], None
        completed = None
        for bar in held:
            completed = self.add(bar) or completed
        return completed

    def _fold_history(self, bars: list[Bar]) -> list[Bar]:
        """History at this size; an oldest bucket that history covers only in part is left out."""
        bars = sorted(bars, key=lambda b: b.time)
        if bars and bars[0].time != (oldest := self._bucket(bars[0].time)[0]):
            bars = [b for b in bars if self._bucket(b.time)[0] != oldest]
        buckets: list[Bar] = []
        for bar in bars:
            start = self._bucket(bar.time)[0]
            if buckets and buckets[-1].time == start:
                buckets[-1] = merge_bars(buckets[-1], bar)
            else:
                buckets.append(replace(bar, time=start))
        return buckets

    def _seed(self, partial: Bar, asked: datetime) -> None:
        """The bar in progress from history up to ``asked``, unless live slices hold it whole up to there
        (after a reconnect within the bar, the live slices from before the outage are not)."""
        cut = max(slice_start(asked), partial.time)  # history answered in the next bucket: live from its start
        if self._current is not None and self._current.time > partial.time:
            return
        if (self._current is not None and self._current.time == partial.time and self._whole
                and self._next_slice is not None and self._next_slice >= cut):
            return
        self._current, self._whole = partial, True
        self._current_end = self._bucket(partial.time)[1]
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
        if self._current is not None and bar.time >= self._current_end:
            self._drop_current("its last slices never came")
        if self._current is None:
            start, self._current_end = self._bucket(bar.time)
            self._current, self._whole = replace(bar, time=start), bar.time == start
        else:
            self._current = merge_bars(self._current, bar)
            self._whole = self._whole and bar.time == self._next_slice
        self._next_slice = bar.time + timedelta(seconds=5)
        if self._next_slice >= self._current_end:
            return self._close_current()
        return None

    def _bucket(self, when: datetime) -> tuple[datetime, datetime]:
        """The bar (start, end) holding ``when``: the clock is asked once per bar, not once per slice."""
        start, end = self._span
        if not start <= when < end:
            self._span = start, end = self.clock.span(when)
        return start, end

    def _is_stale(self, bar: Bar) -> bool:
        if self._next_slice is not None and bar.time < self._next_slice:
            return True
        return bar.time < self._stored_end

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
        self._stored_end = self._current_end
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
    _phases: dict[str, MarketPhase] = field(default_factory=dict, repr=False)
    _phases_at: tuple[int, datetime] = (-1, _NEVER)
    """The instruments' version and the time :attr:`_phases` were worked out for."""

    @classmethod
    def empty(cls) -> MarketState:
        """No data yet."""
        return cls({}, {})

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """Fresh contract details (after a connect, at a new trading day).

        An instrument that came back without hours (its details timed out) keeps the hours it
        had: older sessions beat none, which would deny every entry of the symbol. It keeps the time
        zone that came with them too, not the default a bare contract carries (its bars follow it).
        """
        for symbol, fresh in instruments.items():
            old = self.instruments.get(symbol)
            if old is not None and not (fresh.trading_sessions or fresh.liquid_sessions):
                fresh = replace(fresh, trading_sessions=old.trading_sessions, liquid_sessions=old.liquid_sessions,
                                time_zone=old.time_zone)
            self.instruments[symbol] = fresh
        self.instruments_version += 1

    def phases(self, now: datetime) -> dict[str, MarketPhase]:
        """Each symbol's market phase at ``now`` by its hours (a symbol whose hours are not known is left out).

        Worked out again at most once per :data:`PHASES_FOR` and with new hours; the same dict while no phase
        changed (the engine's snapshot carries it ten times a second)."""
        version, at = self._phases_at
        if version == self.instruments_version and timedelta(0) <= now - at < PHASES_FOR:
            return self._phases
        self._phases_at = (self.instruments_version, now)
        phases = {symbol: phase for symbol, instrument in self.instruments.items()
                  if (phase := market_phase(instrument, now)) is not None}
        if phases != self._phases:
            self._phases = phases
        return self._phases

    def on_quote(self, quote: Quote, now: datetime) -> bool:
        """Store a quote; True when it halts or resumes its symbol's trading (the first quote of a symbol: when it
        comes halted). A quote that does not say (``halted`` None: a reconnect's, before IB's halted tick) keeps a
        halt known before: only the broker's word ends it."""
        before = self.quotes.get(quote.symbol)
        if quote.halted is None and before is not None and before.halted:
            quote = replace(quote, halted=True)
        self.quotes[quote.symbol] = quote
        self.last_data_at = now
        return (quote.halted is True) is not (before is not None and before.halted is True)

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
