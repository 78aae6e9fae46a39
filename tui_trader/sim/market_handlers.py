"""Handlers of market-data requests: contract details, quotes, real-time and historical bars."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tui_trader.sim import messages as msg
from tui_trader.sim import ticks
from tui_trader.sim.bars import aggregate, format_header_time, parse_bar_size, parse_duration, parse_end
from tui_trader.sim.instruments import EXCHANGE_TZ, Instrument
from tui_trader.sim.protocol.decode import FieldReader
from tui_trader.sim.session import HistSub, Session

if TYPE_CHECKING:
    from tui_trader.sim.gateway import SimGateway

NO_DEFINITION = "No security definition has been found for the request"
NOT_SUBSCRIBED = "Requested market data is not subscribed."


def _resolve(s: Session, req_id: int, r: FieldReader) -> Instrument | None:
    spec = r.contract()
    inst = s.gw.instruments.resolve(spec.con_id, spec.symbol, spec.sec_type, spec.currency)
    if inst is None:
        s.send(msg.error(req_id, 200, NO_DEFINITION))
    return inst


def contract_details(s: Session, fields: list[str]) -> None:
    """``9|8|reqId|contract…``: one detail, then the end marker; unknown → error 200."""
    r = FieldReader(fields, 2)
    req_id = r.integer()
    spec = r.contract()
    inst = s.gw.instruments.resolve(spec.con_id, spec.symbol, spec.sec_type, spec.currency)
    if inst is None:
        s.send(msg.error(req_id, 200, NO_DEFINITION))
        return
    today = s.gw.clock.now().astimezone(EXCHANGE_TZ).date()
    s.send(msg.contract_details(req_id, inst, spec.exchange or "SMART", today))
    s.send_kind("contract_details_end", msg.contract_details_end(req_id))


def mkt_data(s: Session, fields: list[str]) -> None:
    """``reqMktData``: streaming ticks or a snapshot ended by ``tickSnapshotEnd``."""
    r = FieldReader(fields, 2)
    req_id = r.integer()
    inst = _resolve(s, req_id, r)
    if inst is None:
        return
    if r.integer():  # delta-neutral contract present
        r.skip(3)
    r.skip(1)  # generic tick list
    snapshot = r.flag() or r.flag()
    gw = s.gw
    denied = inst.symbol in gw.faults.denied
    if denied and s.md_type not in (3, 4):
        s.send(msg.error(req_id, 354, NOT_SUBSCRIBED))
        return
    quote = gw.market.quotes[inst.con_id]
    s.send(ticks.market_data_type(req_id, 3 if denied else 1))
    if not gw.faults.stalled:
        s.send(ticks.full_ticks(req_id, quote, delayed=denied))
        s.send_kind("halted", ticks.halted_tick(req_id, quote))
    if snapshot:
        s.send(ticks.snapshot_end(req_id))
        return
    s.mkt[req_id] = inst.con_id
    if denied:
        s.delayed.add(req_id)
    gw.subscribe_quotes(s, req_id, inst.con_id)


def cancel_mkt_data(s: Session, fields: list[str]) -> None:
    """``2|2|reqId``."""
    req_id = int(fields[2])
    con_id = s.mkt.pop(req_id, None)
    s.delayed.discard(req_id)
    if con_id is not None:
        s.gw.unsubscribe_quotes(s, req_id, con_id)


def market_data_type(s: Session, fields: list[str]) -> None:
    """``59|1|type``: live (1), frozen (2), delayed (3), delayed-frozen (4)."""
    s.md_type = int(fields[2])


def realtime_bars(s: Session, fields: list[str]) -> None:
    """``reqRealTimeBars``: 5-second bars as they complete."""
    r = FieldReader(fields, 2)
    req_id = r.integer()
    inst = _resolve(s, req_id, r)
    if inst is None:
        return
    if inst.symbol in s.gw.faults.denied:
        s.send(msg.error(req_id, 354, NOT_SUBSCRIBED))
        return
    s.rt_bars[req_id] = inst.con_id


def cancel_realtime_bars(s: Session, fields: list[str]) -> None:
    """``51|1|reqId``."""
    s.rt_bars.pop(int(fields[2]), None)


def historical_data(s: Session, fields: list[str]) -> None:
    """``reqHistoricalData`` (no version field): bars, and updates when ``keepUpToDate``."""
    r = FieldReader(fields, 1)
    req_id = r.integer()
    inst = _resolve(s, req_id, r)
    if inst is None:
        return
    r.skip(1)  # includeExpired
    end_text, size_text, duration_text = r.text(), r.text(), r.text()
    use_rth, _what, format_date = r.flag(), r.text(), r.integer(1)
    keep = r.flag()
    window = _history_window(s, req_id, inst, end_text, duration_text, size_text)
    if window is not None:
        _send_history(s, s.gw, req_id, inst, window[:2], window[2], use_rth, format_date, keep)


def _history_window(s: Session, req_id: int, inst: Instrument, end_text: str, duration_text: str,
                    size_text: str) -> tuple[int, datetime, int] | None:
    """``(start, end, bar seconds)`` of a historical request, or ``None`` after sending error 162."""
    gw = s.gw
    if not gw.faults.allow_request(s):
        reason = "API historical data query cancelled: pacing violation"
    elif inst.symbol in gw.faults.denied:
        reason = f"No market data permissions for {inst.primary_exchange} STK"
    else:
        try:
            size = parse_bar_size(size_text)
            end = parse_end(end_text, gw.clock.now())
            return int(end.timestamp() - parse_duration(duration_text)), end, size
        except (ValueError, KeyError):
            reason = f"invalid bar size or duration {size_text!r} {duration_text!r}"
    s.send(msg.error(req_id, 162, f"Historical Market Data Service error message:{reason}"))
    return None


def _send_history(s: Session, gw: SimGateway, req_id: int, inst: Instrument, window: tuple[int, datetime],
                  size: int, use_rth: bool, format_date: int, keep: bool) -> None:
    start, end = window
    base = gw.base_bars(inst.con_id, start, int(end.timestamp()) + 1, use_rth)
    bars = aggregate(base, size)
    begin = datetime.fromtimestamp(start, EXCHANGE_TZ)
    s.send(ticks.historical_data(req_id, format_header_time(begin), format_header_time(end), bars, format_date))
    if keep and bars:
        last = bars[-1]
        sub = HistSub(req_id, inst.con_id, size, format_date, use_rth)
        sub.key = last.start
        sub.bar = [last.open, last.high, last.low, last.close, last.volume]
        s.hist[req_id] = sub


def cancel_historical(s: Session, fields: list[str]) -> None:
    """``25|1|reqId``."""
    s.hist.pop(int(fields[2]), None)


def head_timestamp(s: Session, fields: list[str]) -> None:
    """``reqHeadTimeStamp``: the first bar the simulator can serve (a year back)."""
    r = FieldReader(fields, 1)
    req_id = r.integer()
    if _resolve(s, req_id, r) is None:
        return
    first = datetime.fromtimestamp(s.gw.history.t0 - 365 * 86400, EXCHANGE_TZ)
    s.send(msg.frame([88, req_id, first.strftime("%Y%m%d-%H:%M:%S")]))
