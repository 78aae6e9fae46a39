"""Golden field counts of the exact-count and long messages, checked against ib_async 2.1.0's layouts."""

from __future__ import annotations

import ib_async
from ib_async import LimitOrder

from tui_trader.sim import SimGateway, ticks
from tui_trader.sim import messages as msg
from tui_trader.sim.account import Position
from tui_trader.sim.instruments import InstrumentDb
from tui_trader.sim.orders import SimExecution, SimOrder
from tui_trader.sim.protocol.framing import split_payload

from .helpers import sync

AAPL = InstrumentDb(["AAPL"]).by_symbol("AAPL")
assert AAPL is not None


def fields_of(data: bytes) -> list[str]:
    """The fields of one encoded frame."""
    size = int.from_bytes(data[:4], "big")
    assert len(data) == 4 + size
    return split_payload(data[4:])


def an_order(**kw: object) -> SimOrder:
    """A plain limit order."""
    base: dict[str, object] = dict(client_id=7, order_id=3, perm_id=99, con_id=AAPL.con_id, symbol="AAPL",
                                   exchange="SMART", action="BUY", total_qty=10, order_type="LMT",
                                   lmt_price=1.5, status="Submitted")
    base.update(kw)
    return SimOrder(**base)  # type: ignore[arg-type]


def an_execution() -> SimExecution:
    """A fill of :func:`an_order`."""
    return SimExecution("0001.01", 7, 3, 99, AAPL.con_id, "AAPL", "ISLAND", "BOT", 10, 1.5, 1.7e9, 10, 1.5,
                        "ref", "DUSIM0001", 0.35, 0.0)


def test_open_order_when_plain_then_127_fields() -> None:
    assert len(fields_of(msg.open_order(an_order(), AAPL))) == 127


def test_open_order_when_what_if_then_127_fields_with_numeric_margins() -> None:
    state = ("1.00",) * 9 + ("0.35", "0.35", "0.35", "USD")
    fields = fields_of(msg.open_order(an_order(), AAPL, what_if=state))
    assert len(fields) == 127
    assert fields[84] == "1"  # whatIf (0-based index)
    assert fields[85] == "PreSubmitted"  # orderState.status
    assert float(fields[89]) == 1.0  # initMarginChange


def test_completed_order_when_filled_then_96_fields() -> None:
    order = an_order(status="Filled", filled=10, completed_time="20240305 15:00:00 UTC")
    assert len(fields_of(msg.completed_order(order, AAPL))) == 96


def test_exec_details_when_encoded_then_32_fields() -> None:
    assert len(fields_of(msg.exec_details(-1, an_execution(), AAPL))) == 32


def test_exact_count_messages_when_encoded_then_counts_match_decoder() -> None:
    pos = Position(AAPL.con_id, 10, 1.5)
    assert len(fields_of(msg.commission_report(an_execution()))) == 8
    assert len(fields_of(msg.position("DUSIM0001", AAPL, pos))) == 16
    assert len(fields_of(msg.portfolio("DUSIM0001", AAPL, pos, 1.6))) == 20
    assert len(fields_of(msg.order_status(an_order()))) == 12
    assert len(fields_of(msg.next_valid_id(5))) == 3
    assert len(fields_of(msg.managed_accounts("DUSIM0001"))) == 3
    assert len(fields_of(msg.error(-1, 2104, "ok"))) == 6
    assert len(fields_of(ticks.tick_price(1, 1, 1.5, 100))) == 7
    assert len(fields_of(msg.completed_orders_end())) == 1


def test_contract_details_when_encoded_then_40_fields() -> None:
    import datetime as dt

    assert len(fields_of(msg.contract_details(1, AAPL, "SMART", dt.date(2024, 3, 5)))) == 40


async def test_place_order_when_sent_by_ib_async_then_114_fields_parsed(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    order = LimitOrder("BUY", 10, 1.5, tif="GTC", outsideRth=True, orderRef="ref1")
    ib.placeOrder(aapl, order)
    await sync(ib)
    (raw,) = [f for _, f in sim.received_frames if f[0] == "3"]
    assert len(raw) == 114
    (received,) = sim.orders()
    assert (received.tif, received.outside_rth, received.order_ref, received.lmt_price) == ("GTC", True, "ref1", 1.5)
