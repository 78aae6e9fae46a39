"""What the slow tick-to-order samples of ``bench_console`` wait behind, in the engine's process (a diagnostic).

Same world as :mod:`benchmarks.bench_console` (the engine in its child process with the embedded
simulator, 100 positions, 100 resting orders, the 10,000 ticks/s feed), optionally with the
console running (``--console``). In the child, every event-loop step (``asyncio.events.Handle._run``)
is stamped: wall start/end and the thread's CPU time, named by its callback (a task's step by its
coroutine). Each tick-to-order sample keeps the steps that ran between the trigger's write and
the order's arrival at the simulator, and the garbage collections among them.

Prints: the latency quantiles, then for the slowest samples the steps by name (count, wall and
CPU ms), and over all samples the cost per step name (the loop's mix), with snapshot pushes
(``EngineHost._push_snapshots``) and feed batches (``BenchEngine._run_feed``) broken out.

Run: ``.venv/bin/python benchmarks/timeline_console.py [--console] [SECONDS]``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # console_world and this module, in the child

from console_world import TRIGGER, BenchEngine  # noqa: E402

RATE = 10_000
SLOW_SHOWN = 5


def step_name(handle: asyncio.Handle) -> str:
    """A readable name for one loop step: the task's coroutine for a task step, else the callback."""
    cb = handle._callback  # type: ignore[attr-defined]  # private: the diagnostic reads the handle it is about to run
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {getattr(coro, '__qualname__', repr(coro))}"
    name = getattr(cb, "__qualname__", None) or type(cb).__name__
    if owner is not None and not name.startswith(type(owner).__name__):
        name = f"{type(owner).__name__}.{name}"
    return name


class StepRecorder:
    """Stamps every loop step while armed: (name, wall start, wall end, CPU seconds)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float, float, float]] = []
        self.gcs: list[tuple[int, float, float]] = []
        self.armed = False
        self._gc_start = 0.0
        self._original = asyncio.events.Handle._run  # noqa: SLF001

    def install(self) -> None:
        """Wrap ``Handle._run`` (class-wide: timers too) and listen to the collector."""
        original, rec = self._original, self

        def run(self: asyncio.Handle) -> None:  # ``Handle._run``'s own signature
            if not rec.armed:
                original(self)
                return
            t0, c0 = time.perf_counter(), time.thread_time()
            original(self)
            rec.steps.append((step_name(self), t0, time.perf_counter(), time.thread_time() - c0))

        asyncio.events.Handle._run = run  # type: ignore[method-assign]  # noqa: SLF001
        gc.callbacks.append(self.on_gc)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
        elif self.armed:
            self.gcs.append((info["generation"], self._gc_start, now))


class TimelineEngine(BenchEngine):
    """The benchmark's engine with the step recorder and a sampling method that keeps each sample's steps."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.recorder = StepRecorder()
        self.recorder.install()

    async def bench_timeline(self, seconds: float) -> list[dict[str, Any]]:
        """Trigger samples for ``seconds``; per sample its latency and the steps and collections inside it."""
        assert self.gw is not None
        assert self.probe is not None
        control, probe, rec = self.gw.control, self.probe, self.recorder
        base = round(self.gw.quote(TRIGGER).last, 2)
        out: list[dict[str, Any]] = []
        deadline = time.perf_counter() + seconds
        i = -1
        while (i := i + 1) < 3 or time.perf_counter() < deadline:
            control.set_price(TRIGGER, base)
            await asyncio.sleep(0.03)
            self.trigger = price = round(base + 0.5 + 0.01 * (i % 50), 2)
            seen = len(probe.placed)
            rec.steps.clear()
            rec.gcs.clear()
            rec.armed = True
            start = time.perf_counter()
            control.set_price(TRIGGER, price)
            while len(probe.placed) <= seen and time.perf_counter() - start < 2.0:  # noqa: ASYNC110 - polls as until()
                await asyncio.sleep(0.001)
            rec.armed = False
            if len(probe.placed) <= seen or i < 3:
                continue
            end = probe.placed[seen]
            # Steps that overlap [start, end]: the set_price above ran inside the sampling step itself.
            steps = [s for s in rec.steps if s[2] > start and s[1] < end]
            gcs = [g for g in rec.gcs if g[2] > start and g[1] < end]
            out.append({"ms": (end - start) * 1000, "steps": steps, "gcs": gcs, "start": start})
        self.trigger = 0.0
        return out

    async def bench_push_breakdown(self, pushes: int) -> dict[str, list[float]]:
        """A push's parts in CPU ms, as the host does them 10 times a second: snapshot, delta, pickle."""
        from tui_trader.engine.process.delta import DeltaEncoder
        from tui_trader.engine.process.wire import SnapshotPushed, encode

        deltas, out = DeltaEncoder(), defaultdict(list)
        for _ in range(pushes):
            await asyncio.sleep(0.1)
            c0 = time.thread_time()
            snap = self.snapshot()
            c1 = time.thread_time()
            delta = deltas.encode(snap)
            c2 = time.thread_time()
            frame = encode(SnapshotPushed(0, delta))
            c3 = time.thread_time()
            for key, cpu in (("snapshot", c1 - c0), ("delta", c2 - c1), ("pickle", c3 - c2)):
                out[key].append(cpu * 1000)
            out["bytes"].append(len(frame))
            out["orders"].append(len(snap.orders))
        if dump := os.environ.get("TIMELINE_DUMP"):  # consecutive snapshots, shared objects kept, for offline study
            import pickle

            snaps = [self.snapshot()]
            for _ in range(5):
                await asyncio.sleep(0.1)
                snaps.append(self.snapshot())
            Path(dump).write_bytes(pickle.dumps(snaps))  # noqa: ASYNC240 - a diagnostic, after the measurement
        if os.environ.get("TIMELINE_PROFILE"):  # the child inherits the environment, not argv
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                for _ in range(20):
                    await asyncio.sleep(0.1)
                    encode(SnapshotPushed(0, deltas.encode(self.snapshot())))
            with open("/tmp/timeline_console_push_profile.txt", "w") as out_file:  # noqa: ASYNC230 - as above
                pstats.Stats(prof, stream=out_file).sort_stats("tottime").print_stats(25)
        return dict(out)

    async def bench_push_costs(self, seconds: float) -> dict[str, list[float]]:
        """Every loop step for ``seconds``: CPU ms per step name (all of them, not only inside samples)."""
        rec = self.recorder
        rec.steps.clear()
        rec.armed = True
        await asyncio.sleep(seconds)
        rec.armed = False
        by: dict[str, list[float]] = defaultdict(list)
        for name, _t0, _t1, cpu in rec.steps:
            by[name].append(cpu * 1000)
        rec.steps.clear()
        return dict(by)


def timeline_engine(settings: Any) -> TimelineEngine:
    """The engine factory (runs in the engine's child process)."""
    return TimelineEngine(settings)


def report_samples(samples: list[dict[str, Any]]) -> None:
    """Quantiles, then the slowest samples' steps."""
    ms = sorted(s["ms"] for s in samples)
    q = statistics.quantiles(ms, n=100)
    print(f"{len(ms)} samples: p50 {q[49]:.2f} ms, p90 {q[89]:.2f}, p99 {q[98]:.2f}, max {ms[-1]:.2f}")
    # The loop's CPU inside each sample: its latency less the time this process waited for a core.
    cpu = sorted(sum(st[3] for st in s["steps"]) * 1000 for s in samples)
    qc = statistics.quantiles(cpu, n=100)
    print(f"  loop CPU inside the samples: p50 {qc[49]:.2f} ms, p90 {qc[89]:.2f}, p99 {qc[98]:.2f}, max {cpu[-1]:.2f}")
    for s in sorted(samples, key=lambda s: -s["ms"])[:SLOW_SHOWN]:
        print(f"\n-- sample {s['ms']:.2f} ms; collections {[(g, round((b - a) * 1000, 2)) for g, a, b in s['gcs']]}")
        for name, t0, t1, cpu in s["steps"]:
            if (t1 - t0) * 1000 >= 0.2:
                at, wall = (t0 - s["start"]) * 1000, (t1 - t0) * 1000
                print(f"   +{at:6.2f} ms  {wall:6.2f} wall {cpu * 1000:6.2f} cpu  {name}")
        rest = [st for st in s["steps"] if (st[2] - st[1]) * 1000 < 0.2]
        print(f"   ... and {len(rest)} shorter steps, {sum(st[3] for st in rest) * 1000:.2f} ms CPU")


def report_mix(by: dict[str, list[float]], seconds: float) -> None:
    """CPU per step name over the window: total, count, mean, p99, max."""
    print(f"\nloop steps over {seconds:.0f} s (CPU ms): name, count, total/s, mean, p99, max")
    for name, cpus in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:15]:
        cpus = sorted(cpus)
        p99 = cpus[min(int(0.99 * len(cpus)), len(cpus) - 1)]
        print(f"  {name[:70]:70s} {len(cpus):6d} {sum(cpus) / seconds:7.1f} {statistics.fmean(cpus):6.3f}"
              f" {p99:6.3f} {cpus[-1]:6.3f}")


async def main(seconds: float, with_console: bool) -> None:
    """The world, the feed, optionally the console; then samples and the loop's mix."""
    import bench_console as bc
    import timeline_console  # the factory by its importable name (``__main__`` does not resolve in the child)

    bc.bench_engine = timeline_console.timeline_engine  # world() spawns it
    async with bc.world("own") as w, bc.feeding(w, RATE):
        await asyncio.sleep(0.5)
        if with_console:
            app = bc.console_for(w)
            async with app.run_test(size=bc.SIZE, notifications=True):
                await bc.until(lambda: app.main.snapshot is not None, "first snapshot drawn")
                await asyncio.sleep(0.5)
                await measure(w, seconds)
                app.exit()
        else:
            await measure(w, seconds)


SIM_STEPS = ("task BenchEngine._run_feed", "task SimGateway._on_client")
"""The simulator's and its feed's steps: a real gateway runs them in its own process."""


def report_without_sim(samples: list[dict[str, Any]]) -> None:
    """Each sample less the wall time of simulator steps inside it (the order's own read kept): an estimate."""
    est = []
    for s in samples:
        sim = [st for st in s["steps"] if st[0] in SIM_STEPS]
        # The last _on_client step is the simulator reading the order: it would run elsewhere, in parallel.
        est.append(s["ms"] - sum((t1 - t0) * 1000 for _n, t0, t1, _c in sim[:-1] if _n in SIM_STEPS))
    q = statistics.quantiles(sorted(est), n=100)
    print(f"\nless the simulator's steps (estimate): p50 {q[49]:.2f} ms, p90 {q[89]:.2f}, p99 {q[98]:.2f}")


async def measure(w: Any, seconds: float) -> None:
    samples = await w.engine.bench_timeline(seconds)
    report_samples(samples)
    report_without_sim(samples)
    parts = await w.engine.bench_push_breakdown(30)
    print("\npush parts (CPU ms, p50/p99 of 30; bytes):", {k: (round(statistics.median(v), 3), round(max(v), 3))
                                                         for k, v in parts.items()})
    report_mix(await w.engine.bench_push_costs(min(seconds, 5.0)), min(seconds, 5.0))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(float(args[0]) if args else 10.0, "--console" in sys.argv))
