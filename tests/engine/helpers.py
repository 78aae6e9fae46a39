"""Helpers shared by the engine tests: eventually(), configs, engine construction, orders and their modifications."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import ib_async
import pytest

from tui_trader.config.sections import SizingSettings, StrategySettings
from tui_trader.domain import Alert, AlertLevel, Bracket, Mode, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised, KillChecked
from tui_trader.engine import factory
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.core import Clock
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.risk.limits import RiskLimits
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.orders import SimOrder
from tui_trader.sim.protocol.ids import Out

CLIENT_ID = 11

REFUSAL = "Order rejected - reason:Simulated refusal of a modification"
"""The text of the simulator's refusal of a modification in the tests (``refuse_next_modify(201, REFUSAL)``)."""

SHORT_ACKS = pytest.mark.parametrize("engine_changes", [{"ack_timeout_s": 1.0}], ids=["ack-1s"])
"""For a test of the ``engine`` fixture that waits out acknowledgement timeouts: 1 s each, not 2."""


async def eventually(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:  # noqa: ASYNC109
    """Wait until ``predicate()`` is truthy, yielding to the loop; fail after ``timeout`` seconds.

    The bound is only reached when something is wrong, so it is generous: a loaded CI host has
    stretched the whole suite from 8 to 15 minutes, and a wait that takes a second here with it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.005)


def limits_for_tests(**changes: Any) -> RiskLimits:
    """Limits that pass ordinary test orders (quotes from a manual clock do not age)."""
    base: dict[str, Any] = dict(max_order_quantity=1000, max_order_notional=500_000, max_open_positions=10,
                                max_gross_exposure=2.0, max_leverage=2.0, require_quote=True,
                                unknown_order_timeout_s=None, disconnect_halt_after_s=None)
    base.update(changes)
    return RiskLimits(**base)


def make_config(tmp_path: Path, **changes: Any) -> EngineConfig:
    """An engine config for tests: no approvals, a temp journal, AAPL and MSFT, short timeouts."""
    config = EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=tmp_path / "journal.sqlite",
                          symbols=("AAPL", "MSFT"), ack_timeout_s=2.0, limits=limits_for_tests(),
                          reconnect_initial_s=0.05, reconnect_max_s=0.2, market_data_stale_s=3600,
                          warmup_bars=20, tick_interval_s=0.05, sizing=SizingSettings(method="fixed_quantity"))
    return config.with_(**changes)


@contextmanager
def silent_gateway() -> Iterator[int]:
    """A loopback port that accepts connections (into the kernel's backlog) and never answers: a gateway whose
    API does not respond. Yields the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def refuse_journal_writes(journal: Path) -> None:
    """From now on every write to the journal's event log fails, as on a full disk."""
    with sqlite3.connect(journal) as other:
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END")


def allow_journal_writes(journal: Path) -> None:
    """The journal's event log takes writes again (:func:`refuse_journal_writes`)."""
    with sqlite3.connect(journal) as other:
        other.execute("DROP TRIGGER IF EXISTS refuse")


async def journal_fails(engine: Engine) -> None:
    """Queue an event and let the journal try to write it."""
    engine.alert(AlertLevel.INFO, "test", "something to write", kind="test")
    assert engine.journal is not None
    with pytest.raises(sqlite3.Error, match="disk full"):
        await engine.journal.flush()


def make_engine(sim: SimGateway, config: EngineConfig, client_id: int = CLIENT_ID,
                clock: Clock | None = None, timeout: float = 3.0) -> Engine:
    """An engine wired to ``sim`` through the real ib_async adapter (``clock``: the engine's; ``timeout``: the
    broker's, each request's bound)."""
    return Engine(config, make_broker(sim.host, sim.port, client_id, timeout=timeout), clock)


def strategy(name: str, symbols: tuple[str, ...] = ("AAPL",), bar_size_s: int = 5,
             **params: Any) -> StrategySettings:
    """A strategy entry for the config."""
    return StrategySettings(name=name, symbols=list(symbols), bar_size_s=bar_size_s, params=params)


def buy(qty: float = 10, symbol: str = "AAPL", **kw: Any) -> OrderTicket:
    """A buy ticket (market unless ``order_type`` is given)."""
    return OrderTicket(symbol, Side.BUY, qty, kw.pop("order_type", OrderType.MKT), **kw)


def sell(qty: float = 10, symbol: str = "AAPL", **kw: Any) -> OrderTicket:
    """A sell ticket."""
    return OrderTicket(symbol, Side.SELL, qty, kw.pop("order_type", OrderType.MKT), **kw)


def status(engine: Engine, ref: str) -> OrderStatus:
    """Current status of an order."""
    return engine.orders.orders[ref].status


async def filled(engine: Engine, ticket: OrderTicket) -> None:
    """Submit ``ticket`` and wait for its fill and commission."""
    order = await engine.submit(ticket)
    await eventually(lambda: status(engine, order.order_ref) is OrderStatus.FILLED, what=f"{ticket} filled")
    await eventually(lambda: not engine.orders.uncommissioned, what="its commission")


@asynccontextmanager
async def running(sim: SimGateway, config: EngineConfig,
                  clock: Clock | None = None) -> AsyncIterator[tuple[Engine, Subscription]]:
    """A started engine on ``sim`` (``clock``: the engine's) and a lossless subscription opened before it started."""
    engine = make_engine(sim, config, clock=clock)
    events = engine.subscribe("test", lossless=True)
    try:
        await engine.start()  # inside: a start that fails is stopped too (its journal closed)
        yield engine, events
    finally:
        await engine.stop()


async def protected_long(engine: Engine, qty: float = 10, *, approve: bool = False) -> tuple[Order, Order, Order]:
    """Buy ``qty`` AAPL with a stop 2 below and a target 2 above the ask (approved when ``approve``),
    filled, both children working: (entry, stop, target)."""
    px = engine.market.quotes["AAPL"].ask
    entry = await engine.submit(buy(qty, bracket=Bracket(stop_price=round(px - 2, 2),
                                                          take_profit_price=round(px + 2, 2))))
    if approve:
        engine.approve(entry.order_ref)
    await eventually(lambda: status(engine, entry.order_ref) is OrderStatus.FILLED)
    stop, target = engine.orders.children(entry.order_ref)
    await eventually(lambda: {status(engine, stop.order_ref), status(engine, target.order_ref)}
                     == {OrderStatus.SUBMITTED})
    return entry, stop, target


async def gateway_keeping_state(tmp_path: Path) -> tuple[SimGateway, ManualClock, Path]:
    """A started simulator that keeps its state in ``tmp_path`` (as ``--state`` does, for its nightly restart), on a
    clock the test steps: the gateway, its clock and its state file."""
    clock, state = ManualClock(), tmp_path / "gateway-state.json"
    gateway = SimGateway(port=0, clock=clock, seed=7, always_open=True, state_path=state)
    await gateway.start()
    return gateway, clock, state


async def link_down(engine: Engine, gw: SimGateway) -> None:
    """The gateway drops the engine and refuses it for an hour of its clock (``refuse_connections(0)`` lets
    it back)."""
    gw.control.refuse_connections(3600)
    gw.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: not engine.broker.is_connected, what="disconnected")


async def long_at_the_broker(sim: SimGateway, qty: float = 10) -> float:
    """AAPL bought ``qty`` at the broker by another client (TWS, id 99): the bid after the fill."""
    async with outside_client(sim) as (outsider, contract):
        trade = outsider.placeOrder(contract, ib_async.MarketOrder("BUY", qty))
        await eventually(lambda: trade.orderStatus.status == "Filled", what="bought at the broker")
    return sim.quote("AAPL").bid


async def kill_checked(events: Subscription) -> KillChecked:
    """The last verification of a kill (its report) drained from ``events``, waited for."""
    checks: list[KillChecked] = []
    await eventually(lambda: checks.extend(e for e in events.drain() if isinstance(e, KillChecked)) or checks,
                     what="the kill's verification")
    return checks[-1]


@asynccontextmanager
async def outside_client(sim: SimGateway) -> AsyncIterator[tuple[ib_async.IB, ib_async.Contract]]:
    """Another client on the account (id 99, as TWS would be), with AAPL qualified; disconnected after."""
    outsider = ib_async.IB()
    await outsider.connectAsync(sim.host, sim.port, clientId=99, timeout=3)
    try:
        contract = ib_async.Stock("AAPL", "SMART", "USD")
        await outsider.qualifyContractsAsync(contract)  # fills in the conId in place
        assert contract.conId, "the simulator did not qualify AAPL"
        yield outsider, contract
    finally:
        outsider.disconnect()


async def bracket_buy(sim: SimGateway, engine: Engine, symbol: str = "AAPL", qty: float = 10) -> Order:
    """A filled market entry with its protective stop working at the broker; returns the stop."""
    stop = round(sim.quote(symbol).bid * 0.9, 2)
    order = await engine.submit(OrderTicket(symbol, Side.BUY, qty, OrderType.MKT, bracket=Bracket(stop_price=stop)))
    await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED, what="entry filled")
    (child,) = engine.orders.children(order.order_ref)
    await eventually(lambda: engine.orders.orders[child.order_ref].status is OrderStatus.SUBMITTED,
                     what="protective stop working")
    return engine.orders.orders[child.order_ref]


def below_bid(engine: Engine, by: float = 1.0) -> float:
    """A buy limit that will not fill at once."""
    return round(engine.market.quotes["AAPL"].bid - by, 2)


@contextmanager
def journal_held(engine: Engine) -> Iterator[None]:
    """Another connection holds the journal's write lock (as another process can): flushes wait for it."""
    assert engine.journal is not None
    holder = sqlite3.connect(engine.journal.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def asked_open_orders(sim: SimGateway) -> bool:
    """``sim`` was asked for the open orders (since its frames were last cleared): a flatten looking at the broker."""
    asks = {str(int(Out.REQ_OPEN_ORDERS)), str(int(Out.REQ_ALL_OPEN_ORDERS))}
    return any(fields[:1] and fields[0] in asks for _, fields in sim.received_frames)


STOP_CANCEL_ANSWERS = ("order_status", "error")
"""The simulator's messages that answer a cancel (held back by :func:`waiting_for_the_stops_cancel`)."""


async def waiting_for_the_stops_cancel(sim: SimGateway, *asks: Callable[[], Awaitable[object]],
                                       ) -> list[asyncio.Task[object]]:
    """Each of ``asks`` (a strategy's exit, a flatten) started in turn, past the cancel of the stop it replaces and
    waiting for that stop's end: the broker's answer held back until :func:`answer_the_stops_cancel` (one that need not
    wait, left to another, may be done already). Their tasks, in order."""
    for kind in STOP_CANCEL_ANSWERS:
        sim.control.delay_messages(kind, 60)
    tasks: list[asyncio.Task[object]] = []
    for ask in asks:
        sim.received_frames.clear()
        task = asyncio.create_task(ask())
        tasks.append(task)
        await eventually(lambda t=task: t.done() or asked_open_orders(sim), what="past its cancel, waiting")
    return tasks


def answer_the_stops_cancel(sim: SimGateway) -> None:
    """The answer to the stop's cancel that :func:`waiting_for_the_stops_cancel` held back, given now."""
    for kind in STOP_CANCEL_ANSWERS:
        sim.control.delay_messages(kind, 0)
    sim.control.step(61)


@asynccontextmanager
async def modify_waiting_for_the_journal(engine: Engine) -> AsyncIterator[tuple[Order, float, asyncio.Task[Any]]]:
    """A buy limit of 10 working, and its modify to 20 amended and waiting for the journal (held) until the block
    ends: (the order, its limit, the modify's task)."""
    limit = below_bid(engine, 2.0)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, order.order_ref) is OrderStatus.SUBMITTED)
    with journal_held(engine):
        modify = asyncio.create_task(engine.modify(order.order_ref, quantity=20))
        await eventually(lambda: engine.orders.orders[order.order_ref].ticket.quantity == 20,
                         what="amended, waiting for the journal")
        yield order, limit, modify


async def broker_answers(sim: SimGateway, engine: Engine, what: str) -> None:
    """The broker's answers held back a second of the simulated clock (``sim.control.delay_messages(kind, 1.0)``)
    let through: the clock moves on, then waits until the engine has no modification unconfirmed (``what``:
    the answer awaited, for the failure message)."""
    sim.control.step(1.0)
    await eventually(lambda: not engine.snapshot().modifications, what=what)


def held_at_broker(sim: SimGateway, order_ref: str) -> tuple[float, float | None, float | None]:
    """(quantity, limit, stop) the simulator holds for ``order_ref``."""
    (order,) = [o for o in sim.orders() if o.order_ref == order_ref]
    return order.total_qty, order.lmt_price, order.aux_price


def shown(engine: Engine, order_ref: str) -> tuple[float, float | None, float | None]:
    """(quantity, limit, stop) of the engine's ticket for ``order_ref``: a modification's figures once it is sent
    (a front end shows the ones the broker holds until it confirms them: ``EngineSnapshot.modifications``)."""
    ticket = engine.orders.orders[order_ref].ticket
    return ticket.quantity, ticket.limit_price, ticket.stop_price


async def placed_by_another_tool(sim: SimGateway, order: ib_async.Order) -> SimOrder:
    """``order`` placed on AAPL on the engine's client id by another ib_async client that then went away (another
    tool, or a previous run whose journal never knew it), working: the simulator's order."""
    other = ib_async.IB()
    await other.connectAsync(sim.host, sim.port, clientId=CLIENT_ID, timeout=3)
    try:
        contract = ib_async.Stock("AAPL", "SMART", "USD")
        await other.qualifyContractsAsync(contract)
        trade = other.placeOrder(contract, order)
        await eventually(lambda: trade.orderStatus.status == "Submitted", what="working at the broker")
    finally:
        other.disconnect()
    await eventually(lambda: CLIENT_ID not in sim.sessions, what="the other tool gone")
    (held,) = [o for o in sim.orders() if o.perm_id == trade.order.permId]
    return held


def working_at_broker(sim: SimGateway) -> dict[str, float]:
    """The size of every order working at the simulator, by orderRef."""
    return {o.order_ref: o.total_qty for o in sim.orders() if o.working}


def quiet(eng: Engine) -> bool:
    """No reconciliation runs and none waits to start."""
    return not eng._reconciling and not any(t.get_name() == "reconcile" and not t.done() for t in eng._tasks)


def alerts_said(events: Subscription, *, kind: str | None = None, source: str | None = None) -> list[Alert]:
    """The alerts raised since ``events`` was last drained (it is drained), only those of ``kind`` and from
    ``source`` when given."""
    return [e.alert for e in events.drain() if isinstance(e, AlertRaised)
            and kind in (None, e.alert.kind) and source in (None, e.alert.source)]


def kinds_of(alert: Alert) -> tuple[str, ...]:
    """The kinds ``alert`` is of: its own, and the trigger whose trip the kill switch's says (a position mismatch that
    halts trading is said by the kill switch's alert alone: ``kill`` and ``position_mismatch``)."""
    return (alert.kind, alert.trip) if alert.trip else (alert.kind,)


def protection_said(events: Subscription) -> list[tuple[AlertLevel, str]]:
    """The protection's alerts drained from ``events``: (level, text)."""
    return [(a.level, a.text) for a in alerts_said(events, source="protection")]


def adopted_refs(events: Subscription) -> list[str]:
    """The refs the adoption alerts drained from ``events`` name."""
    return [a.text.split()[3] for a in alerts_said(events, kind="order_adopted")]


async def fall_through(sim: SimGateway, engine: Engine, stop: Order) -> None:
    """The price falls through ``stop``'s stop price; waits until it has filled and nothing works at the broker."""
    sim.control.set_price(stop.symbol, round((stop.ticket.stop_price or 0.0) - 0.5, 2))
    await eventually(lambda: status(engine, stop.order_ref) is OrderStatus.FILLED, what="the stop triggered")
    await eventually(lambda: not working_at_broker(sim), what="nothing left working")


async def partly_filled_bracket(sim: SimGateway, engine: Engine) -> tuple[Order, float]:
    """A bracket entry to buy 100 AAPL at the ask with 30 offered there: 30 filled, the rest working; (the entry,
    its stop price, 3 below the bid)."""
    quote = sim.quote("AAPL")
    sim.control.set_quote("AAPL", quote.bid, quote.ask, 100, 30)  # 30 offered at the limit
    stop_price = round(quote.bid - 3, 2)
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.LMT, limit_price=quote.ask,
                                            bracket=Bracket(stop_price=stop_price)))
    await eventually(lambda: status(engine, entry.order_ref) is OrderStatus.PARTIALLY_FILLED, what="30 filled")
    return entry, stop_price


class HeldSimulatorStart:
    """The embedded simulator's start (:func:`tui_trader.engine.factory.start_simulator`) held at its beginning
    until the test lets it go (:attr:`go`): then the real simulator starts, in the engine's own start.

    Not a double: only the moment the real start begins is the test's. A stop asked once :attr:`entered` is set
    is asked while the simulator is starting, provably (the engine holds the journal's lock, no simulator yet).
    """

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        """Set when an engine's start is held here."""
        self.go = asyncio.Event()
        """Set by the test: the held start goes on with the real simulator's."""
        self._start = factory.start_simulator

    async def __call__(self, settings: Any) -> Any:
        self.entered.set()
        await self.go.wait()
        return await self._start(settings)


def hold_simulator_start(monkeypatch: pytest.MonkeyPatch) -> HeldSimulatorStart:
    """Hold every ``--sim`` engine's simulator start until the test sets the returned :attr:`~HeldSimulatorStart.go`
    (undone at the test's end)."""
    held = HeldSimulatorStart()
    monkeypatch.setattr(factory, "start_simulator", held)
    return held
