"""The engine's shared state and small helpers; the behaviour lives in the mixins built on it.

:class:`EngineCore` holds the order manager, the portfolio, the market state, the risk engine,
the approvals queue, the event bus and the journal, and offers what every part needs:
``now()``, ``publish()``, ``alert()``, trading-state changes, entry blocks and task spawning.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from tui_trader.broker.base import Broker
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, ConnectionState, Mode, OrderStatus, TradingState
from tui_trader.domain.events import AlertRaised, ConnectionChanged, Event, OrderUpdated
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.engine.approvals import ApprovalQueue
from tui_trader.engine.bus import EventBus
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.market import MarketState
from tui_trader.engine.orders import OrderManager
from tui_trader.engine.portfolio import Portfolio
from tui_trader.engine.snapshots import ConnectionInfo
from tui_trader.ops.kill_watch import KillStateWatcher
from tui_trader.risk.engine import KillSwitchLatchedError, RiskEngine
from tui_trader.store.journal import Journal

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


class EngineCore:
    """State shared by the engine's parts.

    Args:
        config: The engine configuration.
        broker: The broker connection.
        clock: Injected clock (timezone-aware); the wall clock by default.
    """

    def __init__(self, config: EngineConfig, broker: Broker, clock: Clock | None = None) -> None:
        self.config = config
        self.broker = broker
        self.now: Clock = clock or utc_now
        self.bus = EventBus()
        self.orders = OrderManager()
        self.portfolio = Portfolio(config.time_zone)
        self.market = MarketState.empty()
        self.approvals = ApprovalQueue(config.approval_timeout_s, held=config.mode is Mode.LIVE)  # until armed
        self.risk = RiskEngine(config.limits)
        self.journal: Journal | None = None
        self.kill_watcher: KillStateWatcher | None = None
        """Notices a kill ``tui-trader kill`` latches in the journal (started with the journal)."""
        self.connection = ConnectionInfo(getattr(broker, "host", ""), getattr(broker, "port", 0),
                                         getattr(broker, "client_id", 0))
        self.account_id = ""
        self.refusal = ""
        """Why trading is refused for the connected account ('' while it is not): set at a connect
        (:meth:`~tui_trader.engine.recovery.Recovery.refuse_trading`) and kept to the end of the run. Nothing goes to
        the broker then: no order, modification or cancel, automatic or the operator's; trading stays HALTED."""
        self.armed = config.mode is not Mode.LIVE
        """Live mode starts unarmed: no approval is accepted until the operator types the account id."""
        self.alert_counts: Counter[str] = Counter()
        self.unsent_counts: Counter[str] = Counter()
        """Orders (a bracket's children each) that never went to the wire, by why: ``denied`` (the risk gate or
        the trading state; their status is REJECTED, as the broker's rejections are) and ``dry_run`` (recorded as
        they would have been sent; CANCELLED)."""
        self.blocks: dict[str, str] = {}
        self.added_symbols: dict[str, None] = {}
        """Symbols the operator added this session (``watch``), in order."""
        self.quote_waiters: dict[str, asyncio.Future[None]] = {}
        """A newly watched symbol's wait for its first quote (set by ``on_quote``)."""
        self.heartbeat_at = self.now()
        self.stopping = False
        self.cancels_asked: set[str] = set()
        """Working orders tui-trader asked the broker to cancel (an end it asked for is no news to say)."""
        self.order_changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._after_wire: list[Callable[[], None]] = []
        self._settle_timer: asyncio.TimerHandle | None = None

    # -- events ------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Publish ``event`` on the bus (the journal is a lossless subscriber), after what
        :meth:`after_wire` still holds: subscribers see events in the order they happened."""
        if self._after_wire:
            self.settle()
        self.bus.publish(event)

    def after_wire(self, work: Callable[[], None]) -> None:
        """Run ``work`` (publishing what an order sent just now did) once the loop has read what waits.

        The order is on the wire and durable in the journal; its events are for the journal's
        next batch and the console. A zero-delay timer runs after the I/O callbacks of the loop's
        next iteration, so the loop first reads what is waiting: the gateway's next message (or,
        when the simulator shares the loop, the order itself), as the collector does with a
        collection. Anything published before then runs ``work`` first, so no event overtakes it.
        """
        self._after_wire.append(work)
        if self._settle_timer is None:
            self._settle_timer = asyncio.get_running_loop().call_later(0, self.settle)

    def settle(self) -> None:
        """Run what :meth:`after_wire` holds now, oldest first (a failure is reported; the rest still runs)."""
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        work, self._after_wire = self._after_wire, []
        for item in work:
            try:
                item()
            except Exception as exc:  # noqa: BLE001 - as for a timer: logged and alerted
                self.report_crash("after_wire", exc)

    def publish_order(self, order: Order | None, previous: Order | None = None) -> None:
        """Publish an :class:`OrderUpdated` for ``order`` (no-op for ``None``)."""
        if order is not None:
            self.order_updated(order, previous.status if previous else None)

    def order_updated(self, order: Order, previous: OrderStatus | None, now: datetime | None = None) -> None:
        """Every :class:`OrderUpdated` goes out here (``previous``: the status the order came from)."""
        self.publish(OrderUpdated(now or self.now(), order, previous))
        self.order_changed.set()

    def alert(self, level: AlertLevel, source: str, text: str, kind: str = "general") -> None:
        """Raise an alert for the operator (published and journaled)."""
        now = self.now()
        self.alert_counts[level.value] += 1
        log.log(_LOG_LEVEL[level], "%s: %s", source, text)
        self.publish(AlertRaised(now, Alert(level, source, text, now, kind)))

    # -- trading state and entry blocks --------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED."""
        return self.risk.state

    def set_trading_state(self, state: TradingState, by: str, reason: str) -> bool:
        """Change the trading state (refused while the kill switch is latched, and out of HALTED while trading is
        refused for the account: :attr:`refusal`)."""
        if self.refusal and state is not TradingState.HALTED:
            log.info("trading state change to %s refused: trading refused: %s", state.value, self.refusal)
            return False
        try:
            event = self.risk.set_state(state, by, reason, self.now())
        except KillSwitchLatchedError as exc:
            log.info("trading state change refused: %s", exc)
            return False
        if event is not None:
            self.publish(event)
        return True

    def block(self, key: str, reason: str, *, silent: bool = False) -> None:
        """Block new entries for ``reason`` until :meth:`unblock` (alerts once per key; ``silent``: not alerted,
        what set the block says it another way)."""
        if key not in self.blocks:
            self.blocks[key] = reason
            if not silent:
                self.alert(AlertLevel.ERROR, "engine", f"new entries blocked: {reason}", kind="entries_blocked")

    def unblock(self, key: str, *, silent: bool = False) -> None:
        """Lift one entry block (said with the reason its block was said with, not its key; ``silent``: not
        alerted, what lifted it says it another way)."""
        if (reason := self.blocks.pop(key, None)) is not None and not silent:
            self.alert(AlertLevel.INFO, "engine", f"entry block lifted: {reason}", kind="entries_unblocked")

    @property
    def entries_blocked_reason(self) -> str:
        """Why new entries are blocked ('' when they are not)."""
        return "; ".join(self.blocks.values())

    def reduces_position(self, ticket: OrderTicket) -> bool:
        """True when ``ticket`` only reduces the current position of its symbol."""
        qty = self.portfolio.quantity(ticket.symbol)
        return qty * ticket.signed_quantity < 0 and ticket.quantity <= abs(qty) + 1e-9

    # -- connection ----------------------------------------------------------------------------

    def set_connection(self, state: ConnectionState, **changes: Any) -> None:
        """Update the connection info (a change of state goes through :meth:`move_link`, which says it)."""
        from dataclasses import replace

        self.connection = replace(self.connection, state=state, **changes)

    def move_link(self, state: ConnectionState, detail: str = "", **changes: Any) -> None:
        """Update the connection info; a new ``state`` is published as :class:`ConnectionChanged` from the state it
        leaves (the one place that knows it: the console and the notifier read it, they do not infer it)."""
        previous = self.connection.state
        self.set_connection(state, **changes)
        if state is not previous:
            self.publish(ConnectionChanged(self.now(), state, detail, previous))

    # -- tasks ---------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a tracked task; a crash is logged and raised as an alert."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def call_later(self, delay_s: float, callback: Callable[..., None], *args: Any, name: str) -> None:
        """Call ``callback(*args)`` in ``delay_s`` seconds (cancelled at stop; a crash is reported).

        A timer, not a task: nothing runs until it fires. The order path arms one per order sent,
        where a task's first step would run before the loop reads the next message.
        """
        def fire() -> None:
            self._timers.discard(handle)
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - as for a task: logged and alerted
                self.report_crash(name, exc)

        handle = asyncio.get_running_loop().call_later(delay_s, fire)
        self._timers.add(handle)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.report_crash(task.get_name(), exc)

    def report_crash(self, what: str, exc: BaseException) -> None:
        """Log and alert a failure of engine code that had no caller to raise to (a task, a handler)."""
        log.error("engine task %s failed", what, exc_info=exc)
        self.alert(AlertLevel.ERROR, "engine", f"{what} failed: {exc!r}", kind="task_failed")

    async def cancel_tasks(self) -> None:
        """Cancel every tracked task and wait for them (publishing what :meth:`after_wire` holds first)."""
        self.settle()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_LOG_LEVEL = {AlertLevel.INFO: logging.INFO, AlertLevel.WARNING: logging.WARNING,
              AlertLevel.ERROR: logging.ERROR, AlertLevel.CRITICAL: logging.CRITICAL}


def link_state(degraded: bool) -> ConnectionState:
    """The state of a link that is up: CONNECTED, or DEGRADED while a data farm is broken."""
    return ConnectionState.DEGRADED if degraded else ConnectionState.CONNECTED
