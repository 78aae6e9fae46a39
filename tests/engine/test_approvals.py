"""Approvals, the risk gate before send and after approval, rejection, dry run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus, OrderType
from tui_trader.domain.events import AlertRaised, ApprovalResolved, OrderDenied, OrderNotSent, OrderUpdated
from tui_trader.domain.orders import Order
from tui_trader.engine.engine import Engine
from tui_trader.engine.snapshots import PendingApproval
from tui_trader.errors import SafetyError
from tui_trader.sim import SimGateway
from tui_trader.sim.account import MARGIN_RATE
from tui_trader.store import Journal

from .helpers import buy, eventually, limits_for_tests, make_config, make_engine, protected_long, running, status

S = OrderStatus
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


@pytest.fixture
async def approving(sim: SimGateway, tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine that asks for approval of every order (1 s expiry)."""
    eng = make_engine(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=1.0))
    await eng.start()
    await eventually(lambda: "AAPL" in eng.market.quotes)
    yield eng
    await eng.stop()


async def test_submit_when_approval_required_then_waits_and_nothing_reaches_the_wire(
        approving: Engine, sim: SimGateway) -> None:
    order = await approving.submit(buy(10))
    assert status(approving, order.order_ref) is S.PENDING_APPROVAL
    assert [p.order.order_ref for p in approving.approvals.items()] == [order.order_ref]
    assert order.order_ref not in sim.order_refs()


async def test_approve_then_rechecked_sent_and_filled(approving: Engine, sim: SimGateway) -> None:
    order = await approving.submit(buy(10))
    approving.approve(order.order_ref)
    await eventually(lambda: status(approving, order.order_ref) is S.FILLED)
    assert sim.order_refs().count(order.order_ref) == 1


async def test_reject_then_rejected_and_never_sent(approving: Engine, sim: SimGateway) -> None:
    events = approving.subscribe("test")
    order = await approving.submit(buy(10))
    approving.reject(order.order_ref)
    assert status(approving, order.order_ref) is S.REJECTED
    resolved = [e for e in events.drain() if isinstance(e, ApprovalResolved)]
    assert resolved[-1].approved is False
    assert order.order_ref not in sim.order_refs()


async def test_approval_not_given_in_time_then_expired_and_denied(approving: Engine, sim: SimGateway) -> None:
    order = await approving.submit(buy(10))
    await eventually(lambda: status(approving, order.order_ref) is S.EXPIRED)
    assert len(approving.approvals) == 0
    assert order.order_ref not in sim.order_refs()
    with pytest.raises(SafetyError, match="had expired"):
        approving.approve(order.order_ref)


async def test_approve_when_past_the_deadline_before_the_tick_expired_it_then_refused_and_nothing_sent(
        sim: SimGateway, tmp_path: Path) -> None:
    # An answer after the deadline was taken until the monitor tick expired the approval: the order
    # was sent and filled although its approval had lapsed.
    now = [datetime.now(UTC)]
    config = make_config(tmp_path, approvals_required=True, approval_timeout_s=30.0, tick_interval_s=3600.0)
    async with running(sim, config, clock=lambda: now[0]) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        order = await eng.submit(buy(10))
        now[0] += timedelta(seconds=31)
        with pytest.raises(SafetyError, match="had expired"):
            eng.approve(order.order_ref)
        assert status(eng, order.order_ref) is S.EXPIRED
        assert order.order_ref not in sim.order_refs()


async def test_limit_tightened_while_waiting_then_recheck_after_approval_denies(approving: Engine) -> None:
    events = approving.subscribe("test")
    order = await approving.submit(buy(10))
    approving.risk.set_limits(limits_for_tests(max_order_quantity=5))
    approving.approve(order.order_ref)
    await eventually(lambda: status(approving, order.order_ref) is S.REJECTED)
    denied = [e for e in events.drain() if isinstance(e, OrderDenied)]
    assert denied[-1].verdict.check("order_quantity") is not None


async def _send_ends(engine: Engine, order_ref: str) -> None:
    """Await the task an approval spawned to send ``order_ref`` (``approve`` returns before it runs), then
    one round trip to the gateway on the same connection: whatever the send wrote has reached it."""
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == f"send-{order_ref}"]
    await task
    await engine.broker.current_time()


async def test_approved_when_it_lapses_before_its_send_runs_then_nothing_reaches_the_wire(
        approving: Engine, sim: SimGateway) -> None:
    # Found by the chaos run: approved, then the engine stopped (lapsing every unsent order) before the
    # send task ran; the send went on from EXPIRED and the order filled while the journal said "not sent".
    order = await approving.submit(buy(10))
    approving.approve(order.order_ref)
    approving.lapse_unsent("the engine stopped")

    await _send_ends(approving, order.order_ref)

    assert status(approving, order.order_ref) is S.EXPIRED
    assert order.order_ref not in sim.order_refs()


async def test_approved_when_cancelled_before_its_send_runs_then_nothing_reaches_the_wire(
        approving: Engine, sim: SimGateway) -> None:
    order = await approving.submit(buy(10))
    approving.approve(order.order_ref)
    await approving.cancel(order.order_ref)

    await _send_ends(approving, order.order_ref)

    assert status(approving, order.order_ref) is S.CANCELLED
    assert order.order_ref not in sim.order_refs()


async def test_order_over_the_limit_then_denied_before_approval(engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test")
    order = await engine.submit(buy(5000))
    assert order.status is S.REJECTED
    assert any(isinstance(e, OrderDenied) for e in events.drain())
    assert order.order_ref not in sim.order_refs()


async def test_preview_reports_checks_without_sending(engine: Engine, sim: SimGateway) -> None:
    verdict = engine.preview(buy(5000))
    assert not verdict.passed
    assert verdict.check("order_quantity") is not None
    assert engine.orders.orders == {}


async def test_broker_rejects_order_then_rejected_with_reason(engine: Engine, sim: SimGateway) -> None:
    sim.control.reject_next(201, "Order rejected - reason:Simulated rejection")
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.REJECTED)
    assert "rejected" in engine.orders.orders[order.order_ref].history[-1].note.lower()


async def test_dry_run_journals_the_order_and_sends_nothing(sim: SimGateway, tmp_path: Path) -> None:
    eng = make_engine(sim, make_config(tmp_path, dry_run=True))
    await eng.start()
    events = eng.subscribe("test")
    await eventually(lambda: "AAPL" in eng.market.quotes)
    order = await eng.submit(buy(10))
    await eng.stop()
    assert eng.orders.orders[order.order_ref].status is S.CANCELLED
    not_sent = [e for e in events.drain() if isinstance(e, OrderNotSent)]
    assert not_sent[0].dry_run
    assert not_sent[0].order.ticket.quantity == 10
    assert order.order_ref not in sim.order_refs()


async def test_stop_when_approval_pending_then_expires_unsent_and_stays_closed_after_restart(
        sim: SimGateway, tmp_path: Path) -> None:
    config = make_config(tmp_path, approvals_required=True, approval_timeout_s=60.0)
    async with running(sim, config) as (first, events):
        await eventually(lambda: "AAPL" in first.market.quotes)
        order = await first.submit(buy(10))
        assert status(first, order.order_ref) is S.PENDING_APPROVAL
    assert status(first, order.order_ref) is S.EXPIRED  # an approval belongs to the run that asked
    assert "approval_lapsed" in [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]

    async with running(sim, config) as (second, _):
        assert order.order_ref not in {o.order_ref for o in second.orders.working()}
        assert len(second.approvals) == 0
    assert sim.orders() == []


async def test_restart_when_journal_left_an_approval_pending_then_it_expires_unsent(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: what a SIGKILL leaves: the order journaled PENDING_APPROVAL, the engine gone.
    config = make_config(tmp_path, approvals_required=True, approval_timeout_s=60.0)
    pending = Order("tt0dead-1", buy(10), S.PENDING_APPROVAL, T0, T0).with_status(
        S.PENDING_APPROVAL, T0, "waiting for approval")
    journal = await Journal.open(config.journal_path)
    journal.append(OrderUpdated(T0, pending, None))
    await journal.close()
    # Act
    async with running(sim, config) as (engine, events):
        # Assert: closed with an alert, not left waiting for an approval no queue holds.
        assert status(engine, pending.order_ref) is S.EXPIRED
        assert "approval_lapsed" in [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
        assert engine.entries_blocked_reason is None or "approval" not in engine.entries_blocked_reason
    assert sim.orders() == []


async def _pending_exit(eng: Engine) -> Order:
    await eng.close_position("AAPL", "test: exit signal", "test")
    (exit_order,) = [o for o in eng.orders.with_status(S.PENDING_APPROVAL) if o.symbol == "AAPL"]
    assert exit_order.ticket.reduce_only
    assert exit_order.ticket.quantity == 10
    return exit_order


async def test_exit_when_rejected_then_the_position_keeps_its_stop_and_target_at_the_broker(
        approving: Engine, sim: SimGateway) -> None:
    # Found in a --sim run: an exit signal cancelled the stop and target before the exit was
    # approved, so a rejected (or expired) exit left the position with no protection at all.
    _, stop, target = await protected_long(approving, approve=True)
    exit_order = await _pending_exit(approving)
    assert exit_order.order_ref in [p.order.order_ref for p in approving.approvals.items()]
    assert {o.order_ref for o in sim.orders() if o.working} == {stop.order_ref, target.order_ref}

    approving.reject(exit_order.order_ref)

    assert status(approving, exit_order.order_ref) is S.REJECTED
    assert {o.order_ref for o in sim.orders() if o.working} == {stop.order_ref, target.order_ref}
    assert approving.portfolio.positions["AAPL"].stop_price == stop.ticket.stop_price
    assert sim.positions()["AAPL"] == approving.portfolio.quantity("AAPL") == 10


async def test_exit_when_its_approval_expires_then_the_protection_stays(approving: Engine, sim: SimGateway) -> None:
    _, stop, target = await protected_long(approving, approve=True)
    exit_order = await _pending_exit(approving)
    await eventually(lambda: status(approving, exit_order.order_ref) is S.EXPIRED)
    assert {o.order_ref for o in sim.orders() if o.working} == {stop.order_ref, target.order_ref}


async def test_exit_when_approved_then_the_protection_is_cancelled_before_it_and_the_position_closes_once(
        approving: Engine, sim: SimGateway) -> None:
    _, stop, target = await protected_long(approving, approve=True)
    exit_order = await _pending_exit(approving)

    approving.approve(exit_order.order_ref)

    await eventually(lambda: status(approving, exit_order.order_ref) is S.FILLED)
    assert status(approving, stop.order_ref) is S.CANCELLED
    assert status(approving, target.order_ref) is S.CANCELLED
    assert not [o for o in sim.orders() if o.working]
    assert sim.positions().get("AAPL", 0) == approving.portfolio.quantity("AAPL") == 0
    cancelled_at = max(next(h.time for h in approving.orders.orders[r].history if h.status is S.CANCELLED)
                       for r in (stop.order_ref, target.order_ref))
    sending_at = next(h.time for h in approving.orders.orders[exit_order.order_ref].history if h.status is S.SENDING)
    assert cancelled_at <= sending_at


@pytest.fixture
async def asking(sim: SimGateway, tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine that asks for approval of every order, with time to look at it (60 s)."""
    eng = make_engine(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60.0, ack_timeout_s=2.0))
    await eng.start()
    await eventually(lambda: "AAPL" in eng.market.quotes)
    yield eng
    await eng.stop()


def pending(engine: Engine, ref: str) -> PendingApproval:
    item = next((p for p in engine.approvals.items() if p.order.order_ref == ref), None)
    assert item is not None, f"{ref} is not pending"
    return item


async def test_pending_approval_when_the_broker_answers_its_what_if_then_margin_and_commission_and_nothing_placed(
        asking: Engine, sim: SimGateway) -> None:
    ask = sim.quote("AAPL").ask
    order = await asking.submit(buy(10))
    assert pending(asking, order.order_ref).what_if_note == "asking the broker"
    await eventually(lambda: pending(asking, order.order_ref).margin_impact is not None, what="the what-if's answer")
    item = pending(asking, order.order_ref)
    assert item.margin_impact == pytest.approx(MARGIN_RATE * 10 * ask, abs=0.01)
    assert item.est_commission == pytest.approx(sim.engine.commissions.order_total(10, 10 * ask, False), abs=1e-4)
    assert item.what_if_note == ""
    # Asked about, not placed: the simulator holds no order and the what-if carried no orderRef.
    asked = [r for r in sim.received_orders() if r.what_if]
    assert [(r.symbol, r.action, r.qty, r.order_ref) for r in asked] == [("AAPL", "BUY", 10, "")]
    assert sim.order_refs() == []
    assert sim.orders() == []

    asking.approve(order.order_ref)
    await eventually(lambda: status(asking, order.order_ref) is S.FILLED)
    assert sim.order_refs() == [order.order_ref]
    trace = await asking.order_trace(order.order_ref)
    assert trace is not None
    (step,) = [s for s in trace.steps if s.step == "what-if"]
    assert step.detail.startswith(f"initial margin +{MARGIN_RATE * 10 * ask:,.2f}, "), step.detail
    assert step.data["commission"] == item.est_commission


async def test_pending_approval_when_the_broker_refuses_its_what_if_then_its_reason_is_shown_not_alerted(
        asking: Engine, sim: SimGateway) -> None:
    events = asking.subscribe("test")
    sim.control.halt("AAPL")  # the broker refuses new orders in a halted symbol (the gate does not know halts)
    order = await asking.submit(buy(10, order_type=OrderType.LMT, limit_price=round(sim.quote("AAPL").bid, 2)))
    await eventually(lambda: pending(asking, order.order_ref).what_if_note != "asking the broker",
                     what="the what-if's answer")
    item = pending(asking, order.order_ref)
    assert item.what_if_note.startswith("refused by the broker: 201: "), item.what_if_note
    assert "halted" in item.what_if_note
    assert item.margin_impact is None
    alerts = [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)]
    assert not [a for a in alerts if "201" in a], alerts
    assert sim.orders() == []


async def test_pending_approval_when_its_what_if_goes_unanswered_then_said_and_approval_still_possible(
        asking: Engine, sim: SimGateway) -> None:
    sim.control.drop_messages("open_order", 1)
    order = await asking.submit(buy(10))
    await eventually(lambda: pending(asking, order.order_ref).what_if_note == "no answer from the broker",
                     what="the what-if's 2 s timeout")
    asking.approve(order.order_ref)
    await eventually(lambda: status(asking, order.order_ref) is S.FILLED)
    assert sim.order_refs() == [order.order_ref]


async def test_pending_approval_when_the_link_drops_before_its_what_if_answers_then_said_and_nothing_placed(
        asking: Engine, sim: SimGateway) -> None:
    sim.control.delay_messages("open_order", 30.0)  # the answer is held back: the what-if is in flight
    order = await asking.submit(buy(10))
    await eventually(lambda: any(r.what_if for r in sim.received_orders()), what="the what-if at the simulator")
    sim.control.disconnect()
    await eventually(lambda: pending(asking, order.order_ref).what_if_note.startswith("no answer (broker: "),
                     what="the what-if ended by the disconnect")
    assert pending(asking, order.order_ref).margin_impact is None
    sim.control.clear_faults()
    assert sim.orders() == []


async def test_pending_approval_when_dry_run_then_no_what_if_is_sent(sim: SimGateway, tmp_path: Path) -> None:
    eng = make_engine(sim, make_config(tmp_path, dry_run=True, approvals_required=True, approval_timeout_s=60.0))
    await eng.start()
    try:
        await eventually(lambda: "AAPL" in eng.market.quotes)
        order = await eng.submit(buy(10))
        assert pending(eng, order.order_ref).what_if_note == "not asked (dry run: nothing goes to the broker)"
        await eng.broker.current_time()  # a round trip: anything sent before it has reached the simulator
    finally:
        await eng.stop()
    assert sim.received_orders() == []


async def test_snapshot_when_the_book_and_the_price_move_while_an_approval_waits_then_it_shows_them_as_of_now(
        sim: SimGateway, tmp_path: Path) -> None:
    # The modal showed the checks and the price from when the order was queued: after a fill, the
    # open positions and exposure it showed were no longer the ones the order would be sent against.
    config = make_config(tmp_path, approvals_required=True, approval_timeout_s=60.0)
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes and "MSFT" in eng.market.quotes)
        first = await eng.submit(buy(10, "AAPL"))
        waiting = await eng.submit(buy(10, "MSFT"))
        (_, queued) = eng.snapshot().pending_approvals
        assert queued.verdict.check("open_positions").value == 1  # MSFT's own entry: nothing open yet
        eng.approve(first.order_ref)
        await eventually(lambda: status(eng, first.order_ref) is S.FILLED and eng.portfolio.open_positions())
        sim.control.set_price("MSFT", 300.0)
        await eventually(lambda: eng.market.mark("MSFT") == 300.0)

        (now,) = eng.snapshot().pending_approvals
        assert now.order.order_ref == waiting.order_ref
        assert now.verdict.check("open_positions").value == 2  # AAPL is open now
        assert now.reference_price == 300.0
        assert now.est_notional == 3_000.0
        assert len(eng.approvals) == 1  # the queue itself is untouched: the order is checked again when approved


async def test_what_if_of_a_ticket_then_the_brokers_answer_and_nothing_tracked_placed_or_journaled(
        asking: Engine, sim: SimGateway) -> None:
    # The order ticket asks before it submits (ctrl+t): the answer, and no order anywhere.
    events = asking.subscribe("test", lossless=True)
    ask = sim.quote("AAPL").ask
    answer, note = await asking.what_if(buy(10))
    assert answer is not None
    assert note == ""
    assert answer.init_margin_change == pytest.approx(MARGIN_RATE * 10 * ask, abs=0.01)
    assert asking.orders.orders == {}
    assert len(asking.approvals) == 0
    assert sim.order_refs() == []
    assert [e for e in events.drain() if isinstance(e, OrderUpdated)] == []


async def test_what_if_of_a_ticket_in_dry_run_then_not_asked_and_says_why(sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path, dry_run=True)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        assert await eng.what_if(buy(10)) == (None, "not asked (dry run: nothing goes to the broker)")
    assert [r for r in sim.received_orders() if r.what_if] == []


async def test_modify_in_dry_run_of_an_order_adopted_from_the_broker_then_refused_and_nothing_sent(
        sim: SimGateway, tmp_path: Path) -> None:
    # A dry run sends nothing, but a modify of an order a previous run left working went to the broker.
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        resting = await eng.submit(buy(10, order_type=OrderType.LMT, limit_price=50.0))
        await eventually(lambda: eng.orders.orders[resting.order_ref].modifiable, what="resting at the broker")
    received = len(sim.received_orders())
    async with running(sim, make_config(tmp_path, dry_run=True)) as (eng, _):
        await eventually(lambda: eng.orders.get(resting.order_ref) is not None
                         and eng.orders.orders[resting.order_ref].modifiable, what="adopted")
        with pytest.raises(SafetyError, match="dry run: a modification is not sent"):
            await eng.modify(resting.order_ref, limit_price=51.0)
    assert len(sim.received_orders()) == received
    assert [o.lmt_price for o in sim.orders() if o.order_ref == resting.order_ref] == [50.0]
