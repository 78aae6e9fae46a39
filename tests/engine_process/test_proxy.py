"""The engine in a child process, commanded through EngineProxy, against the simulator.

The simulator runs here; the engine runs in a child process started exactly as the console
starts it (``python -m tui_trader.engine.process.host``), reaching the simulator through
ib_async over loopback. The simulator's ledger is the witness of what reached the wire.
Waits are bounded polls, never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from engine.helpers import buy, eventually

from engine_process.helpers import engine_on_test_sim, engine_process, settings_for
from tui_trader.domain.enums import ConnectionState, OrderStatus, OrderType, TradingState
from tui_trader.domain.events import ConnectionChanged, Event
from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.bus import Subscription
from tui_trader.engine.process.launch import launch
from tui_trader.engine.process.proxy import EngineNotAnswering, EngineProcessDied, EngineProxy, spawn_engine
from tui_trader.errors import SafetyError
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

S = OrderStatus
WAIT_S = 20.0
"""Upper bound of every poll: a child process on two busy cores; never reached when things work."""


@pytest.fixture
async def gw() -> AsyncIterator[SimGateway]:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gateway:
        yield gateway


async def started(proxy: EngineProxy) -> EngineProxy:
    """Start the child's engine and wait for quotes of both test symbols."""
    await proxy.start()
    await eventually(lambda: {"AAPL", "MSFT"} <= set(proxy.snapshot().quotes), WAIT_S, "quotes through the proxy")
    return proxy


def resting_limit(proxy: EngineProxy, qty: float = 5) -> OrderTicket:
    """A buy limit 3% under the bid: it rests at the simulator until cancelled."""
    price = round(proxy.snapshot().quotes["AAPL"].bid * 0.97, 2)
    return buy(qty, order_type=OrderType.LMT, limit_price=price, strategy="manual")


def working_at_sim(gw: SimGateway, refs: list[str]) -> list[str]:
    """Which of ``refs`` the simulator still has working."""
    return [o.order_ref for o in gw.orders() if o.order_ref in refs and o.working]


async def drain_until_failure(sub: Subscription) -> None:
    """Take the queued events, then the failure ``get`` raises once the process is gone."""
    while True:
        await asyncio.wait_for(sub.get(), WAIT_S)


async def test_start_when_child_engine_connects_then_snapshots_and_events_reach_the_console(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        sub = proxy.subscribe("console", maxsize=100)

        await started(proxy)

        snap = proxy.snapshot()
        assert snap.connection.state is ConnectionState.CONNECTED
        assert snap.account_id.startswith("DUSIM")
        first = await asyncio.wait_for(sub.get(), WAIT_S)
        assert isinstance(first, Event)
        before = snap.time
        await eventually(lambda: proxy.snapshot().time > before, WAIT_S, "a newer snapshot pushed")


async def test_submit_when_approved_through_proxy_then_order_fills_at_simulator(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path, confirm=True) as proxy:
        await started(proxy)

        order = await proxy.submit(buy(3, strategy="manual"))
        assert order.status is S.PENDING_APPROVAL
        await eventually(lambda: any(p.order.order_ref == order.order_ref for p in proxy.snapshot().pending_approvals),
                         WAIT_S, "approval pending in the snapshot")
        proxy.approve(order.order_ref)

        await eventually(lambda: gw.positions().get("AAPL") == 3, WAIT_S, "filled at the simulator")
        await eventually(lambda: any(o.order_ref == order.order_ref and o.status is S.FILLED
                                     for o in proxy.snapshot().orders), WAIT_S, "FILLED in the snapshot")
        assert order.order_ref in gw.order_refs()


async def test_kill_through_proxy_when_orders_rest_then_halted_at_once_and_simulator_gets_the_cancels(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        await started(proxy)
        refs = await resting_at_sim(proxy, gw, 1, 2)

        proxy.kill("test kill", by="operator")

        assert proxy.snapshot().trading_state is TradingState.HALTED  # before the child has even read it
        await eventually(lambda: not working_at_sim(gw, refs), WAIT_S, "cancelled at the simulator")
        await eventually(lambda: all(o.status is S.CANCELLED for o in proxy.snapshot().orders if o.order_ref in refs),
                         WAIT_S, "CANCELLED in the child's snapshot")
        denied = await proxy.submit(resting_limit(proxy))
        assert denied.status is S.REJECTED  # the child's engine itself is HALTED
        assert proxy.snapshot().kill_reason == "test kill"


async def test_call_when_child_raises_then_same_type_and_message_in_console(gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        await started(proxy)

        with pytest.raises(SafetyError, match="not engaged") as refused:
            proxy.reset_kill("nothing to reset")
        assert refused.value.title == "Kill switch reset refused"
        with pytest.raises(KeyError, match="no order nope"):
            await proxy.cancel("nope")


async def test_child_sigkilled_when_operator_kills_then_reported_and_out_of_band_kill_latches_and_cancels(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        sub = proxy.subscribe("console")
        await started(proxy)
        refs = await resting_at_sim(proxy, gw, 1, 2)

        os.kill(proxy.pid, signal.SIGKILL)

        with pytest.raises(EngineProcessDied, match=r"died \(killed by signal 9\)"):
            await drain_until_failure(sub)
        assert proxy.snapshot().connection.state is ConnectionState.DISCONNECTED
        with pytest.raises(EngineProcessDied):
            proxy.approve("anything")
        assert working_at_sim(gw, refs) == refs  # nothing cancelled them yet: the engine just died

        proxy.kill("operator pressed Ctrl+K", by="operator")

        assert proxy.snapshot().trading_state is TradingState.HALTED
        assert proxy.fallback is not None
        await asyncio.wait_for(proxy.fallback, WAIT_S)
        assert not working_at_sim(gw, refs)  # the global cancel, from the kill's own client id
        journal = await Journal.open(proxy.settings.journal_path)
        try:
            state = await journal.load_kill_state()
        finally:
            await journal.close()
        assert state is not None
        assert state["engaged"]
        assert state["out_of_band"]
        assert "out-of-band kill" in proxy.snapshot().connection.last_error


async def resting_at_sim(proxy: EngineProxy, gw: SimGateway, *quantities: float) -> list[str]:
    """A resting limit buy of each quantity through ``proxy``, once all work at the simulator; their refs."""
    refs = [(await proxy.submit(resting_limit(proxy, q))).order_ref for q in quantities]
    await eventually(lambda: len(working_at_sim(gw, refs)) == len(refs), WAIT_S, "orders working at the simulator")
    return refs


async def died_with_an_order_working(proxy: EngineProxy, gw: SimGateway) -> str:
    """Start ``proxy``'s engine, rest a limit order at the simulator, SIGKILL the engine process and see the
    console's subscription fail; returns the order's ref."""
    sub = proxy.subscribe("console")
    await started(proxy)
    (ref,) = await resting_at_sim(proxy, gw, 5)
    os.kill(proxy.pid, signal.SIGKILL)
    with pytest.raises(EngineProcessDied):
        await drain_until_failure(sub)
    return ref


async def test_console_stops_right_after_an_out_of_band_kill_then_the_kill_finishes_first(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        ref = await died_with_an_order_working(proxy, gw)

        proxy.kill("operator pressed Ctrl+K", by="operator")  # out of band: latch, then a global cancel
        await asyncio.wait_for(proxy.stop(), WAIT_S)  # the operator quits at once

        assert proxy.fallback is not None
        assert proxy.fallback.done()
        assert not working_at_sim(gw, [ref])


async def test_operator_kill_during_the_consoles_own_latch_only_kill_then_it_still_cancels(
        gw: SimGateway, tmp_path: Path) -> None:
    # The console's crash handling latches only (operator=False); a Ctrl+K pressed while that latch was under
    # way was dropped ("a kill under way"), and the global cancel the operator asked for never happened.
    async with engine_process(gw, tmp_path) as proxy:
        ref = await died_with_an_order_working(proxy, gw)

        proxy.kill("console worker crashed", by="console", operator=False)  # latch only
        proxy.kill("operator pressed Ctrl+K", by="operator")  # at once, while the latch is under way
        await eventually(lambda: not working_at_sim(gw, [ref]), WAIT_S, "the global cancel at the simulator")
        await asyncio.wait_for(proxy.stop(), WAIT_S)


async def test_engine_death_latch_failed_then_the_consoles_own_kill_asks_the_latch_again(
        gw: SimGateway, tmp_path: Path) -> None:
    # The process's death latches out of band (latch only). The console's crash handling that follows (a kill,
    # operator=False) adds nothing to a latch under way or written, but one that failed may not have been written:
    # it is asked again, or the next engine started from the journal would not start HALTED.
    journal = settings_for(gw, tmp_path).journal_path
    _schema_version(journal, 999)  # a journal the latch cannot open (a newer tui-trader's schema)
    async with engine_process(gw, tmp_path) as proxy:
        os.kill(proxy.pid, signal.SIGKILL)
        with pytest.raises(EngineProcessDied):
            await proxy.start()
        death = proxy.fallback
        assert death is not None
        await asyncio.wait((death,), timeout=WAIT_S)
        assert "out-of-band kill failed: RuntimeError('journal schema 999 is newer" in proxy.fallback_outcome
        _schema_version(journal, 0)  # the journal can be opened again (a new one: its tables made as it opens)

        state = await _console_kill_after(proxy, death, journal)

        assert (state["engaged"], state["by"], state["reason"]) == (True, "console", "console worker crashed")


async def test_engine_death_latch_not_written_then_the_consoles_own_kill_asks_the_latch_again(
        gw: SimGateway, tmp_path: Path) -> None:
    # A journal the latch could not write is said ("kill switch NOT latched"), not raised: the death's kill ended as
    # if it had latched, and the console's own kill after it added nothing. The next engine did not start HALTED.
    journal = settings_for(gw, tmp_path).journal_path
    journal.mkdir(parents=True)  # a journal that cannot be opened as a file
    async with engine_process(gw, tmp_path) as proxy:
        os.kill(proxy.pid, signal.SIGKILL)
        with pytest.raises(EngineProcessDied):
            await proxy.start()
        death = proxy.fallback
        assert death is not None
        await asyncio.wait((death,), timeout=WAIT_S)
        assert "kill switch NOT latched" in proxy.fallback_outcome
        journal.rmdir()

        state = await _console_kill_after(proxy, death, journal)

        assert (state["engaged"], state["by"]) == (True, "console")


def _schema_version(journal: Path, version: int) -> None:
    """Set ``journal``'s schema version (its file made if missing)."""
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        conn.execute(f"PRAGMA user_version = {version}")


async def test_console_exits_by_another_path_than_quit_during_an_out_of_band_kill_then_close_finishes_it(
        gw: SimGateway, tmp_path: Path) -> None:
    # Ctrl+Q, a signal or an exception ends the console's loop without stop(): asyncio.run cancels
    # the kill under way, then run_console calls close(). The simulator keeps running here.
    settings = settings_for(gw, tmp_path)

    async def console() -> tuple[EngineProxy, str]:
        proxy = spawn_engine(settings, engine_on_test_sim, snapshot_hz=10)
        ref = await died_with_an_order_working(proxy, gw)
        proxy.kill("operator pressed Ctrl+K", by="operator")  # out of band: latch, then a global cancel
        return proxy, ref  # the loop ends at once, the kill under way

    def run_console() -> tuple[EngineProxy, str]:
        proxy, ref = asyncio.run(console())
        proxy.close()
        return proxy, ref

    proxy, ref = await asyncio.to_thread(run_console)

    assert not working_at_sim(gw, [ref])  # the global cancel, from the kill's own client id
    journal = await Journal.open(settings.journal_path)
    try:
        state = await journal.load_kill_state()
    finally:
        await journal.close()
    assert state is not None
    assert state["engaged"]
    assert "1 cancelled" in proxy.fallback_outcome


async def test_console_closes_when_engine_running_then_child_stops_engine_and_exits_leaving_orders(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        await started(proxy)
        ref = (await proxy.submit(resting_limit(proxy))).order_ref
        await eventually(lambda: working_at_sim(gw, [ref]), WAIT_S, "working at the simulator")

        await asyncio.to_thread(proxy.close)  # what run_console does last, and what a dying console causes

        assert proxy.process.returncode == 0
        assert working_at_sim(gw, [ref]) == [ref]  # a graceful stop leaves working orders at the broker
        log = (proxy.settings.state_dir / "logs" / "engine.log").read_text()
        assert "closed the command channel: stopping the engine" in log


async def test_child_stopped_when_it_stops_answering_then_sync_call_times_out_and_child_is_killed(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        await started(proxy)
        proxy.stall_s = 2.0  # the default is 15 s

        os.kill(proxy.pid, signal.SIGSTOP)  # alive, but its loop never runs again

        with pytest.raises(EngineNotAnswering, match="no answer within .*may still carry it out"):
            proxy.preview(resting_limit(proxy))
        await eventually(lambda: proxy.failure is not None, WAIT_S, "the proxy declares the engine process hung")
        assert proxy.failure is not None
        assert "stopped answering" in proxy.failure.message
        assert proxy.process.poll() == -signal.SIGKILL  # a hung engine is not left trading unsupervised
        assert proxy.snapshot().connection.state is ConnectionState.DISCONNECTED


async def test_child_stopped_when_operator_kills_then_declared_hung_and_the_kill_cancels_out_of_band(
        gw: SimGateway, tmp_path: Path) -> None:
    # The kill is written to a hung child's socket and never read: the console must not show
    # HALTED for ever while the orders stay working (nor wait the whole stall_s of 15 s).
    async with engine_process(gw, tmp_path) as proxy:
        await started(proxy)
        refs = await resting_at_sim(proxy, gw, 1, 2)
        os.kill(proxy.pid, signal.SIGSTOP)

        proxy.kill("operator pressed Ctrl+K", by="operator")

        await eventually(lambda: proxy.failure is not None, proxy.stall_s - 1, "hung: the kill was not taken")
        assert proxy.failure is not None
        assert "did not take the kill switch" in proxy.failure.message
        assert proxy.process.poll() == -signal.SIGKILL
        assert proxy.fallback is not None
        await asyncio.wait_for(proxy.fallback, WAIT_S)
        assert not working_at_sim(gw, refs)  # the global cancel, from the kill's own client id
        assert "2 cancelled" in proxy.snapshot().connection.last_error
        assert proxy.snapshot().trading_state is TradingState.HALTED


async def test_kill_sent_while_child_still_starting_when_it_says_hello_late_then_not_declared_hung(
        gw: SimGateway, tmp_path: Path) -> None:
    # Ctrl+K while the engine process is still starting (importing, building on a loaded machine): it
    # reads the kill only after its hello, which may take up to hello_timeout_s; the kill's timeout
    # and the stall watch run from there.
    async with engine_process(gw, tmp_path) as proxy:
        proxy.kill_timeout_s = proxy.stall_s = 1.0
        os.kill(proxy.pid, signal.SIGSTOP)  # not yet said hello: a slow start
        proxy.kill("operator pressed Ctrl+K", by="operator")
        starting = asyncio.ensure_future(proxy.start())
        await asyncio.sleep(2 * proxy.kill_timeout_s)  # what must NOT happen meanwhile: nothing to poll for

        assert proxy.failure is None
        proxy.kill_timeout_s, proxy.stall_s = EngineProxy.kill_timeout_s, EngineProxy.stall_s  # a loaded host's start
        os.kill(proxy.pid, signal.SIGCONT)
        await asyncio.wait_for(starting, WAIT_S)

        await eventually(lambda: {"AAPL", "MSFT"} <= set(proxy.snapshot().quotes), WAIT_S, "quotes through the proxy")
        denied = await proxy.submit(resting_limit(proxy))
        assert denied.status is S.REJECTED  # the child's engine took the kill
        assert proxy.failure is None


CONSOLE_SCRIPT = """
import asyncio, sys
sys.path[:0] = {path!r}
from engine_process.helpers import engine_on_test_sim, settings_for_port
from tui_trader.engine.process.proxy import spawn_engine

async def main():
    proxy = spawn_engine(settings_for_port({port}, {state!r}), engine_on_test_sim)
    await proxy.start()
    print(proxy.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_console_process_killed_when_engine_running_then_child_sees_eof_and_stops_gracefully(
        gw: SimGateway, tmp_path: Path) -> None:
    script = CONSOLE_SCRIPT.format(path=sys.path, port=gw.port, state=str(tmp_path))
    console = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    assert console.stdout is not None
    engine_pid = int(await asyncio.wait_for(console.stdout.readline(), WAIT_S))
    engine = psutil.Process(engine_pid)
    assert engine.is_running()

    console.kill()  # SIGKILL: no cleanup runs in the console
    await console.wait()

    await eventually(lambda: not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE, WAIT_S,
                     "the engine process exits after its console died")
    log = (tmp_path / "logs" / "engine.log").read_text()
    assert "closed the command channel: stopping the engine" in log


async def test_methods_added_to_the_handle_when_called_through_proxy_then_forwarded_unchanged(
        gw: SimGateway, tmp_path: Path) -> None:
    async with engine_process(gw, tmp_path) as proxy:
        await started(proxy)
        order = await proxy.submit(resting_limit(proxy))
        await eventually(lambda: working_at_sim(gw, [order.order_ref]), WAIT_S, "working at the simulator")

        trace = await proxy.order_trace(order.order_ref)
        results = await proxy.send_test_notification()

        assert trace is not None
        assert trace.order_ref == order.order_ref
        assert results == ()  # no channel configured
        assert await proxy.order_trace("no-such-order") is None


async def test_spawned_with_start_when_console_not_yet_running_then_engine_connects_and_keeps_start_events(
        gw: SimGateway, tmp_path: Path) -> None:
    # As ``tui-trader`` spawns it: the start is asked for at spawn (before the console imports
    # its UI), the console's subscription opened with it; the console's ``start`` then only waits.
    launched = launch()  # before the settings exist, as ``tui-trader`` does
    proxy = spawn_engine(settings_for(gw, tmp_path), engine_on_test_sim, snapshot_hz=10, start=True,
                         subscriptions=(("console", 1000, False),), launched=launched)
    try:
        await eventually(lambda: bool(gw.sessions), WAIT_S, "the engine connected before start() was called")
        sub = proxy.subscribe("console", maxsize=5)
        assert await proxy.send_test_notification() == ()  # an awaited call first begins reading the feed
        early = proxy._early_reply
        assert early is not None
        # Force the race: the start's answer is read off the feed before start() is called.
        await asyncio.wait_for(asyncio.shield(early), WAIT_S)

        await started(proxy)  # ... and that answer is what start() returns on

        assert proxy.snapshot().connection.state is ConnectionState.CONNECTED
        states = []
        while ConnectionState.CONNECTED not in states:
            event = await asyncio.wait_for(sub.get(), WAIT_S)
            if isinstance(event, ConnectionChanged):
                states.append(event.state)
        assert states[0] is ConnectionState.CONNECTING  # published before the console subscribed
        assert sub.maxsize == 1000  # the subscription opened at spawn, not a new one
        assert (tmp_path / "logs" / "engine.stderr.log").exists()  # the child's stderr, once it knew where
        # The logs name the account and its orders: the owner's only, as the journal beside them.
        assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "logs").iterdir()} == {
            "engine.log": 0o600, "engine.stderr.log": 0o600}
        assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700
    finally:
        proxy.close()


def test_launched_early_when_not_needed_then_child_exits_cleanly_on_end_of_stream() -> None:
    launched = launch()

    launched.abandon()

    assert launched.process.returncode == 0


def test_launched_early_when_child_fails_before_its_log_is_open_then_its_stderr_is_kept(tmp_path: Path) -> None:
    launched = launch()
    launched.commands.sendall(b"\x00\x00\x00\x05junk!")  # a frame that does not unpickle: the child dies

    assert launched.process.wait(WAIT_S) != 0
    log = tmp_path / "logs" / "engine.stderr.log"
    launched.keep_stderr(log)
    launched.abandon()

    assert "Traceback" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


async def _console_kill_after(proxy: EngineProxy, death: asyncio.Task[Any], journal: Path) -> dict[str, Any]:
    """The console's crash handling after the death's out-of-band kill ``death`` failed: its own kill asks the latch
    again (a new out-of-band kill, awaited); the kill state the journal then holds."""
    proxy.kill("console worker crashed", by="console", operator=False)
    assert proxy.fallback is not death
    assert proxy.fallback is not None
    await asyncio.wait_for(proxy.fallback, WAIT_S)
    opened = await Journal.open(journal)
    try:
        state = await opened.load_kill_state()
    finally:
        await opened.close()
    assert state is not None
    return state
