"""Replay of bars from a CSV or Parquet file (columns time, open, high, low, close, volume; an
optional ``symbol`` column) through the live stream, at the gateway's speed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tui_trader.sim.bars import BarArrays
from tui_trader.sim.instruments import InstrumentDb
from tui_trader.sim.market import Quote

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("time", "open", "high", "low", "close", "volume")


@dataclass(slots=True)
class Series:
    """Bars of one instrument and the interval between them."""

    bars: BarArrays
    interval: int


class Replay:
    """Bars per instrument; the stream walks open → high/low → close inside each bar."""

    def __init__(self, series: dict[int, Series], start: int) -> None:
        """Use loaded series; ``start`` is the epoch the replay begins at."""
        self.series = series
        self.start = start

    def start_time(self) -> datetime:
        """Where a real-time replay starts: a fifth of the way in (at most a day), so history exists."""
        first = min(int(s.bars.t[0]) for s in self.series.values())
        last = max(int(s.bars.t[-1]) for s in self.series.values())
        return datetime.fromtimestamp(first + min((last - first) // 5, 86400), UTC)

    @classmethod
    def load(cls, path: Path, instruments: InstrumentDb) -> Replay:
        """Read the file; symbols come from a ``symbol`` column or else the file name (or all)."""
        import pandas as pd  # only replays need pandas (and pyarrow): keep it off the start path

        frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
        frame.columns = [str(c).lower() for c in frame.columns]
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        times = pd.to_datetime(frame["time"], utc=True)
        epoch = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        frame = frame.assign(epoch=epoch.astype("int64"))
        groups = _groups(frame, path, instruments)
        series = {cid: _series(g) for cid, g in groups.items()}
        start = min(int(s.bars.t[0]) for s in series.values())
        return cls(series, start)

    def bars(self, con_id: int, start: int, end: int) -> BarArrays:
        """Replayed bars in ``[start, end)``."""
        s = self.series.get(con_id)
        return s.bars.window(start, end) if s else BarArrays.empty()

    def step(self, quote: Quote, t: float) -> None:
        """Move the quote to where the replay is at time ``t``."""
        s = self.series.get(quote.inst.con_id)
        quote.traded = False
        if s is None or quote.halted:
            return
        b = s.bars
        i = int(np.searchsorted(b.t, t, side="right")) - 1
        if i < 0 or t >= b.t[-1] + s.interval:
            return
        frac = (t - b.t[i]) / s.interval
        price = _path_price(float(b.o[i]), float(b.h[i]), float(b.low[i]), float(b.c[i]), frac)
        quote.set_mid(price)
        size = max(1, int(b.v[i] / max(1, s.interval * 4)))
        quote.print_trade(quote.round_tick(price), size, int(t))


def _path_price(o: float, h: float, lo: float, c: float, frac: float) -> float:
    first, second = (lo, h) if c >= o else (h, lo)
    points = (o, first, second, c)
    pos = min(2.999, frac * 3)
    k = int(pos)
    return points[k] + (points[k + 1] - points[k]) * (pos - k)


def _groups(frame: pd.DataFrame, path: Path, instruments: InstrumentDb) -> dict[int, pd.DataFrame]:
    if "symbol" in frame.columns:
        out = {}
        for symbol, group in frame.groupby("symbol"):
            inst = instruments.by_symbol(str(symbol))
            if inst:
                out[inst.con_id] = group
        return out
    inst = instruments.by_symbol(path.stem)
    targets = [inst] if inst else list(instruments)
    return {i.con_id: frame for i in targets}


def _series(group: pd.DataFrame) -> Series:
    group = group.sort_values("epoch")
    t = group["epoch"].to_numpy(dtype=np.int64)
    interval = int(np.median(np.diff(t))) if len(t) > 1 else 60
    cols = [group[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume")]
    return Series(BarArrays(t, *cols), max(1, interval))
