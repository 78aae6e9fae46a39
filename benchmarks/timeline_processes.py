"""Where one tick-to-order sample's time goes, with each client in a process of its own (a diagnostic).

:mod:`benchmarks.bench_tick_to_order`'s layout (simulator, background and measurement here, each
client in a process of its own), with ``perf_counter`` stamps on both sides. On Linux
``perf_counter`` reads ``CLOCK_MONOTONIC``, one clock for every process, so the stamps of the
three processes line up. Each sample is cut into:

- ``to_read``: ``set_price`` called → the client's ``data_received`` starts (``busy``: how much of
  an earlier ``data_received`` call was still to run when the tick was written);
- ``read_to_trigger``: → the client decides to buy (the engine's ``fire``; the bare client's
  ``IB.placeOrder`` call, its ``MarketOrder`` already built);
- ``trigger_to_written``: → the order's bytes are handed to the socket (stamped before the write:
  a stamp after it can land after the simulator has already read the order, when the write wakes
  the simulator and the scheduler runs it first);
- ``written_to_received``: → the simulator's ``placeOrder`` handler runs.

For the engine, ``trigger_to_written`` is cut further into its steps (gate, family, SENDING record,
order mapping, ib_async's ``placeOrder``), and compared with the thread's CPU time over the same
span: a slow step that is CPU time is work (or a cold cache), one that is not is a wait.

Run: ``python -m benchmarks.timeline_processes [RATE] [SAMPLES]`` (default 1,000 ticks/s, 300).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ib_async
from ib_async.connection import Connection
from ib_async.decoder import Decoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the client processes run this file by path

from benchmarks import bench_tick_to_order as bench  # noqa: E402
from tui_trader.broker.ib import mapping  # noqa: E402
from tui_trader.engine.collector import LoopCollector  # noqa: E402
from tui_trader.sim import ManualClock, SimGateway  # noqa: E402
from tui_trader.store.journal import Journal  # noqa: E402
from tui_trader.store.writer import LoopWriter  # noqa: E402

SCRIPT = Path(__file__).resolve()
PLACE_ORDER = b"3\0"
"""The first field of a placeOrder message (after the 4-byte length prefix)."""
ENGINE_STEPS = (("_prepare", "prepared"), ("verdict", "gate"), ("_create_family", "family"),
                ("commit_orders_now", "record"), ("order_to_ib", "mapped"))
"""The engine's steps between its trigger and the write, stamped when each returns, in order."""


class ChildStamps:
    """What one client process records; written to ``<dir>/<kind>.stamps.json`` when it stops."""

    def __init__(self) -> None:
        self.reads: list[tuple[float, float]] = []
        self.triggers: list[tuple[float, float]] = []
        """(perf_counter, thread_time) at each trigger."""
        self.writes: list[tuple[float, float]] = []
        """(perf_counter, thread_time) just before each placeOrder message is written."""
        self.steps: list[tuple[str, float]] = []
        self.messages: dict[str, int] = {}
        """Messages decoded, by message id."""
        self.work: dict[str, list[tuple[float, float]]] = {}
        """(start, end) of the engine's other work on its loop (journal writes, monitor ticks, collections)."""

    def patch(self, kind: str) -> None:
        """Stamp this process's client (class-level wrappers: every instance)."""
        data_received, send = Connection.data_received, Connection.sendMsg

        def read(conn: Connection, data: bytes) -> None:
            start = time.perf_counter()
            data_received(conn, data)
            self.reads.append((start, time.perf_counter()))

        def write(conn: Connection, msg: bytes) -> None:
            if msg[4:6] == PLACE_ORDER:
                self.writes.append((time.perf_counter(), time.thread_time()))
            send(conn, msg)

        interpret = Decoder.interpret

        def count(decoder: Decoder, fields: list[str]) -> None:
            self.messages[fields[0]] = self.messages.get(fields[0], 0) + 1
            interpret(decoder, fields)

        Decoder.interpret = count  # type: ignore[method-assign]
        Connection.data_received = read  # type: ignore[method-assign]
        Connection.sendMsg = write  # type: ignore[method-assign]
        if kind == "bare":
            self._wrap_before(ib_async.IB, "placeOrder")
            return
        self._wrap_before(bench.TriggerEngine, "fire")
        timed: tuple[tuple[Any, str], ...] = ((Journal, "_plan"), (LoopWriter, "commit"), (bench.TriggerEngine, "tick"),
                                              (LoopCollector, "collect_due"), (bench.TriggerEngine, "settle"))
        for timed_owner, timed_name in timed:
            self._time_sync(timed_owner, timed_name)
        for name, label in ENGINE_STEPS:
            owner: Any = {"commit_orders_now": Journal, "order_to_ib": mapping}.get(name, bench.TriggerEngine)
            self._wrap_after(owner, name, label)

    def _wrap_before(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def triggered(*a: Any, **k: Any) -> Any:
            self.triggers.append((time.perf_counter(), time.thread_time()))
            return original(*a, **k)

        setattr(owner, name, triggered)

    def _time_sync(self, owner: Any, name: str) -> None:
        original, spans = getattr(owner, name), self.work.setdefault(name, [])

        def timed(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                spans.append((start, time.perf_counter()))

        setattr(owner, name, timed)

    def _wrap_after(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def stamped(*a: Any, **k: Any) -> Any:
            out = original(*a, **k)
            self.steps.append((label, time.perf_counter()))
            return out

        setattr(owner, name, stamped)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({**vars(self), "cpu_s": time.process_time()}))


def _child(args: argparse.Namespace) -> None:
    stamps = ChildStamps()
    stamps.patch(args.client)
    asyncio.run(bench._serve_client(args.client, args.host, args.port, args.trigger, args.dir))
    stamps.dump(args.dir / f"{args.client}.stamps.json")


async def run_level(rate: int, samples: int) -> tuple[list[bench.Stamps], dict[str, dict[str, Any]]]:
    """The benchmark's level with stamps: the samples' (client, t0, written, received), each child's stamps."""
    sampled: list[bench.Stamps] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        async with SimGateway(port=0, clock=ManualClock(), always_open=True) as gw:
            levels = {s: bench.trigger_level(p) for s, p in bench.base_prices(gw).items()}
            async with (bench._client_process("bare", gw, levels[bench.BARE_SYMBOL], tmp, SCRIPT),
                        bench._client_process("engine", gw, levels[bench.SYMBOL], tmp, SCRIPT)):
                await bench._load_and_measure(gw, rate, samples, stamps=sampled)
        children = {kind: json.loads((tmp / f"{kind}.stamps.json").read_text()) for kind in ("engine", "bare")}
    bench.thaw_startup_heap()
    return sampled, children


def segments(sampled: list[bench.Stamps], client: int, child: dict[str, Any]) -> list[dict[str, float]]:
    """Each of ``client``'s samples cut into the segments of the module docstring (ms)."""
    rows = []
    reads, triggers, writes, steps = child["reads"], child["triggers"], child["writes"], child["steps"]
    for who, t0, _, received in sampled:
        if who != client:
            continue
        read = next((start for start, _ in reads if start >= t0), math.nan)
        trigger = next((t for t in triggers if t[0] >= t0), None)
        write = next((w for w in writes if trigger is not None and w[0] >= trigger[0]), None)
        if trigger is None or write is None or math.isnan(read):
            continue
        busy = max((end - t0 for start, end in reads if start <= t0 < end), default=0.0)
        other = sum(min(end, read) - max(start, t0) for spans in child["work"].values()
                    for start, end in spans if start < read and end > t0)
        row = {"total": received - t0, "busy": busy, "other": other,
               "to_read": read - t0, "read_to_trigger": trigger[0] - read, "trigger_to_written": write[0] - trigger[0],
               "written_to_received": received - write[0], "trigger_to_written_cpu": write[1] - trigger[1]}
        last, seen = trigger[0], set()
        for label, at in steps:
            if trigger[0] <= at <= write[0] and label not in seen:
                seen.add(label)
                row[label], last = at - last, at
        if seen:
            row["placeOrder"] = write[0] - last
        rows.append({k: v * 1000 for k, v in row.items()})
    return rows


def summarize(rows: list[dict[str, float]], who: str, child: dict[str, Any] | None = None) -> None:
    """p50 / p90 / p99 of each segment, then the slowest 3 % of samples in full."""
    print(f"-- {who}: n={len(rows)}")
    keys = [k for k in rows[0] if all(k in r for r in rows)] if rows else []
    for key in keys:
        values = [r[key] for r in rows]
        print(f"   {key:24s} p50 {bench._pct(values, .5):6.3f}  p90 {bench._pct(values, .9):6.3f}  "
              f"p99 {bench._pct(values, .99):6.3f} ms")
    print(f"   busy at the tick: {sum(1 for r in rows if r['busy'] > 0)} samples; "
          f"other work before the read: {sum(1 for r in rows if r['other'] > 0)} samples")
    if child is not None:
        reads = [(end - start) * 1000 for start, end in child["reads"]]
        span = child["reads"][-1][1] - child["reads"][0][0] if reads else math.nan
        print(f"   reads: {len(reads)} ({len(reads) / span:.0f}/s), p50 {bench._pct(reads, .5):.3f} "
              f"p99 {bench._pct(reads, .99):.3f} ms, {sum(reads) / span / 10:.1f} % of the time; "
              f"process CPU {child['cpu_s']:.1f} s over {span:.0f} s")
        for name, spans in child["work"].items():
            took = [(end - start) * 1000 for start, end in spans]
            if took:
                print(f"   {name}: {len(took)} runs, p50 {bench._pct(took, .5):.3f} p99 {bench._pct(took, .99):.3f} "
                      f"max {max(took):.3f} ms")
        print("   messages by id: " + ", ".join(f"{k}: {v}" for k, v in
                                              sorted(child["messages"].items(), key=lambda kv: -kv[1])))
    for r in sorted(rows, key=lambda r: r["total"])[-max(len(rows) // 33, 1):]:
        print("   slow: " + "  ".join(f"{k}={r[k]:.3f}" for k in keys))


def main() -> None:
    """Print the segments for both clients (or, with ``--client``, be one of them, stamped)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rate", nargs="?", type=int, default=1_000, help="background ticks per second")
    parser.add_argument("samples", nargs="?", type=int, default=300, help="samples per client")
    bench.add_client_arguments(parser)
    args = parser.parse_args()
    if args.client:
        _child(args)
        return
    sampled, children = asyncio.run(run_level(args.rate, args.samples))
    for who, client in (("engine", bench.ENGINE_CLIENT), ("bare", bench.BARE_CLIENT)):
        summarize(segments(sampled, client, children[who]), who, children[who])


if __name__ == "__main__":
    main()
