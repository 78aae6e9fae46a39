"""The chaos harness: a simulator in this process, the engine in a child process, a seeded schedule of
faults, and the invariants checked after the run.

The simulator runs on a manual clock that the driver steps (``STEP_SIM_S`` of market time every
``STEP_WALL_S`` of wall time, so 5-second bars arrive several times a second and the strategies trade).
Faults fire at scheduled wall-clock offsets; those that last (stalls, refusals, pacing, delays, farm
flaps) are undone later. At the end every fault is cleared, the engine gets a bounded time to settle,
is stopped with SIGTERM and writes its summary; then :func:`check_invariants` compares the engine's
journal and summary with the simulator's ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trader.sim import ManualClock, SimGateway

ROOT = Path(__file__).resolve().parents[2]
STEP_SIM_S = 1.0
STEP_WALL_S = 0.05
SETTLE_S = 20.0
FINAL = {"FILLED", "CANCELLED", "REJECTED", "EXPIRED"}
SIM_WORKING = {"PreSubmitted", "Submitted", "PendingSubmit"}

FAULT_KINDS = ("disconnect", "refuse", "sim_restart", "engine_sigkill", "farm_flap", "pacing", "reject",
               "reorder", "delay", "stall", "malformed", "drop_status", "notify_hang")
"""Every fault the schedule can draw."""


class Webhook:
    """A notification endpoint on loopback: answers 200 at once, or (while hanging) reads and never answers."""

    def __init__(self) -> None:
        self.hanging = False
        self.received = 0
        self.server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        """Listen on an ephemeral loopback port; the URL to post to."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await reader.readuntil(b"\r\n\r\n")
            self.received += 1
            if self.hanging:
                self._held.append(writer)  # never answered, never closed (until stop)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    @property
    def hung(self) -> int:
        """Deliveries left without an answer."""
        return len(self._held)

    async def stop(self) -> None:
        """Close held connections and the server."""
        for writer in self._held:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def eventually(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:  # noqa: ASYNC109
    """Wait until ``predicate()`` is truthy, yielding to the loop; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.005)


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: at ``at`` seconds of wall time into the run."""

    at: float
    kind: str
    arg: int = 0


def make_schedule(seed: int, duration: float, kinds: tuple[str, ...], count: int,
                  kill_switch: bool | None = None, reset: bool | None = None) -> list[Fault]:
    """A seeded schedule: every kind in ``kinds`` at least once (when ``count`` allows), then random
    draws, spread over 10 %..80 % of the run; optionally an operator kill switch near the end, an engine
    crash after it, and an explicit reset after that."""
    rng = random.Random(seed)
    chosen = list(kinds)
    rng.shuffle(chosen)
    chosen = chosen[:count] + [rng.choice(kinds) for _ in range(max(0, count - len(chosen)))]
    times = sorted(rng.uniform(0.1 * duration, 0.8 * duration) for _ in chosen)
    faults = [Fault(round(t, 2), k, rng.randrange(1 << 16)) for t, k in zip(times, chosen, strict=True)]
    if kill_switch is None:
        kill_switch = rng.random() < 0.5
    if kill_switch:
        # Then a crash and restart: only the journal's latch can keep the kill switch engaged.
        faults.append(Fault(round(rng.uniform(0.8, 0.85) * duration, 2), "kill_switch"))
        faults.append(Fault(round(rng.uniform(0.86, 0.9) * duration, 2), "engine_sigkill", rng.randrange(1 << 16)))
        if reset if reset is not None else rng.random() < 0.5:
            faults.append(Fault(round(rng.uniform(0.93, 0.96) * duration, 2), "reset"))
    return faults


def _err_file(path: Path) -> Any:
    """The child's stderr file (the child keeps its own descriptor once started)."""
    return path.open("wb")


@dataclass
class Child:
    """One engine process."""

    proc: asyncio.subprocess.Process
    index: int
    statuses: list[dict[str, Any]] = field(default_factory=list)
    killed: bool = False
    reader: asyncio.Task[None] | None = None


@dataclass
class World:
    """Simulator, engine child processes, and what happened."""

    tmp: Path
    seed: int
    approve: str = "none"
    clock: ManualClock = field(default_factory=ManualClock)
    gw: SimGateway | None = None
    port: int = 0
    children: list[Child] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    kill_requested_at: float | None = None
    reset_mark: tuple[int, int] | None = None
    """(engine index, status lines seen) when the explicit reset was sent: later lines may show no kill."""
    undo: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    wall: float = 0.0
    webhook: Webhook = field(default_factory=Webhook)
    webhook_url: str = ""

    # -- simulator ---------------------------------------------------------------------------

    async def start_webhook(self) -> None:
        """The notification endpoint the engines post to."""
        self.webhook_url = await self.webhook.start()

    async def start_sim(self) -> None:
        """Start (or restart on the same port, from the state file) the simulator."""
        gw = SimGateway(port=self.port, clock=self.clock, seed=self.seed, state_path=self.tmp / "sim-state.json",
                        always_open=True)
        await gw.start()
        self.gw, self.port = gw, gw.port

    @property
    def sim(self) -> SimGateway:
        """The running simulator."""
        assert self.gw is not None
        return self.gw

    # -- engine children -----------------------------------------------------------------------

    def config_path(self) -> Path:
        """Write the child's config (same journal and files for every restart)."""
        cfg = {"port": self.port, "client_id": 21, "journal": str(self.tmp / "journal.sqlite"),
               "trigger_file": str(self.tmp / "KILL"), "summary": str(self.tmp / "summary.json"),
               "log": str(self.tmp / "engine.log"), "approve": self.approve, "webhook": self.webhook_url}
        path = self.tmp / "engine.json"
        path.write_text(json.dumps(cfg), encoding="utf-8")
        return path

    async def spawn(self) -> Child:
        """Start an engine child and a task reading its status lines."""
        with _err_file(self.tmp / f"engine-{len(self.children)}.err") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.chaos.engine_child", str(self.config_path()), cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
        child = Child(proc, len(self.children))
        child.reader = asyncio.create_task(self._read(child))
        self.children.append(child)
        return child

    @staticmethod
    async def _read(child: Child) -> None:
        assert child.proc.stdout is not None
        while line := await child.proc.stdout.readline():
            with contextlib.suppress(json.JSONDecodeError):
                child.statuses.append(json.loads(line))

    @property
    def engine(self) -> Child:
        """The current engine child."""
        return self.children[-1]

    async def sigkill_engine(self) -> None:
        """SIGKILL the engine and start a new one on the same journal."""
        child = self.engine
        child.killed = True
        os.kill(child.proc.pid, signal.SIGKILL)
        await child.proc.wait()
        await self.spawn()

    # -- driving -------------------------------------------------------------------------------

    async def step_for(self, seconds: float, faults: list[Fault] | None = None) -> None:
        """Step the market for ``seconds`` of wall time, firing due faults and undoing them."""
        pending = list(faults or [])
        end = self.wall + seconds
        while self.wall < end:
            while pending and pending[0].at <= self.wall:
                await self.fire(pending.pop(0))
            for due in [u for u in self.undo if u[0] <= self.wall]:
                self.undo.remove(due)
                due[1]()
            if self.gw is not None:
                self.sim.control.step(STEP_SIM_S)
            await asyncio.sleep(STEP_WALL_S)
            self.wall += STEP_WALL_S
            self._check_kill_observed()

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        """Undo a lasting fault after ``seconds`` of wall time."""
        self.undo.append((self.wall + seconds, action))

    def _check_kill_observed(self) -> None:
        # The trigger file is removed once the engine reports the kill: from then on only the
        # journal's latch can keep the kill switch engaged across restarts.
        trigger = self.tmp / "KILL"
        if trigger.exists() and self.engine.statuses and self.engine.statuses[-1].get("kill"):
            trigger.unlink()

    async def fire(self, fault: Fault) -> None:
        """Inject one fault."""
        self.log.append(f"t={self.wall:.2f}s {fault.kind} ({fault.arg})")
        control = self.sim.control
        rng = random.Random(fault.arg)
        if fault.kind == "disconnect":
            control.drop_sessions()
        elif fault.kind == "refuse":
            control.refuse_connections(rng.uniform(5, 40))  # simulated seconds
            control.drop_sessions()
        elif fault.kind == "sim_restart":
            await self.sim.stop()
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            await self.start_sim()
        elif fault.kind == "engine_sigkill":
            await self._trigger_consumed()
            await self.sigkill_engine()
        elif fault.kind == "farm_flap":
            broken, ok = rng.choice(((2103, 2104), (2105, 2106), (2157, 2158)))
            control.send_error(broken)
            self.later(rng.uniform(0.2, 2.0), lambda: self.sim.control.send_error(ok))
        elif fault.kind == "pacing":
            control.set_pacing(1, 30.0)
            self.later(rng.uniform(1.0, 3.0), lambda: self.sim.control.set_pacing(None))
        elif fault.kind == "reject":
            control.reject_next(201 if rng.random() < 0.5 else 202)
        elif fault.kind == "reorder":
            kinds = ["execution", "order_status", "commission"]
            rng.shuffle(kinds)
            control.fill_sequence(*kinds)
            self.later(rng.uniform(1.0, 4.0), lambda: self.sim.control.fill_sequence(
                "execution", "order_status", "commission"))
        elif fault.kind == "delay":
            kind = rng.choice(("order_status", "execution", "commission", "open_order"))
            control.delay_messages(kind, rng.uniform(1.0, 5.0))
            self.later(rng.uniform(1.0, 3.0), lambda: self.sim.control.delay_messages(kind, 0))
        elif fault.kind == "drop_status":
            control.drop_messages("order_status", rng.randint(1, 3))
        elif fault.kind == "stall":
            control.stall_market_data(True)
            self.later(rng.uniform(1.0, 5.0), lambda: self.sim.control.stall_market_data(False))
        elif fault.kind == "malformed":
            control.send_malformed(rng.choice(("fields", "unknown", "binary", "stream")), seed=fault.arg)
        elif fault.kind == "reset":
            await self._trigger_consumed()
            self.reset_mark = (self.engine.index, len(self.engine.statuses))
            self.engine.proc.send_signal(signal.SIGUSR1)
        elif fault.kind == "notify_hang":
            self.webhook.hanging = True
            self.later(rng.uniform(3.0, 10.0), lambda: setattr(self.webhook, "hanging", False))
        elif fault.kind == "kill_switch":
            self.kill_requested_at = self.wall
            (self.tmp / "KILL").write_text("chaos", encoding="utf-8")
        else:  # pragma: no cover - the schedule only draws known kinds
            raise ValueError(fault.kind)

    async def _trigger_consumed(self) -> None:
        """Bounded wait until a requested kill was seen by the engine (and the trigger file removed)."""
        for _ in range(200):
            self._check_kill_observed()
            if not (self.tmp / "KILL").exists():
                return
            await asyncio.sleep(0.05)
        self.log.append("the engine did not report the requested kill within 10 s")

    async def settle_and_stop(self) -> dict[str, Any]:
        """Clear faults, let the engine catch up, stop the market, SIGTERM the engine; its summary."""
        for _, action in self.undo:
            action()
        self.undo.clear()
        self.sim.control.clear_faults()
        await self.step_for(2.0)
        await self._wait_quiet()
        child = self.engine
        child.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(child.proc.wait(), 30)
        if child.reader is not None:
            await child.reader
        path = self.tmp / "summary.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    async def _wait_quiet(self) -> None:
        """Bounded wait (market frozen) for the engine to be connected with nothing in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_S
        while loop.time() < deadline:
            last = self.engine.statuses[-1] if self.engine.statuses else {}
            if last.get("connected") and last.get("in_flight") == 0 and not (self.tmp / "KILL").exists():
                await asyncio.sleep(1.0)  # let position and commission messages land
                return
            await asyncio.sleep(0.05)
        self.log.append("engine did not settle within the bound (connected, nothing in flight)")

    async def close(self) -> None:
        """Stop every child still running and the simulator."""
        for child in self.children:
            if child.proc.returncode is None:
                child.proc.kill()
                await child.proc.wait()
            if child.reader is not None:
                child.reader.cancel()
                await asyncio.gather(child.reader, return_exceptions=True)
        if self.gw is not None:
            await self.gw.stop()
        await self.webhook.stop()


# -- invariants -------------------------------------------------------------------------------


def journal_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the engine's journal (read after the engine stopped)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def check_invariants(world: World, summary: dict[str, Any]) -> list[str]:
    """Every invariant of the chaos suite; the list of violations (empty when all hold)."""
    journal = world.tmp / "journal.sqlite"
    problems: list[str] = []
    if not summary:
        return ["the engine wrote no summary on SIGTERM"]
    problems += _no_duplicates(world)
    problems += _nothing_sent_while_halted(world, journal)
    problems += _approvals(world, journal)
    problems += _executions(world, journal)
    problems += _account(world, summary)
    problems += _kill_latched(world, summary)
    problems += _orders_final(world, summary, journal)
    problems += _no_silent_crash(world)
    return problems


def _no_duplicates(world: World) -> list[str]:
    dups = world.sim.duplicate_order_refs()
    return [f"orderRefs sent more than once: {dups}"] if dups else []


def _sent_refs(world: World) -> list[str]:
    return [r for r in world.sim.order_refs() if r]


def _halted_intervals(journal: Path) -> list[tuple[str, str]]:
    """(from, to) times during which the journal says the engine was HALTED (to is open-ended: "~")."""
    rows = journal_rows(journal, "SELECT time, payload FROM events WHERE kind = 'TradingStateChanged' ORDER BY id")
    intervals: list[tuple[str, str]] = []
    start: str | None = None
    for time, payload in rows:
        state = json.loads(payload).get("state")
        if state == "HALTED" and start is None:
            start = str(time)
        elif state != "HALTED" and start is not None:
            intervals.append((start, str(time)))
            start = None
    if start is not None:
        intervals.append((start, "~"))  # "~" sorts after every ISO time
    return intervals


def _nothing_sent_while_halted(world: World, journal: Path) -> list[str]:
    intervals = _halted_intervals(journal)
    if not intervals:
        return []
    sending = dict(journal_rows(journal, "SELECT order_ref, MIN(time) FROM order_states WHERE status = 'SENDING' "
                                         "GROUP BY order_ref"))
    late = [r for r in _sent_refs(world) if sending.get(r) is not None
            and any(lo < sending[r] < hi for lo, hi in intervals)]
    return [f"orders sent while the engine was HALTED {intervals}: {late}"] if late else []


def _approvals(world: World, journal: Path) -> list[str]:
    refs = _sent_refs(world)
    unknown = [r for r in refs if not journal_rows(journal, "SELECT 1 FROM orders WHERE order_ref = ?", (r,))]
    problems = [f"orders at the simulator that the journal never saw: {unknown}"] if unknown else []
    if world.approve == "none":
        return problems
    approved = {json.loads(p)["order_ref"] for (p,) in journal_rows(
        journal, "SELECT payload FROM events WHERE kind = 'ApprovalResolved'") if json.loads(p).get("approved")}
    parents = dict(journal_rows(journal, "SELECT order_ref, parent_ref FROM orders"))
    unapproved = [r for r in refs if r not in approved and parents.get(r) not in approved]
    if unapproved:
        problems.append(f"orders sent without the operator's approval: {unapproved}")
    return problems


def _executions(world: World, journal: Path) -> list[str]:
    sim_execs = {e.exec_id: e for e in world.sim.executions()}
    fills = {row[0]: row for row in journal_rows(journal, "SELECT exec_id, commission, quantity FROM fills")}
    events: dict[str, int] = {}
    for (payload,) in journal_rows(journal, "SELECT payload FROM events WHERE kind = 'OrderFilled'"):
        exec_id = json.loads(payload)["fill"]["exec_id"]
        events[exec_id] = events.get(exec_id, 0) + 1
    problems = []
    missing = sorted(set(sim_execs) - set(fills))
    extra = sorted(set(fills) - set(sim_execs))
    twice = sorted(e for e, n in events.items() if n != 1)
    no_commission = sorted(e for e, row in fills.items() if row[1] is None)
    wrong_commission = sorted(e for e, row in fills.items()
                              if e in sim_execs and row[1] is not None and abs(row[1] - sim_execs[e].commission) > 1e-6)
    for label, items in (("executions missing from the journal", missing),
                         ("journaled fills the simulator never executed", extra),
                         ("executions journaled more (or less) than once", twice),
                         ("fills without a commission", no_commission),
                         ("fills whose commission differs from the broker's", wrong_commission)):
        if items:
            problems.append(f"{label}: {items}")
    return problems


def _account(world: World, summary: dict[str, Any]) -> list[str]:
    problems = []
    ours = {s: float(q) for s, q in summary.get("positions", {}).items() if q}
    theirs = {s: float(q) for s, q in world.sim.positions().items() if q}
    if ours != theirs:
        problems.append(f"engine positions {ours} != simulator positions {theirs}")
    cash = float(summary.get("cash", float("nan")))
    if not abs(cash - world.sim.cash) <= 0.01:
        problems.append(f"engine cash {cash:.4f} != simulator cash {world.sim.cash:.4f}")
    return problems


def _kill_latched(world: World, summary: dict[str, Any]) -> list[str]:
    if world.kill_requested_at is None:
        return []
    seen = False
    for child in world.children:
        for i, status in enumerate(child.statuses):
            if world.reset_mark is not None and (child.index, i) >= world.reset_mark:
                break
            if status.get("kill"):
                seen = True
            elif seen:
                return [f"kill switch released without a reset (engine #{child.index}, status line {i})"]
    problems = [] if seen else ["the kill switch was requested but never engaged"]
    if world.reset_mark is None and not summary.get("kill_engaged"):
        problems.append("the kill switch was not engaged at the end of the run")
    if world.reset_mark is not None and summary.get("kill_engaged"):
        problems.append("the explicit reset did not release the kill switch")
    return problems


def _orders_final(world: World, summary: dict[str, Any], journal: Path) -> list[str]:
    working = {o.order_ref for o in world.sim.orders() if o.status in SIM_WORKING}
    alerts = " ".join(t for (t,) in journal_rows(journal, "SELECT text FROM alerts WHERE kind = 'order_unknown'"))
    problems = []
    for ref, status in summary.get("order_status", {}).items():
        if status in FINAL or (status in {"SUBMITTED", "PARTIALLY_FILLED"} and ref in working):
            continue
        if status == "UNKNOWN" and ref in alerts:
            continue
        problems.append(f"order {ref} left {status} (working at the simulator: {ref in working})")
    return problems


def _no_silent_crash(world: World) -> list[str]:
    problems = []
    for child in world.children:
        code = child.proc.returncode
        if not child.killed and code != 0:
            problems.append(f"engine #{child.index} exited with code {code} without being asked to")
        err = (world.tmp / f"engine-{child.index}.err").read_text(encoding="utf-8", errors="replace")
        if "Traceback" in err:
            problems.append(f"engine #{child.index} wrote a traceback: {err[-800:]}")
    log_path = world.tmp / "engine.log"
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    for marker in ("exception was never retrieved", "Unhandled exception", "Exception in callback"):
        if marker in text:
            problems.append(f"engine log shows an unhandled exception ({marker!r})")
    return problems
