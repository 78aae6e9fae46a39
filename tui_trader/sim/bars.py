"""Bars: 5-second base bars (synthetic pre-start history, replayed files, recorded live bars)
aggregated into any bar size IB offers, and the bar-size/duration grammar of reqHistoricalData."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from tui_trader.sim.instruments import EXCHANGE_TZ, EXCHANGE_TZ_ID

BASE_SECONDS = 5
_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86400}
_DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}


@dataclass(slots=True)
class BarArrays:
    """Columns of bars sorted by start time (epoch seconds)."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray

    @classmethod
    def empty(cls) -> BarArrays:
        """No bars."""
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z, z, z)

    def __len__(self) -> int:
        return len(self.t)

    def window(self, start: int, end: int) -> BarArrays:
        """Bars whose start lies in ``[start, end)``."""
        i, j = np.searchsorted(self.t, [start, end])
        return BarArrays(self.t[i:j], self.o[i:j], self.h[i:j], self.low[i:j], self.c[i:j], self.v[i:j])

    def select(self, mask: np.ndarray) -> BarArrays:
        """Bars where ``mask`` is true."""
        return BarArrays(self.t[mask], self.o[mask], self.h[mask], self.low[mask], self.c[mask], self.v[mask])

    @staticmethod
    def concat(parts: list[BarArrays]) -> BarArrays:
        """Join bar columns in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return BarArrays.empty()
        return BarArrays(*(np.concatenate([getattr(p, n) for p in parts]) for n in ("t", "o", "h", "low", "c", "v")))


@dataclass(frozen=True, slots=True)
class Bar:
    """One aggregated bar ready to encode."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int
    day: date | None = None


def parse_bar_size(text: str) -> int:
    """Bar size in seconds from IB text (``"5 secs"``, ``"1 min"``, ``"4 hours"``, ``"1 day"``).

    Raises:
        ValueError: unsupported size.
    """
    number, _, unit = text.strip().partition(" ")
    seconds = int(number) * _UNITS[unit.strip().lower()]
    if seconds < BASE_SECONDS or seconds > 86400 or (86400 % seconds and seconds % 3600):
        raise ValueError(f"unsupported bar size {text!r}")
    return seconds


def parse_duration(text: str) -> int:
    """Duration in seconds from IB text (``"3600 S"``, ``"2 D"``, ``"1 W"``)."""
    number, _, unit = text.strip().partition(" ")
    return int(number) * _DURATION_UNITS[unit.strip().upper()]


def parse_end(text: str, now: datetime) -> datetime:
    """The end of a historical request: empty means now; otherwise IB's date formats."""
    text = text.strip()
    if not text:
        return now
    if "-" in text[:9]:
        text = text.replace("-", " ", 1) + " UTC"
    parts = text.split(" ")
    if len(parts) == 1:
        d = datetime.strptime(parts[0], "%Y%m%d").replace(tzinfo=EXCHANGE_TZ)
        return d + timedelta(hours=23, minutes=59, seconds=59)
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(parts[2]) if len(parts) > 2 and parts[2] else EXCHANGE_TZ
    return datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S").replace(tzinfo=zone)


def utc_offsets(t: np.ndarray) -> np.ndarray:
    """Exchange-time UTC offsets (seconds) for each epoch in ``t``, resolved per UTC day."""
    days = t // 86400
    uniq = np.unique(days)
    offs = np.array([_offset(int(d)) for d in uniq], dtype=np.int64)
    return offs[np.searchsorted(uniq, days)]


def _offset(day: int) -> int:
    moment = datetime.fromtimestamp(day * 86400 + 43200, UTC)
    delta = EXCHANGE_TZ.utcoffset(moment.replace(tzinfo=None))
    return int(delta.total_seconds()) if delta else 0


def aggregate(bars: BarArrays, size: int) -> list[Bar]:
    """Aggregate base bars into bars of ``size`` seconds aligned on exchange-local midnight."""
    if not len(bars):
        return []
    off = utc_offsets(bars.t)
    keys = (bars.t + off) // size
    starts = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    ends = np.concatenate((starts[1:], [len(keys)])) - 1
    vol = np.add.reduceat(bars.v, starts)
    pv = np.add.reduceat(bars.c * bars.v, starts)
    highs = np.maximum.reduceat(bars.h, starts)
    lows = np.minimum.reduceat(bars.low, starts)
    out = []
    for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
        label = int(keys[s] * size - off[s])
        v = float(vol[k])
        wap = float(pv[k] / v) if v > 0 else float(bars.c[e])
        day = datetime.fromtimestamp(label + int(off[s]), UTC).date() if size == 86400 else None
        out.append(Bar(label, float(bars.o[s]), float(highs[k]), float(lows[k]), float(bars.c[e]),
                       v, round(wap, 4), int(v // 100), day))
    return out


def format_bar_date(bar: Bar, format_date: int) -> str:
    """IB's date text: ``YYYYmmdd`` for daily bars, else local time with zone or epoch seconds."""
    if bar.day is not None:
        return bar.day.strftime("%Y%m%d")
    if format_date == 2:
        return str(bar.start)
    local = datetime.fromtimestamp(bar.start, EXCHANGE_TZ)
    return f"{local:%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"


def format_header_time(moment: datetime) -> str:
    """Start/end text of a historicalData reply."""
    return f"{moment.astimezone(EXCHANGE_TZ):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"


def session_mask(t: np.ndarray, rth: bool, always: bool) -> np.ndarray:
    """Which epochs fall inside the session (regular hours, or extended 04:00-20:00)."""
    t = np.asarray(t, dtype=np.int64)
    if always:
        return np.ones(len(t), dtype=bool)
    local = t + utc_offsets(t)
    sec = local % 86400
    weekday = (local // 86400 + 3) % 7
    lo, hi = (34200, 57600) if rth else (14400, 72000)
    return (weekday < 5) & (sec >= lo) & (sec < hi)


def bucket(start: int, size: int) -> tuple[int, date | None]:
    """The start (epoch) of the ``size``-second bar holding ``start``, and its date for daily bars."""
    off = int(utc_offsets(np.array([start], dtype=np.int64))[0])
    label = (start + off) // size * size - off
    day = datetime.fromtimestamp(label + off, UTC).date() if size == 86400 else None
    return label, day
