"""``SimGateway``: the asyncio TCP server, its sessions, the market clock and the fan-out of
order, fill, position and account messages to the sessions that must see them."""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import numpy as np

from tui_trader.sim import ticks
from tui_trader.sim.account import Account
from tui_trader.sim.bars import Bar, BarArrays, bucket, session_mask
from tui_trader.sim.clock import Clock, RealClock
from tui_trader.sim.control import Control
from tui_trader.sim.engine import OrderEngine
from tui_trader.sim.fanout import OrderFanout
from tui_trader.sim.faults import Faults
from tui_trader.sim.history import LiveBars, SyntheticHistory
from tui_trader.sim.instruments import EXCHANGE_TZ, Instrument, InstrumentDb
from tui_trader.sim.market import STEP_SECONDS, MarketModel, Quote
from tui_trader.sim.orders import Ledger, ReceivedOrder, SimExecution, SimOrder
from tui_trader.sim.persistence import load_state, save_state
from tui_trader.sim.replay import Replay
from tui_trader.sim.session import HistSub, Session

log = logging.getLogger("tui_trader.sim")

ACCOUNT_PUSH_SECONDS = 180.0
"""IB refreshes account values and portfolio marks about every three minutes."""
SAVE_DEBOUNCE_S = 1.0
"""A change other than a new order or a fill is saved this long after it (one save for a burst of them):
a save re-encodes the working orders and rewrites the file, 15 ms at 2,400 orders of the day. New orders
(their ids) and fills are saved at once (:meth:`SimGateway.save_now`)."""

KEPT_S = 86_400.0
"""A restarted simulator keeps the last day of orders done and executions (a broker reports a day)."""


class SimGateway:
    """An IB Gateway simulator speaking the TWS API (server version 178) on a TCP port.

    Use as ``async with SimGateway(port=0) as gw:``; connect any TWS API client to ``gw.port``.
    It runs in the caller's event loop. ``gw.control`` drives prices, time and faults.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, symbols: list[str] | None = None,
                 seed: int = 7, speed: float = 1.0, data_path: str | Path | None = None,
                 state_path: str | Path | None = None, live_account: bool = False, clock: Clock | None = None,
                 always_open: bool = False, cash: float = 1_000_000.0,
                 step_seconds: float = STEP_SECONDS, today_only: bool = True) -> None:
        """Configure the simulator (nothing listens until :meth:`start`).

        Args:
            host: interface to listen on.
            port: TCP port; 0 picks a free one (read ``gw.port`` after start).
            symbols: built-in symbols to offer (``None`` for all).
            seed: seed of the synthetic market; the same seed gives the same prices.
            speed: simulated seconds per real second (real clock) and replay speed.
            data_path: CSV or Parquet bars to replay instead of the synthetic model.
            state_path: JSON file keeping account, orders and executions across restarts.
            live_account: present a non-paper account id (``USIM…``) instead of ``DUSIM…``.
            clock: a clock; ``ManualClock`` makes time move only through ``control.step``.
            always_open: trade around the clock instead of honouring exchange hours.
            cash: starting cash of a fresh account.
            step_seconds: simulated seconds per model step (every step publishes a quote per
                subscribed instrument); larger steps compress long soak runs.
            today_only: report orders done and executions of the current exchange day only (since
                midnight New York), as IB does; ``False`` reports every one the simulator keeps.
        """
        if not step_seconds > 0:
            raise ValueError(f"step_seconds must be positive, not {step_seconds}")
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number of simulated seconds per second, not {speed}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free port) to 65535, not {port}")
        self.host, self.port, self.speed = host, port, speed
        self.step_seconds = step_seconds
        self.instruments = InstrumentDb(symbols)
        self.replay = None if data_path is None else Replay.load(Path(data_path), self.instruments)
        self.clock: Clock = clock or RealClock(speed, self.replay.start_time() if self.replay else None)
        self.state_path = Path(state_path) if state_path else None
        self.account_id = "USIM0001" if live_account else "DUSIM0001"
        self.always_open = always_open
        self.today_only = today_only
        self.market = MarketModel(list(self.instruments), seed, always_open=always_open)
        self.account = Account(self.account_id, cash)
        self.ledger = Ledger()
        self.fanout = OrderFanout(self)
        self.engine = OrderEngine(self.instruments, self.market, self.account, self.ledger, self.fanout,
                                  self.clock.now, always_open)
        self.faults = Faults(self)
        self.control = Control(self)
        self.sessions: dict[int, Session] = {}
        self.live_bars = {cid: LiveBars() for cid in self.market.quotes}
        self.history = SyntheticHistory(seed, int(self.clock.now().timestamp()), always_open, self.market.drift)
        self.received_frames: deque[tuple[int, list[str]]] = deque(maxlen=512)
        """The last requests received, as ``(clientId, fields)`` (for debugging and golden tests)."""
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._quote_subs: dict[int, list[tuple[Session, int]]] = {}
        self._sim_t = 0.0
        self._next_account_push = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._save_handle: asyncio.Handle | None = None
        self._all_sessions: set[Session] = set()
        self._session_tasks: set[asyncio.Task[None]] = set()
        self._batching = False

    # ---- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> SimGateway:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the saved state, start the market clock and listen."""
        now = self.clock.now().timestamp()
        if self.state_path and self.state_path.exists():
            load_state(self, self.state_path)
            self.ledger.forget_before(now - KEPT_S)
        self._sim_t = math.floor(now / self.step_seconds) * self.step_seconds
        self.history.t0 = int(self._sim_t) - int(self._sim_t) % 5
        for cid, quote in self.market.quotes.items():
            if self.replay is not None:
                self.replay.step(quote, self._sim_t)
            self.history.register(cid, quote.last)
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if not self.clock.manual:
            self._ticker = asyncio.create_task(self._tick_forever(), name="sim-ticker")
        log.info("listening on %s:%d account %s", self.host, self.port, self.account_id)

    async def stop(self) -> None:
        """Close every session, stop listening and save the state."""
        if self._ticker:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        for session in list(self._all_sessions):
            session.close()
        if self._session_tasks:
            await asyncio.wait(self._session_tasks, timeout=2.0)
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._save_handle:
            self._save_handle.cancel()
        self.save()

    def save(self) -> None:
        """Write the account, orders and executions to ``state_path`` (if set)."""
        self._save_handle = None
        if self.state_path:
            save_state(self, self.state_path)

    def save_now(self) -> None:
        """Persist at once (a new order, a fill, before either is reported): a client can journal them
        within the debounce of :meth:`changed`, and a simulator killed in it would come back without the
        fill, or hand the order's id out again."""
        if self._save_handle:
            self._save_handle.cancel()
        self.save()

    def changed(self) -> None:
        """The ledger changed: persist soon."""
        if self.state_path and self._save_handle is None:
            try:
                self._save_handle = asyncio.get_running_loop().call_later(SAVE_DEBOUNCE_S, self.save)
            except RuntimeError:
                self.save()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.refusing():
            log.info("refusing a connection (fault)")
            writer.close()
            return
        session = Session(self, reader, writer)
        self._all_sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks.add(task)
        try:
            await session.run()
        finally:
            self._all_sessions.discard(session)
            if task is not None:
                self._session_tasks.discard(task)

    # ---- time ------------------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        interval = max(0.01, self.step_seconds / max(self.speed, 1e-6))
        while True:
            await asyncio.sleep(interval)
            self.run_until(self.clock.now().timestamp())

    def advance(self, seconds: float) -> None:
        """Move the clock forward and run the market up to the new time."""
        self.clock.advance(seconds)
        self.run_until(self.clock.now().timestamp())

    def run_until(self, target: float) -> None:
        """Run every model step up to ``target`` (epoch seconds), then due timers."""
        while self._sim_t + self.step_seconds <= target + 1e-9:
            self._sim_t += self.step_seconds
            self._step(self._sim_t)
        while self._timers and self._timers[0][0] <= target + 1e-9:
            heapq.heappop(self._timers)[2]()

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` once simulated time reaches ``when`` (epoch seconds)."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, callback))

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Write what each session is sent inside the block once, at its end, in the order sent.

        A burst (a model step, a feed's batch of prints) is then one socket write per client
        instead of one per message: a write is a system call, and at 10,000 prints a second
        they were a tenth of the process's CPU when the simulator is embedded (``--sim``). The
        client sees the same bytes: nothing it could read comes in between, the block being
        synchronous. Nested blocks write at the outermost block's end.
        """
        if self._batching:
            yield
            return
        self._batching = True
        sessions = list(self._all_sessions)
        for session in sessions:
            session.hold()
        try:
            yield
        finally:
            self._batching = False
            for session in sessions:
                session.release()

    def _step(self, t: float) -> None:
        with self.batched():
            self._step_market(t)

    def _step_market(self, t: float) -> None:
        moment = datetime.fromtimestamp(t, UTC)
        epoch = int(t)
        intensity = self.market.intensity(moment)
        today = moment.astimezone(EXCHANGE_TZ).date()
        self.engine.new_step()
        working = {o.con_id for o in self.engine.active_orders()}
        for con_id, quote in self.market.quotes.items():
            self.market.roll_day(quote, today)
            high, low = quote.high, quote.low
            if self.replay is not None:
                self.replay.step(quote, t)
            else:
                self.market.step(quote, self.step_seconds, intensity, epoch)
            self.publish(quote, high != quote.high or low != quote.low)
            if intensity > 0 or self.replay is not None:
                self._record_bar(con_id, quote, epoch)
            if con_id in working:
                self.engine.on_quote(con_id)
        self.engine.expire()
        if t >= self._next_account_push:
            self._next_account_push = t + ACCOUNT_PUSH_SECONDS
            self.fanout.push_account()

    # ---- market data fan-out ---------------------------------------------------------------
    def subscribe_quotes(self, session: Session, req_id: int, con_id: int) -> None:
        """Stream this instrument's ticks to a session's request id."""
        self._quote_subs.setdefault(con_id, []).append((session, req_id))

    def unsubscribe_quotes(self, session: Session, req_id: int, con_id: int) -> None:
        """Stop streaming one request."""
        subs = self._quote_subs.get(con_id, [])
        self._quote_subs[con_id] = [(s, r) for s, r in subs if not (s is session and r == req_id)]

    def unsubscribe_all(self, session: Session) -> None:
        """Forget every subscription of a closed session."""
        for con_id, subs in self._quote_subs.items():
            self._quote_subs[con_id] = [(s, r) for s, r in subs if s is not session]

    def publish(self, quote: Quote, range_changed: bool) -> None:
        """Send a quote (and trade, if one printed) to its subscribers."""
        subs = self._quote_subs.get(quote.inst.con_id)
        if not subs or self.faults.stalled:
            return
        for session, req_id in subs:
            if session.backlogged():
                continue
            if req_id in session.delayed:
                session.send(ticks.delayed_ticks(req_id, quote))
                continue
            session.send(ticks.live_ticks(req_id, quote, range_changed))

    def publish_halt(self, quote: Quote) -> None:
        """Tell subscribers that trading halted or resumed (generic tick 49)."""
        for session, req_id in self._quote_subs.get(quote.inst.con_id, []):
            session.send_kind("halted", ticks.halted_tick(req_id, quote))

    def _record_bar(self, con_id: int, quote: Quote, epoch: int) -> None:
        done = self.live_bars[con_id].update(epoch, quote.last, quote.last_size if quote.traded else 0)
        if done is None or self.faults.stalled:
            return
        start, bar = done
        for session in list(self.sessions.values()):
            for req_id, cid in session.rt_bars.items():
                if cid == con_id:
                    session.send(ticks.realtime_bar(req_id, start, bar))
            for sub in session.hist.values():
                if sub.con_id == con_id:
                    self._update_hist(session, sub, start, bar)

    def _update_hist(self, session: Session, sub: HistSub, start: int, bar: list[float]) -> None:
        if sub.use_rth and not session_mask(np.array([start]), rth=True, always=self.always_open)[0]:
            return
        label, day = bucket(start, sub.size)
        if label == sub.key:
            o, h, lo, _c, v = sub.bar
            sub.bar = [o, max(h, bar[1]), min(lo, bar[2]), bar[3], v + bar[4]]
        else:
            sub.key, sub.bar = label, list(bar)
        o, h, lo, c, v = sub.bar
        merged = Bar(label, o, h, lo, c, v, c, int(v // 100), day)
        session.send(ticks.historical_update(sub.req_id, merged, sub.format_date))

    def base_bars(self, con_id: int, start: int, end: int, use_rth: bool) -> BarArrays:
        """5-second (or replayed) base bars in ``[start, end)``: history before start, then live."""
        quote = self.market.quotes[con_id]
        if self.replay is not None:
            before = self.replay.bars(con_id, start, min(end, self.history.t0))
        else:
            before = self.history.bars(quote, start, end)
        live = self.live_bars[con_id].arrays().window(max(start, self.history.t0), end)
        bars = BarArrays.concat([before, live])
        if use_rth and not self.always_open and len(bars):
            bars = bars.select(session_mask(bars.t, rth=True, always=False))
        return bars

    # ---- ledger accessors --------------------------------------------------------------------
    def reported_since(self) -> str:
        """The oldest completion or execution time still reported, as the text both are stamped with
        ("%Y%m%d %H:%M:%S UTC", which sorts as time does): midnight New York today ('' with ``today_only``
        off). IB reports completed orders and executions of the current day only: an order that ended on
        an earlier day is found neither open nor completed."""
        if not self.today_only:
            return ""
        local = self.clock.now().astimezone(EXCHANGE_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")

    def orders(self) -> list[SimOrder]:
        """Every order the simulator accepted (working and done)."""
        return list(self.ledger.orders.values())

    def executions(self) -> list[SimExecution]:
        """Every execution, oldest first."""
        return list(self.ledger.executions)

    def received_orders(self) -> list[ReceivedOrder]:
        """Every ``placeOrder`` received, including modifications, rejections and what-ifs."""
        return list(self.ledger.received)

    def order_refs(self) -> list[str]:
        """The orderRef of every new order received (not modifications, not what-ifs), in order."""
        return [r.order_ref for r in self.ledger.received if not r.modification and not r.what_if]

    def duplicate_order_refs(self) -> list[str]:
        """Non-empty orderRefs that were sent on more than one new order."""
        refs = [r for r in self.order_refs() if r]
        return sorted({r for r in refs if refs.count(r) > 1})

    def positions(self) -> dict[str, float]:
        """Position quantity per symbol (non-zero only)."""
        return {self.instrument(p.con_id).symbol: p.qty for p in self.account.positions.values() if p.qty}

    def instrument(self, con_id: int) -> Instrument:
        """The instrument of a conId the simulator knows (``KeyError`` otherwise)."""
        inst = self.instruments.by_con_id(con_id)
        if inst is None:
            raise KeyError(con_id)
        return inst

    @property
    def cash(self) -> float:
        """Cash balance."""
        return self.account.cash

    def quote(self, symbol: str) -> Quote:
        """The live quote of a symbol."""
        inst = self.instruments.by_symbol(symbol)
        if inst is None:
            raise KeyError(symbol)
        return self.market.quotes[inst.con_id]
