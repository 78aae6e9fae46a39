"""The synthetic pre-start history keeps a bounded cache and gives the same bars when asked again."""

from __future__ import annotations

import numpy as np

from tui_trader.sim.history import CHUNK, CHUNKS_KEPT, SyntheticHistory
from tui_trader.sim.instruments import InstrumentDb
from tui_trader.sim.market import MarketModel, Quote

T0 = 1_709_650_800  # 2024-03-05 15:00 UTC


def _history() -> tuple[SyntheticHistory, Quote]:
    market = MarketModel(list(InstrumentDb(["AAPL"])), seed=7, always_open=True)
    quote = next(iter(market.quotes.values()))
    history = SyntheticHistory(7, T0, True, market.drift)
    history.register(quote.inst.con_id, quote.last)
    return history, quote


def test_long_request_then_cache_bounded_and_a_repeat_gives_identical_bars() -> None:
    history, quote = _history()
    start = T0 - 5 * 86400

    first = history.bars(quote, start, T0)
    cached = history._chunks[quote.inst.con_id]  # noqa: SLF001
    again = history.bars(quote, start, T0)

    assert len(cached) <= CHUNKS_KEPT
    assert len(first) == 5 * 86400 // 5
    for column in ("t", "o", "h", "low", "c", "v"):
        assert np.array_equal(getattr(first, column), getattr(again, column))


def test_warm_up_request_then_only_the_newest_chunk_is_generated() -> None:
    history, quote = _history()

    bars = history.bars(quote, T0 - 1800, T0)

    assert len(bars) == 1800 // 5
    assert list(history._chunks[quote.inst.con_id]) == [0]  # noqa: SLF001
    assert CHUNK > 1800


def test_chunks_join_without_a_gap_in_price() -> None:
    history, quote = _history()

    bars = history.bars(quote, T0 - 3 * CHUNK, T0)

    assert np.all(np.diff(bars.t) == 5)
    assert abs(bars.c[-1] - quote.last) / quote.last < 0.01
