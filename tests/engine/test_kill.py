"""Kill switch: synchronous HALTED, cancels verified, in-flight submits stopped, latched across restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import ib_async
import pytest

from tui_trader.domain import AlertLevel, Bracket, OrderStatus, OrderType, TradingState
from tui_trader.domain.events import AlertRaised, Event, KillChecked, KillReport, KillSwitchEngaged
from tui_trader.domain.orders import Order
from tui_trader.engine.engine import Engine
from tui_trader.errors import BrokerError, SafetyError
from tui_trader.ops.kill import latch
from tui_trader.risk.limits import CancelScope
from tui_trader.sim import SimGateway
from tui_trader.sim.protocol.ids import Out
from tui_trader.store import sending

from .helpers import (
    CLIENT_ID,
    SHORT_ACKS,
    bracket_buy,
    buy,
    eventually,
    limits_for_tests,
    make_config,
    make_engine,
    outside_client,
    running,
    status,
)

S = OrderStatus


def _resting(engine: Engine, qty: float = 5) -> object:
    price = round(engine.market.quotes["AAPL"].bid * 0.97, 2)
    return buy(qty, order_type=OrderType.LMT, limit_price=price)


async def test_kill_flips_state_synchronously_before_anything_awaits(engine: Engine) -> None:
    engine.kill("test", by="tester")
    assert engine.trading_state is TradingState.HALTED
    assert engine.snapshot().kill_engaged


def _verifications(seen: list[Event], events: Any) -> list[KillReport]:
    """The kill verifications published so far (``seen`` collects every event drained from ``events``)."""
    seen.extend(events.drain())
    return [e.report for e in seen if isinstance(e, KillChecked)]


async def test_kill_with_working_orders_then_all_cancelled_and_verified(engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test")
    refs = [(await engine.submit(_resting(engine, q))).order_ref for q in (1, 2, 3)]  # type: ignore[arg-type]
    await eventually(lambda: all(status(engine, r) is S.SUBMITTED for r in refs))
    engine.kill("operator pressed ctrl+k")
    seen: list[Event] = []
    await eventually(lambda: _verifications(seen, events), what="the kill's verification")
    (verification,) = _verifications(seen, events)
    assert verification.verified
    assert sorted(verification.cancelled) == sorted(refs)
    assert all(status(engine, r) is S.CANCELLED for r in refs)
    assert not [o for o in sim.orders() if o.order_ref in refs and o.working]
    assert any(isinstance(e, KillSwitchEngaged) for e in seen)
    report = await engine.cancel_all()
    assert report.verified
    assert report.remaining == ()


async def test_kill_when_the_broker_does_not_answer_what_still_works_then_not_verified(
        engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test")
    order = await engine.submit(_resting(engine))  # type: ignore[arg-type]
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    sim.control.drop_messages("open_orders_end")  # the open-orders request is never answered
    engine.kill("operator pressed ctrl+k")
    seen: list[Event] = []
    await eventually(lambda: _verifications(seen, events), what="the kill's verification")
    (verification,) = _verifications(seen, events)
    assert status(engine, order.order_ref) is S.CANCELLED
    assert verification.cancelled == (order.order_ref,)
    assert not verification.checked
    assert not verification.verified
    assert any(isinstance(e, AlertRaised) and "could not verify at the broker" in e.alert.text for e in seen)


async def test_start_when_the_kill_is_latched_and_an_order_still_works_at_the_broker_then_it_is_named(
        sim: SimGateway, tmp_path: Path) -> None:
    # `tui-trader kill` with the gateway unreachable latches the kill in the journal and cancels nothing. The
    # engine then started HALTED and said nothing about the order still working at the broker (nor verified
    # anything: the console's banner read "verified").
    first = make_engine(sim, make_config(tmp_path))
    await first.start()
    await eventually(lambda: "AAPL" in first.market.quotes)
    order = await first.submit(_resting(first))  # type: ignore[arg-type]
    await eventually(lambda: status(first, order.order_ref) is S.SUBMITTED)
    await first.stop()
    await latch(tmp_path / "journal.sqlite", "kill-cli:op@host", "gateway down", sim.clock.now())
    assert [o.order_ref for o in sim.orders() if o.working] == [order.order_ref]

    async with running(sim, make_config(tmp_path)) as (second, events):
        assert second.trading_state is TradingState.HALTED
        assert (second.snapshot().kill_by, second.snapshot().kill_reason) == ("kill-cli:op@host", "gateway down")
        seen: list[Event] = []
        await eventually(lambda: _verifications(seen, events), what="the latched kill's verification")
        (verification,) = _verifications(seen, events)
        assert verification.checked
        assert verification.remaining == (order.order_ref,)
        critical = [e.alert.text for e in seen if isinstance(e, AlertRaised) and e.alert.kind == "kill_verify"]
        assert len(critical) == 1
        assert f"{order.order_ref} BUY 5 AAPL" in critical[0]

        second.kill("cancel what is left")  # engaging again sends the cancels
        await eventually(lambda: len(_verifications(seen, events)) == 2, what="the second verification")
        assert _verifications(seen, events)[1].verified
        assert not [o for o in sim.orders() if o.working]


async def test_start_when_the_kill_is_latched_and_nothing_works_at_the_broker_then_verified(
        sim: SimGateway, tmp_path: Path) -> None:
    await latch(tmp_path / "journal.sqlite", "kill-cli:op@host", "latched", sim.clock.now())
    async with running(sim, make_config(tmp_path)) as (engine, events):
        seen: list[Event] = []
        await eventually(lambda: _verifications(seen, events), what="the latched kill's verification")
        (verification,) = _verifications(seen, events)
        assert verification.verified
        assert engine.trading_state is TradingState.HALTED


async def test_kill_when_a_cancel_goes_unanswered_then_one_critical_alert_names_the_order(
        sim: SimGateway, tmp_path: Path) -> None:
    # The cancel check and the kill switch's verification each raised a critical alert naming it: two messages
    # on the operator's phone for one order left working. The kill's verification says it, once.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.5)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes)
        order = await engine.submit(_resting(engine))  # type: ignore[arg-type]
        await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
        events.drain()
        for kind in ("order_status", "error"):  # the cancel's answers never arrive
            sim.control.drop_messages(kind, -1)
        engine.kill("operator pressed ctrl+k")
        seen: list[Event] = []
        await eventually(lambda: _verifications(seen, events), what="the kill's verification")
        assert _verifications(seen, events)[0].remaining == (order.order_ref,)
        critical = [e.alert for e in seen if isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL]
        assert [(a.kind, order.order_ref in a.text) for a in critical] == [("kill", False), ("kill_verify", True)]
        assert f"orders still working after kill: {order.order_ref} BUY 5 AAPL" in critical[1].text


@pytest.mark.parametrize("ignored", [False, True], ids=["cancelled", "global-cancel-ignored"])
async def test_kill_in_global_scope_then_another_clients_order_cancelled_or_named_as_still_working(
        sim: SimGateway, tmp_path: Path, ignored: bool) -> None:
    # Global scope cancels every order on the account. One the broker still holds that the engine does not
    # track (another client's) was alerted by the cancel check only: the kill's verification said nothing
    # of it, and the console's banner read "verified".
    config = make_config(tmp_path, limits=limits_for_tests(kill_cancel_scope=CancelScope.GLOBAL))
    async with running(sim, config) as (engine, events), outside_client(sim) as (outsider, aapl):
        await eventually(lambda: "AAPL" in engine.market.quotes)
        trade = outsider.placeOrder(aapl, ib_async.LimitOrder("BUY", 3, round(sim.quote("AAPL").bid * 0.97, 2)))
        await eventually(lambda: any(o.working and o.client_id == 99 for o in sim.orders()), what="resting")
        sim.control.ignore_global_cancel(ignored)
        events.drain()
        engine.kill("operator pressed ctrl+k")
        seen: list[Event] = []
        await eventually(lambda: _verifications(seen, events), what="the kill's verification")
        (verification,) = _verifications(seen, events)
        if not ignored:
            assert verification.verified
            assert not [o for o in sim.orders() if o.working]
            assert not [e for e in seen if isinstance(e, AlertRaised) and e.alert.kind == "kill_verify"]
            return
        ref = f"broker#{trade.order.orderId}"
        assert verification.remaining == (ref,)
        assert not verification.verified
        named = [e.alert.text for e in seen if isinstance(e, AlertRaised) and e.alert.kind == "kill_verify"]
        assert named == [f"orders still working after kill: {ref} (at the broker)"]
        assert [o.order_ref for o in sim.orders() if o.working] == [trade.order.orderRef]


async def test_submit_while_halted_then_denied(engine: Engine, sim: SimGateway) -> None:
    engine.kill("halt")
    order = await engine.submit(buy(1))
    assert order.status is S.REJECTED
    assert order.order_ref not in sim.order_refs()


async def test_kill_during_in_flight_submit_then_order_never_reaches_the_wire(engine: Engine,
                                                                              sim: SimGateway) -> None:
    journal = engine.journal
    assert journal is not None
    real_commit = journal.commit_orders_now

    def commit_then_kill(orders: Iterable[Order]) -> bool:
        # The kill lands while the submit commits the durable SENDING record.
        engine.kill("mid-flight")
        return real_commit(orders)

    journal.commit_orders_now = commit_then_kill  # type: ignore[method-assign]
    await engine.submit(buy(10))
    journal.commit_orders_now = real_commit  # type: ignore[method-assign]
    (order,) = engine.orders.orders.values()
    assert order.status is S.CANCELLED
    assert order.order_ref not in sim.order_refs()


async def test_kill_while_sending_record_waits_for_a_locked_journal_then_order_never_reaches_the_wire(
        sim: SimGateway, tmp_path: Path) -> None:
    # An approved order's SENDING step is committed with the events queued before it (its
    # PENDING_APPROVAL and APPROVED ones): in SQLite, which another process may hold.
    async with running(sim, make_config(tmp_path, approvals_required=True)) as (engine, _):
        journal = engine.journal
        assert journal is not None
        await eventually(lambda: "AAPL" in engine.market.quotes)
        pending = await engine.submit(buy(10))
        await journal.flush()
        holder = sqlite3.connect(journal.path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another process writing the journal: the SENDING commit must wait
        engine.approve(pending.order_ref)
        await eventually(lambda: engine.orders.with_status(S.SENDING), what="order waiting as SENDING")
        engine.kill("while the journal was locked")
        holder.execute("COMMIT")
        holder.close()
        await eventually(lambda: status(engine, pending.order_ref) is S.CANCELLED, timeout=10, what="not sent")
        assert pending.order_ref not in sim.order_refs()
        await journal.flush()
        assert (await journal.order(pending.order_ref)).status is S.CANCELLED  # type: ignore[union-attr]


async def test_order_when_it_reaches_the_wire_then_already_journaled_as_sending_on_disk(
        engine: Engine, sim: SimGateway) -> None:
    journal = engine.journal
    assert journal is not None
    on_disk: list[str | None] = []
    place = sim.engine.place

    def place_and_read_journal(client_id: int, req: Any) -> None:
        # What a SIGKILL of the engine at this instant would leave: the file as another process reads it.
        # A restart reads the orders table, then the sending log's records no orders row supersedes.
        with closing(sqlite3.connect(journal.path)) as other:
            row = other.execute("SELECT status FROM orders WHERE order_ref = ?", (req.order_ref,)).fetchone()
        ahead = {o.order_ref: o.status.value for o in map(sending.order_of, sending.read_log(journal.path))}
        on_disk.append(row[0] if row else ahead.get(req.order_ref))
        place(client_id, req)

    sim.engine.place = place_and_read_journal  # type: ignore[method-assign]
    try:
        order = await engine.submit(buy(10))
        await eventually(lambda: on_disk, what="order received by the simulator")
    finally:
        sim.engine.place = place  # type: ignore[method-assign]
    assert on_disk == ["SENDING"], order.order_ref


async def test_pending_approvals_denied_by_kill(sim: SimGateway, tmp_path: Path) -> None:
    eng = make_engine(sim, make_config(tmp_path, approvals_required=True))
    await eng.start()
    await eventually(lambda: "AAPL" in eng.market.quotes)
    order = await eng.submit(buy(1))
    eng.kill("stop")
    assert status(eng, order.order_ref) is S.REJECTED
    await eng.stop()


async def test_kill_state_latched_across_restart_until_reset_with_reason(sim: SimGateway, tmp_path: Path) -> None:
    first = make_engine(sim, make_config(tmp_path))
    await first.start()
    first.kill("latched")
    await eventually(lambda: first.journal is not None and first.journal.backlog == 0)
    await first.stop()
    second = make_engine(sim, make_config(tmp_path))
    await second.start()
    assert second.trading_state is TradingState.HALTED
    with pytest.raises(SafetyError):
        second.reset_kill("   ", by="op")
    second.reset_kill("checked the book", by="op")
    assert second.trading_state is TradingState.ACTIVE
    await second.stop()


async def test_flatten_preview_then_flatten_closes_positions(engine: Engine, sim: SimGateway) -> None:
    order = await engine.submit(buy(7))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED)
    preview = await engine.flatten(preview=True)
    assert [(t.symbol, t.side.value, t.quantity) for t in preview.tickets] == [("AAPL", "SELL", 7)]
    engine.kill("flatten after kill")
    await engine.flatten(preview=False)
    await eventually(lambda: engine.portfolio.quantity("AAPL") == 0)
    assert sim.positions().get("AAPL", 0) == 0


async def test_reduce_only_allows_closing_but_not_opening(engine: Engine) -> None:
    order = await engine.submit(buy(5))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED)
    engine.reduce_only(True, "winding down")
    assert (await engine.submit(buy(1, symbol="MSFT"))).status is S.REJECTED
    close = await engine.submit(buy(5).__class__("AAPL", buy(5).side.opposite, 5))
    await eventually(lambda: status(engine, close.order_ref) is S.FILLED)


@pytest.mark.parametrize("approvals", [False, True])
async def test_flatten_symbol_when_its_position_is_protected_then_only_that_symbol_closes_with_its_stop_cancelled(
        sim: SimGateway, tmp_path: Path, approvals: bool) -> None:
    # The console's "flatten SYMBOL" used to submit a plain reduce-only order: with the bracket's
    # stop still working it could not pass as reduce-only, so a protected position could not be flattened.
    async with running(sim, make_config(tmp_path, approvals_required=approvals)) as (eng, _):
        await eventually(lambda: {"AAPL", "MSFT"} <= set(eng.market.quotes))
        entries = []
        for symbol in ("AAPL", "MSFT"):
            px = eng.market.quotes[symbol].ask
            entry = await eng.submit(buy(5, symbol, bracket=Bracket(stop_price=round(px - 3, 2))))
            if approvals:
                eng.approve(entry.order_ref)
            entries.append(entry)
        await eventually(lambda: all(status(eng, e.order_ref) is S.FILLED for e in entries))
        (aapl_stop,), (msft_stop,) = (eng.orders.children(e.order_ref) for e in entries)
        await eventually(lambda: status(eng, msft_stop.order_ref) is S.SUBMITTED)

        preview = await eng.flatten(preview=True, symbol="AAPL")
        assert [(t.symbol, t.quantity) for t in preview.tickets] == [("AAPL", 5)]
        await eng.flatten(preview=False, symbol="AAPL")

        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0)
        assert sim.positions().get("AAPL", 0) == 0
        assert status(eng, aapl_stop.order_ref) is S.CANCELLED
        assert eng.portfolio.quantity("MSFT") == sim.positions()["MSFT"] == 5
        assert status(eng, msft_stop.order_ref) is S.SUBMITTED
        assert not eng.approvals.items()


async def test_kill_when_disconnected_then_its_cancels_go_out_when_the_connection_is_back(
        sim: SimGateway, tmp_path: Path) -> None:
    # Ctrl+K in an outage cancelled nothing, then or later: after the reconnect the banner named the order
    # STILL WORKING and only a second Ctrl+K sent its cancel.
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes)
        order = await engine.submit(_resting(engine))  # type: ignore[arg-type]
        await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: not engine.broker.is_connected, what="disconnected")
        engine.kill("pressed in the outage")
        seen: list[Event] = []
        await eventually(lambda: _verifications(seen, events), what="the kill's verification")
        assert not _verifications(seen, events)[0].checked  # NOT VERIFIED: disconnected
        assert [o.order_ref for o in sim.orders() if o.working] == [order.order_ref]
        sim.control.refuse_connections(-1)
        await eventually(lambda: len(_verifications(seen, events)) == 2, what="the verification after the reconnect")
        assert _verifications(seen, events)[1].verified
        assert not [o for o in sim.orders() if o.working]
        assert status(engine, order.order_ref) is S.CANCELLED
        assert any(isinstance(e, AlertRaised) and e.alert.kind == "kill_cancels_sent_late" for e in seen)


async def test_exit_or_flatten_when_disconnected_then_said_and_the_stop_kept_not_a_crashed_task(
        sim: SimGateway, tmp_path: Path) -> None:
    # Found in the long soak: a strategy's exit during a disconnect crashed its task ("exit-MSFT failed:
    # ConnectionError('Not connected')") in the cancel of the position's stop; a flatten the same way.
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes)
        stop = await bracket_buy(sim, engine, qty=5)
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: not engine.broker.is_connected, what="disconnected")
        events.drain()

        await engine.close_position("AAPL", "ema cross down", "ema_cross")
        with pytest.raises(BrokerError) as refused:  # a TraderError: the console shows it
            await engine.flatten(preview=False)

        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        assert [a.text for a in said if a.kind == "exit_not_sent"] == [
            "exit (ema cross down) not sent: close_position of AAPL: not connected to the broker, so its protective "
            "orders could not be cancelled and no closing order was sent"]
        assert not [a for a in said if a.source == "engine"]  # no crashed task
        assert refused.value.args[0].startswith("flatten of AAPL: not connected to the broker")
        assert status(engine, stop.order_ref) is S.SUBMITTED
        assert [o.order_ref for o in sim.orders() if o.working] == [stop.order_ref]


async def test_strategy_exit_when_the_stops_cancel_confirms_late_then_the_exit_waits_for_it_and_goes(
        engine: Engine, sim: SimGateway) -> None:
    # Found reading the long soak's log: the cancel of a position's stop confirmed after the acknowledgement
    # timeout, the exit (reduce-only, with the stop still counted as working) was not sent, and once the
    # cancel landed the position was left open without its stop: 5 AAPL at the broker, nothing working.
    events = engine.subscribe("test", lossless=True)
    stop = await bracket_buy(sim, engine, qty=5)
    for kind in ("order_status", "error"):  # the cancel's answers come 5 simulated seconds late
        sim.control.delay_messages(kind, 5)
    sim.received_frames.clear()
    exit_task = asyncio.ensure_future(engine.close_position("AAPL", "exit signal", "ema_cross"))
    asked = str(int(Out.REQ_OPEN_ORDERS))
    await eventually(lambda: any(fields[:1] == [asked] for _, fields in sim.received_frames),
                     what="the broker asked what still works, the cancel unconfirmed after its timeout")
    assert not exit_task.done()  # waiting for the stop to end, not sending beside it
    sim.control.clear_faults()
    sim.control.step(6)  # the held answers go out
    await asyncio.wait_for(exit_task, 10)
    await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="the exit filled at the broker")
    assert status(engine, stop.order_ref) is S.CANCELLED
    assert not [o for o in sim.orders() if o.working]
    # A cancel confirmed late is not a CRITICAL "still working" alert: only one still unconfirmed after the wait.
    assert not [e for e in events.drain() if isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL]


@SHORT_ACKS
async def test_strategy_exit_when_the_stops_cancel_never_confirms_then_not_sent_and_said_critically(
        engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test", lossless=True)
    await bracket_buy(sim, engine, qty=5)
    for kind in ("order_status", "error"):  # the cancel's answers never arrive
        sim.control.drop_messages(kind, -1)
    await asyncio.wait_for(engine.close_position("AAPL", "exit signal", "ema_cross"), 30)
    critical = [e.alert.text for e in events.drain()
                if isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL]
    assert critical == ["exit (exit signal) not sent: AAPL's protective orders are not confirmed cancelled (the "
                        "broker has not answered); reconciliation will settle them, and the position may be left "
                        "without them"]
    assert sim.positions()["AAPL"] == 5  # no exit reached the broker beside a stop that may still work
    assert not [r for r in sim.received_orders() if r.action == "SELL" and r.order_type == "MKT"]
