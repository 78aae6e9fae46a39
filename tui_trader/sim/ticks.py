"""Market-data messages, hand-encoded for speed (they are the bulk of the traffic)."""

from __future__ import annotations

import struct

from tui_trader.sim.bars import Bar, format_bar_date
from tui_trader.sim.market import Quote

_LEN = struct.Struct(">I")

BID, ASK, LAST, HIGH, LOW, CLOSE, OPEN = 1, 2, 4, 6, 7, 9, 14
BID_SIZE, ASK_SIZE, LAST_SIZE, VOLUME = 0, 3, 5, 8
LAST_TIMESTAMP = 45
HALTED = 49
DELAYED = {BID: 66, ASK: 67, LAST: 68, HIGH: 72, LOW: 73, CLOSE: 75, OPEN: 76, VOLUME: 74}


def _wrap(text: str) -> bytes:
    payload = text.encode()
    return _LEN.pack(len(payload)) + payload


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> bytes:
    """``1|6|reqId|tickType|price|size|attrMask``: exactly 7 fields."""
    return _wrap(f"1\0006\000{req_id}\000{tick_type}\000{price!r}\000{int(size)}\0000\000")


def tick_size(req_id: int, tick_type: int, size: float) -> bytes:
    """``2|6|reqId|tickType|size``."""
    return _wrap(f"2\0006\000{req_id}\000{tick_type}\000{int(size)}\000")


def tick_string(req_id: int, tick_type: int, value: str) -> bytes:
    """``46|6|reqId|tickType|value``."""
    return _wrap(f"46\0006\000{req_id}\000{tick_type}\000{value}\000")


def tick_generic(req_id: int, tick_type: int, value: float) -> bytes:
    """``45|6|reqId|tickType|value``."""
    return _wrap(f"45\0006\000{req_id}\000{tick_type}\000{value!r}\000")


def market_data_type(req_id: int, kind: int) -> bytes:
    """``58|1|reqId|type``."""
    return _wrap(f"58\0001\000{req_id}\000{kind}\000")


def snapshot_end(req_id: int) -> bytes:
    """``57|1|reqId``."""
    return _wrap(f"57\0001\000{req_id}\000")


def quote_ticks(req_id: int, q: Quote) -> bytes:
    """Bid and ask with their sizes."""
    return tick_price(req_id, BID, q.bid, q.bid_size) + tick_price(req_id, ASK, q.ask, q.ask_size)


def delayed_ticks(req_id: int, q: Quote) -> bytes:
    """A delayed subscription's update: bid, ask and last as delayed tick types (no timestamp).

    The simulator sends the current book under the delayed ids rather than one 15 minutes old:
    what a client must handle is the tick types and the market-data-type switch, not the lag.
    """
    return (tick_price(req_id, DELAYED[BID], q.bid, q.bid_size) + tick_price(req_id, DELAYED[ASK], q.ask, q.ask_size)
            + tick_price(req_id, DELAYED[LAST], q.last, q.last_size or 100))


def trade_ticks(req_id: int, q: Quote, range_changed: bool) -> bytes:
    """Last price and size, volume, last timestamp (and the day's range when it moved)."""
    out = (tick_price(req_id, LAST, q.last, q.last_size) + tick_size(req_id, VOLUME, q.volume)
           + tick_string(req_id, LAST_TIMESTAMP, str(q.last_time)))
    if range_changed:
        out += tick_price(req_id, HIGH, q.high, 0) + tick_price(req_id, LOW, q.low, 0)
    return out


_HEADERS = [_LEN.pack(n).decode("latin-1") for n in range(256)]


def _framed(payload: str) -> str:
    """``payload`` behind its 4-byte length, as text, for :func:`live_ticks` to encode once.

    Market-data payloads are ASCII (ids and numbers), so their length in characters is their
    length in bytes, and latin-1 turns each of the header's four characters back into its byte.
    """
    n = len(payload)
    return (_HEADERS[n] if n < 256 else _LEN.pack(n).decode("latin-1")) + payload


def live_ticks(req_id: int, q: Quote, range_changed: bool) -> bytes:
    """What a live subscriber gets for a quote: :func:`quote_ticks`, then :func:`trade_ticks` if it traded.

    The same bytes, built as one string and encoded once instead of message by message: this
    runs for every print and subscriber (it was half the cost of publishing a print).
    """
    head = f"\0006\000{req_id}\000"
    text = (_framed(f"1{head}{BID}\000{q.bid!r}\000{int(q.bid_size)}\0000\000")
            + _framed(f"1{head}{ASK}\000{q.ask!r}\000{int(q.ask_size)}\0000\000"))
    if q.traded:
        text += (_framed(f"1{head}{LAST}\000{q.last!r}\000{int(q.last_size)}\0000\000")
                 + _framed(f"2{head}{VOLUME}\000{int(q.volume)}\000")
                 + _framed(f"46{head}{LAST_TIMESTAMP}\000{q.last_time}\000"))
        if range_changed:
            text += (_framed(f"1{head}{HIGH}\000{q.high!r}\0000\0000\000")
                     + _framed(f"1{head}{LOW}\000{q.low!r}\0000\0000\000"))
    return text.encode("latin-1")


def full_ticks(req_id: int, q: Quote, delayed: bool = False) -> bytes:
    """Every price and size a new subscription or a snapshot gets (its halted tick follows: :func:`halted_tick`)."""
    def kind(t: int) -> int:
        return DELAYED[t] if delayed else t

    out = tick_price(req_id, kind(BID), q.bid, q.bid_size) + tick_price(req_id, kind(ASK), q.ask, q.ask_size)
    out += tick_price(req_id, kind(LAST), q.last, q.last_size or 100)
    for tick, value in ((HIGH, q.high), (LOW, q.low), (OPEN, q.open), (CLOSE, q.close)):
        if value == value:  # not NaN
            out += tick_price(req_id, kind(tick), value, 0)
    out += tick_size(req_id, kind(VOLUME), q.volume)
    if not delayed and q.last_time:
        out += tick_string(req_id, LAST_TIMESTAMP, str(q.last_time))
    return out


def halted_tick(req_id: int, q: Quote) -> bytes:
    """IB's "Halted" tick (49): 1 halted, 0 not. IB sends it to every new subscription after the prices, and
    again whenever the symbol halts or resumes."""
    return tick_generic(req_id, HALTED, 1.0 if q.halted else 0.0)


def realtime_bar(req_id: int, start: int, bar: list[float]) -> bytes:
    """``50|3|reqId|time|open|high|low|close|volume|wap|count`` for one 5-second bar."""
    o, h, lo, c, v = bar
    return _wrap(f"50\0003\000{req_id}\000{start}\000{o!r}\000{h!r}\000{lo!r}\000{c!r}\000{int(v)}\000"
                 f"{c!r}\000{int(v // 100)}\000")


def historical_update(req_id: int, bar: Bar, format_date: int) -> bytes:
    """``90|reqId|barCount|date|open|close|high|low|wap|volume`` (note: open, close, high, low)."""
    date = format_bar_date(bar, format_date)
    return _wrap(f"90\000{req_id}\000{bar.count}\000{date}\000{bar.open!r}\000{bar.close!r}\000{bar.high!r}\000"
                 f"{bar.low!r}\000{bar.wap!r}\000{int(bar.volume)}\000")


def historical_data(req_id: int, start: str, end: str, bars: list[Bar], format_date: int) -> bytes:
    """``17|reqId|start|end|n|{date|open|high|low|close|volume|wap|count}×n`` (no version field)."""
    parts = [f"17\000{req_id}\000{start}\000{end}\000{len(bars)}"]
    for b in bars:
        parts.append(f"{format_bar_date(b, format_date)}\000{b.open!r}\000{b.high!r}\000{b.low!r}\000"
                     f"{b.close!r}\000{int(b.volume)}\000{b.wap!r}\000{b.count}")
    return _wrap("\000".join(parts) + "\000")
