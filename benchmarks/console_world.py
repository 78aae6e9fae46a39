"""The engine side of ``bench_console``: runs in the engine's child process, as ``tui-trader --sim`` does.

:func:`bench_engine` is the engine factory the benchmark hands to
:func:`~tui_trader.engine.process.proxy.spawn_engine`: the real ``Engine`` with an embedded
``SimGateway`` (manual clock, 100 symbols), a quote trigger for tick-to-order and probes of
what reaches the simulator. Its ``bench_*`` methods are called from the console's process
through the proxy's generic forwarding. Timestamps are ``time.perf_counter()``, the system-wide
monotonic clock on Linux, so the two processes' stamps subtract.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.bench_tick_to_order import bench_limits
from tui_trader.domain import Mode, OrderTicket, OrderType, Side
from tui_trader.domain.market import Quote
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.risk.limits import CancelScope
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.instruments import builtin_symbols, synthetic_symbols

if TYPE_CHECKING:
    from tui_trader.config import Settings

TRIGGER = "AAPL"
"""Tick-to-order trigger symbol: it has a position but is outside the feed."""
N_BOOK = 100
N_FEED = 50
CLIENT_ID = 41


async def until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` every 5 ms; raise after ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"benchmark: {what} not reached within {timeout}s")
        await asyncio.sleep(0.005)


@dataclass
class WireProbe:
    """Arrival times at the simulator of new orders, cancels and global cancels (wraps its order engine)."""

    gw: SimGateway
    placed: list[float] = field(default_factory=list)
    cancels: list[float] = field(default_factory=list)
    global_cancels: list[float] = field(default_factory=list)

    def install(self) -> None:
        """Wrap ``place``, ``cancel`` and ``global_cancel`` of the simulator's order engine."""
        engine = self.gw.engine
        place, cancel, global_cancel = engine.place, engine.cancel, engine.global_cancel

        def timed_place(client_id: int, req: Any) -> None:
            self.placed.append(time.perf_counter())
            place(client_id, req)

        def timed_cancel(client_id: int, order_id: int, reason: str = "") -> None:
            self.cancels.append(time.perf_counter())
            cancel(client_id, order_id, reason)

        def timed_global_cancel() -> None:
            self.global_cancels.append(time.perf_counter())
            global_cancel()

        engine.place = timed_place  # type: ignore[method-assign]
        engine.cancel = timed_cancel  # type: ignore[method-assign]
        engine.global_cancel = timed_global_cancel  # type: ignore[method-assign]


def book_symbols() -> list[str]:
    """100 symbols: the built-in ones, then synthetic ones."""
    builtin = builtin_symbols()
    return builtin + synthetic_symbols(N_BOOK - len(builtin))


def engine_config(journal: Path, symbols: list[str], scope: CancelScope = CancelScope.OWN) -> EngineConfig:
    """Approvals off, quotes that do not go stale in a manual-clock simulator, and the shipped risk
    defaults as the tick-to-order benchmark runs them, widened for the book: 100 positions, and
    100 resting buys at half the bid, all submitted at once and again after every kill, half of
    them in symbols the feed never ticks (their last quote is as old as the run)."""
    limits = bench_limits(max_order_quantity=100, max_open_positions=1_000, price_collar_pct=100.0,
                          max_quote_age_s=3_600.0, kill_cancel_scope=scope)
    return EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=journal, symbols=tuple(symbols),
                        limits=limits, market_data_stale_s=3600, warmup_bars=20)


class BenchEngine(Engine):
    """The engine with its simulator, its book (100 positions, 100 resting buys) and the probes."""

    trigger = 0.0

    def __init__(self, settings: Settings) -> None:
        self.symbols = book_symbols()
        self.feed_symbols = [s for s in self.symbols if s != TRIGGER][:N_FEED]
        scope = CancelScope(settings.kill_switch.scope)
        broker = make_broker("127.0.0.1", 0, CLIENT_ID, timeout=10, gateway_in_process=True)
        super().__init__(engine_config(settings.journal_path, self.symbols, scope), broker, on_stop=self._stop_gateway)
        self.gw: SimGateway | None = None
        self.probe: WireProbe | None = None
        self.kill_calls: list[float] = []
        self._feed: asyncio.Task[None] | None = None
        self._feed_stop = asyncio.Event()
        self._sent = [0, 0]

    async def start(self) -> None:
        """Start the simulator, the engine, then buy the book and rest the orders.

        All of it without ib_async's request throttle (see :meth:`_unthrottled`): the start
        alone is 400 requests (contract details, quotes and bars for 100 symbols, then 100
        buys), nine seconds at 45 a second, and none of it is measured.
        """
        self.gw = SimGateway(port=0, clock=ManualClock(), seed=11, symbols=self.symbols, always_open=True)
        await self.gw.__aenter__()
        self.broker.port = self.gw.port  # type: ignore[attr-defined]
        with self._unthrottled():
            await super().start()
            await until(lambda: len(self.market.quotes) >= N_BOOK, "quotes for 100 symbols")
            self.probe = WireProbe(self.gw)
            self.probe.install()
            await self._submit_all([OrderTicket(s, Side.BUY, 1, OrderType.MKT, strategy="book")
                                    for s in self.symbols])
            await until(lambda: len(self.snapshot().account.positions) >= N_BOOK, "100 positions")
        await self.bench_rest_orders()

    @contextmanager
    def _unthrottled(self) -> Iterator[None]:
        """ib_async sends without its 45-requests-a-second throttle inside the block.

        Only for the setup: the simulator does not pace (unless told to), and what the
        benchmark measures — the kill's cancels — runs with the throttle back on and its
        one-second window empty (:meth:`bench_rest_orders` waits for that), as after a
        quiet second in real use.
        """
        client = self.broker.ib.client  # type: ignore[attr-defined]
        client.MaxRequests = 0
        try:
            yield
        finally:
            client.MaxRequests = type(client).MaxRequests

    async def _throttle_window_empty(self) -> None:
        """Wait until ib_async's throttle counts no request in its last window (a fresh budget)."""
        client = self.broker.ib.client  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        await until(lambda: not client._msgQ and (not client._timeQ or  # noqa: SLF001 - ib_async's throttle state
                    loop.time() - client._timeQ[-1] > client.RequestsInterval), "throttle window empty", 10.0)

    async def _stop_gateway(self) -> None:
        self.bench_feed_stop()
        if self.gw is not None:
            await self.gw.__aexit__(None, None, None)

    async def _submit_all(self, tickets: list[OrderTicket]) -> None:
        await asyncio.gather(*(self.submit(t) for t in tickets))

    def quote_hook(self, quote: Quote) -> None:
        """Submit through the full order path when the trigger price prints."""
        super().quote_hook(quote)
        if quote.symbol == TRIGGER and quote.last == self.trigger:
            self.spawn(self.submit(OrderTicket(TRIGGER, Side.BUY, 1, OrderType.MKT, strategy="bench")),
                       "bench-submit")

    def kill(self, reason: str, by: str = "operator", *, operator: bool = True) -> None:
        """The engine's kill, stamped (the console's share of the kill path ends here)."""
        self.kill_calls.append(time.perf_counter())
        super().kill(reason, by, operator=operator)

    # -- called from the console's process through the proxy ------------------------------------

    def bench_working(self) -> int:
        """Working orders the engine tracks."""
        return len(self.orders.working())

    async def bench_rest_orders(self) -> None:
        """One buy limit at half the bid in every symbol; wait until all work at the simulator.

        The orders go out without ib_async's throttle (not measured; two seconds a cycle
        otherwise), then this waits until its window is empty again, so the next kill's
        cancels get the burst of 45 an operator's would after a quiet second.
        """
        assert self.gw is not None
        quotes = self.market.quotes
        gw = self.gw
        with self._unthrottled():
            await self._submit_all([OrderTicket(s, Side.BUY, 1, OrderType.LMT,
                                                limit_price=round(quotes[s].bid * 0.5, 2), strategy="resting")
                                    for s in self.symbols])
            await until(lambda: sum(1 for o in gw.orders() if o.working) >= N_BOOK
                        and self.bench_working() >= N_BOOK, "100 resting orders working")
        await self._throttle_window_empty()

    def bench_set_scope(self, scope: str) -> None:
        """Switch the kill switch's cancel scope (``own`` / ``global``) of this engine."""
        self.risk.set_limits(replace(self.risk.limits, kill_cancel_scope=CancelScope(scope)))

    def bench_feed_start(self, rate: int) -> None:
        """Print trades at ``rate`` ticks/s across the feed symbols until :meth:`bench_feed_stop`."""
        self._feed_stop = asyncio.Event()
        self._sent = [0, 0]
        self._feed = asyncio.get_running_loop().create_task(self._run_feed(rate, time.perf_counter()))
        self._feed_started = time.perf_counter()

    def bench_feed_stop(self) -> float:
        """Stop the feed; the achieved rate (ticks/s)."""
        self._feed_stop.set()
        if self._feed is None:
            return math.nan
        elapsed = time.perf_counter() - self._feed_started
        self._feed = None
        return (self._sent[0] - self._sent[1]) / elapsed

    async def _run_feed(self, rate: int, start: float) -> None:
        """Batches every 5 ms; never more than 20 ms of ticks at once (a feed that falls behind drops).

        The prints of a batch reach the engine's socket together either way (nothing runs between
        them); writing them in one go spares the simulator a system call per print.
        """
        assert self.gw is not None
        gw, control, symbols, sent = self.gw, self.gw.control, self.feed_symbols, self._sent
        base = {s: self.gw.quote(s).last for s in symbols}
        while not self._feed_stop.is_set():
            due = int((time.perf_counter() - start) * rate)
            if due - sent[0] > rate // 50:
                sent[1] += due - sent[0] - rate // 50
                sent[0] = due - rate // 50
            with gw.batched():  # one socket write per batch, as the simulator's own market steps do
                for i in range(sent[0], due):
                    sym = symbols[i % len(symbols)]
                    control.set_price(sym, round(base[sym] * (1.0005 if i % 3 else 0.9995) + 0.01 * (i % 7), 2))
            sent[0] = max(sent[0], due)
            await asyncio.sleep(0.005)

    async def bench_tick_to_order(self, samples: int, seconds: float = 0.0, warmup: int = 3) -> list[float]:
        """Trigger prices on the trigger symbol; ms from the print to the order at the simulator."""
        assert self.gw is not None
        assert self.probe is not None
        control, probe = self.gw.control, self.probe
        base = round(self.gw.quote(TRIGGER).last, 2)
        out: list[float] = []
        deadline = time.perf_counter() + seconds
        i = -1
        while (i := i + 1) < samples + warmup or time.perf_counter() < deadline:
            control.set_price(TRIGGER, base)
            await asyncio.sleep(0.03)
            self.trigger = price = round(base + 0.5 + 0.01 * (i % 50), 2)
            seen = len(probe.placed)
            start = time.perf_counter()
            control.set_price(TRIGGER, price)
            try:
                await until(lambda: len(probe.placed) > seen, "triggered order", timeout=2.0)  # noqa: B023
            except TimeoutError:
                continue
            if i >= warmup:  # the first orders warm the journal's codecs: not steady state
                out.append((probe.placed[seen] - start) * 1000)
        self.trigger = 0.0
        return out

    def bench_clear_probe(self) -> None:
        """Forget the stamps of earlier kills."""
        assert self.probe is not None
        self.probe.cancels.clear()
        self.probe.global_cancels.clear()
        self.kill_calls.clear()

    async def bench_wait_cancelled(self, expected: int, timeout: float = 10.0) -> dict[str, list[float]]:  # noqa: ASYNC109
        """Wait until no order works (and, for own scope, ``expected`` cancels arrived); the stamps."""
        assert self.probe is not None
        probe, scope = self.probe, self.risk.limits.kill_cancel_scope
        arrived = (lambda: probe.global_cancels) if scope is CancelScope.GLOBAL else (
            lambda: len(probe.cancels) >= expected)
        try:
            await until(lambda: arrived() and not self.bench_working(), "cancels", timeout)
        except TimeoutError:
            await until(lambda: not self.bench_working(), "orders cancelled", 30.0)
            return {"cancels": [], "global_cancels": [], "kill_calls": list(self.kill_calls)}
        return {"cancels": list(probe.cancels), "global_cancels": list(probe.global_cancels),
                "kill_calls": list(self.kill_calls)}


def bench_engine(settings: Settings) -> BenchEngine:
    """The engine factory of the benchmark (runs in the engine's child process)."""
    return BenchEngine(settings)
