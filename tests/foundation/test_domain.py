"""Domain values: their derived figures and their invariants."""

from __future__ import annotations

import dataclasses
import inspect
import math
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_trader.domain import (
    AccountSnapshot,
    CheckResult,
    Instrument,
    Order,
    OrderStatus,
    OrderTicket,
    OrderType,
    Position,
    Quote,
    RiskVerdict,
    Side,
)
from tui_trader.domain.enums import TimeInForce
from tui_trader.domain.money import tool_figures
from tui_trader.domain.orders import Bracket, StatusChange, base_ref, order_of, shared_ref_name

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_quote_when_two_sides_then_mid_spread_and_mark() -> None:
    q = Quote("SPY", T0, bid=99.98, ask=100.02, last=100.5)
    assert q.mid == pytest.approx(100.0)
    assert q.spread == pytest.approx(0.04)
    assert q.mark == pytest.approx(100.0)
    assert not q.is_crossed


def test_quote_when_one_side_missing_then_mark_falls_back_to_last() -> None:
    q = Quote("SPY", T0, bid=99.0, last=100.5)
    assert math.isnan(q.mid)
    assert q.mark == 100.5


_sides = st.one_of(st.floats(min_value=-10, max_value=1_000), st.just(math.nan), st.just(0.0))


@given(bid=_sides, ask=_sides, last=_sides, close=_sides)
def test_quote_mark_when_any_prices_then_mid_if_two_uncrossed_sides_else_last_else_close(
        bid: float, ask: float, last: float, close: float) -> None:
    q = Quote("SPY", T0, bid=bid, ask=ask, last=last, close=close)
    expected = q.mid if q.has_two_sides and not q.is_crossed else last if last > 0 else close
    assert q.mark == expected or (math.isnan(q.mark) and math.isnan(expected))


def test_quote_when_bid_above_ask_then_crossed() -> None:
    assert Quote("SPY", T0, bid=100.1, ask=100.0).is_crossed


def test_order_when_status_changes_then_history_grows_and_original_untouched() -> None:
    ticket = OrderTicket("SPY", Side.SELL, 10, OrderType.LMT, limit_price=101.0)
    order = Order("R1", ticket, OrderStatus.APPROVED, T0, T0)
    moved = order.with_status(OrderStatus.SENDING, T0, "journaled")
    assert order.history == ()
    assert [s.status for s in moved.history] == [OrderStatus.SENDING]
    assert moved.remaining == 10
    assert ticket.signed_quantity == -10


def test_status_sets_partition_lifecycle() -> None:
    assert OrderStatus.UNKNOWN.is_working
    assert not OrderStatus.UNKNOWN.is_final
    assert OrderStatus.FILLED.is_final
    assert not OrderStatus.FILLED.is_working
    assert not OrderStatus.PENDING_APPROVAL.is_working


def test_position_when_short_and_price_falls_then_unrealized_gain() -> None:
    pos = Position("SPY", -10, avg_cost=100.0, market_price=95.0)
    assert pos.unrealized_pnl == pytest.approx(50.0)
    assert pos.market_value == pytest.approx(-950.0)


def test_account_exposure_and_drawdown() -> None:
    acct = AccountSnapshot(
        T0, equity=98_000, high_water_mark=100_000,
        positions={"A": Position("A", 10, 100, 110), "B": Position("B", -5, 50, 40)},
    )
    assert acct.gross_exposure == pytest.approx(1_300)
    assert acct.net_exposure == pytest.approx(900)
    assert acct.drawdown == pytest.approx(2_000)
    assert acct.position_quantity("B") == -5
    assert acct.position_quantity("C") == 0


def test_instrument_round_price_to_tick_grid() -> None:
    assert Instrument("SPY", min_tick=0.01).round_price(100.0049) == pytest.approx(100.0)
    assert Instrument("ES", min_tick=0.25).round_price(5000.13) == pytest.approx(5000.25)


def _every_field_set() -> Order:
    """An order with every field away from its default (the test fails when a field is added)."""
    t0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    values: dict[str, Any] = {
        "order_ref": "tt1-1", "ticket": OrderTicket("SPY", Side.SELL, 3, OrderType.LMT, limit_price=1.5),
        "status": OrderStatus.SUBMITTED, "created_at": t0, "updated_at": t0 + timedelta(seconds=1),
        "broker_id": 7, "perm_id": 99, "parent_ref": "tt1-0", "filled_quantity": 1.0, "avg_fill_price": 1.4,
        "commission": 0.5, "last_error": "201", "history": (StatusChange(OrderStatus.SUBMITTED, t0, "ack"),),
    }  # fmt: skip
    assert set(values) == {f.name for f in dataclasses.fields(Order)}, "a new Order field: add it to with_status"
    return Order(**values)


def test_order_with_status_when_every_field_set_then_only_status_time_and_history_change() -> None:
    order = _every_field_set()
    when = order.updated_at + timedelta(seconds=5)
    moved = order.with_status(OrderStatus.FILLED, when, "fill 3@1.5")
    step = StatusChange(OrderStatus.FILLED, when, "fill 3@1.5")
    assert moved == dataclasses.replace(order, status=OrderStatus.FILLED, updated_at=when,
                                        history=(*order.history, step))


def test_order_with_broker_id_when_every_field_set_then_only_broker_id_changes() -> None:
    order = _every_field_set()
    assert order.with_broker_id(42) == dataclasses.replace(order, broker_id=42)


def test_ticket_stamped_when_every_field_set_then_only_the_stamped_fields_change() -> None:
    values: dict[str, Any] = {
        "symbol": "SPY", "side": Side.SELL, "quantity": 3.0, "order_type": OrderType.TRAIL, "limit_price": 1.5,
        "stop_price": 1.2, "trail_amount": 0.1, "trail_percent": 0.5, "tif": TimeInForce.GTC, "outside_rth": True,
        "strategy": "ema", "reason": "cross", "bracket": Bracket(1.0, 2.0), "signal_price": 1.45,
        "created_at": T0, "reduce_only": False,
    }  # fmt: skip
    assert set(values) == {f.name for f in dataclasses.fields(OrderTicket)}, "a new field: add it to stamped"
    ticket = OrderTicket(**values)
    later = T0 + timedelta(seconds=1)
    assert ticket.stamped(later, 1.6, True) == dataclasses.replace(ticket, created_at=later, signal_price=1.6,
                                                                   reduce_only=True)


def test_position_marked_when_every_field_set_then_only_the_mark_changes() -> None:
    values: dict[str, Any] = {
        "symbol": "SPY", "quantity": -3.0, "avg_cost": 10.0, "market_price": 11.0, "realized_pnl": 2.0,
        "opened_at": T0, "stop_price": 12.0, "take_profit_price": 8.0, "stop_trails": True, "owner": "ema_cross",
    }  # fmt: skip
    assert set(values) == {f.name for f in dataclasses.fields(Position)}, "a new field: add it to marked"
    position = Position(**values)
    assert position.marked(11.5) == dataclasses.replace(position, market_price=11.5)


def a_check(**changes: Any) -> CheckResult:
    return dataclasses.replace(CheckResult("order_notional", True, 4964.75, 50000.0, 45035.25, "", "$"), **changes)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(CheckResult)])
def test_check_result_when_a_field_is_assigned_or_deleted_then_frozen_instance_error(field: str) -> None:
    check = a_check()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(check, field, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(check, field)
    assert check == a_check()


def test_check_result_when_an_attribute_is_added_then_frozen_instance_error() -> None:
    check = a_check()
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.note = "added"  # type: ignore[attr-defined]
    assert not hasattr(check, "note")


def test_check_result_init_when_compared_with_the_fields_then_same_names_order_and_defaults() -> None:
    params = list(inspect.signature(CheckResult).parameters.values())
    fields = dataclasses.fields(CheckResult)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
                                          for f in fields]
    assert CheckResult("cancel", True) == CheckResult("cancel", True, None, None, None, "", "")


def test_check_result_when_equal_fields_then_equal_and_same_hash_and_repr_names_the_fields() -> None:
    check = a_check()
    assert check == a_check()
    assert hash(check) == hash(a_check())
    assert {check, a_check()} == {check}
    assert check != a_check(headroom=1.0)
    assert check != ("order_notional", True, 4964.75, 50000.0, 45035.25, "", "$")  # type: ignore[comparison-overlap]
    assert repr(check) == ("CheckResult(name='order_notional', passed=True, value=4964.75, limit=50000.0, "
                           "headroom=45035.25, message='', unit='$')")


def test_check_result_replace_and_pickle_when_used_then_new_values_and_original_untouched() -> None:
    check = a_check()
    denied = dataclasses.replace(check, passed=False, message="order has no price")
    assert (denied.name, denied.passed, denied.message) == ("order_notional", False, "order has no price")
    assert denied.unit == "$"
    assert check == a_check()
    verdict = RiskVerdict(False, (check, denied))
    copied = pickle.loads(pickle.dumps(verdict))
    assert copied == verdict
    assert copied.failures == (denied,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copied.checks[0].passed = False


def test_shared_ref_name_when_read_back_then_the_brokers_order_ref_even_when_it_holds_the_separator() -> None:
    # Another tool's orderRef may hold '#' itself: its second order is "a#b#22", whose orderRef is "a#b" (the first
    # '#' read it as "a", another orderRef, and a fill under "a#b" was taken as its first order's for certain).
    assert shared_ref_name("bot1", 22) == "bot1#22"
    assert shared_ref_name("bot1", "?") == "bot1#?"
    assert [base_ref(n) for n in ("bot1#22", "a#b#22", "tt1a2b3c-4", "broker-7")] == ["bot1", "a#b", "tt1a2b3c-4",
                                                                                       "broker-7"]


def test_order_of_when_the_permanent_ids_differ_then_the_order_with_the_records_permanent_id() -> None:
    first = dataclasses.replace(_every_field_set(), order_ref="bot1", perm_id=11)
    second = dataclasses.replace(_every_field_set(), order_ref="bot1#22", perm_id=22)
    by_ref = {o.order_ref: o for o in (first, second)}.get
    by_perm = {o.perm_id: o for o in (first, second)}.get

    assert order_of("bot1", 11, by_ref, by_perm) is first
    assert order_of("bot1", None, by_ref, by_perm) is first  # no permanent id to tell them apart: its ref's
    assert order_of("bot1", 22, by_ref, by_perm) is second
    assert order_of("", 22, by_ref, by_perm) is second
    assert order_of("bot1", 33, by_ref, by_perm) is None
    assert order_of("bot9", None, by_ref, by_perm) is None


def test_tool_figures_when_nan_or_infinite_anywhere_then_null_and_the_others_rounded() -> None:
    value = {"pnl": -8.940000000000083, "value": math.inf, "rows": [{"headroom": -math.inf}, (math.nan, 3)],
             "flag": True, "count": 7, "text": "inf"}

    assert tool_figures(value) == {"pnl": -8.94, "value": None, "rows": [{"headroom": None}, [None, 3]],
                                   "flag": True, "count": 7, "text": "inf"}
