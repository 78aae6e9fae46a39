"""Console benchmark: frame time, loop lag, Ctrl+K latency and refresh rate under a tick load.

The console runs headless (Textual's ``run_test``) at 200x60 around the scripted engine with
100 symbols, 100 positions and 100 orders, while a synthetic feed rewrites quotes at 1,000 and
10,000 ticks/s. Measured:

- frame: time the main screen spends drawing one refresh (``watch_snapshot``, the row models
  and line diffs) plus the compositor's refresh of the changed regions;
- loop lag: how late a 5 ms sleep wakes up;
- kill to wire: Ctrl+K pressed → ``handle.kill`` observed (scripted engine: no simulator yet);
- refresh rate: snapshots drawn per second.

``tick_to_order`` needs the real engine and simulator; it is NaN here.
Run: ``.venv/bin/python benchmarks/bench_console.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_trader.domain.market import Quote  # noqa: E402
from tui_trader.ui.app import create_app  # noqa: E402
from tui_trader.ui.demo import ScriptedEngine, normal_state  # noqa: E402
from tui_trader.ui.options import ConsoleOptions  # noqa: E402


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def timed(samples: list[float], fn: Callable[..., object]) -> Callable[..., object]:
    """Wrap ``fn`` so each call's duration (ms) lands in ``samples``."""
    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            samples.append((time.perf_counter() - start) * 1000)
    return wrapper


async def feed(engine: ScriptedEngine, rate: int, stop: asyncio.Event) -> int:
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


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """Record how late a 5 ms sleep wakes up."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(max((time.perf_counter() - start) * 1000 - 5.0, 0.0))


async def measure(rate: int, seconds: float, kills: int) -> dict[str, float]:
    """One run at ``rate`` ticks/s."""
    engine = ScriptedEngine(normal_state(n_symbols=100, n_positions=100, n_orders=100))
    app = create_app(engine)
    app.options = app.main.options = ConsoleOptions(refresh_hz=10)
    frames: list[float] = []
    lags: list[float] = []
    kill_ms: list[float] = []
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        main = app.main
        draw = timed(frames, main.watch_snapshot)
        main.watch_snapshot = lambda snapshot: draw(snapshot)  # type: ignore[method-assign]
        main._compositor_refresh = timed(frames, main._compositor_refresh)  # type: ignore[method-assign]
        stop = asyncio.Event()
        feeder = asyncio.create_task(feed(engine, rate, stop))
        prober = asyncio.create_task(lag_probe(lags, stop))
        pulls0, t0 = app.bridge.pulls, time.perf_counter()
        await asyncio.sleep(seconds)
        hz = (app.bridge.pulls - pulls0) / (time.perf_counter() - t0)
        for _ in range(kills):
            kill_ms.append(await time_kill(engine, pilot))
        stop.set()
        await asyncio.gather(feeder, prober)
    return {
        "frame_ms.p50": pct(frames, 0.5), "frame_ms.p99": pct(frames, 0.99),
        "loop_lag_ms.p50": pct(lags, 0.5), "loop_lag_ms.p99": pct(lags, 0.99),
        "kill_to_wire_ms.p50": pct(kill_ms, 0.5), "kill_to_wire_ms.p99": pct(kill_ms, 0.99),
        "refresh_hz": hz, "tick_to_order_ms.p99": math.nan,
    }


async def time_kill(engine: ScriptedEngine, pilot: object) -> float:
    """Press Ctrl+K and wait until the engine's ``kill`` runs; re-arm afterwards."""
    seen: list[float] = []
    original = engine.kill

    def kill(reason: str, by: str = "operator") -> None:
        seen.append(time.perf_counter())
        original(reason, by)

    engine.kill = kill  # type: ignore[method-assign]
    start = time.perf_counter()
    await pilot.press("ctrl+k")  # type: ignore[attr-defined]
    for _ in range(2000):  # kill() is synchronous: it has normally run before press() returns
        if seen:
            break
        await asyncio.sleep(0.001)
    engine.kill = original  # type: ignore[method-assign]
    engine.reset_kill("benchmark re-arm", confirm_same_day=True)
    await asyncio.sleep(0.05)
    return (seen[0] - start) * 1000 if seen else math.nan


def run(quick: bool = False) -> dict[str, float]:
    """Run the benchmark; keys ``console.*`` are from the 10,000 ticks/s run."""
    seconds, kills = (2.0, 5) if quick else (8.0, 20)
    results = {}
    for rate in (1_000, 10_000):
        figures = asyncio.run(measure(rate, seconds, kills))
        results.update({f"console.{rate}tps.{k}": v for k, v in figures.items()})
        if rate == 10_000:
            results.update({f"console.{k}": v for k, v in figures.items()})
    return results


if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv)
    print(json.dumps({k: round(v, 2) if not math.isnan(v) else None for k, v in out.items()}, indent=2))
