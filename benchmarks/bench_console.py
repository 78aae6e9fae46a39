"""Console benchmark: frame time, loop lag, Ctrl+K latency, refresh rate and tick-to-order.

Two modes; ``run(quick)`` (and the suite) uses the real one.

**Real** (default): the console headless at 200x60 (Textual's ``run_test``) around the real
``Engine`` connected through ib_async to an in-process ``SimGateway`` (manual clock, temp
journal, approvals off). Before the console starts, the engine buys 100 positions (one share in
each of 100 symbols) and rests 100 buy limits at half the bid. A feed prints trades at 1,000 and
10,000 ticks/s across 50 of those symbols through ``gw.control.set_price`` (the simulator encodes
the ticks, ib_async decodes them, the engine stores them). Measured at each rate:

- frame: the render work of one refresh, summed from one snapshot draw to the next:
  ``watch_snapshot`` (row models, line diffs, class toggles and their restyles), the screen's
  layout reflow and compositor refresh (``render_line`` of the dirty lines), and the encoding of
  the update into terminal bytes that a real terminal driver would write (the headless driver
  skips it, so the benchmark does it);
- loop lag: how late a 5 ms sleep wakes up;
- kill to wire: Ctrl+K pressed → the simulator receives the last of the 100 ``cancelOrder``
  frames (``kill_to_first_cancel_ms``: the first one; ``kill_press_to_engine_ms``: until the
  console has called ``engine.kill``), over repeated kill / reset / re-rest cycles.
  The engine cancels order by order (``kill_cancel_scope = own``) and ib_async sends at most 45
  requests a second (IB paces at 50), so the last of 100 cancels cannot leave before about one
  second; the first one is what the console and the engine add;
- refresh rate: snapshots drawn per second;
- tick to order: the simulator prints a trigger price on a symbol outside the feed → the
  simulator receives the engine's order (as ``bench_tick_to_order``), with the console running,
  and ``no_ui.*`` with the same engine, feed and book before the console starts.

**Scripted** (``--scripted``): the console around ``ScriptedEngine`` (100 symbols, positions and
orders) with a synthetic feed rewriting its quotes; no wire, so no tick-to-order.

Limitations: the simulator, the feed, the engine and the console share one event loop and one
core (as ``--sim`` does), so the feed's own cost is in every figure; the achieved tick rate is
reported next to the target (``ticks_per_s``).
Run: ``.venv/bin/python benchmarks/bench_console.py [--quick] [--scripted]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_trader.domain import Mode, OrderTicket, OrderType, Side  # noqa: E402
from tui_trader.domain.market import Quote  # noqa: E402
from tui_trader.engine.config import EngineConfig  # noqa: E402
from tui_trader.engine.engine import Engine  # noqa: E402
from tui_trader.engine.factory import make_broker  # noqa: E402
from tui_trader.risk.limits import RiskLimits  # noqa: E402
from tui_trader.sim import ManualClock, SimGateway  # noqa: E402
from tui_trader.sim.instruments import builtin_symbols, synthetic_symbols  # noqa: E402
from tui_trader.ui.app import TraderApp, create_app  # noqa: E402
from tui_trader.ui.demo import ScriptedEngine, normal_state  # noqa: E402
from tui_trader.ui.options import ConsoleOptions  # noqa: E402

RATES = (1_000, 10_000)
SIZE = (200, 60)
REFRESH_HZ = 10
TRIGGER = "AAPL"
"""Tick-to-order trigger symbol: it has a position but is outside the feed."""
N_BOOK = 100
N_FEED = 50
CLIENT_ID = 41


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
        self.recording = False
        self._depth = 0
        self._work = 0.0
        self._open = False

    def wrap(self, fn: Callable[..., Any], *, starts_frame: bool = False) -> Callable[..., Any]:
        """``fn`` timed into the current frame (``starts_frame``: it begins a new one)."""
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if starts_frame and self._depth == 0:
                self._close()
            self._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._work += time.perf_counter() - start
                    self._open = True
        return wrapper

    def _close(self) -> None:
        if self._open and self.recording:
            self.frames.append(self._work * 1000)
        self._work, self._open = 0.0, False

    def instrument(self, app: TraderApp) -> None:
        """Time the main screen's draw, layout and compositor refresh, and the terminal encoding."""
        main = app.main
        draw = self.wrap(main.watch_snapshot, starts_frame=True)
        main.watch_snapshot = lambda snapshot: draw(snapshot)  # type: ignore[method-assign]
        main._refresh_layout = self.wrap(main._refresh_layout)  # type: ignore[method-assign]
        main._compositor_refresh = self.wrap(main._compositor_refresh)  # type: ignore[method-assign]
        display = app._display

        def encode_and_display(screen: Any, renderable: Any) -> None:
            # The headless driver writes nothing; a terminal driver would encode the update.
            if hasattr(renderable, "render_segments"):
                renderable.render_segments(app.console)
            display(screen, renderable)

        app._display = self.wrap(encode_and_display)  # type: ignore[method-assign]


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """Record how late a 5 ms sleep wakes up."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(max((time.perf_counter() - start) * 1000 - 5.0, 0.0))


async def until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` every 5 ms; raise after ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"benchmark setup: {what} not reached within {timeout}s")
        await asyncio.sleep(0.005)


# -- real mode: the engine on the simulator --------------------------------------------------


class TriggerEngine(Engine):
    """The engine with a quote trigger: buy one share when the trigger price prints."""

    trigger = 0.0

    def quote_hook(self, quote: Quote) -> None:
        """Submit through the full order path when the trigger price prints."""
        super().quote_hook(quote)
        if quote.symbol == TRIGGER and quote.last == self.trigger:
            ticket = OrderTicket(TRIGGER, Side.BUY, 1, OrderType.MKT, strategy="bench")
            self.spawn(self.submit(ticket), "bench-submit")


@dataclass
class WireProbe:
    """Arrival times at the simulator of new orders and cancels (wraps its order engine)."""

    gw: SimGateway
    placed: list[float] = field(default_factory=list)
    cancels: list[float] = field(default_factory=list)

    def install(self) -> None:
        """Wrap ``place`` and ``cancel`` of the simulator's order engine."""
        engine = self.gw.engine
        place, cancel = engine.place, engine.cancel

        def timed_place(client_id: int, req: Any) -> None:
            self.placed.append(time.perf_counter())
            place(client_id, req)

        def timed_cancel(client_id: int, order_id: int, reason: str = "") -> None:
            self.cancels.append(time.perf_counter())
            cancel(client_id, order_id, reason)

        engine.place = timed_place  # type: ignore[method-assign]
        engine.cancel = timed_cancel  # type: ignore[method-assign]


def book_symbols() -> list[str]:
    """100 symbols: the built-in ones, then synthetic ones."""
    builtin = builtin_symbols()
    return builtin + synthetic_symbols(N_BOOK - len(builtin))


def engine_config(journal: Path, symbols: list[str]) -> EngineConfig:
    """Approvals off, wide limits, quotes that do not go stale in a manual-clock simulator."""
    limits = RiskLimits(max_order_quantity=100, require_quote=True, unknown_order_timeout_s=None,
                        disconnect_halt_after_s=None)
    return EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=journal, symbols=tuple(symbols),
                        limits=limits, market_data_stale_s=3600, warmup_bars=20)


@dataclass
class World:
    """The simulator, the engine with its book and the probes."""

    gw: SimGateway
    engine: TriggerEngine
    probe: WireProbe
    symbols: list[str]
    feed_symbols: list[str]
    kill_calls: list[float] = field(default_factory=list)
    """Ctrl+K pressed → ``engine.kill`` called (ms): the console's share of the kill path."""

    def working(self) -> int:
        """Working orders the engine tracks."""
        return len(self.engine.orders.working())

    async def rest_orders(self) -> None:
        """One buy limit at half the bid in every symbol; wait until all work at the simulator."""
        quotes = self.engine.market.quotes
        tickets = [OrderTicket(s, Side.BUY, 1, OrderType.LMT, limit_price=round(quotes[s].bid * 0.5, 2),
                               strategy="resting") for s in self.symbols]
        await asyncio.gather(*(self.engine.submit(t) for t in tickets))
        await until(lambda: sum(1 for o in self.gw.orders() if o.working) >= N_BOOK
                    and self.working() >= N_BOOK, "100 resting orders working")

    async def buy_book(self) -> None:
        """One share of every symbol at market: 100 positions."""
        tickets = [OrderTicket(s, Side.BUY, 1, OrderType.MKT, strategy="book") for s in self.symbols]
        await asyncio.gather(*(self.engine.submit(t) for t in tickets))
        await until(lambda: len(self.engine.snapshot().account.positions) >= N_BOOK, "100 positions")


@asynccontextmanager
async def world() -> AsyncIterator[World]:
    """A simulator with 100 symbols and a started engine holding 100 positions and 100 resting orders."""
    symbols = book_symbols()
    with tempfile.TemporaryDirectory() as tmp:
        async with SimGateway(port=0, clock=ManualClock(), seed=11, symbols=symbols, always_open=True) as gw:
            engine = TriggerEngine(engine_config(Path(tmp) / "journal.sqlite", symbols),
                                   make_broker(gw.host, gw.port, CLIENT_ID, timeout=10))
            await engine.start()
            try:
                await until(lambda: len(engine.market.quotes) >= N_BOOK, "quotes for 100 symbols")
                probe = WireProbe(gw)
                probe.install()
                w = World(gw, engine, probe, symbols, [s for s in symbols if s != TRIGGER][:N_FEED])
                await w.buy_book()
                await w.rest_orders()
                log(f"world ready: {len(engine.snapshot().account.positions)} positions, {w.working()} working")
                yield w
            finally:
                await engine.stop()


async def sim_feed(w: World, rate: int, stop: asyncio.Event, sent: list[int], dropped: list[int]) -> None:
    """Print trades at ``rate`` ticks/s across the feed symbols, in batches every 5 ms."""
    control, symbols = w.gw.control, w.feed_symbols
    base = {s: w.gw.quote(s).last for s in symbols}
    start = time.perf_counter()
    while not stop.is_set():
        # Never more than 20 ms of ticks in one batch: a feed that falls behind drops ticks
        # (the achieved rate says so) instead of blocking the loop to catch up.
        due = int((time.perf_counter() - start) * rate)
        if due - sent[0] > rate // 50:
            dropped[0] += due - sent[0] - rate // 50
            sent[0] = due - rate // 50
        for i in range(sent[0], due):
            sym = symbols[i % len(symbols)]
            control.set_price(sym, round(base[sym] * (1.0005 if i % 3 else 0.9995) + 0.01 * (i % 7), 2))
        sent[0] = max(sent[0], due)
        await asyncio.sleep(0.005)


async def tick_to_order(w: World, samples: int, seconds: float = 0.0, warmup: int = 3) -> list[float]:
    """Trigger prices on the trigger symbol; ms from the print to the order at the simulator.

    Takes at least ``samples`` samples and goes on for at least ``seconds``.
    """
    control, engine, probe = w.gw.control, w.engine, w.probe
    base = round(w.gw.quote(TRIGGER).last, 2)
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    i = -1
    while (i := i + 1) < samples + warmup or time.perf_counter() < deadline:
        control.set_price(TRIGGER, base)
        await asyncio.sleep(0.03)
        price = round(base + 0.5 + 0.01 * (i % 50), 2)
        engine.trigger = price
        seen = len(probe.placed)
        start = time.perf_counter()
        control.set_price(TRIGGER, price)
        try:
            await until(lambda: len(probe.placed) > seen, "triggered order", timeout=2.0)  # noqa: B023
        except TimeoutError:
            continue
        if i >= warmup:  # the first orders warm the journal's codecs: not steady state
            out.append((probe.placed[seen] - start) * 1000)
    engine.trigger = 0.0
    return out


@asynccontextmanager
async def feeding(w: World, rate: int) -> AsyncIterator[Callable[[], float]]:
    """Run the feed while the block runs; yields a function giving the achieved rate so far."""
    stop, sent, dropped = asyncio.Event(), [0], [0]
    task = asyncio.create_task(sim_feed(w, rate, stop, sent, dropped))
    start = time.perf_counter()
    try:
        yield lambda: (sent[0] - dropped[0]) / (time.perf_counter() - start)
    finally:
        stop.set()
        await task


async def kill_cycle(w: World, app: TraderApp, pilot: Any) -> tuple[float, float]:
    """Ctrl+K → (ms to the first, ms to the last of the cancels at the simulator); re-arm and re-rest.

    NaNs when the cancels did not all arrive within 10 s (logged; the cycle still re-arms).
    """
    probe, engine = w.probe, w.engine
    expected = w.working()
    probe.cancels.clear()
    called: list[float] = []
    kill = engine.kill

    def timed_kill(reason: str, by: str = "operator") -> None:
        called.append(time.perf_counter())
        kill(reason, by)

    engine.kill = timed_kill  # type: ignore[method-assign]
    start = time.perf_counter()
    await pilot.press("ctrl+k")
    try:
        await until(lambda: len(probe.cancels) >= expected and not w.working(), "cancels", 10.0)
        first, last = (probe.cancels[0] - start) * 1000, (probe.cancels[expected - 1] - start) * 1000
        w.kill_calls.append((called[0] - start) * 1000)
    except TimeoutError:
        log(f"kill cycle: {len(probe.cancels)} of {expected} cancels at the simulator, "
            f"{w.working()} still working after 10 s")
        first = last = math.nan
        await until(lambda: not w.working(), "orders cancelled", 30.0)
    finally:
        del engine.kill
    await until(lambda: app.main.snapshot is not None and app.main.snapshot.kill_engaged, "HALTED drawn")
    await asyncio.sleep(0.2)  # let the verification finish before the reset
    engine.reset_kill("benchmark re-arm", confirm_same_day=True)
    await w.rest_orders()
    # ib_async sends at most 45 requests a second (IB paces at 50): let the re-rest's window
    # pass so the next kill starts with the budget an operator would normally have.
    await asyncio.sleep(1.1)
    return first, last


async def measure_real(w: World, app: TraderApp, pilot: Any, rate: int, samples: int, seconds: float,
                       kills: int) -> dict[str, float]:
    """One rate with the console running: a steady phase, then kill cycles."""
    meter: FrameMeter = app.frame_meter  # type: ignore[attr-defined]
    lags: list[float] = []
    async with feeding(w, rate) as achieved:
        await asyncio.sleep(0.5)  # the feed and the panes reach steady state
        stop = asyncio.Event()
        prober = asyncio.create_task(lag_probe(lags, stop))
        meter.frames.clear()
        meter.recording = True
        pulls0, t0 = app.bridge.pulls, time.perf_counter()
        t2o = await tick_to_order(w, samples, seconds)
        hz = (app.bridge.pulls - pulls0) / (time.perf_counter() - t0)
        meter.recording = False
        stop.set()
        await prober
        ticks = achieved()
        log(f"{rate} ticks/s with the console: {len(meter.frames)} frames, frame p99 {pct(meter.frames, 0.99):.1f} ms,"
            f" lag p99 {pct(lags, 0.99):.1f} ms, t2o p99 {pct(t2o, 0.99):.1f} ms, {ticks:.0f} ticks/s")
        cycles, w.kill_calls = [], []
        for _ in range(kills):
            cycles.append(await kill_cycle(w, app, pilot))
            log(f"kill cycle: first cancel {cycles[-1][0]:.1f} ms, last {cycles[-1][1]:.1f} ms")
    done = [c for c in cycles if not math.isnan(c[1])]
    return {**quantiles("frame_ms", meter.frames), **quantiles("loop_lag_ms", lags),
            **quantiles("kill_to_wire_ms", [c[1] for c in done]),
            **quantiles("kill_to_first_cancel_ms", [c[0] for c in done]),
            **quantiles("kill_press_to_engine_ms", w.kill_calls),
            "kill_cycles_failed": float(kills - len(done)),
            "refresh_hz": hz, **quantiles("tick_to_order_ms", t2o), "ticks_per_s": ticks,
            "frames": float(len(meter.frames))}


async def run_real(quick: bool) -> dict[str, float]:
    """Every rate without the console (tick-to-order only), then with it."""
    samples, seconds, kills = (25, 4.0, 5) if quick else (150, 15.0, 20)
    out: dict[str, float] = {}
    async with world() as w:
        for rate in RATES:
            async with feeding(w, rate):
                await asyncio.sleep(0.5)
                t2o = await tick_to_order(w, samples, seconds)
            out.update({f"console.{rate}tps.no_ui.{k}": v for k, v in quantiles("tick_to_order_ms", t2o).items()})
            log(f"{rate} ticks/s without the console: tick-to-order p99 {pct(t2o, 0.99):.2f} ms")
        w.engine.start = _already_started  # type: ignore[method-assign]
        app = create_app(w.engine)
        app.options = app.main.options = ConsoleOptions(refresh_hz=REFRESH_HZ)
        async with app.run_test(size=SIZE, notifications=True) as pilot:  # fills toast, as in use
            app.frame_meter = FrameMeter()  # type: ignore[attr-defined]
            app.frame_meter.instrument(app)  # type: ignore[attr-defined]
            await until(lambda: app.main.snapshot is not None, "first snapshot drawn")
            for rate in RATES:
                figures = await measure_real(w, app, pilot, rate, samples, seconds, kills)
                out.update({f"console.{rate}tps.{k}": v for k, v in figures.items()})
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


async def measure_scripted(rate: int, seconds: float, kills: int) -> dict[str, float]:
    """One run at ``rate`` ticks/s around the scripted engine."""
    engine = ScriptedEngine(normal_state(n_symbols=100, n_positions=100, n_orders=100))
    app = create_app(engine)
    app.options = app.main.options = ConsoleOptions(refresh_hz=REFRESH_HZ)
    meter, lags, kill_ms = FrameMeter(), [], []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        meter.instrument(app)
        meter.recording = True
        stop = asyncio.Event()
        feeder = asyncio.create_task(scripted_feed(engine, rate, stop))
        prober = asyncio.create_task(lag_probe(lags, stop))
        pulls0, t0 = app.bridge.pulls, time.perf_counter()
        await asyncio.sleep(seconds)
        hz = (app.bridge.pulls - pulls0) / (time.perf_counter() - t0)
        meter.recording = False
        for _ in range(kills):
            kill_ms.append(await time_scripted_kill(engine, pilot))
        stop.set()
        await asyncio.gather(feeder, prober)
    return {**quantiles("frame_ms", meter.frames), **quantiles("loop_lag_ms", lags),
            **quantiles("kill_to_wire_ms", kill_ms), "refresh_hz": hz, "tick_to_order_ms.p99": math.nan}


async def time_scripted_kill(engine: ScriptedEngine, pilot: Any) -> float:
    """Press Ctrl+K and wait until the engine's ``kill`` runs; re-arm afterwards."""
    seen: list[float] = []
    original = engine.kill

    def kill(reason: str, by: str = "operator") -> None:
        seen.append(time.perf_counter())
        original(reason, by)

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
