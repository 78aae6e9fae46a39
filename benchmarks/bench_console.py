"""Console benchmark: frame time, loop lag, Ctrl+K latency, refresh rate and tick-to-order.

Two modes; ``run(quick)`` (and the suite) uses the real one.

**Real** (default): the console headless at 200x60 (Textual's ``run_test``) around the engine in
its **child process**, as ``tui-trader`` runs it: an :class:`EngineProxy` in the console's
process, and in the child (``console_world.bench_engine``) the real ``Engine`` with an embedded
``SimGateway`` (manual clock, temp journal, approvals off), connected through ib_async as with
``--sim``. Before the console starts, the engine buys 100 positions (one share in each of 100
symbols) and rests 100 buy limits at half the bid. A feed in the child prints trades at 1,000
and 10,000 ticks/s across 50 of those symbols through ``gw.control.set_price`` (the simulator
encodes the ticks, ib_async decodes them, the engine stores them). Measured at each rate:

- frame: the render work of one refresh in the console's process, summed from one snapshot draw
  to the next: ``watch_snapshot`` (row models, line diffs, class toggles and their restyles),
  the screen's layout reflow and compositor refresh (``render_line`` of the dirty lines), and
  the encoding of the update into terminal bytes that a real terminal driver would write (the
  headless driver skips it, so the benchmark does it);
- loop lag: how late a 5 ms sleep wakes up in the console's loop;
- kill to wire: Ctrl+K pressed in the console → the cancels at the simulator in the child
  (``time.perf_counter`` is the system-wide monotonic clock, so stamps of both processes
  subtract), over repeated kill / reset / re-rest cycles. With ``kill_switch.scope = own`` the
  engine cancels order by order and ib_async sends at most 45 requests a second (IB paces at
  50), so the last of 100 cancels cannot leave before about two seconds whatever the console
  does. **``kill_to_wire_ms`` is Ctrl+K → the first ``cancelOrder`` at the simulator**: what the
  console, the pipe and the engine add. ``kill_to_last_cancel_ms`` is the last of the 100;
  ``kill_press_to_proxy_ms`` ends when the console calls ``EngineProxy.kill`` (the console's
  share), ``kill_press_to_engine_ms`` when the child's ``engine.kill`` runs
  (``kill_engine_to_first_cancel_ms``: from there to the first cancel, the engine's share); with
  ``scope = global`` (the same engine, its scope switched), ``kill_to_global_cancel_ms`` ends when the
  ``reqGlobalCancel`` frame reaches the simulator;
- refresh rate: snapshots drawn per second;
- tick to order: the simulator prints a trigger price on a symbol outside the feed → the
  simulator receives the engine's order (as ``bench_tick_to_order``), measured in the child with
  the console running, and ``no_ui.*`` with the same engine, feed and book before the console
  starts.

**Scripted** (``--scripted``): the console around ``ScriptedEngine`` (100 symbols, positions and
orders) in one process, with a synthetic feed rewriting its quotes; no wire, so no tick-to-order.
Its snapshots are handed out as a live engine's would be: heartbeat now, positions marked at the
last prices, a health sample every second (otherwise the console shows a STALLED session, dimmed
and static).
Frames are recorded from half a second after the first draw, as in the real mode.

Limitations: the simulator and its feed share the engine's process and loop (as ``--sim``
does), so the feed's own cost is in the tick-to-order figures (``no_ui`` shows that floor); the
two processes share the machine's two cores. The achieved tick rate is reported next to the
target (``ticks_per_s``).
Run: ``.venv/bin/python benchmarks/bench_console.py [--quick] [--scripted]``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))  # console_world, importable in the engine process

from console_world import bench_engine, until  # noqa: E402

from tui_trader.config import Settings  # noqa: E402
from tui_trader.domain.market import Quote  # noqa: E402
from tui_trader.engine.process.proxy import EngineProxy, spawn_engine  # noqa: E402
from tui_trader.engine.snapshots import EngineSnapshot  # noqa: E402
from tui_trader.ui.app import TraderApp, create_app  # noqa: E402
from tui_trader.ui.demo import normal_state  # noqa: E402
from tui_trader.ui.options import ConsoleOptions  # noqa: E402
from tui_trader.ui.scripted_engine import ScriptedEngine  # noqa: E402

RATES = (1_000, 10_000)
SIZE = (200, 60)
REFRESH_HZ = 10


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def quantiles(name: str, values: list[float]) -> dict[str, float]:
    """``name.p50`` and ``name.p99``."""
    return {f"{name}.p50": pct(values, 0.5), f"{name}.p99": pct(values, 0.99)}


class FrameMeter:
    """Sums the render work between two snapshot draws into one frame sample (ms).

    Wrapped calls may nest (a layout refresh calls the compositor refresh, which encodes the
    update): only the outermost call of a nest is timed.
    """

    def __init__(self) -> None:
        self.frames: list[float] = []
        self.cpu_frames: list[float] = []
        """The same frames in the console thread's CPU time: what is left of a frame when the
        cores are not shared (the difference is time the process waited for a core)."""
        self.recording = False
        self.parts: list[dict[str, float]] = []
        """Per recorded frame, the CPU ms of each timed part and ``gc`` (collections inside it):
        what the slowest frames were made of (logged by :meth:`worst`)."""
        self._part: dict[str, float] = {}
        self._depth = 0
        self._work = 0.0
        self._cpu = 0.0
        self._open = False
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def wrap(self, fn: Callable[..., Any], *, starts_frame: bool = False, name: str = "") -> Callable[..., Any]:
        """``fn`` timed into the current frame (``starts_frame``: it begins a new one)."""
        part = name or fn.__name__

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if starts_frame and self._depth == 0:
                self._close()
            self._depth += 1
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                spent = time.thread_time() - cpu
                self._part[part] = self._part.get(part, 0.0) + spent * 1000  # nested parts overlap
                if self._depth == 0:
                    self._work += time.perf_counter() - start
                    self._cpu += spent
                    self._open = True
        return wrapper

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """``gc.callbacks``: the CPU of collections that run inside a frame's timed work."""
        if self._depth == 0:
            return
        if phase == "start":
            self._gc_start = time.thread_time()
        else:
            key = f"gc{info['generation']}"
            self._part[key] = self._part.get(key, 0.0) + (time.thread_time() - self._gc_start) * 1000

    def _close(self) -> None:
        if self._open and self.recording:
            self.frames.append(self._work * 1000)
            self.cpu_frames.append(self._cpu * 1000)
            self.parts.append(self._part)
        self._work, self._cpu, self._open, self._part = 0.0, 0.0, False, {}

    def close(self) -> None:
        """Stop seeing collections (the process's ``gc.callbacks`` keeps no meter past its run)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def clear(self) -> None:
        """Forget the frames recorded so far."""
        self.frames.clear()
        self.cpu_frames.clear()
        self.parts.clear()

    def worst(self, count: int = 3) -> str:
        """The ``count`` frames with the most CPU, each with its parts (CPU ms), worst first."""
        order = sorted(range(len(self.cpu_frames)), key=self.cpu_frames.__getitem__, reverse=True)[:count]
        return "; ".join(f"#{i} {self.cpu_frames[i]:.1f} ms (" + ", ".join(
            f"{k} {v:.1f}" for k, v in self.parts[i].items() if v >= 0.1) + ")" for i in order)

    def instrument(self, app: TraderApp) -> None:
        """Time the main screen's draw, layout and compositor refresh, and the terminal encoding."""
        main = app.main
        draw = self.wrap(main.watch_snapshot, starts_frame=True, name="draw")
        main.watch_snapshot = lambda snapshot: draw(snapshot)  # type: ignore[method-assign]
        main._refresh_layout = self.wrap(main._refresh_layout, name="layout")  # type: ignore[method-assign]
        main._compositor_refresh = self.wrap(main._compositor_refresh, name="compositor")  # type: ignore[method-assign]
        display = app._display

        def encode_and_display(screen: Any, renderable: Any) -> None:
            # The headless driver writes nothing; a terminal driver would encode the update.
            if hasattr(renderable, "render_segments"):
                renderable.render_segments(app.console)
            display(screen, renderable)

        app._display = self.wrap(encode_and_display, name="encode")  # type: ignore[method-assign]


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """Record how late a 5 ms sleep wakes up."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(max((time.perf_counter() - start) * 1000 - 5.0, 0.0))


# -- real mode: the engine in its child process ------------------------------------------------


@dataclass
class World:
    """The console's side of the benchmark: the proxy of the engine process (see ``console_world``)."""

    proxy: EngineProxy
    kill_calls: list[float] = field(default_factory=list)
    """Ctrl+K pressed → ``engine.kill`` called in the child (ms): the console's and the pipe's share."""
    proxy_calls: list[float] = field(default_factory=list)
    """Ctrl+K pressed → the console calls ``EngineProxy.kill`` (ms): the console's share alone."""
    engine_shares: list[float] = field(default_factory=list)
    """``engine.kill`` called in the child → the first ``cancelOrder`` at the simulator (ms): the engine's share."""

    @property
    def engine(self) -> Any:
        """The proxy, typed loosely: the ``bench_*`` methods exist only on the child's engine."""
        return self.proxy


@asynccontextmanager
async def world(scope: str = "own") -> AsyncIterator[World]:
    """The engine process: its simulator with 100 symbols, 100 positions and 100 resting orders."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mode="sim", state_dir=Path(tmp), kill_switch={"scope": scope},
                            ui={"refresh_hz": REFRESH_HZ})
        proxy = spawn_engine(settings, bench_engine, snapshot_hz=REFRESH_HZ)
        try:
            await proxy.start()
            w = World(proxy)
            log(f"world ready ({scope} scope): {len(proxy.snapshot().account.positions)} positions, "
                f"{w.engine.bench_working()} working, engine pid {proxy.pid}")
            yield w
        finally:
            await proxy.stop()


@asynccontextmanager
async def feeding(w: World, rate: int) -> AsyncIterator[Callable[[], float]]:
    """Run the feed (in the engine process) while the block runs; yields nothing useful until it ends."""
    w.engine.bench_feed_start(rate)
    achieved = [math.nan]
    try:
        yield lambda: achieved[0]
    finally:
        achieved[0] = w.engine.bench_feed_stop()


async def tick_to_order(w: World, samples: int, seconds: float) -> list[float]:
    """Print → order at the simulator, measured inside the engine process (the console keeps running)."""
    out: list[float] = await w.engine.bench_tick_to_order(samples, seconds)
    return out


async def kill_cycle(w: World, app: TraderApp, pilot: Any) -> dict[str, float]:
    """Ctrl+K → the cancels at the simulator (ms); then reset and re-rest.

    Own scope: ``first`` and ``last`` of the expected ``cancelOrder`` frames; global scope:
    ``global`` (the ``reqGlobalCancel`` frame). NaNs when they did not all arrive within 10 s.
    """
    engine, proxy_kill, sent = w.engine, w.proxy.kill, []
    expected = engine.bench_working()
    engine.bench_clear_probe()

    def timed_kill(reason: str, by: str = "operator", *, operator: bool = True) -> None:  # the proxy's signature
        sent.append(time.perf_counter())
        proxy_kill(reason, by, operator=operator)

    w.proxy.kill = timed_kill  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        await pilot.press("ctrl+k")
    finally:
        del w.proxy.kill
    if sent:
        w.proxy_calls.append((sent[0] - start) * 1000)
    stamps = await engine.bench_wait_cancelled(expected, 10.0)
    cancels, global_cancels, calls = stamps["cancels"], stamps["global_cancels"], stamps["kill_calls"]
    out = {"first": math.nan, "last": math.nan, "global": math.nan}
    if global_cancels:
        out["global"] = (global_cancels[0] - start) * 1000
    if len(cancels) >= expected and cancels:
        out["first"], out["last"] = (cancels[0] - start) * 1000, (cancels[expected - 1] - start) * 1000
    if not global_cancels and len(cancels) < expected:
        log(f"kill cycle: {len(cancels)} of {expected} cancels at the simulator within 10 s")
    if calls:
        w.kill_calls.append((calls[0] - start) * 1000)
        if cancels:
            w.engine_shares.append((cancels[0] - calls[0]) * 1000)
    await until(lambda: app.main.snapshot is not None and app.main.snapshot.kill_engaged, "HALTED drawn")
    await asyncio.sleep(0.2)  # let the verification finish before the reset
    engine.reset_kill("benchmark re-arm", confirm_same_day=True)
    # Returns once ib_async's 45-requests-a-second window is empty again, so the next kill
    # starts with the budget an operator would normally have.
    await engine.bench_rest_orders()
    return out


async def measure_real(w: World, app: TraderApp, pilot: Any, rate: int, samples: int, seconds: float,
                       kills: int) -> dict[str, float]:
    """One rate with the console running: a steady phase, then kill cycles."""
    meter: FrameMeter = app.frame_meter  # type: ignore[attr-defined]
    lags: list[float] = []
    async with feeding(w, rate) as achieved:
        await asyncio.sleep(0.5)  # the feed and the panes reach steady state
        stop = asyncio.Event()
        prober = asyncio.create_task(lag_probe(lags, stop))
        meter.clear()
        meter.recording = True
        child = psutil.Process(w.proxy.pid)
        pulls0, t0, cpu0, child0 = app.bridge.pulls, time.perf_counter(), time.process_time(), child.cpu_times()
        t2o = await tick_to_order(w, samples, seconds)
        elapsed = time.perf_counter() - t0
        hz = (app.bridge.pulls - pulls0) / elapsed
        child1 = child.cpu_times()
        console_cpu = (time.process_time() - cpu0) / elapsed * 100
        engine_cpu = (child1.user + child1.system - child0.user - child0.system) / elapsed * 100
        meter.recording = False
        stop.set()
        await prober
        cycles, w.kill_calls, w.proxy_calls, w.engine_shares = [], [], [], []
        for _ in range(kills):
            cycles.append(await kill_cycle(w, app, pilot))
            log(f"kill cycle: first cancel {cycles[-1]['first']:.1f} ms, last {cycles[-1]['last']:.1f} ms, "
                f"global cancel {cycles[-1]['global']:.1f} ms")
    ticks = achieved()
    log(f"{rate} ticks/s with the console: {len(meter.frames)} frames, frame p99 {pct(meter.frames, 0.99):.1f} ms"
        f" (cpu {pct(meter.cpu_frames, 0.99):.1f}), cpu % console {console_cpu:.0f} engine {engine_cpu:.0f},"
        f" lag p99 {pct(lags, 0.99):.1f} ms, t2o p99 {pct(t2o, 0.99):.1f} ms, {ticks:.0f} ticks/s")
    log(f"{rate} ticks/s: costliest frames (CPU ms of draw, layout, compositor, encode, gcN): {meter.worst()}")
    firsts = [c["first"] for c in cycles if not math.isnan(c["first"])]
    return {**quantiles("frame_ms", meter.frames), **quantiles("frame_cpu_ms", meter.cpu_frames),
            **quantiles("loop_lag_ms", lags), **quantiles("kill_to_wire_ms", firsts),
            **quantiles("kill_to_first_cancel_ms", firsts),
            **quantiles("kill_to_last_cancel_ms", [c["last"] for c in cycles if not math.isnan(c["last"])]),
            **quantiles("kill_press_to_engine_ms", w.kill_calls),
            **quantiles("kill_press_to_proxy_ms", w.proxy_calls),
            **quantiles("kill_engine_to_first_cancel_ms", w.engine_shares),
            "kill_cycles_failed": float(sum(math.isnan(c["first"]) for c in cycles)),
            "refresh_hz": hz, **quantiles("tick_to_order_ms", t2o), "ticks_per_s": ticks,
            "console_cpu_pct": console_cpu, "engine_cpu_pct": engine_cpu,
            "frames": float(len(meter.frames))}


async def measure_global_kill(app: TraderApp, w: World, pilot: Any, rate: int, kills: int) -> dict[str, float]:
    """Ctrl+K → ``reqGlobalCancel`` at the simulator, with the feed at ``rate``."""
    cycles = []
    async with feeding(w, rate):
        await asyncio.sleep(0.5)
        for _ in range(kills):
            cycles.append(await kill_cycle(w, app, pilot))
            log(f"kill cycle (global scope): reqGlobalCancel {cycles[-1]['global']:.1f} ms")
    return quantiles("kill_to_global_cancel_ms", [c["global"] for c in cycles if not math.isnan(c["global"])])


def console_for(w: World) -> TraderApp:
    """The console around the (already started) engine process, instrumented."""
    w.proxy.start = _already_started  # type: ignore[method-assign]
    app = create_app(w.proxy)
    app.options = app.main.options = ConsoleOptions(refresh_hz=REFRESH_HZ)
    return app


async def run_real(quick: bool) -> dict[str, float]:
    """Own scope: every rate without the console (tick-to-order only), then with it; global scope: kills."""
    # Full: 3 repetitions of this in the runner, which must finish within 20 minutes in all.
    samples, seconds, kills = (25, 4.0, 5) if quick else (100, 10.0, 10)
    kills_at = {RATES[0]: 3 if quick else kills, RATES[-1]: kills}  # quick: the headline (10k) rate gets 5
    out: dict[str, float] = {}
    async with world("own") as w:
        for rate in RATES:
            async with feeding(w, rate):
                await asyncio.sleep(0.5)
                t2o = await tick_to_order(w, samples, seconds)
            out.update({f"console.{rate}tps.no_ui.{k}": v for k, v in quantiles("tick_to_order_ms", t2o).items()})
            log(f"{rate} ticks/s without the console: tick-to-order p99 {pct(t2o, 0.99):.2f} ms")
        app = console_for(w)
        async with app.run_test(size=SIZE, notifications=True) as pilot:  # fills toast, as in use
            app.frame_meter = FrameMeter()  # type: ignore[attr-defined]
            app.frame_meter.instrument(app)  # type: ignore[attr-defined]
            await until(lambda: app.main.snapshot is not None, "first snapshot drawn")
            for rate in RATES:
                figures = await measure_real(w, app, pilot, rate, samples, seconds, kills_at[rate])
                out.update({f"console.{rate}tps.{k}": v for k, v in figures.items()})
            w.engine.bench_set_scope("global")  # the same engine and book (a second one took ~15 s to build)
            for rate in RATES:
                figures = await measure_global_kill(app, w, pilot, rate, max(kills // 2, 3))
                out.update({f"console.{rate}tps.{k}": v for k, v in figures.items()})
            app.frame_meter.close()  # type: ignore[attr-defined]
            app.exit()
    return out


async def _already_started() -> None:
    """The console's engine worker: the benchmark started the engine itself."""


# -- scripted mode: no wire ------------------------------------------------------------------


async def scripted_feed(engine: ScriptedEngine, rate: int, stop: asyncio.Event) -> int:
    """Rewrite quotes at ``rate`` ticks/s in 1 ms batches; returns the ticks sent."""
    quotes = dict(engine.state.quotes)
    engine.state = replace(engine.state, quotes=quotes)
    symbols = list(quotes)
    sent, start = 0, time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        for _ in range(due - sent):
            sym = symbols[sent % len(symbols)]
            q = quotes[sym]
            last = q.last * (1.0001 if sent % 2 else 0.9999)
            quotes[sym] = Quote(sym, q.time.__class__.now(q.time.tzinfo), last - 0.01, last + 0.01, last,
                                close=q.close)
            sent += 1
        await asyncio.sleep(0.001)
    return sent


def live_snapshots(engine: ScriptedEngine) -> Callable[[], EngineSnapshot]:
    """``engine.snapshot`` as a live engine answers it: fresh heartbeat, marked positions, 1 Hz health."""
    def snapshot() -> EngineSnapshot:
        state, now = engine.state, datetime.now(UTC)
        quotes = dict(state.quotes)
        positions = {s: replace(p, market_price=quotes[s].last) if s in quotes else p
                     for s, p in state.account.positions.items()}
        health = replace(state.health, time=now.replace(microsecond=0))
        return replace(state, time=now, heartbeat_at=now, quotes=quotes, health=health,
                       account=replace(state.account, time=now, positions=positions))
    return snapshot


async def measure_scripted(rate: int, seconds: float, kills: int) -> dict[str, float]:
    """One run at ``rate`` ticks/s around the scripted engine."""
    engine = ScriptedEngine(normal_state(n_symbols=100, n_positions=100, n_orders=100))
    engine.snapshot = live_snapshots(engine)  # type: ignore[method-assign]
    app = create_app(engine)
    app.options = app.main.options = ConsoleOptions(refresh_hz=REFRESH_HZ)
    meter = FrameMeter()
    lags: list[float] = []
    kill_ms: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        meter.instrument(app)
        stop = asyncio.Event()
        feeder = asyncio.create_task(scripted_feed(engine, rate, stop))
        await until(lambda: app.main.snapshot is not None, "first snapshot drawn")
        await asyncio.sleep(0.5)  # as in the real mode: the first draw lays out the screen once
        meter.recording = True
        prober = asyncio.create_task(lag_probe(lags, stop))
        pulls0, t0 = app.bridge.pulls, time.perf_counter()
        await asyncio.sleep(seconds)
        hz = (app.bridge.pulls - pulls0) / (time.perf_counter() - t0)
        meter.recording = False
        for _ in range(kills):
            kill_ms.append(await time_scripted_kill(engine, pilot))
        stop.set()
        await asyncio.gather(feeder, prober)
    meter.close()
    return {**quantiles("frame_ms", meter.frames), **quantiles("frame_cpu_ms", meter.cpu_frames),
            **quantiles("loop_lag_ms", lags), **quantiles("kill_to_wire_ms", kill_ms), "refresh_hz": hz,
            "tick_to_order_ms.p99": math.nan}


async def time_scripted_kill(engine: ScriptedEngine, pilot: Any) -> float:
    """Press Ctrl+K and wait until the engine's ``kill`` runs; re-arm afterwards."""
    seen: list[float] = []
    original = engine.kill

    def kill(reason: str, by: str = "operator", *, operator: bool = True) -> None:  # the engine's signature
        seen.append(time.perf_counter())
        original(reason, by, operator=operator)

    engine.kill = kill  # type: ignore[method-assign]
    start = time.perf_counter()
    await pilot.press("ctrl+k")
    await until(lambda: seen, "kill() called", 2.0)
    engine.kill = original  # type: ignore[method-assign]
    engine.reset_kill("benchmark re-arm", confirm_same_day=True)
    await asyncio.sleep(0.05)
    return (seen[0] - start) * 1000


def run_scripted(quick: bool = False) -> dict[str, float]:
    """The scripted mode; keys ``console.scripted.*``."""
    seconds, kills = (2.0, 5) if quick else (8.0, 20)
    results = {}
    for rate in RATES:
        figures = asyncio.run(measure_scripted(rate, seconds, kills))
        results.update({f"console.scripted.{rate}tps.{k}": v for k, v in figures.items()})
    return results


def log(text: str) -> None:
    """Progress on stderr."""
    print(f"[bench_console {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(quick: bool = False) -> dict[str, float]:
    """The real mode; keys ``console.*`` without a rate are from the 10,000 ticks/s run."""
    logging.getLogger("ib_async.wrapper").setLevel(logging.CRITICAL)  # 202 "Order Canceled" per cancel
    results = asyncio.run(run_real(quick))
    headline = {k.removeprefix("console.10000tps."): v for k, v in results.items()
                if k.startswith("console.10000tps.")}
    results.update({f"console.{k}": v for k, v in headline.items()})
    return results


if __name__ == "__main__":
    body = run_scripted if "--scripted" in sys.argv else run
    out = body(quick="--quick" in sys.argv)
    print(json.dumps({k: round(v, 2) if not math.isnan(v) else None for k, v in out.items()}, indent=2))
