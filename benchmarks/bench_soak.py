"""Soak: a full simulated session (6.5 hours of market time) with 100 symbols and every built-in strategy.

The simulator runs on a manual clock with 5-second model steps (each step sends a quote per symbol and,
often, a trade; 5-second bars as usual), and the engine reads a clock moved in step with it, so the
session is compressed without the engine seeing time run differently from its market data. The four
built-in strategies trade 25 symbols each on 1-minute bars (100 symbols: 25 built-in, 75 synthetic
``SYN<n>``), approvals off, fixed-quantity sizing. A driver steps the market one step at a time and gives
the engine 2 ms of loop time per step, and more when it is behind: the next step waits (at most 0.1 s)
until the journal's backlog is at most 50 events. Without that pacing
the market outruns the journal (see README) and the soak would measure a backlog, not a session.

Profiles:

- ``engine`` (the required ``soak.rss_growth_mb`` / ``soak.rss_peak_mb``): the headless engine, with the
  simulator in its own process (``python -m tui_trader.sim --manual-clock … --control-port 0``, stepped
  through its control port), as in a deployment, where the engine never hosts the gateway. The
  simulator's own RSS is reported beside it as ``soak.sim.*``.
- ``inproc`` (``soak.inproc.*``): the same with the simulator inside the engine's process, as the embedded
  ``--sim`` mode and the tests run it; its order books, ledgers and bar history count in the figure.
- ``console`` (``soak.console.*``): the engine inside Textual's headless ``run_test`` app at 160x48,
  the simulator in its own process.

Sampled every 5 simulated minutes: RSS of this process (and of the simulator's when it runs apart), the
event-bus queue lengths, the journal backlog and the journal's size on disk (main file plus WAL).
Warm-up is the first 10 % of the session. Figures per profile (prefix as above):

- ``rss_growth_mb``: mean RSS of the last 5 samples minus the mean of the first 5 after warm-up;
- ``rss_peak_mb``: the largest RSS seen;
- ``max_queue``: the longest event-bus queue seen; ``journal_mb``: the journal at the end;
  ``orders`` and ``fills``: how much trading happened at the simulator; ``engine_orders_kept`` and
  ``engine_fills_kept``: what the engine still holds in memory at the end; ``completed_order_fetches``: how
  often a reconciliation asked for the day's completed orders (each answer is the whole day's, held at once);
  ``wall_s``: how long it took.

``--quick`` compresses further: 1 hour of market time. Goals: growth < 20 MB, peak < 300 MB.
Run: ``.venv/bin/python benchmarks/bench_soak.py [--quick] [--profile=engine,inproc,console] [--trace]``
(all three by default; ``--quick`` runs only engine, the required figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_trader.config.sections import SizingSettings, StrategySettings  # noqa: E402
from tui_trader.domain import Mode  # noqa: E402
from tui_trader.engine.config import EngineConfig  # noqa: E402
from tui_trader.engine.engine import Engine  # noqa: E402
from tui_trader.engine.factory import make_broker  # noqa: E402
from tui_trader.risk.limits import RiskLimits  # noqa: E402
from tui_trader.sim import ManualClock, SimGateway  # noqa: E402
from tui_trader.sim.instruments import builtin_symbols, synthetic_symbols  # noqa: E402

STEP_S = 5.0
SAMPLE_EVERY_S = 300.0
SESSION_S = 6.5 * 3600
QUICK_SESSION_S = 1.0 * 3600
START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)  # 09:30 New York, a Tuesday
STRATEGIES: tuple[tuple[str, dict[str, float | int | str | bool]], ...] = (
    ("ema_cross", {"fast": 5, "slow": 13}),
    ("macd", {}),
    ("vwap_reversion", {}),
    ("volume_breakout", {"lookback": 12, "volume_mult": 1.5}),
)


@dataclass
class Trace:
    """What the soak sampled over time."""

    t_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    max_queue: list[int] = field(default_factory=list)
    journal_backlog: list[int] = field(default_factory=list)
    journal_mb: list[float] = field(default_factory=list)
    sim_rss_mb: list[float] = field(default_factory=list)


def symbols() -> list[str]:
    """The 100 symbols: every built-in one, then synthetic ones."""
    builtin = builtin_symbols()
    return builtin + synthetic_symbols(100 - len(builtin))


def engine_config(journal: Path) -> EngineConfig:
    """Four strategies over 25 symbols each, approvals off, limits wide enough to keep trading."""
    syms = symbols()
    specs = tuple(StrategySettings(name=name, symbols=syms[i::4], bar_size_s=60, params=params)
                  for i, (name, params) in enumerate(STRATEGIES))
    limits = RiskLimits(max_order_quantity=1000, max_order_notional=1_000_000, max_open_positions=100,
                        max_gross_exposure=5.0, max_leverage=5.0, require_quote=True, max_daily_trades=100_000,
                        unknown_order_timeout_s=None, disconnect_halt_after_s=None, require_liquid_hours=False,
                        no_entry_before_close_min=None, no_entry_after_open_min=None)
    return EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=journal, strategies=specs,
                        limits=limits, warmup_bars=30, tick_interval_s=0.25, market_data_stale_s=3600,
                        sizing=SizingSettings(method="fixed_quantity"), reconnect_initial_s=0.05,
                        reconnect_max_s=0.5, ack_timeout_s=30.0)


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of this process (or of ``pid``) in MiB."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def journal_mb(path: Path) -> float:
    """Journal file plus its WAL, MiB."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()) / 2**20


def sample(trace: Trace, t: float, engine: Engine, sim_pid: int | None = None) -> None:
    """One sample of memory (this process, and the simulator's when it runs apart), queues and journal."""
    queues = [sub.backlog for sub in engine.bus._subscribers]  # noqa: SLF001 - read-only peek
    trace.t_s.append(t)
    trace.rss_mb.append(rss_mb())
    trace.max_queue.append(max(queues, default=0))
    trace.journal_backlog.append(engine.journal.backlog if engine.journal else 0)
    trace.journal_mb.append(journal_mb(engine.config.journal_path) if engine.config.journal_path else 0.0)
    if sim_pid is not None:
        trace.sim_rss_mb.append(rss_mb(sim_pid))


class InProcessMarket:
    """The simulator in this process: its RSS is part of the figure."""

    def __init__(self, gw: SimGateway) -> None:
        self.gw = gw
        self.pid = None

    async def step(self, seconds: float) -> None:
        """Run the market ``seconds`` further (the engine reads the same clock)."""
        self.gw.control.step(seconds)

    async def counts(self) -> tuple[int, int]:
        """Orders and executions at the simulator."""
        return len(self.gw.orders()), len(self.gw.executions())


class SimProcess:
    """``python -m tui_trader.sim`` in its own process on a manual clock, driven through its control port.

    A real deployment's engine does not host the gateway: in this mode the soak's RSS is the
    engine's alone, and the simulator's is sampled separately (``soak.sim.*``).
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.proc: asyncio.subprocess.Process | None = None
        self.host, self.port = "127.0.0.1", 0
        self.pid: int | None = None
        self._control: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __aenter__(self) -> SimProcess:
        args = ["-m", "tui_trader.sim", "--port", "0", "--control-port", "0", "--seed", "11", "--always-open",
                "--symbols", ",".join(symbols()), "--manual-clock", START.isoformat(),
                "--step-seconds", str(STEP_S), "--log-level", "WARNING"]
        self.proc = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE,
                                                         stderr=asyncio.subprocess.DEVNULL)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        listening = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode().split()
        control = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode().split()
        if not listening or listening[0] != "listening" or not control or control[0] != "control":
            raise RuntimeError(f"simulator did not start: {listening} {control}")
        self.host, port = listening[2].rsplit(":", 1)
        self.port = int(port)
        chost, cport = control[2].rsplit(":", 1)
        self._control = await asyncio.open_connection(chost, int(cport))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._control is not None:
            self._control[1].close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def command(self, line: str) -> str:
        """One control-port command and its reply (raises on ``error``)."""
        assert self._control is not None
        reader, writer = self._control
        writer.write((line + "\n").encode())
        await writer.drain()
        reply = (await asyncio.wait_for(reader.readline(), 30)).decode().strip()
        if not reply.startswith("ok"):
            raise RuntimeError(f"simulator control {line!r}: {reply}")
        return reply

    async def step(self, seconds: float) -> None:
        """Run the simulator ``seconds`` further, then move the engine's clock the same way."""
        await self.command(f"step {seconds:g}")
        self.clock.advance(seconds)

    async def counts(self) -> tuple[int, int]:
        """Orders and executions at the simulator (its ``status`` reply)."""
        reply = await self.command("status")
        orders = re.search(r"orders=(\d+)", reply)
        execs = re.search(r"executions=(\d+)", reply)
        return int(orders.group(1)) if orders else -1, int(execs.group(1)) if execs else -1


Market = InProcessMarket | SimProcess


@contextlib.asynccontextmanager
async def soak_world(tmp: Path, separate_sim: bool = True) -> AsyncIterator[tuple[Market, Engine]]:
    """The simulator (100 symbols, in this process or its own) and an engine on its clock (not started)."""
    clock = ManualClock(START)
    if separate_sim:
        async with SimProcess(clock) as sim:
            broker = make_broker(sim.host, sim.port, 31, timeout=10.0)
            yield sim, Engine(engine_config(tmp / "journal.sqlite"), broker, clock=clock.now)
        return
    async with SimGateway(port=0, clock=clock, seed=11, symbols=symbols(), always_open=True,
                          step_seconds=STEP_S) as gw:
        broker = make_broker(gw.host, gw.port, 31, timeout=10.0, gateway_in_process=True)
        yield InProcessMarket(gw), Engine(engine_config(tmp / "journal.sqlite"), broker, clock=clock.now)


async def drive(market: Market, engine: Engine, session_s: float, trace: Trace) -> None:
    """Step the market through ``session_s`` seconds, sampling as it goes."""
    t, next_sample = 0.0, 0.0
    while t < session_s:
        await market.step(STEP_S)
        t += STEP_S
        await asyncio.sleep(0.002)
        for _ in range(PACE_POLLS):  # bounded wait for the engine to catch up
            if caught_up(engine):
                break
            await asyncio.sleep(0.002)
        if t >= next_sample:
            sample(trace, t, engine, market.pid)
            next_sample += SAMPLE_EVERY_S


PACE_POLLS = 50
"""At most 0.1 s of extra loop time per market step for the engine to catch up."""


def caught_up(engine: Engine) -> bool:
    """The journal is nearly drained (orders wait for it before they are sent)."""
    return engine.journal is None or engine.journal.backlog <= 50


async def wait_ready(engine: Engine, count: int) -> None:
    """Bounded wait until the engine has quotes for ``count`` symbols."""
    deadline = time.monotonic() + 60.0
    while len(engine.market.quotes) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(engine.market.quotes)} of {count} symbols quoted after 60s")
        await asyncio.sleep(0.02)


async def soak_engine(session_s: float, separate_sim: bool = True) -> tuple[Trace, dict[str, float]]:
    """The headless profile (the simulator in its own process unless ``separate_sim`` is False)."""
    trace = Trace()
    with tempfile.TemporaryDirectory() as tmp:
        async with soak_world(Path(tmp), separate_sim) as (market, engine):
            await engine.start()
            try:
                await market.step(STEP_S)
                await wait_ready(engine, 100)
                await drive(market, engine, session_s, trace)
                extra = await outcome(market, engine)
            finally:
                await engine.stop()
    return trace, extra


async def soak_inproc(session_s: float) -> tuple[Trace, dict[str, float]]:
    """The headless profile with the simulator in the engine's process (as ``--sim`` embeds it)."""
    return await soak_engine(session_s, separate_sim=False)


async def soak_console(session_s: float) -> tuple[Trace, dict[str, float]]:
    """The console profile: the same run inside the Textual app (headless, 160x48), simulator apart."""
    from tui_trader.ui.app import create_app

    trace = Trace()
    with tempfile.TemporaryDirectory() as tmp:
        async with soak_world(Path(tmp)) as (market, engine):
            app = create_app(engine)
            async with app.run_test(size=(160, 48)):
                await market.step(STEP_S)
                await wait_ready(engine, 100)
                await drive(market, engine, session_s, trace)
                extra = await outcome(market, engine)
                await engine.stop()
    return trace, extra


async def outcome(market: Market, engine: Engine) -> dict[str, float]:
    """How much trading happened and whether the kill switch stopped it."""
    orders, fills = await market.counts()
    return {"orders": float(orders), "fills": float(fills),
            "kill_engaged": float(engine.risk.kill_state.engaged),
            "alerts": float(sum(engine.alert_counts.values())),
            "engine_orders_kept": float(len(engine.orders.orders)),
            "engine_fills_kept": float(len(engine.orders.fills)),
            "heap_trims": float(engine.heap.trims), "heap_trim_ms": engine.heap.last_ms,
            # each is the whole day's completed orders at once (RSS stepped 5-20 MB per fetch before 0bab173)
            "completed_order_fetches": float(getattr(engine.broker, "completed_requests", math.nan))}


def growth_and_peak(t_s: list[float], rss: list[float], session_s: float) -> tuple[float, float]:
    """RSS growth after warm-up (mean of the last 5 samples minus the first 5 after 10 %) and peak."""
    after = [r for t, r in zip(t_s, rss, strict=True) if t >= 0.1 * session_s]
    head, tail = after[:5], after[-5:]
    growth = statistics.fmean(tail) - statistics.fmean(head) if head and tail else float("nan")
    return growth, max(rss, default=float("nan"))


def figures(trace: Trace, session_s: float) -> dict[str, float]:
    """Growth after warm-up, peak, largest queue and journal size (and the simulator's RSS when apart)."""
    growth, peak = growth_and_peak(trace.t_s, trace.rss_mb, session_s)
    out = {"rss_growth_mb": growth, "rss_peak_mb": peak,
           "max_queue": float(max(trace.max_queue, default=0)),
           "max_journal_backlog": float(max(trace.journal_backlog, default=0)),
           "journal_mb": trace.journal_mb[-1] if trace.journal_mb else float("nan")}
    if trace.sim_rss_mb:
        sim_growth, sim_peak = growth_and_peak(trace.t_s, trace.sim_rss_mb, session_s)
        out |= {"sim.rss_growth_mb": sim_growth, "sim.rss_peak_mb": sim_peak}
    return out


PROFILES = {"engine": (soak_engine, "soak."), "inproc": (soak_inproc, "soak.inproc."),
            "console": (soak_console, "soak.console.")}
"""Profile → (body, key prefix): the headless engine with the simulator in its own process (the
required ``soak.rss_*`` figures), the same with the simulator in the engine's process, and the console."""


FULL_PROFILES = ("engine", "console")
"""What the runner's full mode soaks: the issue's two (``inproc`` runs on request: ``--profile=inproc``;
it took another two minutes of the full run's twenty)."""

QUICK_PROFILES = ("engine",)
"""``--quick`` runs only ``engine`` (the required figures): the runner's quick mode has three minutes for
everything, and each profile takes about 35 s of it."""


def run(quick: bool = False, profiles: tuple[str, ...] | None = None,
        traces: dict[str, Trace] | None = None) -> dict[str, float]:
    """Keys ``soak.*`` (headless engine; ``soak.sim.*`` its simulator), ``soak.inproc.*`` (on request)
    and ``soak.console.*``; see the module docstring."""
    session_s = QUICK_SESSION_S if quick else SESSION_S
    if profiles is None:
        profiles = QUICK_PROFILES if quick else FULL_PROFILES
    out: dict[str, float] = {}
    for profile in profiles:
        start = time.perf_counter()
        body, prefix = PROFILES[profile]
        trace, extra = asyncio.run(body(session_s))
        values: dict[str, Any] = {**figures(trace, session_s), **extra, "wall_s": time.perf_counter() - start,
                                  "market_hours": session_s / 3600}
        out.update({prefix + k: float(v) for k, v in values.items()})
        if traces is not None:
            traces[profile] = trace
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = next((a.split("=", 1)[1] for a in args if a.startswith("--profile=")), "all")
    wanted = None if chosen == "all" else tuple(chosen.split(","))
    kept: dict[str, Trace] = {}
    print(json.dumps(run(quick="--quick" in args, profiles=wanted, traces=kept), indent=2))
    if "--trace" in args:
        for name, tr in kept.items():
            print(f"# {name}: t_s rss_mb max_queue journal_backlog journal_mb [sim_rss_mb]")
            sim = tr.sim_rss_mb or [float("nan")] * len(tr.t_s)
            for row in zip(tr.t_s, tr.rss_mb, tr.max_queue, tr.journal_backlog, tr.journal_mb, sim, strict=True):
                print(" ".join(f"{v:.1f}" for v in row))
