"""Where a main-screen frame goes, in CPU time: a profiling aid for ``bench_console --scripted``.

On a shared machine the benchmark's wall-clock frames carry whatever else runs on the cores;
this runs the same scene (``ScriptedEngine`` with 100 symbols, positions and orders, live
snapshots, a synthetic feed, 200x60, 10 Hz) and reports the *thread CPU time* of each part of a
frame: ``draw`` (``watch_snapshot``: row models and diffs), each pane's ``show``, the layout
reflows, the compositor refresh (``render_line`` of the dirty lines and the chops), and the
terminal encoding the headless driver skips. Also the cyclic collector's passes (CPU ms and
generation), and per widget what the compositor passes rendered: the lines it had to paint
again (not in the widget's line cache) and the CPU of its ``render_lines`` (a widget with no
new line still costs its cached lines). ``--profile [sort]`` adds a cProfile of the frame
work only.

``--real`` runs the console around the engine in its child process instead (``bench_console``'s
real mode: the simulator's feed, tick-to-order triggers and their fills, the proxy's snapshot receive and delta apply).

``--worst N`` dumps the N frames with the most CPU: each one's parts, what it painted per widget,
the collector passes inside it and what changed in the snapshot it drew (orders, fills,
positions); ``--frame-profiles`` adds a cProfile of each of those frames alone (every frame is
then profiled, so its CPU is inflated: rank and shares are what count).

Run: ``.venv/bin/python benchmarks/profile_console.py [seconds] [ticks_per_s] [--real] [--profile [tottime]]
[--worst N [--frame-profiles]]``.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import heapq
import io
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_console import (  # noqa: E402
    SIZE,
    console_for,
    feeding,
    live_snapshots,
    pct,
    scripted_feed,
    until,
    world,
)

from tui_trader.ui.app import create_app  # noqa: E402
from tui_trader.ui.demo import normal_state  # noqa: E402
from tui_trader.ui.options import ConsoleOptions  # noqa: E402
from tui_trader.ui.screens import main as main_screen  # noqa: E402
from tui_trader.ui.scripted_engine import ScriptedEngine  # noqa: E402

PANES = ("StatusBar", "WatchlistPane", "PositionsPane", "OrdersPane", "PnLPane", "ConnectivityPane",
         "HealthPane", "AlertsPane")


@dataclass(order=True)
class Frame:
    """One frame's CPU and what it was made of (``--worst``)."""

    cpu: float
    seq: int
    parts: dict[str, float] = field(default_factory=dict, compare=False)
    painted: dict[str, int] = field(default_factory=dict, compare=False)
    """Lines painted again per widget."""
    gcs: list[int] = field(default_factory=list, compare=False)
    """Generations of the collector passes inside the frame."""
    changes: str = field(default="", compare=False)
    """What the drawn snapshot changed against the previous one."""
    profile: cProfile.Profile | None = field(default=None, compare=False)


def changes(before: Any, after: Any) -> str:
    """What ``after`` (a snapshot) changed against ``before``: orders, positions, alerts, fills."""
    if before is None or after is None:
        return "first"
    out = []
    old = {o.order_ref: o for o in before.orders}
    new_orders = [o for o in after.orders if o.order_ref not in old]
    moved = [o for o in after.orders if o.order_ref in old and old[o.order_ref] is not o]
    if new_orders:
        out.append(f"+{len(new_orders)} orders")
    if moved:
        out.append(f"{len(moved)} orders changed (" + ",".join(sorted({o.status.value for o in moved})) + ")")
    out.append(f"{len(after.orders)} orders")
    held0 = {s for s, p in before.account.positions.items() if not p.is_flat}
    held1 = {s for s, p in after.account.positions.items() if not p.is_flat}
    if held0 != held1:
        out.append(f"positions {len(held0)}->{len(held1)}")
    qty_changed = [s for s in held1 & held0
                   if before.account.positions[s].quantity != after.account.positions[s].quantity]
    if qty_changed:
        out.append(f"{len(qty_changed)} position qty changed")
    return ", ".join(out)


class CpuMeter:
    """CPU ms per call of wrapped functions; a frame is the CPU from one draw to the next."""

    def __init__(self, profile: cProfile.Profile | None, worst: int = 0, frame_profiles: bool = False) -> None:
        self.parts: dict[str, list[float]] = {}
        self.frames: list[float] = []
        self.collections: list[tuple[float, int]] = []
        self.in_frame = 0
        """Collections that ran inside a frame's measured work (the rest ran between frames)."""
        self.renders: dict[str, list[float]] = {}
        """Per widget (id or class): [render_lines calls, lines painted again, CPU ms]."""
        self.passes = 0
        self.profile = profile
        self.worst = worst
        """How many of the costliest frames to keep (each frame profiled on its own when > 0)."""
        self.kept: list[Frame] = []
        """A min-heap of the ``worst`` costliest frames."""
        self.frame_profiles = frame_profiles
        """Profile every frame on its own (kept for the worst ones; inflates every frame's CPU)."""
        self.recording = False
        self.current = Frame(0.0, 0)
        self._last_snapshot: Any = None
        self._depth = 0
        self._frame = 0.0
        self._gc_start = 0.0

    def wrap(self, name: str, fn: Callable[..., Any], *, starts_frame: bool = False) -> Callable[..., Any]:
        """``fn`` timed under ``name``; outermost calls add to the frame."""
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if starts_frame and self._depth == 0:
                if self._frame:
                    self.frames.append(self._frame)
                    self._close_frame()
                self._frame = 0.0
                self._open_frame(args[0] if args else None)
            self._depth += 1
            profile = self.current.profile or self.profile
            if profile and self._depth == 1:
                profile.enable()
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = (time.thread_time() - start) * 1000
                self._depth -= 1
                if profile and self._depth == 0:
                    profile.disable()
                self.parts.setdefault(name, []).append(spent)
                self.current.parts[name] = self.current.parts.get(name, 0.0) + spent
                if self._depth == 0:
                    self._frame += spent
        return wrapper

    def _open_frame(self, snapshot: Any) -> None:
        """A new frame begins with the draw of ``snapshot``."""
        what = changes(self._last_snapshot, snapshot) if self.worst else ""
        profile = cProfile.Profile() if self.frame_profiles and self.recording else None
        self.current = Frame(0.0, len(self.frames), changes=what, profile=profile)
        self._last_snapshot = snapshot

    def _close_frame(self) -> None:
        """Keep the frame just measured if it is among the ``worst`` costliest."""
        if not self.worst or not self.recording:
            return
        frame = self.current
        frame.cpu = self._frame
        if len(self.kept) < self.worst:
            heapq.heappush(self.kept, frame)
        elif frame.cpu > self.kept[0].cpu:
            heapq.heapreplace(self.kept, frame)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        """``gc.callbacks`` hook."""
        if phase == "start":
            self._gc_start = time.thread_time()
            self.in_frame += self._depth > 0
            if self._depth > 0:
                self.current.gcs.append(info["generation"])
        else:
            self.collections.append(((time.thread_time() - self._gc_start) * 1000, info["generation"]))

    def render_lines(self, widget: Any, crop: Any, render: Callable[[Any], Any]) -> Any:
        """``widget.render_lines(crop)``, counted: lines not in its cache and the CPU spent."""
        cache = widget._styles_cache  # noqa: SLF001 - Textual's per-widget line cache
        painted = sum(1 for y in crop.line_range if y in cache._dirty_lines or y not in cache._cache)  # noqa: SLF001
        start = time.thread_time()
        try:
            return render(crop)
        finally:
            entry = self.renders.setdefault(widget.id or type(widget).__name__, [0, 0, 0.0])
            entry[0] += 1
            entry[1] += painted
            entry[2] += (time.thread_time() - start) * 1000
            name = widget.id or type(widget).__name__
            if painted:
                self.current.painted[name] = self.current.painted.get(name, 0) + painted

    def reset(self) -> None:
        """Forget what was measured so far (warm-up)."""
        self.renders.clear()
        self.passes = 0
        self.parts.clear()
        self.frames.clear()
        self.collections.clear()
        self.in_frame = 0
        self.kept.clear()
        self.recording = True
        self._frame = 0.0


def instrument(app: Any, meter: CpuMeter) -> None:
    """Wrap the main screen's draw, each pane's ``show``, layout, compositor and encoding."""
    main = app.main
    for name in PANES:
        pane = main.part(getattr(main_screen, name))
        pane.show = meter.wrap(name, pane.show)
    draw = meter.wrap("draw", main.watch_snapshot, starts_frame=True)
    main.watch_snapshot = lambda snapshot: draw(snapshot)
    main._refresh_layout = meter.wrap("layout", main._refresh_layout)
    main._compositor_refresh = meter.wrap("compositor", main._compositor_refresh)
    display = app._display

    def encode_and_display(screen: Any, renderable: Any) -> None:
        if hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)
        display(screen, renderable)

    app._display = meter.wrap("encode", encode_and_display)
    compositor_refresh = main._compositor_refresh

    def counted_refresh() -> None:
        meter.passes += 1
        compositor_refresh()

    main._compositor_refresh = counted_refresh
    for widget in main.walk_children(with_self=True):
        render = widget.render_lines
        widget.render_lines = partial(meter.render_lines, widget, render=render)


async def measure(seconds: float, rate: int, meter: CpuMeter) -> None:
    """The scripted scene at ``rate`` ticks/s for ``seconds`` after a warm-up."""
    engine = ScriptedEngine(normal_state(n_symbols=100, n_positions=100, n_orders=100))
    engine.snapshot = live_snapshots(engine)  # type: ignore[method-assign]
    app = create_app(engine)
    app.options = app.main.options = ConsoleOptions(refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        instrument(app, meter)
        stop = asyncio.Event()
        feeder = asyncio.create_task(scripted_feed(engine, rate, stop))
        await until(lambda: app.main.snapshot is not None, "first snapshot drawn")
        await asyncio.sleep(0.5)
        profile = meter.profile
        if profile:
            meter.profile = None
        meter.reset()
        meter.profile = profile
        gc.callbacks.append(meter.on_gc)
        await asyncio.sleep(seconds)
        gc.callbacks.remove(meter.on_gc)
        stop.set()
        await feeder


async def measure_real(seconds: float, rate: int, meter: CpuMeter) -> None:
    """As :func:`measure`, around the engine in its child process (``bench_console``'s world)."""
    async with world("own") as w:
        app = console_for(w)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await pilot.pause()
            instrument(app, meter)
            await until(lambda: app.main.snapshot is not None, "first snapshot drawn")
            async with feeding(w, rate):
                await asyncio.sleep(1.0)
                profile = meter.profile
                meter.profile = None
                meter.reset()
                meter.profile = profile
                gc.callbacks.append(meter.on_gc)
                # As the benchmark: trigger prices → orders → fills while the frames are measured.
                await w.engine.bench_tick_to_order(max(int(seconds * 6), 3), seconds)
                gc.callbacks.remove(meter.on_gc)
            app.exit()


def report(meter: CpuMeter) -> None:
    """Print the frame CPU quantiles, each part's, the collector's passes and the profile."""
    f = meter.frames
    print(f"frames {len(f)}: cpu p50 {pct(f, 0.5):.2f} ms, p99 {pct(f, 0.99):.2f} ms, max {max(f):.2f} ms")
    for name, values in meter.parts.items():
        print(f"  {name:17s} calls {len(values):4d}  mean {sum(values) / len(values):6.2f}"
              f"  p50 {pct(values, 0.5):6.2f}  p99 {pct(values, 0.99):6.2f}  max {max(values):6.2f}")
    by_gen = {g: [ms for ms, gen in meter.collections if gen == g] for g in (0, 1, 2)}
    print("  gc " + ", ".join(f"gen{g}: {len(v)} passes, max {max(v, default=0):.2f} ms" for g, v in by_gen.items())
          + f"; {meter.in_frame} inside frames")
    passes = max(meter.passes, 1)
    print(f"compositor passes {meter.passes}; per pass, by widget: render_lines calls, lines painted again, CPU ms")
    for name, (calls, painted, cpu) in sorted(meter.renders.items(), key=lambda kv: -kv[1][2]):
        print(f"  {name:22s} {calls / passes:4.1f}  {painted / passes:5.1f}  {cpu / passes:5.2f}")
    report_worst(meter)
    if meter.profile:
        stats = pstats.Stats(meter.profile)
        stats.sort_stats(sys.argv[sys.argv.index("--profile") + 1] if sys.argv[-1] != "--profile" else "cumulative")
        stats.print_stats(40)


def report_worst(meter: CpuMeter) -> None:
    """The costliest frames (``--worst``), worst first: parts, painted lines, changes, top functions."""
    for frame in sorted(meter.kept, reverse=True):
        parts = ", ".join(f"{k} {v:.2f}" for k, v in frame.parts.items() if v >= 0.2)
        painted = ", ".join(f"{k} {v}" for k, v in sorted(frame.painted.items(), key=lambda kv: -kv[1]))
        print(f"\n== frame #{frame.seq}: cpu {frame.cpu:.2f} ms | {parts}\n   changes: {frame.changes}"
              f"\n   painted: {painted}\n   gc inside: {frame.gcs}")
        if frame.profile is not None:
            out = io.StringIO()
            stats = pstats.Stats(frame.profile, stream=out)
            stats.sort_stats("tottime").print_stats(15)
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main() -> None:
    """Parse ``[seconds] [ticks_per_s] [--profile [sort]]`` and run."""
    numbers = [a for a in sys.argv[1:3] if a.replace(".", "").isdigit()]
    seconds = float(numbers[0]) if numbers else 8.0
    rate = int(numbers[1]) if len(numbers) > 1 else 10_000
    worst = int(sys.argv[sys.argv.index("--worst") + 1]) if "--worst" in sys.argv else 0
    meter = CpuMeter(cProfile.Profile() if "--profile" in sys.argv else None, worst, "--frame-profiles" in sys.argv)
    asyncio.run((measure_real if "--real" in sys.argv else measure)(seconds, rate, meter))
    report(meter)


if __name__ == "__main__":
    main()
