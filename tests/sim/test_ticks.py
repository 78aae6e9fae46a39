"""The hot-path encoding of live ticks is byte for byte the message-by-message one."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tui_trader.sim import ticks
from tui_trader.sim.instruments import synthetic
from tui_trader.sim.market import Quote

prices = st.floats(min_value=0.0001, max_value=1e9, allow_nan=False)
sizes = st.integers(min_value=0, max_value=10**12)


@given(req_id=st.integers(min_value=0, max_value=2**31 - 1), bid=prices, ask=prices, last=prices,
       bid_size=sizes, ask_size=sizes, last_size=sizes, volume=sizes, epoch=st.integers(0, 2**40),
       high=st.one_of(prices, st.just(math.nan)), low=st.one_of(prices, st.just(math.nan)),
       traded=st.booleans(), range_changed=st.booleans())
def test_live_ticks_when_any_quote_then_same_bytes_as_quote_and_trade_ticks(
        req_id: int, bid: float, ask: float, last: float, bid_size: int, ask_size: int, last_size: int,
        volume: int, epoch: int, high: float, low: float, traded: bool, range_changed: bool) -> None:
    q = Quote(inst=synthetic("SYN1"), mid=bid, bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size, last=last,
              last_size=last_size, volume=volume, high=high, low=low, last_time=epoch, traded=traded)
    expected = ticks.quote_ticks(req_id, q) + (ticks.trade_ticks(req_id, q, range_changed) if traded else b"")
    assert ticks.live_ticks(req_id, q, range_changed) == expected


def test_framed_when_payload_longer_than_255_then_four_byte_length() -> None:
    payload = "9" * 300
    assert ticks._framed(payload).encode("latin-1") == ticks._wrap(payload)
