"""Benchmark: journal throughput and how long it blocks the event loop while it writes.

The real :class:`tui_trader.store.journal.Journal` (aiosqlite, WAL, a temp file) receives a
realistic mix of events — order updates (two derived rows each), fills and alerts:

- ``journal.events_per_s.b100`` / ``.b1000``: events committed per second when the writer
  commits batches of 100 / 1000 events (``journal.events_per_s`` is the batch-100 figure, the
  more conservative one and closer to the engine's default of 200);
- ``journal.events_per_s.busy_loop``: batch 100 while another task keeps the loop busy (1 ms slices of
  Python work, as a market-data storm does): the journal writes on the loop's thread, so it gets the
  loop's turns between the busy task's slices (it once waited on aiosqlite's thread for each row);
- ``journal.max_loop_block_ms``: the longest the event loop was held by one step of the
  journal's work while it writes a steady stream (2,000 events/s in 5 ms bursts, then a final
  ``flush``): every step the loop runs is timed (``asyncio.Handle._run`` wrapped) in the
  thread's **CPU time**, so a preemption of the process by another one on a shared machine is
  not counted as the journal's; a garbage collection the journal's allocations trigger is. The
  benchmark's own steps (making the events and appending them) are not counted (since the
  thirteenth session: a collection started there was the run's maximum).
  ``journal.max_loop_block_wall_ms`` is the same step in wall-clock time (preemptions
  included), ``journal.loop_block_ms.p99`` the 99th percentile of the writer task's steps (CPU);
- ``journal.ticker_late_ms.max`` / ``.p99``: what the benchmark measured before: how late a
  ticker that sleeps 0.5 ms wakes up during the same stream; ``.idle.max`` / ``.idle.p99`` the
  same ticker with no journal (asyncio's millisecond timer resolution and the machine's own
  noise: the floor under the other two).

Before any figure is taken, one event of each kind in the mix is written: the first event of a
type builds its pydantic serializer (10–90 ms, once per process), which is start-up, not the
steady state measured here.

Run: ``.venv/bin/python benchmarks/bench_journal.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_trader.domain import Alert, AlertLevel, Fill, Order, OrderStatus, OrderTicket, OrderType, Side  # noqa: E402
from tui_trader.domain import events as ev  # noqa: E402
from tui_trader.store.journal import Journal  # noqa: E402

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def make_events(n: int, offset: int = 0) -> list[ev.Event]:
    """``n`` events: 3 order updates, 1 fill and 1 alert in every 5 (unique refs and exec ids)."""
    out: list[ev.Event] = []
    for i in range(offset, offset + n):
        when = T0 + timedelta(milliseconds=i)
        kind = i % 5
        if kind < 3:
            ticket = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=185.0, strategy="ema_cross")
            order = Order(f"bench-{i // 5}", ticket, OrderStatus.SUBMITTED, when, when, broker_id=i // 5)
            out.append(ev.OrderUpdated(when, order.with_status(OrderStatus.SUBMITTED, when)))
        elif kind == 3:
            fill = Fill(f"exec-{i}", f"bench-{i // 5}", "AAPL", Side.BUY, 10, 185.0, when, i // 5, 1.0)
            out.append(ev.OrderFilled(when, fill))
        else:
            alert = Alert(AlertLevel.INFO, "bench", f"alert {i}", when)
            out.append(ev.AlertRaised(when, alert))
    return out


async def _busy_loop(stop: asyncio.Event) -> None:
    """Keep the event loop busy (1 ms of Python work per iteration), as a market-data storm does."""
    while not stop.is_set():
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0)


async def _open_warm(path: Path, batch: int) -> Journal:
    """A journal whose encoders are built (one event of each kind written)."""
    journal = await Journal.open(path, batch_size=batch, flush_interval_ms=50)
    for event in make_events(5, offset=10_000_000):
        journal.append(event)
    await journal.flush()
    return journal


async def _throughput(batch: int, n: int, busy: bool = False) -> float:
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory() as tmp:
        journal = await _open_warm(Path(tmp) / "j.sqlite", batch)
        events = make_events(n)
        spinner = asyncio.create_task(_busy_loop(stop)) if busy else None
        start, written = time.perf_counter(), journal.written
        for event in events:
            journal.append(event)
        await journal.flush()
        elapsed = time.perf_counter() - start
        stop.set()
        if spinner is not None:
            await spinner
        assert journal.written - written == n, (journal.written, n)
        await journal.close()
    return n / elapsed


class StepTimer:
    """Times every step the event loop runs (wall and thread CPU), by the task it belongs to."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, float, str]] = []
        self._original = asyncio.events.Handle._run

    def __enter__(self) -> StepTimer:
        original, steps = self._original, self.steps

        def timed_run(self: asyncio.Handle) -> None:  # ``Handle._run``'s own signature
            wall, cpu = time.perf_counter(), time.thread_time()
            original(self)
            owner = getattr(self._callback, "__self__", None)  # type: ignore[attr-defined]
            name = owner.get_name() if isinstance(owner, asyncio.Task) else ""
            steps.append(((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000, name))

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]


async def _ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    period = 0.0005
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(period)
        lateness.append(max(0.0, time.perf_counter() - start - period) * 1000)


async def _loop_block(seconds: float, write: bool = True) -> dict[str, float]:
    lateness: list[float] = []
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory() as tmp:
        journal = await _open_warm(Path(tmp) / "j.sqlite", 200)
        ticker = asyncio.create_task(_ticker(stop, lateness), name="ticker")
        await asyncio.sleep(0.05)
        lateness.clear()  # start-up of the ticker and the writer are not the journal writing
        offset, deadline = 0, time.perf_counter() + seconds
        with StepTimer() as timer:
            while time.perf_counter() < deadline:
                if write:
                    for event in make_events(10, offset):
                        journal.append(event)
                offset += 10
                await asyncio.sleep(0.005)
            await journal.flush()
            stop.set()
            await ticker
        await journal.close()
    # Not counted: the ticker, and this task's own steps (it makes the events; a collection its
    # allocations start lands there, 1.4-2 ms for a gen-1 one, and was reported as the journal's).
    driver = asyncio.current_task()
    theirs = {"ticker", driver.get_name() if driver is not None else ""}
    ours = [(wall, cpu, name) for wall, cpu, name in timer.steps if name not in theirs]
    writer = [cpu for _, cpu, name in ours if name == "journal-writer"]
    return {"max_cpu": max(cpu for _, cpu, _ in ours), "max_wall": max(wall for wall, _, _ in ours),
            "writer_p99": _pct(writer, 0.99), "late_max": max(lateness, default=math.nan),
            "late_p99": _pct(lateness, 0.99)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else math.nan


def run(quick: bool = False) -> dict[str, float]:
    """Measure; keys ``journal.events_per_s`` (batch 100), ``.b100``, ``.b1000``, ``journal.max_loop_block_ms``."""
    n = 5_000 if quick else 20_000
    out = {f"journal.events_per_s.b{b}": asyncio.run(_throughput(b, n)) for b in (100, 1000)}
    out["journal.events_per_s"] = out["journal.events_per_s.b100"]
    out["journal.events_per_s.busy_loop"] = asyncio.run(_throughput(100, 200 if quick else 500, busy=True))
    seconds = 1.0 if quick else 3.0
    block = asyncio.run(_loop_block(seconds))
    idle = asyncio.run(_loop_block(seconds, write=False))
    out |= {"journal.max_loop_block_ms": block["max_cpu"], "journal.max_loop_block_wall_ms": block["max_wall"],
            "journal.loop_block_ms.p99": block["writer_p99"], "journal.ticker_late_ms.max": block["late_max"],
            "journal.ticker_late_ms.p99": block["late_p99"], "journal.ticker_late_ms.idle.max": idle["late_max"],
            "journal.ticker_late_ms.idle.p99": idle["late_p99"]}
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
