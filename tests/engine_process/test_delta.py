"""Snapshot deltas: the proxy assembles exactly the snapshot the engine process took, push after push."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from tui_trader.domain import OrderTicket, OrderType, Side
from tui_trader.domain.enums import Mode, OrderStatus
from tui_trader.domain.market import Quote
from tui_trader.domain.orders import Order
from tui_trader.domain.portfolio import Position
from tui_trader.engine.process import views
from tui_trader.engine.process.delta import DeltaDecoder, DeltaEncoder, MapDelta, Rows, pack, unpack
from tui_trader.engine.process.wire import SnapshotPushed, encode
from tui_trader.engine.snapshots import EngineSnapshot

T0 = datetime(2024, 5, 6, 14, 30, tzinfo=UTC)


def order(ref: str, status: OrderStatus = OrderStatus.SUBMITTED, parent: str | None = None) -> Order:
    ticket = OrderTicket("AAPL", Side.BUY, 1, OrderType.LMT, limit_price=100.0)
    return Order(ref, ticket, status, T0, T0, broker_id=int(ref[1:]), parent_ref=parent)


def snapshot(orders: tuple[Order, ...], quotes: dict[str, Quote], positions: dict[str, Position],
             at: datetime = T0) -> EngineSnapshot:
    base = views.starting(Mode.SIM, False, "127.0.0.1", 4002, 1)
    working = tuple(o for o in orders if o.status.is_working)
    account = replace(base.account, time=at, positions=positions, working_orders=working)
    return replace(base, time=at, orders=orders, quotes=quotes, account=account)


def same(a: object, b: object) -> bool:
    """Equal, NaNs included (quotes and tickets carry NaN for "none", and NaN != NaN)."""
    return repr(a) == repr(b)


def roundtrip(encoder: DeltaEncoder, decoder: DeltaDecoder, snap: EngineSnapshot) -> tuple[EngineSnapshot, int]:
    frame = encode(SnapshotPushed(1, encoder.encode(snap)))
    pushed: SnapshotPushed = pickle.loads(frame[4:])
    return decoder.decode(pushed.delta), len(frame)


def test_successive_pushes_assemble_the_engines_snapshots_and_send_only_what_changed() -> None:
    encoder, decoder = DeltaEncoder(), DeltaDecoder()
    orders = tuple(order(f"R{i}") for i in range(200))
    quotes = {f"S{i}": Quote(f"S{i}", T0, 10.0, 10.1, 10.05) for i in range(100)}
    positions = {f"S{i}": Position(f"S{i}", 1, 10.0, 10.05) for i in range(100)}
    first = snapshot(orders, quotes, positions)
    got, first_size = roundtrip(encoder, decoder, first)
    assert same(got, first)

    # One order filled, one new, two quotes and a position moved, one position closed.
    orders2 = (*orders[:5], replace(orders[5], status=OrderStatus.FILLED), *orders[6:], order("R200"))
    quotes2 = {**quotes, "S3": Quote("S3", T0 + timedelta(seconds=1), 10.2, 10.3, 10.25),
               "S7": Quote("S7", T0 + timedelta(seconds=1), 9.9, 10.0, 9.95)}
    positions2 = {k: v for k, v in positions.items() if k != "S9"}
    positions2["S3"] = Position("S3", 1, 10.0, 10.25)
    second = snapshot(orders2, quotes2, positions2, T0 + timedelta(seconds=1))
    delta = encoder.encode(second)
    assert isinstance(delta.orders, MapDelta)
    assert sorted(unpack(delta.orders.changed)) == ["R200", "R5"]
    assert isinstance(delta.quotes, MapDelta)
    assert sorted(unpack(delta.quotes.changed)) == ["S3", "S7"]
    assert isinstance(delta.positions, MapDelta)
    assert delta.positions.removed == ("S9",)
    got = decoder.decode(pickle.loads(pickle.dumps(delta)))
    assert same(got, second)
    assert list(got.quotes) == list(second.quotes)
    assert list(got.account.positions) == list(second.account.positions)

    # Nothing changed but the time: the push is a fraction of the whole snapshot.
    third = replace(second, time=T0 + timedelta(seconds=2))
    got, size = roundtrip(encoder, decoder, third)
    assert same(got, third)
    assert size < first_size / 10


def test_oldest_finished_order_forgotten_then_only_the_removal_and_the_new_order_are_sent() -> None:
    encoder, decoder = DeltaEncoder(), DeltaDecoder()
    orders = tuple(order(f"R{i}") for i in range(600))
    first = snapshot(orders, {}, {})
    _, first_size = roundtrip(encoder, decoder, first)
    second = snapshot((*orders[1:], order("R600")), {}, {}, T0 + timedelta(seconds=1))
    delta = encoder.encode(second)
    assert isinstance(delta.orders, MapDelta)
    assert (list(unpack(delta.orders.changed)), delta.orders.removed) == (["R600"], ("R0",))
    got = decoder.decode(pickle.loads(pickle.dumps(delta)))
    assert same(got, second)
    assert [o.order_ref for o in got.orders] == [o.order_ref for o in second.orders]


def test_shrunk_orders_reordered_keys_and_foreign_working_orders_are_sent_whole() -> None:
    encoder, decoder = DeltaEncoder(), DeltaDecoder()
    quotes = {"A": Quote("A", T0, 1, 2, 1.5), "B": Quote("B", T0, 1, 2, 1.5)}
    snap = snapshot(tuple(order(f"R{i}") for i in range(3)), quotes, {})
    assert same(roundtrip(encoder, decoder, snap)[0], snap)
    reordered = {"B": quotes["B"], "A": Quote("A", T0, 1, 2, 1.6)}
    fewer = snapshot((order("R0"),), reordered, {})
    stray = replace(fewer, account=replace(fewer.account, working_orders=(order("R9"),)))
    got = roundtrip(encoder, decoder, stray)[0]
    assert same(got, stray)
    assert list(got.quotes) == ["B", "A"]


def test_after_a_delta_that_never_left_the_next_carries_whole_collections() -> None:
    encoder, decoder = DeltaEncoder(), DeltaDecoder()
    quotes = {"A": Quote("A", T0, 1, 2, 1.5)}
    first = snapshot((order("R1"),), quotes, {})
    assert same(roundtrip(encoder, decoder, first)[0], first)
    encoder.encode(replace(first, orders=(order("R1"), order("R2"))))  # lost: the reply could not be pickled
    encoder.reset()
    third = replace(first, orders=(order("R1"), order("R3")), quotes={**quotes, "B": Quote("B", T0, 3, 4, 3.5)})
    delta = encoder.encode(third)
    assert not isinstance(delta.orders, MapDelta)
    assert not isinstance(delta.quotes, MapDelta)
    assert same(decoder.decode(delta), third)


def test_changed_quotes_and_positions_travel_as_rows_and_rebuild_equal_values() -> None:
    encoder, decoder = DeltaEncoder(), DeltaDecoder()
    quotes = {f"S{i}": Quote(f"S{i}", T0, 10.0, 10.1, 10.05) for i in range(3)}
    positions = {f"S{i}": Position(f"S{i}", 1, 10.0, 10.05) for i in range(3)}
    first = snapshot((order("R1"),), quotes, positions)
    assert same(roundtrip(encoder, decoder, first)[0], first)
    moved = {**quotes, "S1": Quote("S1", T0, 10.1, 10.2, 10.15, close=math.nan)}
    second = snapshot((order("R1"),), moved, {**positions, "S1": Position("S1", 2, 10.0, 10.15)})
    delta = encoder.encode(second)
    assert isinstance(delta.quotes, MapDelta)
    assert isinstance(delta.quotes.changed, Rows)
    assert delta.quotes.changed.keys == ("S1",)
    assert isinstance(delta.positions, MapDelta)
    assert isinstance(delta.positions.changed, Rows)
    got = decoder.decode(pickle.loads(pickle.dumps(delta)))
    assert same(got, second)
    assert got.quotes["S1"] is not moved["S1"]  # rebuilt from its row, equal field for field
    assert got.quotes["S0"] is decoder.decode(pickle.loads(pickle.dumps(encoder.encode(second)))).quotes["S0"]


@dataclass(frozen=True, slots=True)
class Derived:
    """A value ``cls(*row)`` would not rebuild: a field outside ``__init__``."""

    x: int
    y: int
    z: int = field(init=False, default=0)


def test_values_of_mixed_or_unrebuildable_classes_are_sent_as_objects() -> None:
    assert isinstance(pack({"a": Quote("A", T0, 1, 2, 1.5)}), Rows)
    mixed = {"a": Quote("A", T0, 1, 2, 1.5), "b": Position("A", 1, 1.0, 1.5)}
    assert pack(mixed) is mixed
    derived = {"a": Derived(1, 2)}
    assert pack(derived) is derived
    assert unpack(pack(mixed)) == mixed
