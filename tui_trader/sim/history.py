"""Base bars before the simulator started (synthetic, generated backwards from the start price)
and the live 5-second bars recorded from the stream, so history and the stream agree."""

from __future__ import annotations

import math
from array import array

import numpy as np

from tui_trader.sim.bars import BASE_SECONDS, BarArrays, session_mask, utc_offsets
from tui_trader.sim.market import SECONDS_PER_YEAR, Quote

CHUNK = 3600
"""Seconds of synthetic 5-second bars generated at a time (720 bars: a warm-up needs one chunk)."""
MAX_CHUNKS = 400 * 24
"""History reaches back 400 days at most."""
CHUNKS_KEPT = 48
"""Chunks cached per instrument (the most recently used); older ones are generated again when asked for:
each chunk is a pure function of the seed, the instrument, its index and its end price."""


class SyntheticHistory:
    """Seeded 5-second bars ending exactly at each instrument's start price at ``t0``."""

    def __init__(self, seed: int, t0: int, always_open: bool, drift: float) -> None:
        """Remember the generation parameters; chunks are generated lazily and cached."""
        self.seed = seed
        self.t0 = t0 - t0 % BASE_SECONDS
        self.always_open = always_open
        self.drift = drift
        self._chunks: dict[int, dict[int, BarArrays]] = {}
        self._end_price: dict[int, list[float]] = {}

    def register(self, con_id: int, start_price: float) -> None:
        """Pin the price at which the history ends (the stream's first price)."""
        self._end_price[con_id] = [start_price]
        self._chunks[con_id] = {}

    def bars(self, quote: Quote, start: int, end: int) -> BarArrays:
        """Synthetic base bars in ``[start, min(end, t0))``."""
        end = min(end, self.t0)
        if start >= end:
            return BarArrays.empty()
        needed = min(MAX_CHUNKS, math.ceil((self.t0 - start) / CHUNK))
        newest = (self.t0 - end) // CHUNK  # chunk k covers [t0 - (k + 1) * CHUNK, t0 - k * CHUNK)
        parts = [self._chunk(quote, k).window(start, end) for k in range(needed - 1, newest - 1, -1)]
        return BarArrays.concat(parts)

    def _chunk(self, quote: Quote, k: int) -> BarArrays:
        """Chunk ``k`` (0 ends at ``t0``), from the cache or generated (each chunk ends where the next begins)."""
        con_id = quote.inst.con_id
        cache, ends = self._chunks[con_id], self._end_price[con_id]
        while len(ends) <= k:  # the end price of chunk j + 1 is the first open of chunk j
            self._keep(cache, len(ends) - 1, self._make_chunk(quote, len(ends) - 1))
        chunk = cache.pop(k, None)
        if chunk is None:
            chunk = self._make_chunk(quote, k)
        self._keep(cache, k, chunk)
        return chunk

    @staticmethod
    def _keep(cache: dict[int, BarArrays], k: int, chunk: BarArrays) -> None:
        cache[k] = chunk  # most recently used last
        while len(cache) > CHUNKS_KEPT:
            del cache[next(iter(cache))]

    def _intensity(self, t: np.ndarray) -> np.ndarray:
        if self.always_open:
            return np.ones(len(t))
        local = t + utc_offsets(t)
        sec = local % 86400
        rth = session_mask(t, rth=True, always=False)
        ext = session_mask(t, rth=False, always=False)
        x = (sec - 34200) / 23400.0
        return np.where(rth, 0.5 + 6.0 * (x - 0.5) ** 2, np.where(ext, 0.1, 0.0))

    def _make_chunk(self, quote: Quote, k: int) -> BarArrays:
        con_id = quote.inst.con_id
        end_price = self._end_price[con_id][k]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, con_id, k])
        t = np.arange(self.t0 - (k + 1) * CHUNK, self.t0 - k * CHUNK, BASE_SECONDS, dtype=np.int64)
        inten = self._intensity(t)
        sigma = quote.inst.vol * math.sqrt(BASE_SECONDS / SECONDS_PER_YEAR) * np.sqrt(inten)
        incr = self.drift * BASE_SECONDS / SECONDS_PER_YEAR * (inten > 0) + sigma * rng.standard_normal(len(t))
        tail = np.cumsum(incr[::-1])[::-1]
        o = end_price * np.exp(-tail)
        c = o * np.exp(incr)
        wiggle = np.abs(rng.standard_normal((2, len(t)))) * sigma * 0.5
        h = np.maximum(o, c) * (1 + wiggle[0])
        lo = np.minimum(o, c) * (1 - wiggle[1])
        v = rng.poisson(18 * inten) * 100.0
        ends = self._end_price[con_id]
        if len(ends) == k + 1:
            ends.append(float(o[0]))
        keep = inten > 0
        tick = quote.inst.min_tick
        o, h, lo, c = (np.round(np.round(a / tick) * tick, 6) for a in (o, h, lo, c))
        return BarArrays(t, o, h, lo, c, v).select(keep)


class LiveBars:
    """5-second bars recorded from the live stream of one instrument (compact ``array`` columns)."""

    __slots__ = ("t", "o", "h", "low", "c", "v", "cur_t", "cur")

    def __init__(self) -> None:
        """No bars yet."""
        self.t = array("q")
        self.o, self.h, self.low, self.c, self.v = (array("d") for _ in range(5))
        self.cur_t = -1
        self.cur: list[float] = [0.0, 0.0, 0.0, 0.0, 0.0]

    def update(self, epoch: int, price: float, size: float) -> tuple[int, list[float]] | None:
        """Fold a step into the current bar; return the bar just finished, if any."""
        bucket = epoch - epoch % BASE_SECONDS
        done = None
        if bucket != self.cur_t:
            if self.cur_t >= 0:
                done = self._finish()
            self.cur_t = bucket
            self.cur = [price, price, price, price, 0.0]
        cur = self.cur
        cur[1] = max(cur[1], price)
        cur[2] = min(cur[2], price)
        cur[3] = price
        cur[4] += size
        return done

    def _finish(self) -> tuple[int, list[float]]:
        self.t.append(self.cur_t)
        for column, value in zip((self.o, self.h, self.low, self.c, self.v), self.cur, strict=True):
            column.append(value)
        return self.cur_t, list(self.cur)

    def arrays(self, include_current: bool = True) -> BarArrays:
        """Recorded bars (and the bar in progress) as numpy columns."""
        t = np.array(self.t, dtype=np.int64)
        cols = [np.array(col, dtype=float) for col in (self.o, self.h, self.low, self.c, self.v)]
        if include_current and self.cur_t >= 0:
            t = np.append(t, self.cur_t)
            cols = [np.append(col, val) for col, val in zip(cols, self.cur, strict=True)]
        return BarArrays(t, *cols)
