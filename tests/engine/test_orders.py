"""Order manager: the checked lifecycle, fill accumulation, exec-id dedup, commissions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain import Fill, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.orders import AMENDMENT_NOTES, LOCATING, StatusChange
from tui_trader.engine.orders import IllegalTransition, OrderManager

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
S = OrderStatus


def _sent(om: OrderManager, qty: float = 100) -> str:
    order = om.create(OrderTicket("AAPL", Side.BUY, qty), S.APPROVED, NOW)
    om.move(order.order_ref, S.SENDING, NOW)
    om.bind(order.order_ref, 42)
    return order.order_ref


def _fill(ref: str, exec_id: str, qty: float, price: float = 10.0) -> Fill:
    return Fill(exec_id, ref, "AAPL", Side.BUY, qty, price, NOW, broker_id=42)


def _report(ref: str, status: S | None, filled: float = 0, raw: str = "Submitted") -> BrokerOrderReport:
    return BrokerOrderReport(ref, 42, 9001, 1, "AAPL", Side.BUY, 100, OrderType.MKT, status,
                             filled=filled, remaining=100 - filled, raw_status=raw)


def test_new_orders_get_unique_refs_with_history() -> None:
    om = OrderManager("tt")
    a = om.create(OrderTicket("AAPL", Side.BUY, 1), S.PENDING_APPROVAL, NOW)
    b = om.create(OrderTicket("AAPL", Side.BUY, 1), S.APPROVED, NOW)
    assert a.order_ref != b.order_ref
    assert [h.status for h in b.history] == [S.APPROVED]


def test_create_with_the_steps_passed_then_history_holds_them_in_order() -> None:
    om = OrderManager("tt")
    approved = (StatusChange(S.APPROVED, NOW, "approval not required"),)

    sent = om.create(OrderTicket("AAPL", Side.BUY, 1), S.SENDING, NOW, note="journaled", passed=approved)

    steps = [(h.status, h.note) for h in sent.history]
    assert steps == [(S.APPROVED, "approval not required"), (S.SENDING, "journaled")]
    assert om.with_status(S.SENDING) == [sent]


def test_create_when_a_passed_step_cannot_lead_to_the_status_then_raises_and_tracks_nothing() -> None:
    om = OrderManager("tt")
    pending = (StatusChange(S.PENDING_APPROVAL, NOW, "waiting"),)

    with pytest.raises(IllegalTransition):
        om.create(OrderTicket("AAPL", Side.BUY, 1), S.SENDING, NOW, passed=pending)  # skips the approval
    assert om.orders == {}


def test_move_from_final_state_then_raises_illegal_transition() -> None:
    om = OrderManager()
    ref = _sent(om)
    om.move(ref, S.REJECTED, NOW)
    with pytest.raises(IllegalTransition):
        om.move(ref, S.SUBMITTED, NOW)


def test_late_submitted_after_filled_then_ignored() -> None:
    om = OrderManager()
    ref = _sent(om)
    om.apply_report(_report(ref, S.FILLED, 100, "Filled"), NOW)
    assert om.apply_report(_report(ref, S.SUBMITTED), NOW) is None
    assert om.orders[ref].status is S.FILLED


def test_report_held_for_a_locate_then_a_step_on_hold_and_the_next_submitted_a_step_ending_it() -> None:
    om = OrderManager("tt")
    ref = _sent(om)
    held = replace(_report(ref, S.SUBMITTED, raw="Inactive"), why_held="locate")

    assert om.apply_report(held, NOW) is not None
    assert om.apply_report(held, NOW) is None  # the same hold again: no step
    assert om.orders[ref].broker_hold == LOCATING
    released = om.apply_report(_report(ref, S.SUBMITTED), NOW)

    assert released is not None
    assert released.broker_hold == ""
    assert [(h.status, h.note) for h in released.history[-2:]] == [(S.SUBMITTED, f"held: {LOCATING}"),
                                                                 (S.SUBMITTED, "Submitted")]


@pytest.mark.parametrize("note", AMENDMENT_NOTES)
def test_order_held_for_a_locate_when_amended_then_still_held_and_the_same_hold_again_no_step(note: str) -> None:
    # An amendment (a modify, a refusal putting it back, figures taken from the broker) hid the hold, and the
    # broker's next report of the same hold made a step of its own: the engine said the hold a second time.
    om = OrderManager("tt")
    ref = _sent(om)
    held = replace(_report(ref, S.SUBMITTED, raw="Inactive"), why_held="locate")
    om.apply_report(held, NOW)

    amended = om.amend(ref, replace(om.orders[ref].ticket, quantity=60), NOW, f"{note}: 60")

    assert amended.broker_hold == LOCATING
    assert om.apply_report(held, NOW) is None
    released = om.apply_report(_report(ref, S.SUBMITTED), NOW)
    assert released is not None
    assert released.broker_hold == ""


def test_report_working_with_a_why_held_not_known_then_no_hold() -> None:
    om = OrderManager("tt")
    ref = _sent(om)

    order = om.apply_report(replace(_report(ref, S.SUBMITTED, raw="PreSubmitted"), why_held="child"), NOW)

    assert order is not None
    assert order.status is S.SUBMITTED
    assert order.broker_hold == ""


def test_partial_fills_accumulate_to_filled_with_average_price() -> None:
    om = OrderManager()
    ref = _sent(om)
    om.apply_fill(_fill(ref, "e1", 40, 10.0), NOW)
    assert om.orders[ref].status is S.PARTIALLY_FILLED
    om.apply_fill(_fill(ref, "e2", 60, 11.0), NOW)
    order = om.orders[ref]
    assert order.status is S.FILLED
    assert order.filled_quantity == 100
    assert order.avg_fill_price == pytest.approx(10.6)


def test_duplicate_exec_id_then_counted_once() -> None:
    om = OrderManager()
    ref = _sent(om)
    assert om.apply_fill(_fill(ref, "e1", 40), NOW) is not None
    assert om.apply_fill(_fill(ref, "e1", 40), NOW) is None
    assert om.orders[ref].filled_quantity == 40


def test_commission_before_its_fill_then_attached_when_fill_arrives() -> None:
    om = OrderManager()
    ref = _sent(om)
    assert om.apply_commission("e1", 1.25, None) is None
    fill, order = om.apply_fill(_fill(ref, "e1", 100), NOW)  # type: ignore[misc]
    assert fill.commission == 1.25
    assert order is not None
    assert order.commission == 1.25


def test_commission_reported_twice_then_attached_once() -> None:
    om = OrderManager()
    ref = _sent(om)
    om.apply_fill(_fill(ref, "e1", 100), NOW)
    assert om.apply_commission("e1", 1.0, None) is not None
    assert om.apply_commission("e1", 1.0, None) is None
    assert om.orders[ref].commission == 1.0


def test_fill_for_unknown_order_then_reported_without_order() -> None:
    om = OrderManager()
    result = om.apply_fill(Fill("x1", "stranger", "AAPL", Side.SELL, 5, 10, NOW), NOW)
    assert result is not None
    assert result[1] is None


def test_report_matched_by_broker_id_when_ref_missing() -> None:
    om = OrderManager()
    ref = _sent(om)
    order = om.apply_report(_report("", S.SUBMITTED), NOW)
    assert order is not None
    assert order.order_ref == ref
    assert order.perm_id == 9001


def _working(om: OrderManager, ref: str, perm_id: int) -> None:
    """An order working at the broker under ``ref`` and ``perm_id``, tracked (adopted) here."""
    om.adopt(Order(ref, OrderTicket("AAPL", Side.BUY, 100), S.SUBMITTED, NOW, NOW, broker_id=perm_id, perm_id=perm_id))


def test_report_under_a_tracked_ref_with_another_perm_id_then_applied_to_the_order_with_that_perm_id() -> None:
    # Two orders placed by another tool under one orderRef: the second's reports were applied to the first.
    om = OrderManager()
    _working(om, "bot1", 1)
    _working(om, "bot1#2", 2)

    changed = om.apply_report(replace(_report("bot1", S.CANCELLED, raw="Cancelled"), perm_id=2, broker_id=2), NOW)

    assert changed is not None
    assert changed.order_ref == "bot1#2"
    assert (om.orders["bot1"].status, om.orders["bot1"].perm_id) == (S.SUBMITTED, 1)


def test_report_under_a_tracked_ref_with_another_perm_id_not_tracked_then_no_order() -> None:
    om = OrderManager()
    _working(om, "bot1", 1)

    report = replace(_report("bot1", S.CANCELLED, raw="Cancelled"), perm_id=2, broker_id=2)

    assert om.match(report) is None
    assert om.apply_report(report, NOW) is None
    assert om.orders["bot1"].status is S.SUBMITTED


def test_fill_under_a_tracked_ref_with_another_perm_id_then_booked_to_the_order_with_that_perm_id() -> None:
    om = OrderManager()
    _working(om, "bot1", 1)
    _working(om, "bot1#2", 2)

    result = om.apply_fill(replace(_fill("bot1", "e1", 100), perm_id=2, broker_id=2), NOW)

    assert result is not None
    fill, order = result
    assert order is not None
    assert (fill.order_ref, order.order_ref, order.status) == ("bot1#2", "bot1#2", S.FILLED)
    assert om.orders["bot1"].filled_quantity == 0


def test_commission_of_a_fill_under_a_tracked_ref_with_another_perm_id_not_tracked_then_not_the_tracked_orders(
        ) -> None:
    # Another order under the shared orderRef bot1, not tracked here (filled before any reconciliation adopted it):
    # its fill is a fill for an unknown order, and its commission, coming after it, was added to the tracked bot1.
    om = OrderManager()
    _working(om, "bot1", 1)
    fill, order = om.apply_fill(replace(_fill("bot1", "e1", 100), perm_id=2, broker_id=2), NOW)  # type: ignore[misc]
    assert order is None

    result = om.apply_commission("e1", 1.25, None)

    assert result is not None
    assert (result[0].commission, result[1]) == (1.25, None)
    assert om.orders["bot1"].commission == 0


def test_order_placed_again_when_a_late_report_of_its_first_placement_then_not_applied() -> None:
    # A resubmit under the same ref (the broker had lost the first placement): the first placement's report,
    # coming late (a completed order), took the newer one's permanent id back and cancelled it while it worked.
    om = OrderManager()
    ref = _sent(om)
    om.apply_report(_report(ref, S.SUBMITTED), NOW)
    om.move(ref, S.UNKNOWN, NOW, "working here but unknown to the broker")

    om.placed_again(ref)
    om.move(ref, S.SENDING, NOW)
    om.apply_report(replace(_report(ref, S.SUBMITTED), perm_id=9002), NOW)
    late = om.apply_report(_report(ref, S.CANCELLED, raw="Cancelled"), NOW)  # the first placement's, 9001

    assert late is None
    assert (om.orders[ref].status, om.orders[ref].perm_id) == (S.SUBMITTED, 9002)


def test_cancelled_then_fill_evidence_moves_to_filled() -> None:
    om = OrderManager()
    ref = _sent(om)
    om.apply_report(_report(ref, S.CANCELLED, raw="Cancelled"), NOW)
    om.apply_fill(_fill(ref, "e1", 100), NOW)
    assert om.orders[ref].status is S.FILLED


def test_working_in_flight_and_children_when_many_finished_orders_forgotten_then_match_a_full_scan() -> None:
    # Arrange: parents with bracket children, some finished (and partly forgotten), some working,
    # one adopted from the journal, one created already final.
    om = OrderManager("tt", finished_kept=3)
    refs = []
    for i in range(8):
        parent = om.create(OrderTicket("AAPL", Side.BUY, 1), S.APPROVED, NOW)
        child = om.create(OrderTicket("AAPL", Side.SELL, 1), S.APPROVED, NOW, parent_ref=parent.order_ref)
        refs.append((parent.order_ref, child.order_ref))
        om.move(parent.order_ref, S.SENDING, NOW)
        if i % 3 != 2:
            om.move(parent.order_ref, S.CANCELLED, NOW)
            om.move(child.order_ref, S.CANCELLED, NOW)
    adopted = om.create(OrderTicket("MSFT", Side.BUY, 1), S.APPROVED, NOW)
    om.adopt(adopted.with_status(S.SENDING, NOW).with_status(S.SUBMITTED, NOW))
    om.create(OrderTicket("MSFT", Side.BUY, 1), S.REJECTED, NOW)

    # Act / Assert: the indexed answers are the full scans' (same orders, same order).
    everything = list(om.orders.values())
    assert om.working() == [o for o in everything if o.status.is_working]
    assert om.with_status(S.APPROVED, S.SENDING) == [o for o in everything if o.status in (S.APPROVED, S.SENDING)]
    assert om.with_status(S.CANCELLED) == [o for o in everything if o.status is S.CANCELLED]
    for parent_ref, _ in refs:
        assert om.children(parent_ref) == [o for o in everything if o.parent_ref == parent_ref]
    assert len(om.orders) < 2 * len(refs)  # some finished orders were forgotten
    assert [o.order_ref for o in om.working()] == [*(p for i, (p, _) in enumerate(refs) if i % 3 == 2),
                                                   adopted.order_ref]
