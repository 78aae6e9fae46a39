"""The journal's encoding: an order update's order is taken from the event's JSON, not encoded twice; verdicts keep
their stored form."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tui_trader.domain import CheckResult, Order, OrderStatus, OrderTicket, OrderType, RiskVerdict, Side
from tui_trader.domain import events as ev
from tui_trader.domain.enums import ConnectionState
from tui_trader.store import codec
from tui_trader.store.derive import rows_for

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def order_with(note: str = "", error: str = "", signal: float = math.nan) -> Order:
    ticket = OrderTicket("SPY", Side.BUY, 10, OrderType.LMT, limit_price=500.0, strategy='x},"previous":"y',
                         signal_price=signal, reason='{"order":{"a":1}}')
    order = Order("R1", ticket, OrderStatus.PENDING_APPROVAL, T0, T0, last_error=error)
    return order.with_status(OrderStatus.SUBMITTED, T0 + timedelta(seconds=1), note)


@pytest.mark.parametrize("order", [
    order_with(),
    order_with(note='},"previous":"FILLED"}', error=',"order":{', signal=501.25),
    order_with(note="unicode ✓ and \\ backslash \" quote"),
])
@pytest.mark.parametrize("previous", [None, OrderStatus.SENDING])
def test_order_of_update_when_fields_hold_key_like_text_then_equals_the_order_encoded_alone(
        order: Order, previous: OrderStatus | None) -> None:
    event = ev.OrderUpdated(T0, order, previous)
    assert codec.order_of_update(codec.dump(event)) == codec.dump(order)


def test_rows_for_when_order_updated_then_orders_row_holds_the_order_and_loads_back() -> None:
    order = order_with(note="to SUBMITTED", signal=501.25)  # NaN != NaN would fail the equality
    event = ev.OrderUpdated(T0 + timedelta(seconds=1), order, OrderStatus.SENDING)
    log_row, order_row, state_row = rows_for(event)
    assert codec.load_event("OrderUpdated", log_row[1][3]) == event
    assert codec.load(Order, order_row[1][-1]) == order
    assert order_row[1][2:6] == ("BUY", 10, "LMT", "SUBMITTED")
    assert all(type(v) is str for v in (*order_row[1][2:6:2], order_row[1][5]))
    assert order_row[1][11:13] == (T0.isoformat(), (T0 + timedelta(seconds=1)).isoformat())
    assert state_row[1] == ("R1", "SUBMITTED", (T0 + timedelta(seconds=1)).isoformat(), "to SUBMITTED")


def test_commit_cost_when_commits_of_varied_sizes_then_fixed_and_per_row_parts_recovered() -> None:
    from tui_trader.store.writer import CommitCost

    cost = CommitCost(fixed=50e-6, per_row=20e-6)
    for i in range(200):
        rows = 20 + (i * 37) % 60
        cost.add(rows, 180e-6 + 3e-6 * rows)
    assert cost.fixed == pytest.approx(180e-6, rel=0.05)
    assert cost.per_row == pytest.approx(3e-6, rel=0.05)


def test_commit_cost_when_one_commit_is_preempted_then_prediction_moves_at_most_a_little() -> None:
    from tui_trader.store.writer import CommitCost

    cost = CommitCost(fixed=150e-6, per_row=4e-6)
    for _ in range(50):
        cost.add(60, 150e-6 + 4e-6 * 60)
    before = cost(60)
    cost.add(60, 0.050)  # 50 ms: the process lost its core mid-commit
    assert cost(60) < 1.2 * before


VERDICT_AS_JOURNALED = (
    '{"time":"2026-11-20T14:30:00Z","order_ref":"R1","verdict":{"passed":false,"checks":['
    '{"name":"order_notional","passed":true,"value":4964.75,"limit":50000.0,"headroom":45035.25,"message":"",'
    '"unit":"$"},'
    '{"name":"daily_trades","passed":true,"value":23.0,"limit":100.0,"headroom":77.0,"message":"","unit":"trades"},'
    '{"name":"quote_age","passed":false,"value":Infinity,"limit":5.0,"headroom":-Infinity,"message":"no quote",'
    '"unit":"s"},'
    '{"name":"symbol_allowed","passed":false,"value":null,"limit":null,"headroom":null,'
    '"message":"ZZZ not in \\"allowed\\" symbols ✓","unit":""}]},"stage":"re-check"}'
)
"""An ``OrderChecked`` as the journal stored it while ``CheckResult`` was a frozen slotted dataclass."""


def test_verdict_when_journaled_by_the_earlier_check_result_then_loads_equal_and_is_written_byte_for_byte() -> None:
    checks = (
        CheckResult("order_notional", True, 4964.75, 50000.0, 45035.25, "", "$"),
        CheckResult("daily_trades", True, 23, 100, 77, unit="trades"),
        CheckResult("quote_age", False, math.inf, 5.0, -math.inf, "no quote", "s"),
        CheckResult("symbol_allowed", False, message='ZZZ not in "allowed" symbols ✓'),
    )
    event = ev.OrderChecked(T0, "R1", RiskVerdict(False, checks), "re-check")
    loaded = codec.load_event("OrderChecked", VERDICT_AS_JOURNALED)
    assert loaded == event
    assert isinstance(loaded, ev.OrderChecked)
    assert all(type(c) is CheckResult for c in loaded.verdict.checks)
    assert codec.dump(event) == VERDICT_AS_JOURNALED
    assert codec.dump(loaded) == VERDICT_AS_JOURNALED


def test_connection_changed_when_journaled_before_previous_existed_then_loads_from_disconnected() -> None:
    # Journals written before ConnectionChanged carried the state it left: their rows load, with the state an engine
    # starts in; rows written now keep the state left.
    row = '{"time":"2026-11-20T14:30:00Z","state":"CONNECTED","detail":"account DU1"}'
    old = codec.load_event("ConnectionChanged", row)
    assert old == ev.ConnectionChanged(T0, ConnectionState.CONNECTED, "account DU1", ConnectionState.DISCONNECTED)
    new = ev.ConnectionChanged(T0, ConnectionState.DISCONNECTED, "connection lost", ConnectionState.DEGRADED)
    assert codec.load_event("ConnectionChanged", codec.dump(new)) == new
