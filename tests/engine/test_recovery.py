"""Disconnects, reconnection, reconciliation, stale data, farm messages, the paper guard."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops.servers import closed_port

from tui_trader.domain import AlertLevel, ConnectionState, OrderStatus, OrderType
from tui_trader.domain.events import AlertRaised, CommissionReported, ConnectionChanged
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import CLIENT_ID, alerts_said, buy, eventually, make_config, make_engine, sell, status, strategy

S = OrderStatus


async def test_disconnect_during_order_then_fill_recovered_once_and_positions_right(
        engine: Engine, sim: SimGateway) -> None:
    limit = round(engine.market.quotes["AAPL"].bid - 1.0, 2)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.connection.state is not ConnectionState.CONNECTED)
    sim.control.set_price("AAPL", limit - 0.5)
    await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED)
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="fill recovered")
    await eventually(lambda: not engine.blocks, what="entries unblocked")
    fills = [f for f in engine.orders.fills.values() if f.order_ref == order.order_ref]
    assert sum(f.quantity for f in fills) == 10
    assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 10
    assert sim.duplicate_order_refs() == []


async def test_disconnected_then_not_shown_as_connected_since_the_last_connect(
        engine: Engine, sim: SimGateway) -> None:
    # The connectivity pane said "State DISCONNECTED" above "Connected 10:31:02", the time of the lost link.
    first = engine.connection.connected_since
    assert first is not None
    sim.control.refuse_connections(3600)
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.connection.state is ConnectionState.DISCONNECTED)
    assert engine.snapshot().connection.connected_since is None
    sim.control.refuse_connections(0)
    await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED)
    assert engine.connection.connected_since is not None
    assert engine.connection.connected_since >= first


async def test_connectivity_lost_1100_then_not_back_until_ib_is_then_reconnects_and_reconciles(
        engine: Engine, sim: SimGateway) -> None:
    # TWS keeps saying 1100 to a client that connects while IB is unreachable. The simulator told only the
    # sessions of the moment: the engine's session dropped on the 1100 came straight back, and the console said
    # "reconnected and reconciled: new entries no longer blocked" for the whole outage.
    events = engine.subscribe("test", lossless=True)
    sim.control.connectivity_lost()
    await eventually(lambda: engine.connection.state is not ConnectionState.CONNECTED, what="the 1100's drop")
    await eventually(lambda: "connectivity lost (1100)" in engine.connection.last_error_reason,
                     what="a reconnect told 1100 again, said for what it is")
    assert engine.connection.state not in (ConnectionState.CONNECTED, ConnectionState.DEGRADED)
    assert "reconciling" in engine.blocks
    sim.control.connectivity_restored()
    await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED and not engine.blocks,
                     what="back once IB is")
    assert engine.account_id == sim.account_id
    kinds = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised) and e.alert.source == "broker"]
    assert kinds.count("reconnected") == 1


async def test_connectivity_restored_with_data_lost_1101_then_a_fresh_session_resubscribes(
        engine: Engine, sim: SimGateway) -> None:
    # 1101 was taken for a farm report: the link went DEGRADED with a farm named after the message, for
    # good, and nothing resubscribed the quotes and bars IB had dropped.
    sim.control.connectivity_restored(data_lost=True)
    await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED)
    assert set(engine.connection.farms) == {"usfarm", "ushmds", "secdefnj"}
    assert not engine.connection.market_data_degraded
    price = round(engine.market.quotes["AAPL"].last + 3.21, 2)
    sim.control.set_price("AAPL", price)
    await eventually(lambda: engine.market.quotes["AAPL"].last == price, what="quotes on the fresh session")


async def test_connectivity_restored_with_data_maintained_1102_then_reconciled_without_a_reconnect(
        engine: Engine, sim: SimGateway) -> None:
    sim.received_frames.clear()
    sim.control.connectivity_restored(data_lost=False)
    executions = str(int(Out.REQ_EXECUTIONS))
    await eventually(lambda: any(fields[:1] == [executions] for _, fields in sim.received_frames),
                     what="the reconciliation's executions request")
    assert engine.reconnects == 0
    assert engine.connection.state is ConnectionState.CONNECTED


async def test_connect_when_the_client_id_is_in_use_then_refused_at_once_saying_so(
        engine: Engine, sim: SimGateway, tmp_path: Path) -> None:
    # A restart while the gateway still held the crashed session's client id waited out the whole connect
    # timeout and said "could not connect: TimeoutError()"; a headless run, "is the gateway running?".
    second = Engine(make_config(tmp_path / "second"), make_broker(sim.host, sim.port, CLIENT_ID, timeout=120))
    alerts = second.subscribe("test", lossless=True)
    await asyncio.wait_for(second.start(), 20)  # well inside the 120 s ib_async would have waited
    said = [e.alert.text for e in alerts.drain() if isinstance(e, AlertRaised) and e.alert.source == "broker"]
    assert [text for text in said if "in use" in text] == [  # once, not again as the raw 326
        second.connection.last_error]  # as the connectivity pane says it
    assert second.connection.last_error.startswith(
        f"could not connect to {sim.host}:{sim.port}: client id {CLIENT_ID} is in use")
    assert engine.connection.state is ConnectionState.CONNECTED  # the session holding the id is untouched
    await second.stop()


async def test_start_when_the_gateway_refuses_then_could_not_connect_is_said_once_with_the_retry_and_no_disconnect(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # An engine that never connected said "disconnected from the broker; reconnecting", and its retries only the
    # reason (in the connectivity pane): the log, the alerts and the pane now say one thing, what happened.
    port = closed_port()
    engine = Engine(make_config(tmp_path), make_broker("127.0.0.1", port, CLIENT_ID, timeout=3.0))
    events = engine.subscribe("test", lossless=True)
    caplog.set_level(logging.INFO, logger="tui_trader.engine")
    wording = re.compile(rf"could not connect to 127\.0\.0\.1:{port}: connection refused \(is the gateway running, "
                         r"listening on this port\?\); trying again in \d+\.\d s")

    def said_in_the_log() -> list[str]:
        return [r.getMessage() for r in caplog.records if "could not connect" in r.getMessage()]

    try:
        await engine.start()
        await eventually(lambda: len(said_in_the_log()) >= 3, what="the start's attempt and two retries refused")
    finally:
        await engine.stop()
    alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.source == "broker"]
    assert [a.level for a in alerts] == [AlertLevel.ERROR]  # said once, not again at every retry
    assert wording.fullmatch(alerts[0].text)
    assert all(wording.search(text) for text in said_in_the_log())  # the alert's record with its source
    assert wording.fullmatch(engine.connection.last_error)  # the connectivity pane's last error
    assert engine.connection.last_error_reason.startswith("connection refused")
    assert engine.reconnects == 0


async def test_start_when_connected_then_a_lost_link_is_said_as_a_disconnect(engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test", lossless=True)
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED)
    said = [e for e in events.drain() if isinstance(e, AlertRaised | ConnectionChanged)]
    assert [(e.alert.level, e.alert.text) for e in said if isinstance(e, AlertRaised) and e.alert.source == "broker"] \
        == [(AlertLevel.ERROR, "disconnected from the broker; reconnecting (new entries blocked until reconciled)"),
            (AlertLevel.INFO, "reconnected and reconciled: new entries no longer blocked by the lost link")]
    assert [e.detail for e in said if isinstance(e, ConnectionChanged)
            and e.state is ConnectionState.DISCONNECTED] == ["connection lost"]


async def test_farm_broken_marks_data_degraded_without_teardown(engine: Engine, sim: SimGateway) -> None:
    sim.control.send_error(2103)
    await eventually(lambda: engine.connection.market_data_degraded)
    assert engine.broker.is_connected
    assert engine.reconnects == 0
    sim.control.send_error(2104)
    await eventually(lambda: not engine.connection.market_data_degraded)


async def test_farm_broken_across_reconnects_then_said_once_per_outage(engine: Engine, sim: SimGateway) -> None:
    # Each connect hears the farms afresh: a farm still broken after a reconnect was a second WARNING (and a second
    # notification), and one back by the next connect was never said back.
    events = engine.subscribe("test", lossless=True)
    sim.control.send_error(2103)
    await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="DEGRADED on 2103")
    sim.control.drop_sessions(CLIENT_ID)  # the gateway reports the farm broken to the next session
    await eventually(lambda: engine.reconnects == 1 and engine.connection.state is ConnectionState.DEGRADED,
                     what="reconnected, the farm still broken")
    sim.control.refuse_connections(3600)
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.connection.state is ConnectionState.DISCONNECTED)
    sim.control.send_error(2104)  # back while no session hears it: the next connect reports it
    sim.control.refuse_connections(0)
    await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="reconnected, the farm OK")
    sim.control.send_error(2103)  # another outage
    await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="DEGRADED again")
    assert [(a.kind, a.text) for a in alerts_said(events) if a.kind in ("farm_broken", "farm_ok")] == [
        ("farm_broken", "market data degraded (2103): Market data farm connection is broken:usfarm"),
        ("farm_ok", "market data farm back (2104): Market data farm connection is OK:usfarm"),
        ("farm_broken", "market data degraded (2103): Market data farm connection is broken:usfarm")]


async def test_ib_servers_unreachable_2110_then_degraded_warned_entries_blocked_exits_go_until_1102(
        engine: Engine, sim: SimGateway) -> None:
    # 2110 was one more INFO notice: the link stayed CONNECTED and entries kept going to a gateway that could
    # not pass them on to IB's servers.
    await engine.submit(buy(10))
    await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="long 10")
    events = engine.subscribe("test", lossless=True)
    sim.control.server_link_broken()
    await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="DEGRADED on 2110")
    assert engine.broker.is_connected  # IB restores it itself: no teardown
    assert engine.reconnects == 0
    assert not engine.connection.market_data_degraded  # the farms did not say so; the link to IB did
    said = [(e.alert.level, e.alert.kind) for e in events.drain() if isinstance(e, AlertRaised)]
    assert (AlertLevel.WARNING, "ib_link_broken") in said
    assert [c.name for c in engine.preview(buy(5)).failures] == ["entries_blocked"]
    exit_order = await engine.submit(sell(10))  # exits still go (and cancels, and the kill switch)
    await eventually(lambda: engine.portfolio.quantity("AAPL") == 0, what="the exit filled")
    assert status(engine, exit_order.order_ref) is S.FILLED

    sim.control.connectivity_restored(data_lost=False)  # 1102
    await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="CONNECTED on 1102")
    said = [(e.alert.level, e.alert.kind) for e in events.drain() if isinstance(e, AlertRaised)]
    assert (AlertLevel.INFO, "ib_link_restored") in said
    assert engine.preview(buy(5)).passed


async def test_ib_servers_unreachable_2110_when_a_farm_reports_ok_then_still_degraded(
        engine: Engine, sim: SimGateway) -> None:
    sim.control.server_link_broken()
    await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="DEGRADED on 2110")
    sim.control.send_error(2104)  # a farm's OK says nothing of the link to IB's servers
    sim.control.send_error(2103)
    sim.control.send_error(2104)
    await eventually(lambda: not engine.connection.market_data_degraded, what="the farm back")
    assert engine.connection.state is ConnectionState.DEGRADED
    assert not engine.preview(buy(5)).passed


async def test_ib_servers_unreachable_2110_then_1101_reconnects_and_the_fresh_session_is_connected(
        engine: Engine, sim: SimGateway) -> None:
    sim.control.server_link_broken()
    await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="DEGRADED on 2110")
    sim.control.connectivity_restored(data_lost=True)  # 1101: restored, the subscriptions lost
    await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED)
    await eventually(lambda: not engine.blocks, what="entries allowed on the fresh session")


async def test_ib_servers_unreachable_2110_then_a_new_connection_starts_with_the_link_up(
        engine: Engine, sim: SimGateway) -> None:
    # A 1102 sent while the engine was disconnected is heard by no session: kept across connections, the
    # 2110's block would never lift.
    sim.control.server_link_broken()
    await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="DEGRADED on 2110")
    sim.control.drop_sessions(CLIENT_ID)
    sim.control.connectivity_restored()  # before the engine is back: heard by no session
    await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED)
    assert not engine.connection.server_link_broken
    await eventually(lambda: not engine.blocks, what="entries allowed on the new connection")


async def test_connect_when_the_farms_report_ok_then_connecting_and_connected_only(
        sim: SimGateway, tmp_path: Path) -> None:
    # Found in a --sim run: every start added three "connection CONNECTED 2104: … farm connection is OK"
    # lines, published as the farms reported during the connect, before the account was checked.
    eng = make_engine(sim, make_config(tmp_path))
    events = eng.subscribe("test", lossless=True)
    await eng.start()
    changes = [(e.state, e.detail) for e in events.drain() if isinstance(e, ConnectionChanged)]
    assert changes == [(ConnectionState.CONNECTING, ""), (ConnectionState.CONNECTED, f"account {sim.account_id}")]
    assert eng.connection.farms == {"usfarm": "ok", "ushmds": "ok", "secdefnj": "ok"}
    await eng.stop()


async def test_connect_while_a_farm_is_broken_then_degraded_and_connected_once_it_recovers(
        sim: SimGateway, tmp_path: Path) -> None:
    sim.control.send_error(2103)  # before anyone connects: the gateway reports it to each new session
    eng = make_engine(sim, make_config(tmp_path))
    events = eng.subscribe("test", lossless=True)
    await eng.start()
    assert [e.state for e in events.drain() if isinstance(e, ConnectionChanged)] == [
        ConnectionState.CONNECTING, ConnectionState.DEGRADED]
    assert eng.connection.market_data_degraded
    sim.control.send_error(2106)  # another farm's OK changes nothing
    sim.control.send_error(2104)
    await eventually(lambda: eng.connection.state is ConnectionState.CONNECTED)
    assert [(e.state, e.detail) for e in events.drain() if isinstance(e, ConnectionChanged)] == [
        (ConnectionState.CONNECTED, "2104: Market data farm connection is OK:usfarm")]
    assert not eng.connection.market_data_degraded
    await eng.stop()


async def test_market_data_stalled_while_connected_then_alert_and_entries_blocked(
        sim: SimGateway, tmp_path: Path, clock: ManualClock) -> None:
    config = make_config(tmp_path, market_data_stale_s=0.3, strategies=(strategy("ema_cross"),))
    eng = make_engine(sim, config)
    await eng.start()
    await eventually(lambda: "AAPL" in eng.market.quotes)
    sim.control.stall_market_data(True)
    await eventually(lambda: "stale_data" in eng.blocks, what="stale block")
    assert (await eng.submit(buy(1))).status is S.REJECTED
    sim.control.stall_market_data(False)
    sim.control.step(5)
    await eventually(lambda: "stale_data" not in eng.blocks, what="stale block lifted")
    await eng.stop()


async def test_no_market_data_since_connecting_then_stalled_only_once_the_threshold_has_passed_since_the_connect(
        sim: SimGateway, tmp_path: Path) -> None:
    # A session that connected before any data came was called stalled at once: "nothing for infs".
    now = [datetime(2026, 11, 20, 15, 0, tzinfo=UTC)]
    config = make_config(tmp_path, market_data_stale_s=30.0, strategies=(strategy("ema_cross"),))
    sim.control.stall_market_data(True)
    eng = make_engine(sim, config, clock=lambda: now[0])
    events = eng.subscribe("test", lossless=True)
    await eng.start()
    try:
        assert eng.broker.is_connected
        assert eng.market.last_data_at is None
        eng.tick()
        assert "stale_data" not in eng.blocks
        now[0] += timedelta(seconds=31)
        eng.tick()
        assert "stale_data" in eng.blocks
        (alert,) = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "md_stale"]
        assert alert.text == "market data stalled: none in the 31s since connecting"
    finally:
        await eng.stop()


async def test_paper_mode_against_a_live_account_then_refuses_to_trade(tmp_path: Path) -> None:
    from tui_trader.domain import Mode

    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as live:
        eng = make_engine(live, make_config(tmp_path, mode=Mode.PAPER))
        await eng.start()
        await eventually(lambda: "AAPL" in eng.market.quotes)
        assert eng.refusal
        order = await eng.submit(buy(1))
        assert order.status is S.REJECTED
        assert live.order_refs() == []
        await eng.stop()


async def test_restart_with_working_order_then_adopted_not_duplicated(sim: SimGateway, tmp_path: Path) -> None:
    first = make_engine(sim, make_config(tmp_path))
    await first.start()
    await eventually(lambda: "AAPL" in first.market.quotes)
    limit = round(first.market.quotes["AAPL"].bid - 1.0, 2)
    order = await first.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(first, order.order_ref) is S.SUBMITTED)
    await first.stop()
    sim.control.set_price("AAPL", limit - 0.5)
    second = make_engine(sim, make_config(tmp_path))
    await second.start()
    await eventually(lambda: status(second, order.order_ref) is S.FILLED, what="adopted and filled")
    assert second.portfolio.quantity("AAPL") == 10
    assert sim.duplicate_order_refs() == []
    assert len([f for f in second.orders.fills.values() if f.order_ref == order.order_ref]) == 1
    await second.stop()


async def test_commission_lost_on_the_wire_then_attached_once_by_the_reconciliation_after_reconnect(
        engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test", lossless=True)
    sim.control.drop_messages("commission", 1)  # the report is lost: the connection drops right after
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled")
    (execution,) = sim.executions()
    assert engine.orders.fills[execution.exec_id].commission is None

    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.reconnects >= 1 and not engine.blocks, what="reconnected and reconciled")
    await eventually(lambda: engine.orders.fills[execution.exec_id].commission is not None, what="commission")
    await engine.reconcile("once more: nothing may be attached twice")

    assert engine.orders.fills[execution.exec_id].commission == pytest.approx(execution.commission)
    assert engine.orders.orders[order.order_ref].commission == pytest.approx(execution.commission)
    assert engine.portfolio.commissions == pytest.approx(execution.commission)
    reported = [e for e in events.drain() if isinstance(e, CommissionReported)]
    assert [e.exec_id for e in reported] == [execution.exec_id]
    assert engine.journal is not None
    await engine.journal.flush()
    (journaled,) = await engine.journal.fills()
    assert journaled.commission == pytest.approx(execution.commission)


async def test_connect_retries_while_the_gateway_is_down_then_one_connecting_event_not_one_per_attempt(
        tmp_path: Path) -> None:
    # A --paper console with no gateway added "connection CONNECTING" to the alerts on every retry.
    eng = Engine(make_config(tmp_path), make_broker("127.0.0.1", closed_port(), CLIENT_ID, timeout=1.0))
    events = eng.subscribe("test", lossless=True)
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await eng.connect_and_sync(startup=True)
    assert [e.state for e in events.drain() if isinstance(e, ConnectionChanged)] == [ConnectionState.CONNECTING]


async def test_fill_in_an_outage_long_before_a_fill_heard_as_the_connection_returns_then_both_recorded(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # The executions were asked for from five minutes before the newest fill known when the reconciliation
    # ran: a fill heard live as the connection came back is newer than the outage's, so a fill more than
    # five minutes older than it was never asked for (the long soak: one execution of the simulator's
    # ledger missing from the journal).
    # The connect is held (its open orders) until the late fill is heard: a timeout a loaded host cannot reach.
    engine = Engine(make_config(tmp_path), make_broker(sim.host, sim.port, CLIENT_ID, timeout=30))
    await engine.start()
    try:
        await eventually(lambda: {"AAPL", "MSFT"} <= set(engine.market.quotes), what="first quotes")
        early = await engine.submit(buy(10, order_type=OrderType.LMT,
                                        limit_price=round(engine.market.quotes["AAPL"].bid - 1.0, 2)))
        late = await engine.submit(buy(5, symbol="MSFT", order_type=OrderType.LMT,
                                       limit_price=round(engine.market.quotes["MSFT"].bid - 1.0, 2)))
        await eventually(lambda: {status(engine, o.order_ref) for o in (early, late)} == {S.SUBMITTED})
        sim.control.refuse_connections(24 * 3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: engine.connection.state is not ConnectionState.CONNECTED)
        sim.control.set_price("AAPL", early.ticket.limit_price - 0.5)
        (missed,) = sim.executions()
        clock.advance(600)
        sim.control.delay_messages("open_orders_end", 5)  # the connect's open orders: answered once stepped
        sim.received_frames.clear()
        sim.control.refuse_connections(0)
        # Filled once the connect has asked for its open orders (MSFT's among them): on a loaded host the
        # fill could come before, ib_async had no trade for its execution yet, and it was never heard live.
        await eventually(lambda: (CLIENT_ID, [str(int(Out.REQ_OPEN_ORDERS))]) in [
            (cid, fields[:1]) for cid, fields in sim.received_frames], what="the engine connecting again")
        sim.control.set_price("MSFT", late.ticket.limit_price - 0.5)
        await eventually(lambda: any(f.order_ref == late.order_ref for f in engine.orders.fills.values()),
                         what="the late fill heard live")
        sim.control.step(5)
        sim.control.clear_faults()
        await eventually(lambda: engine.reconnects >= 1 and not engine.blocks, what="reconnected and reconciled")

        assert missed.exec_id in engine.orders.fills
        assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 10
        assert engine.journal is not None
        await engine.journal.flush()
        assert {f.exec_id for f in await engine.journal.fills()} == {e.exec_id for e in sim.executions()}
    finally:
        await engine.stop()
