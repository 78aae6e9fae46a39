"""Where one tick-to-order sample's time goes, for the engine and the bare client (a diagnostic).

Runs the same setup as :mod:`benchmarks.bench_tick_to_order` (same simulator, clients, turns,
background load) and stamps each sample with ``perf_counter``: tick written by the simulator
(``set_price`` returned) → the client's socket read → the trigger (quote hook / ticker handler) →
risk verdict done → SENDING record durable (the sending log) → ``placeOrder`` written → the simulator reads the order.
Also: the CPU time (``thread_time``) from the trigger to ``placeOrder`` written (and to its call: the
client's own part, ib_async's ``IB.placeOrder`` left out), and every garbage
collection that ran inside the sample (``gc.callbacks``), by generation.

Both clients share the simulator's event loop here (the benchmark's ``--in-loop`` layout, the shape of
``--sim``); :mod:`benchmarks.timeline_processes` stamps the benchmark's default layout, each client
in a process of its own.

Run: ``python -m benchmarks.timeline_tick_to_order [RATE] [SAMPLES]``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ib_async
from ib_async.connection import Connection

from benchmarks import bench_tick_to_order as bench
from tui_trader.broker.ib.adapter import IbBroker
from tui_trader.engine.engine import Engine
from tui_trader.engine.runner import freeze_startup_heap, thaw_startup_heap
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

STAMPS = ("written", "read", "trigger", "risk", "journal", "placed", "received")


class Recorder:
    """The stamps of the sample in progress, and the GC passes seen while it runs."""

    def __init__(self) -> None:
        self.cur: dict[str, float] = {}
        self.armed = False
        self.conn: Connection | None = None
        self.gcs: list[tuple[int, float, float]] = []
        self._gc_start = 0.0

    def stamp(self, name: str) -> None:
        if self.armed and name not in self.cur:
            self.cur[name] = time.perf_counter()

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
        else:
            self.gcs.append((info["generation"], self._gc_start, now))


REC = Recorder()


def _patch() -> None:
    """Wrap the steps of both clients' paths with stamps (instance-independent, class-level)."""
    data_received = Connection.data_received

    def read(self: Connection, data: bytes) -> None:
        if self is REC.conn:
            REC.stamp("read")
        data_received(self, data)

    Connection.data_received = read  # type: ignore[method-assign]

    place_order = ib_async.IB.placeOrder

    def place(self: ib_async.IB, *a: Any, **k: Any) -> Any:
        if REC.armed and "cpu_wire" not in REC.cur:
            REC.cur["cpu_wire"] = time.thread_time()
        return place_order(self, *a, **k)

    ib_async.IB.placeOrder = place  # type: ignore[method-assign]
    _stamp_after(Engine, "verdict", "risk")
    _stamp_after(Journal, "commit_orders_now", "journal")
    _stamp_after(IbBroker, "place", "placed", cpu_end=True)


def _stamp_after(cls: type, name: str, stamp: str, cpu_end: bool = False) -> None:
    """Wrap ``cls.name`` so that each call stamps ``stamp`` when it returns (and the path's CPU end)."""
    method = getattr(cls, name)

    def stamped(self: Any, *a: Any, **k: Any) -> Any:
        out = method(self, *a, **k)
        REC.stamp(stamp)
        if cpu_end:
            REC.cur["cpu_end"] = time.thread_time()
        return out

    setattr(cls, name, stamped)


class StampedEngine(bench.TriggerEngine):
    def fire(self) -> None:
        REC.stamp("trigger")
        REC.cur["cpu_start"] = time.thread_time()
        super().fire()


def _stamped_place(ib: ib_async.IB, contract: ib_async.Contract) -> None:
    """The bare client's order, stamped like the engine's steps."""
    REC.stamp("trigger")
    REC.cur["cpu_start"] = time.thread_time()
    bench._place(ib, contract)
    REC.stamp("placed")
    REC.cur["cpu_end"] = time.thread_time()


async def _measure(gw: SimGateway, engine: StampedEngine, bare: ib_async.IB,
                   samples: int) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {"engine": [], "bare": []}
    pause = bench.pauses()
    for i, (client, symbol, price) in enumerate(bench.turns(gw, samples)):
        await asyncio.sleep(next(pause))
        who = "engine" if client == bench.ENGINE_CLIENT else "bare"
        REC.conn = engine.broker.ib.client.conn if who == "engine" else bare.client.conn  # type: ignore[attr-defined]
        probe = bench.Probe(client)
        probe.instrument(gw)
        REC.cur, REC.gcs = {}, []
        REC.armed = True
        c0 = time.process_time()
        t0 = time.perf_counter()
        gw.control.set_price(symbol, price)
        REC.cur["written"] = time.perf_counter()
        try:
            await asyncio.wait_for(probe.done.wait(), 2.0)
        except TimeoutError:
            continue
        finally:
            REC.armed = False
            gw.engine.place = type(gw.engine).place.__get__(gw.engine)  # type: ignore[method-assign]
        await bench.quiet(engine)
        if i >= 2 * bench.WARMUP:
            row = {k: (v - t0) * 1000 for k, v in REC.cur.items() if k in STAMPS}
            row["received"] = (probe.received - t0) * 1000
            row["cpu_ms"] = (probe.received_cpu - c0) * 1000
            row["cpu_us"] = (REC.cur.get("cpu_end", 0) - REC.cur.get("cpu_start", 0)) * 1e6
            row["own_us"] = (REC.cur.get("cpu_wire", 0) - REC.cur.get("cpu_start", 0)) * 1e6
            inside = [(g, (e - s) * 1000) for g, s, e in REC.gcs if s < probe.received]
            row["gc_ms"] = sum(d for _, d in inside)
            row["gc_gen_max"] = max((g for g, _ in inside), default=-1)
            row["gc_n"] = len(inside)
            out[who].append(row)
    return out


async def run_level(rate: int, samples: int) -> dict[str, list[dict[str, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        async with SimGateway(port=0, clock=ManualClock(), always_open=True) as gw:
            levels = {s: bench.trigger_level(p) for s, p in bench.base_prices(gw).items()}
            bare = await bench._bare_client(gw.host, gw.port, levels[bench.BARE_SYMBOL], _stamped_place)
            engine = await bench._start_engine(StampedEngine, gw.host, gw.port, levels[bench.SYMBOL],
                                               Path(tmp) / "journal.sqlite", in_process=True)
            freeze_startup_heap()
            stop, count = asyncio.Event(), [0]
            bg = asyncio.create_task(bench._background(gw, rate, stop, count))
            gc.callbacks.append(REC.on_gc)
            try:
                out = await _measure(gw, engine, bare, samples)
            finally:
                gc.callbacks.remove(REC.on_gc)
            stop.set()
            await bg
            bare.disconnect()
            await engine.stop()
            thaw_startup_heap()
    return out


def summarize(rows: list[dict[str, float]], who: str) -> None:
    """Median of each stamp and of each step, then the slowest 3% of samples in full."""
    keys = [k for k in STAMPS if all(k in r for r in rows)]
    print(f"-- {who}: n={len(rows)} p50={bench._pct([r['received'] for r in rows], .5):.3f} "
          f"p99={bench._pct([r['received'] for r in rows], .99):.3f} ms; "
          f"cpu trigger→placed p50={statistics.median(r['cpu_us'] for r in rows):.0f} µs "
          f"(before ib.placeOrder: {statistics.median(r['own_us'] for r in rows):.0f}); "
          f"samples with a GC: {sum(1 for r in rows if r['gc_n'])} "
          f"(gen1+: {sum(1 for r in rows if r['gc_gen_max'] >= 1)})")
    print("   median stamps (ms from set_price): " + "  ".join(
        f"{k}={statistics.median(r[k] for r in rows):.3f}" for k in keys))
    print("   median steps (ms): " + "  ".join(
        f"{a}→{b}={statistics.median(r[b] - r[a] for r in rows):.3f}" for a, b in zip(keys, keys[1:], strict=False)))
    print("   steps over 1 ms (wall): " + "  ".join(
        f"{a}→{b}={sum(1 for r in rows if r[b] - r[a] > 1.0)}" for a, b in zip(keys, keys[1:], strict=False)))
    cpu = [r["cpu_ms"] for r in rows]
    print(f"   in process CPU time (wall less preemption): p50={bench._pct(cpu, .5):.3f} "
          f"p99={bench._pct(cpu, .99):.3f} ms")
    for label, key in (("slow (wall)", "received"), ("slow (CPU)", "cpu_ms")):
        for r in sorted(rows, key=lambda r: r[key])[-max(len(rows) // 33, 1):]:
            print(f"   {label}: " + "  ".join(f"{k}={r[k]:.3f}" for k in keys)
                  + f"  cpu_lat={r['cpu_ms']:.3f}ms path={r['cpu_us']:.0f}µs gc={r['gc_ms']:.2f}ms"
                  + f" gen={r['gc_gen_max']:.0f} n={r['gc_n']:.0f}")
    # GC attribution: the p99 with the GC samples left out
    clean = [r["received"] for r in rows if not r["gc_n"]]
    print(f"   without samples with a GC: p50={bench._pct(clean, .5):.3f} p99={bench._pct(clean, .99):.3f}")


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    _patch()
    out = asyncio.run(run_level(rate, samples))
    for who in ("engine", "bare"):
        summarize(out[who], who)


if __name__ == "__main__":
    main()
