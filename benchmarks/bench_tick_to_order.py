"""Tick-to-order latency: our engine against a bare ib_async client, in the same run.

From the simulator writing the triggering tick to the simulator receiving the order. Both clients
are connected to the same simulator at once, under the same background load, and take turns:
even samples trigger the engine, odd samples the bare client. The engine goes through its full
order path (quote hook → risk gate → SENDING appended to the journal's sending log → broker), entered the way
strategy signals enter it (``submit_nowait`` from the market-data handler); the bare client calls
``placeOrder`` straight from its ticker handler. Each fires when its trigger symbol prints a new price
at or above its trigger price (:class:`Crossing`). Background ticks on other symbols load both
clients at 0, 1,000 and 10,000 ticks per second.

**Each client runs in a process of its own, and the simulator in this one**, as in paper and live
trading: IB Gateway is a process of its own, and so is the engine (under the console too). Until
2026-11-22 all three shared one event loop (``--in-loop``, the shape of ``--sim``, where the engine
embeds the simulator). That shape charges a client for whatever it does after its order is on the
wire, because the simulator cannot read the order until the client's step is over: the bare client
for ib_async's own bookkeeping after the write (``IB.placeOrder`` builds and formats its ``Trade``),
the engine for that and for what it publishes after the wire; and both for the simulator's work on
the other client's traffic. A gateway in its own process reads the order when it arrives.

Why turns and not one tick for both: when both react to the same tick, whichever is read second
also waits for the first one's order to be processed (by the simulator, and its fill messages
decoded by both clients) — work that belongs to neither client's path. Alternating keeps each
sample to one client's own latency. For the same reason each client triggers on its own symbol
(the engine on AAPL, the bare client on INTC) that the other does not subscribe to.

After start each process freezes its heap (``gc.freeze``), as the engine's process and the headless
runner do: a full collection would otherwise walk everything start-up built; from then on
collections run from a loop timer between steps (``tui_trader.engine.collector``). The policy is
the process's, so the bare client's process has it too.

Limitations: the background tick generator runs in the simulator's process and competes with the
simulator for its loop; the achieved background rate is reported next to the target. On a machine
with two cores, three busy processes (at 10,000 ticks/s) preempt one another, which shows in both
clients' p99.

Run: ``python -m benchmarks.bench_tick_to_order [--quick] [--in-loop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ib_async

from tui_trader.broker.base import Broker
from tui_trader.config.sections import KillSwitchSettings, RiskSettings
from tui_trader.domain import Mode, OrderTicket, OrderType, Quote, Side
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.engine.runner import freeze_startup_heap, thaw_startup_heap
from tui_trader.risk.limits import RiskLimits, TriggerAction
from tui_trader.sim import ManualClock, SimGateway

SYMBOL = "AAPL"
"""The engine's trigger symbol."""
BARE_SYMBOL = "INTC"
"""The bare client's trigger symbol (the engine does not subscribe to it, nor the bare client to AAPL)."""
BACKGROUND = ("MSFT", "NVDA", "SPY", "QQQ", "AMZN", "GOOGL", "META", "TSLA", "AMD", "JPM")
ENGINE_CLIENT, BARE_CLIENT = 31, 32
RATES = (0, 1_000, 10_000)
WARMUP = 5
TRIGGER_STEP = 0.5
"""A sample prints its client's trigger symbol this far (or a few cents more) above its base price."""
PAUSE_S = (0.04, 0.06)
"""Between samples, drawn uniformly from this range (seeded: :func:`pauses`). ib_async throttles a
client above 45 requests/s (IB's limit is 50) by holding messages back for up to a second; one order
per sample every ~25 ms came close enough to that to put ~0.45 s outliers into either client's p99.
At 40–60 ms both stay well below it. Jittered rather than a fixed 50 ms, so that no periodic work
(the journal's 50 ms batches, the collector's 10 ms timer, the engine's monitors) keeps landing in
one client's samples rather than the other's (see also :func:`quiet`)."""
SEED = 20261121
SCRIPT = Path(__file__).resolve()
"""This module: each client process runs it with ``--client``."""
Stamps = tuple[int, float, float, float]
"""One sample's client id and ``perf_counter`` times: before ``set_price``, after it, order received."""
START_S = 60.0
"""How long a client process may take to connect and subscribe."""
SAMPLE_WAIT_S = 10.0
"""How long a sample waits for its order. A later order is a missed sample; one that comes sooner is
measured, however late (a stalled host's seconds belong in the p99 of the client it stalled)."""
SAMPLES = {"full": 600, "quick": 30}
"""Samples per client and rate in one repetition. A p99 of 300 samples is their third-largest value: two host
stalls more or less on one client moved it by milliseconds, and the engine/bare ratio of the median p99 of three
repetitions swung between 0.6 and 2.1 on one host and code (``benchmarks/README.md``, sessions 6–21). At 600 it is
the sixth largest: the same goal, estimated from twice the samples (≈ 3.6 min a repetition)."""
MISSED_IN_A_ROW = 3
"""Missed samples in a row that end the run: a client is gone, not slow."""


@dataclass
class Probe:
    """Receive time at the simulator of the next new order from one client."""

    client_id: int
    received: float = 0.0
    received_cpu: float = 0.0
    """This process's CPU time (``process_time``) at receipt, stamped after ``received``."""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def instrument(self, gw: SimGateway) -> None:
        """Wrap the simulator's placeOrder handler to time the expected order's arrival."""
        place = gw.engine.place

        def timed(client_id: int, req: object) -> None:
            if client_id == self.client_id and not self.done.is_set():
                self.received = time.perf_counter()
                self.received_cpu = time.process_time()
                self.done.set()
            place(client_id, req)  # type: ignore[arg-type]

        gw.engine.place = timed  # type: ignore[method-assign]


class Crossing:
    """True once per trigger print: for a price at or above ``level`` other than the one it last fired on
    (any price after one below the level).

    Each sample prints its client a trigger price other than its last one (:func:`turns`). A client that
    has fallen more than a pause behind reads the base print and the trigger in one go, and ib_async
    reports the ticker once, at the later price. Firing only on a rise from below, both clients then
    missed every sample while behind (three in a row ended runs on a loaded host; reproduced with four
    CPU hogs on two cores); now they fire, late, and the lateness is measured.
    """

    def __init__(self, level: float = math.inf) -> None:
        self.level = level
        self._fired_on: float | None = None

    def __call__(self, price: float) -> bool:
        if price >= self.level:
            if price == self._fired_on:
                return False
            self._fired_on = price
            return True
        if price < self.level:  # not NaN (no price yet)
            self._fired_on = None
        return False


class TriggerEngine(Engine):
    """The engine with a quote trigger: a buy of one share when :data:`SYMBOL` crosses ``trigger``."""

    def __init__(self, config: EngineConfig, broker: Broker, trigger: float) -> None:
        super().__init__(config, broker)
        self.trigger = Crossing(trigger)

    def quote_hook(self, quote: Quote) -> None:
        """Submit through the full order path when the trigger price prints."""
        if quote.symbol == SYMBOL and self.trigger(quote.last):
            self.fire()

    def fire(self) -> None:
        """The order a strategy's signal would submit."""
        self.submit_nowait(OrderTicket(SYMBOL, Side.BUY, 1, OrderType.MKT, strategy="bench"))


E = TypeVar("E", bound=TriggerEngine)


BENCH_WIDENED = dict(
    max_order_quantity=10, max_position_notional=1e9, max_position_quantity=None, max_gross_exposure=1e6,
    max_leverage=1e6, max_orders_per_second=1_000, max_orders_per_minute=60_000, max_daily_trades=1_000_000,
    max_daily_trades_per_strategy=1_000_000, duplicate_window_s=0.001,
    unknown_order_timeout_s=None, disconnect_halt_after_s=None, position_mismatch_action=TriggerAction.ALERT,
)
"""The shipped risk defaults (``config.example.toml``), widened only where the benchmark's own traffic
would trip them: it buys one share ~10 times a second for minutes, and the bare client buys on the same
simulated account, so the broker's position is always larger than the engine's (a mismatch that must not
halt the engine mid-run). Every check the defaults enable is still evaluated on every order — the
duplicate check scans the recent orders, exposure and leverage build the account snapshot — so the engine
pays what a default-config user pays."""


def bench_limits(**wider: Any) -> RiskLimits:
    """The risk limits a benchmarked engine runs with (see :data:`BENCH_WIDENED`), ``wider`` on top.

    The simulator trades around the clock, so the trading-hours checks are off as ``--sim`` has them.
    """
    return RiskLimits.from_config(RiskSettings().model_dump(), KillSwitchSettings().model_dump(),
                                  require_liquid_hours=False, no_entry_before_close_min=None,
                                  no_entry_after_open_min=None, **{**BENCH_WIDENED, **wider})


def _engine_config(journal: Path) -> EngineConfig:
    return EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=journal,
                        symbols=(SYMBOL, *BACKGROUND), limits=bench_limits(), market_data_stale_s=3600)


async def _start_engine(cls: type[E], host: str, port: int, trigger: float, journal: Path,
                        in_process: bool = False) -> E:
    """``in_process``: the simulator runs in this process (``--in-loop``, as ``--sim`` has it)."""
    broker = make_broker(host, port, ENGINE_CLIENT, timeout=5, gateway_in_process=in_process)
    engine = cls(_engine_config(journal), broker, trigger)
    await engine.start()
    return engine


def _place(ib: ib_async.IB, contract: ib_async.Contract) -> None:
    ib.placeOrder(contract, ib_async.MarketOrder("BUY", 1))


async def _bare_client(host: str, port: int, trigger: float,
                       place: Callable[[ib_async.IB, ib_async.Contract], None] = _place) -> ib_async.IB:
    """A plain ib_async client that calls ``place`` from its ticker handler when its symbol crosses ``trigger``."""
    ib = ib_async.IB()
    await ib.connectAsync(host, port, clientId=BARE_CLIENT, timeout=5, raiseSyncErrors=True)
    contracts = await ib.qualifyContractsAsync(*(ib_async.Stock(s, "SMART", "USD")
                                                 for s in (BARE_SYMBOL, *BACKGROUND)))
    qualified = [c for c in contracts if isinstance(c, ib_async.Contract)]
    if len(qualified) != len(contracts):
        raise RuntimeError(f"the simulator did not qualify every contract: {contracts}")
    target = qualified[0]
    for contract in qualified:
        ib.reqMktData(contract)
    crossed = Crossing(trigger)

    def on_tickers(tickers: set[ib_async.Ticker]) -> None:
        for ticker in tickers:
            if ticker.contract is target and crossed(ticker.last):
                place(ib, target)

    ib.pendingTickersEvent += on_tickers
    return ib


BACKLOG_S = 0.05
"""The background generator catches up at most this much of a late wake-up; beyond it ticks are skipped."""


async def _background(gw: SimGateway, rate: int, stop: asyncio.Event, count: list[int]) -> None:
    """``rate`` ticks/s on the background symbols, written about every 5 ms, counted in ``count[0]``.

    Paced by the clock, not by the sleeps: each wake-up writes the ticks due since the start.
    Writing a fixed batch per 5 ms sleep fell short of the rate by the time the writes and the
    late wake-ups took (860 of 1,000 ticks/s and 6,600 of 10,000 on 2026-11-22).
    """
    if rate == 0:
        return
    loop = asyncio.get_running_loop()
    prices = {s: gw.quote(s).last for s in BACKGROUND}
    start, sent, most = loop.time(), 0, max(int(rate * BACKLOG_S), 1)
    while not stop.is_set():
        due = int((loop.time() - start) * rate)
        skipped = max(due - sent - most, 0)
        start += skipped / rate  # a stall longer than the backlog is not made up in one burst
        for i in range(sent, due - skipped):
            sym = BACKGROUND[i % len(BACKGROUND)]
            gw.control.set_price(sym, prices[sym] + (0.01 if i % 2 else -0.01))
        sent = max(sent, due - skipped)
        count[0] = sent
        await asyncio.sleep(1 / 200)


@dataclass
class Measured:
    """One level's samples by client: wall-clock latencies (ms), the same in this process's CPU time,
    and how many of its samples brought no order within :data:`SAMPLE_WAIT_S` (left out of the latencies)."""

    wall: dict[int, list[float]] = field(default_factory=lambda: {ENGINE_CLIENT: [], BARE_CLIENT: []})
    cpu: dict[int, list[float]] = field(default_factory=lambda: {ENGINE_CLIENT: [], BARE_CLIENT: []})
    missed: dict[int, int] = field(default_factory=lambda: {ENGINE_CLIENT: 0, BARE_CLIENT: 0})


async def _measure(gw: SimGateway, samples: int, after: Callable[[], Awaitable[None]] | None = None,
                   stamps: list[Stamps] | None = None) -> Measured:
    """Each client's latencies, wall-clock and in this process's CPU time, and its missed samples.

    ``after`` runs after each sample, outside the timed window. The CPU-time latency (the wall one
    less the time this process was not running) means something only when the clients share this
    process (``--in-loop``). Both stamps sit outside the timed window. ``stamps`` collects each
    measured sample's ``perf_counter`` times (:data:`Stamps`, for :mod:`benchmarks.timeline_processes`).
    """
    measured = Measured()
    pause = pauses()
    missed = 0
    for i, (client, symbol, price) in enumerate(turns(gw, samples)):
        await asyncio.sleep(next(pause))
        probe = Probe(client)
        probe.instrument(gw)
        c0 = time.process_time()
        t0 = time.perf_counter()
        gw.control.set_price(symbol, price)
        written = time.perf_counter() if stamps is not None else 0.0
        try:
            await asyncio.wait_for(probe.done.wait(), SAMPLE_WAIT_S)
            missed = 0
        except TimeoutError:
            missed += 1
            measured.missed[client] += 1
            if missed == MISSED_IN_A_ROW:
                raise RuntimeError(f"no order for {missed} samples in a row (last: client {client}, {symbol} "
                                   f"at {price}): a client stopped answering") from None
            continue
        finally:
            gw.engine.place = type(gw.engine).place.__get__(gw.engine)  # type: ignore[method-assign]
        if after is not None:
            await after()
        if i >= 2 * WARMUP:  # the first orders build the journal's codecs: not steady state
            measured.wall[client].append((probe.received - t0) * 1000)
            if stamps is not None:
                stamps.append((client, t0, written, probe.received))
            measured.cpu[client].append((probe.received_cpu - c0) * 1000)
    return measured


async def quiet(engine: Engine) -> None:
    """After a sample, outside the timed window: commit what the engine's journal holds (``--in-loop``).

    The journal commits a batch 50 ms after the first event of it; left alone in a loop shared with the
    bare client, the batch of the engine's order (≈0.3 ms) ran at about the time the bare client's next
    sample started, and was counted in 4–12 % of the bare client's samples (``timeline_tick_to_order``).
    In a process of its own the engine's batches delay nobody else.
    """
    while engine.orders.working():  # its fill and commission come next
        engine.order_changed.clear()
        try:
            await asyncio.wait_for(engine.order_changed.wait(), 1.0)
        except TimeoutError:
            break
    engine.settle()  # what the engine publishes after the wire, now
    if engine.journal is not None:
        await engine.journal.flush()


def pauses() -> Iterator[float]:
    """The pauses before each sample (see :data:`PAUSE_S`), the same sequence every run."""
    rng = random.Random(SEED)
    while True:
        yield rng.uniform(*PAUSE_S)


def base_prices(gw: SimGateway) -> dict[str, float]:
    """Where each trigger symbol is put back before a sample."""
    return {s: round(gw.quote(s).last, 2) for s in (SYMBOL, BARE_SYMBOL)}


def trigger_level(base: float) -> float:
    """The level a client's :class:`Crossing` watches: every trigger print of :func:`turns` reaches it."""
    return base + TRIGGER_STEP - 0.005


def turns(gw: SimGateway, samples: int) -> Iterator[tuple[int, str, float]]:
    """The samples, warm-up first: (client, its trigger symbol, trigger price), taking turns.

    Each turn first puts the symbol back at its base price (below the trigger level, so the next
    print crosses it); the caller pauses, then prints the trigger.
    """
    base = base_prices(gw)
    for i in range(2 * (samples + WARMUP)):
        client, symbol = (ENGINE_CLIENT, SYMBOL) if i % 2 == 0 else (BARE_CLIENT, BARE_SYMBOL)
        gw.control.set_price(symbol, base[symbol])
        yield client, symbol, round(base[symbol] + TRIGGER_STEP + 0.01 * (i // 2 % 50), 2)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@asynccontextmanager
async def _client_process(kind: str, gw: SimGateway, trigger: float, tmp: Path,
                          script: Path = SCRIPT) -> AsyncIterator[None]:
    """One client (``engine`` or ``bare``) in a process of its own, connected to ``gw`` until the block ends
    (``script``: the module the process runs with ``--client``, this one unless a diagnostic wraps it)."""
    log = tmp / f"{kind}.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), "--client", kind, "--host", gw.host,
            "--port", str(gw.port), "--trigger", repr(trigger), "--dir", str(tmp),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {kind} client's process did not start (exit {proc.returncode}):\n{tail}")
        try:
            yield
        except RuntimeError as exc:  # a client that stopped answering: what it logged says why
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\n--- the {kind} client's log, last lines ---\n{tail}") from exc
    finally:
        proc.stdin.close()  # the client stops on end of input
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _serve_client(kind: str, host: str, port: int, trigger: float, tmp: Path) -> None:
    """The child's side of :func:`_client_process`: connect, say ``ready``, run until stdin closes."""
    stop: Callable[[], Awaitable[None]]
    if kind == "engine":
        engine = await _start_engine(TriggerEngine, host, port, trigger, tmp / "journal.sqlite")
        stop = engine.stop
    else:
        ib = await _bare_client(host, port, trigger)

        async def stop() -> None:
            ib.disconnect()

    freeze_startup_heap()  # as the engine's process and the headless runner do after start
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()
    await stop()


async def _run_level(rate: int, samples: int, in_loop: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        async with SimGateway(port=0, clock=ManualClock(), always_open=True) as gw:
            base = base_prices(gw)
            levels = {s: trigger_level(p) for s, p in base.items()}
            if in_loop:
                # The bare client connects first, so the simulator writes each tick to it first.
                bare = await _bare_client(gw.host, gw.port, levels[BARE_SYMBOL])
                engine = await _start_engine(TriggerEngine, gw.host, gw.port, levels[SYMBOL], tmp / "journal.sqlite",
                                             in_process=True)
                measured, elapsed, count = await _load_and_measure(gw, rate, samples, lambda: quiet(engine))
                bare.disconnect()
                await engine.stop()
            else:
                async with (_client_process("bare", gw, levels[BARE_SYMBOL], tmp),
                            _client_process("engine", gw, levels[SYMBOL], tmp)):
                    measured, elapsed, count = await _load_and_measure(gw, rate, samples)
            thaw_startup_heap()  # the next level starts a fresh world
    out = {"bg_rate": count / elapsed if elapsed else 0.0}
    for who, client in (("engine", ENGINE_CLIENT), ("bare", BARE_CLIENT)):
        out[f"{who}.missed"] = measured.missed[client]
        for q in (0.5, 0.99):
            out[f"{who}.p{round(q * 100)}"] = _pct(measured.wall[client], q)
            if in_loop:
                out[f"{who}.cpu_p{round(q * 100)}"] = _pct(measured.cpu[client], q)
    return out


async def _load_and_measure(gw: SimGateway, rate: int, samples: int,
                            after: Callable[[], Awaitable[None]] | None = None, stamps: list[Stamps] | None = None
                            ) -> tuple[Measured, float, int]:
    """The samples under ``rate`` background ticks/s: what :func:`_measure` measured, seconds taken, ticks sent
    (``after``, ``stamps``: see :func:`_measure`)."""
    freeze_startup_heap()  # this process's start-up (the simulator's, and the clients' when in it)
    stop, count = asyncio.Event(), [0]
    bg = asyncio.create_task(_background(gw, rate, stop, count))
    started = time.perf_counter()
    measured = await _measure(gw, samples, after, stamps)
    elapsed = time.perf_counter() - started
    stop.set()
    await bg
    return measured, elapsed, count[0]


def run(quick: bool = False, in_loop: bool = False) -> dict[str, float]:
    """Measure at 0, 1,000 and 10,000 background ticks/s; keys as the benchmark suite expects."""
    samples = SAMPLES["quick" if quick else "full"]
    out: dict[str, float] = {}
    for rate in RATES:
        level = asyncio.run(_run_level(rate, samples, in_loop))
        suffix = "" if rate == 10_000 else f"@{rate}"
        for who in ("engine", "bare"):
            for q in ("p50", "p99"):
                out[f"{who}.tick_to_order_ms.{q}{suffix}"] = level[f"{who}.{q}"]
                if in_loop:  # diagnostics: the same samples in process CPU time (see _measure)
                    out[f"{who}.tick_to_order_cpu_ms.{q}{suffix}"] = level[f"{who}.cpu_{q}"]
            out[f"{who}.tick_to_order_missed{suffix}"] = level[f"{who}.missed"]
        out[f"ratio.p99{suffix}"] = level["engine.p99"] / level["bare.p99"] if level["bare.p99"] else float("nan")
        out[f"ratio.p50{suffix}"] = level["engine.p50"] / level["bare.p50"] if level["bare.p50"] else float("nan")
        out[f"background.ticks_per_s{suffix}"] = level["bg_rate"]
    return out


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden arguments :func:`_client_process` starts a client process with."""
    parser.add_argument("--client", choices=("engine", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--trigger", type=float, default=math.inf, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, default=Path(), help=argparse.SUPPRESS)


def main() -> None:
    """Print the figures, one per line (or, with ``--client``, be one of the clients)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"{SAMPLES['quick']} samples per client and level instead of {SAMPLES['full']}")
    parser.add_argument("--in-loop", action="store_true",
                        help="both clients in the simulator's process and event loop (the shape of --sim)")
    add_client_arguments(parser)
    args = parser.parse_args()
    if args.client:
        asyncio.run(_serve_client(args.client, args.host, args.port, args.trigger, args.dir))
        return
    for key, value in run(quick=args.quick, in_loop=args.in_loop).items():
        print(f"{key:45s} {value:10.3f}")


if __name__ == "__main__":
    main()
