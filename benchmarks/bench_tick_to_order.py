"""Tick-to-order latency: our engine against a bare ib_async client, in the same run.

From the simulator writing the triggering tick to the simulator receiving the order. Both clients
are connected to the same simulator at once, under the same background load, and take turns:
even samples trigger the engine, odd samples the bare client. The engine goes through its full
order path (quote hook → risk gate → SENDING appended to the journal's sending log → broker), entered the way
strategy signals enter it (``submit_nowait`` from the market-data handler); the bare client calls
``placeOrder`` straight from its ticker handler. Background ticks on other symbols load both
clients at 0, 1,000 and 10,000 ticks per second.

Why turns and not one tick for both: the simulator and both clients share one event loop, so
when both react to the same tick, whichever is read second also waits for the first one's order
to be processed by the simulator (and its fill messages decoded by both clients) — 2–4 ms that
belong to neither client's path. Alternating keeps each sample to one client's own latency. For
the same reason each client triggers on its own symbol (the engine on AAPL, the bare client on
INTC) that the other does not subscribe to: with one shared trigger symbol the simulator wrote
each trigger tick to both clients, and whichever socket the loop read second (the engine's) first
waited for the other client to decode that tick (≈0.15 ms at the median). In production the
engine has its process to itself; nobody else decodes ahead of it.

After start the heap is frozen (``gc.freeze``), as the engine's process and the headless runner
do: a full collection would otherwise walk everything start-up built (35–125 ms here); from then
on collections run from a loop timer between steps, as in those processes
(``tui_trader.engine.collector``). The policy is the process's, so the bare client has it too.

Limitations: the simulator runs in the same process and event loop as both clients (as it does
for ``--sim``), so the background tick generator also competes for that loop; the achieved
background rate is reported next to the target.

Run: ``python -m benchmarks.bench_tick_to_order [--quick]``.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ib_async

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
PAUSE_S = (0.04, 0.06)
"""Between samples, drawn uniformly from this range (seeded: :func:`pauses`). ib_async throttles a
client above 45 requests/s (IB's limit is 50) by holding messages back for up to a second; one order
per sample every ~25 ms came close enough to that to put ~0.45 s outliers into either client's p99.
At 40–60 ms both stay well below it. Jittered rather than a fixed 50 ms, so that no periodic work of
the process (the journal's 50 ms batches, the collector's 10 ms timer, the engine's monitors) keeps
landing in one client's samples rather than the other's (see also :func:`quiet`)."""
SEED = 20261121


@dataclass
class Probe:
    """Receive time at the simulator of the next new order from one client."""

    client_id: int
    received: float = 0.0
    received_cpu: float = 0.0
    """The process's CPU time (``process_time``) at receipt, stamped after ``received``."""
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


class TriggerEngine(Engine):
    """The engine with a quote trigger: a buy of one share when the trigger price prints."""

    trigger = 0.0

    def quote_hook(self, quote: Quote) -> None:
        """Submit through the full order path when the trigger price prints."""
        if quote.symbol == SYMBOL and quote.last == self.trigger:
            self.submit_nowait(OrderTicket(SYMBOL, Side.BUY, 1, OrderType.MKT, strategy="bench"))


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


def _place(ib: ib_async.IB, contract: ib_async.Contract) -> None:
    ib.placeOrder(contract, ib_async.MarketOrder("BUY", 1))


async def _bare_client(gw: SimGateway, trigger: list[float],
                       place: Callable[[ib_async.IB, ib_async.Contract], None] = _place) -> ib_async.IB:
    """A plain ib_async client that calls ``place`` from its ticker handler when the trigger prints."""
    ib = ib_async.IB()
    await ib.connectAsync(gw.host, gw.port, clientId=BARE_CLIENT, timeout=5, raiseSyncErrors=True)
    contracts = await ib.qualifyContractsAsync(*(ib_async.Stock(s, "SMART", "USD")
                                                 for s in (BARE_SYMBOL, *BACKGROUND)))
    qualified = [c for c in contracts if isinstance(c, ib_async.Contract)]
    if len(qualified) != len(contracts):
        raise RuntimeError(f"the simulator did not qualify every contract: {contracts}")
    target = qualified[0]
    for contract in qualified:
        ib.reqMktData(contract)

    def on_tickers(tickers: set[ib_async.Ticker]) -> None:
        for ticker in tickers:
            if ticker.contract is target and ticker.last == trigger[0]:
                place(ib, target)

    ib.pendingTickersEvent += on_tickers
    return ib


async def _background(gw: SimGateway, rate: int, stop: asyncio.Event, count: list[int]) -> None:
    if rate == 0:
        return
    batch, period = max(rate // 200, 1), 1 / 200
    prices = {s: gw.quote(s).last for s in BACKGROUND}
    i = 0
    while not stop.is_set():
        for _ in range(batch):
            sym = BACKGROUND[i % len(BACKGROUND)]
            gw.control.set_price(sym, prices[sym] + (0.01 if i % 2 else -0.01))
            i += 1
        count[0] += batch
        await asyncio.sleep(period)


async def _measure(gw: SimGateway, engine: TriggerEngine, trigger: list[float], samples: int
                   ) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """Wall-clock latencies (ms) by client, and the same samples in the process's CPU time.

    The CPU-time latency is the wall one less the time the process was not running: on a
    machine shared with other work, preemption dominates the wall-clock p99; the CPU-time p99
    shows this process's own tail (collections included). Both stamps sit outside the timed window.
    """
    out: dict[int, list[float]] = {ENGINE_CLIENT: [], BARE_CLIENT: []}
    cpu: dict[int, list[float]] = {ENGINE_CLIENT: [], BARE_CLIENT: []}
    pause = pauses()
    for i, (client, symbol, price) in enumerate(turns(gw, samples)):
        await asyncio.sleep(next(pause))
        engine.trigger = price if client == ENGINE_CLIENT else -1.0
        trigger[0] = price if client == BARE_CLIENT else -1.0
        probe = Probe(client)
        probe.instrument(gw)
        c0 = time.process_time()
        t0 = time.perf_counter()
        gw.control.set_price(symbol, price)
        try:
            await asyncio.wait_for(probe.done.wait(), 2.0)
        except TimeoutError:
            continue
        finally:
            gw.engine.place = type(gw.engine).place.__get__(gw.engine)  # type: ignore[method-assign]
        await quiet(engine)
        if i >= 2 * WARMUP:  # the first orders build the journal's codecs: not steady state
            out[client].append((probe.received - t0) * 1000)
            cpu[client].append((probe.received_cpu - c0) * 1000)
    return out, cpu


async def quiet(engine: Engine) -> None:
    """After a sample, outside the timed window: commit what the engine's journal holds.

    The journal commits a batch 50 ms after the first event of it; left alone, the batch of the
    engine's order (≈0.3 ms) ran in the loop the simulator and both clients share at about the time the
    bare client's next sample started, and was counted in 4–12 % of the bare client's samples
    (``timeline_tick_to_order``), which made the bare client's p99 slower by the engine's work. The engine
    runs in its own process; its journal's batches delay nobody else.
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


def turns(gw: SimGateway, samples: int) -> Iterator[tuple[int, str, float]]:
    """The samples, warm-up first: (client, its trigger symbol, trigger price), taking turns.

    Each turn first puts the symbol back at its base price; the caller pauses, then prints the trigger.
    """
    base = {s: round(gw.quote(s).last, 2) for s in (SYMBOL, BARE_SYMBOL)}
    for i in range(2 * (samples + WARMUP)):
        client, symbol = (ENGINE_CLIENT, SYMBOL) if i % 2 == 0 else (BARE_CLIENT, BARE_SYMBOL)
        gw.control.set_price(symbol, base[symbol])
        yield client, symbol, round(base[symbol] + 0.5 + 0.01 * (i // 2 % 50), 2)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def _run_level(rate: int, samples: int) -> dict[str, float]:
    trigger = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        async with SimGateway(port=0, clock=ManualClock(), always_open=True) as gw:
            # The bare client connects first, so the simulator writes each tick to it first: the
            # engine never gets the head start (it hardly matters now that samples alternate).
            bare = await _bare_client(gw, trigger)
            engine = TriggerEngine(_engine_config(Path(tmp) / "journal.sqlite"),
                                   make_broker(gw.host, gw.port, ENGINE_CLIENT, timeout=5))
            await engine.start()
            freeze_startup_heap()  # as the engine's process and the headless runner do after start
            stop, count = asyncio.Event(), [0]
            bg = asyncio.create_task(_background(gw, rate, stop, count))
            started = time.perf_counter()
            wall, cpu = await _measure(gw, engine, trigger, samples)
            elapsed = time.perf_counter() - started
            stop.set()
            await bg
            bare.disconnect()
            await engine.stop()
            thaw_startup_heap()  # the next level starts a fresh world
    out = {"bg_rate": count[0] / elapsed if elapsed else 0.0}
    for who, client in (("engine", ENGINE_CLIENT), ("bare", BARE_CLIENT)):
        for q in (0.5, 0.99):
            out[f"{who}.p{round(q * 100)}"] = _pct(wall[client], q)
            out[f"{who}.cpu_p{round(q * 100)}"] = _pct(cpu[client], q)
    return out


def run(quick: bool = False) -> dict[str, float]:
    """Measure at 0, 1,000 and 10,000 background ticks/s; keys as the benchmark suite expects."""
    samples = 30 if quick else 300
    out: dict[str, float] = {}
    for rate in RATES:
        level = asyncio.run(_run_level(rate, samples))
        suffix = "" if rate == 10_000 else f"@{rate}"
        for who in ("engine", "bare"):
            for q in ("p50", "p99"):
                out[f"{who}.tick_to_order_ms.{q}{suffix}"] = level[f"{who}.{q}"]
            for q in ("p50", "p99"):  # diagnostics: the same samples in process CPU time (see _measure)
                out[f"{who}.tick_to_order_cpu_ms.{q}{suffix}"] = level[f"{who}.cpu_{q}"]
        out[f"ratio.p99{suffix}"] = level["engine.p99"] / level["bare.p99"] if level["bare.p99"] else float("nan")
        out[f"ratio.cpu_p99{suffix}"] = (level["engine.cpu_p99"] / level["bare.cpu_p99"] if level["bare.cpu_p99"]
                                         else float("nan"))
        out[f"background.ticks_per_s{suffix}"] = level["bg_rate"]
    return out


if __name__ == "__main__":
    for key, value in run(quick="--quick" in sys.argv).items():
        print(f"{key:45s} {value:10.3f}")
