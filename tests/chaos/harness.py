"""The chaos harness: a simulator in this process, the engine in a child process, a seeded schedule of
faults, and the invariants checked after the run.

The simulator runs on a manual clock that the driver steps (``STEP_SIM_S`` of market time every
``STEP_WALL_S`` of wall time, so 5-second bars arrive several times a second and the strategies trade).
Faults fire at scheduled wall-clock offsets; those that last (stalls, refusals, pacing, delays, farm
flaps) are undone later. At the end every fault is cleared, the engine gets a bounded time to settle,
is stopped with SIGTERM and writes its summary; then ``invariants.check_invariants`` compares the
engine's journal and summary with the simulator's ledger. The faults themselves are in ``faults.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
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
        """SIGKILL the engine (once it has seen a requested kill) and start a new one on the same journal."""
        await self._trigger_consumed()
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
        """Inject one fault (see :data:`tests.chaos.faults.FAULTS`)."""
        from .faults import FAULTS

        self.log.append(f"t={self.wall:.2f}s {fault.kind} ({fault.arg})")
        await FAULTS[fault.kind](self, random.Random(fault.arg), fault.arg)

    async def reset_kill(self) -> None:
        """The operator's explicit reset, once the engine has seen the kill."""
        await self._trigger_consumed()
        # A child restarted a moment ago may not have installed its SIGUSR1 handler yet (the
        # signal would kill it): it has once it reports its first status.
        await eventually(lambda: self.engine.statuses, 60.0, "the engine child reports its first status")
        self.reset_mark = (self.engine.index, len(self.engine.statuses))
        self.engine.proc.send_signal(signal.SIGUSR1)

    def request_kill(self) -> None:
        """Engage the kill switch through the engine's trigger file."""
        self.kill_requested_at = self.wall
        (self.tmp / "KILL").write_text("chaos", encoding="utf-8")

    async def restart_sim(self, pause_s: float) -> None:
        """Stop the simulator, wait, start it again from its state file on the same port."""
        await self.sim.stop()
        await asyncio.sleep(pause_s)
        await self.start_sim()

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
            if last.get("connected") and last.get("in_flight") == 0 and not (self.tmp / "KILL").exists() \
                    and last.get("commissioned", 0) >= len(self.sim.executions()):
                return  # every execution at the simulator has reached the engine with its commission
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
