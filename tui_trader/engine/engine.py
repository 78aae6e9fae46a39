"""The trading engine: implements :class:`~tui_trader.engine.handle.EngineHandle`.

The parts live in their own modules (order path, kill switch, broker events, recovery,
strategies, protective orders); this module adds the lifecycle (start/stop), the monitor loop
(heartbeat, approval expiry, stale data, automatic risk triggers, position checks, protective
cuts re-checked, holding time) and the snapshot the console pulls.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tui_trader.broker.base import Broker
from tui_trader.domain.enums import LINK_UP, AlertLevel, OrderStatus, TradingState
from tui_trader.domain.events import BOOK_PERIODIC
from tui_trader.domain.market import open_for
from tui_trader.domain.portfolio import held_words
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.core import Clock
from tui_trader.engine.protection import Protection
from tui_trader.engine.reconcile_book import diff_text
from tui_trader.engine.snapshots import EngineSnapshot, HealthInfo, OrderTrace, TestNotificationResult
from tui_trader.ops.kill_watch import KillStateWatcher
from tui_trader.ops.memory import HeapTrimmer
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.risk.monitors import ACCOUNT_TRIGGERS, TriggerHit

if TYPE_CHECKING:
    from pathlib import Path

    from tui_trader.ops.notify.notifier import Notifier

log = logging.getLogger(__name__)
S = OrderStatus
_POSITION_CHECK_S = 2.0
HOLDING_RETRY_S = 30.0
"""A stale position's exit not sent (denied by the gate, say) is tried again after this long, not on every tick."""


class Engine(Protection):
    """The asyncio trading engine on one broker connection.

    Args:
        config: What to trade and how.
        broker: The broker connection (the ib_async adapter in production and tests).
        clock: Injected clock; the wall clock by default.
        on_stop: Awaited at the end of :meth:`stop` (the factory stops the embedded simulator).
    """

    def __init__(self, config: EngineConfig, broker: Broker, clock: Clock | None = None,
                 on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__(config, broker, clock)
        broker.set_listener(self)
        self.strategies, self.series = {}, {}
        self._on_stop = on_stop
        self._trigger_file_unchecked = False
        """The trigger file's check failed, and that was said (:meth:`_check_trigger_file`)."""
        self._next_position_check = 0.0
        self._closing: set[str] = set()
        self.restored_exec_ids = set()
        self._seen_working, self._gone_away, self._others = {}, {}, {}
        self.started = False
        self._journal_close_passed = False
        """The stop has reached its closing of the journal: one the start opens after it, the start closes."""
        self.health_source: Callable[[], HealthInfo] | None = None
        self.notifier: Notifier | None = None
        self._services: list[tuple[Callable[[], None], Callable[[], Awaitable[None]] | None]] = []
        self._tick_hooks: list[Callable[[datetime], None]] = []
        self.heap = HeapTrimmer()
        """Gives the C heap's free pages back now and then (a long session fragments it)."""
        self._checkpointed: tuple[datetime, object] | None = None
        """When the book was last journaled, and its trading day, equity and high-water mark then."""
        self._connecting: asyncio.Task[None] | None = None
        """The start's connect and warm-up while under way (:meth:`_connect_at_start`): a stop cancels it."""
        self.broker_positions_at_stop: dict[str, float] | None = None
        """The broker's positions as last streamed, taken by :meth:`stop` right before it disconnects
        (ib_async forgets them then): what a summary made after the stop compares the book with."""

    # -- lifecycle -----------------------------------------------------------------------------

    def add_service(self, start: Callable[[], None], stop: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run an operations service (health, notifications) with the engine.

        ``start`` is called once the journal is open, right before the first connect (it may spawn tasks
        with :meth:`spawn`, which :meth:`stop` cancels); ``stop`` is awaited at stop, before the journal closes.
        """
        self._services.append((start, stop))

    def add_tick_hook(self, hook: Callable[[datetime], None]) -> None:
        """Call ``hook(now)`` on every monitor tick (it must not block; schedule work with :meth:`spawn`)."""
        self._tick_hooks.append(hook)

    async def start(self) -> None:
        """Restore from the journal, connect, reconcile, subscribe, warm up, start strategies.

        A stop asked meanwhile (the console quit while it started) ends it at the next step: what the stop found
        not opened yet and this step opened (the journal, the connection) is closed, nothing more starts.
        """
        await self.open_journal()
        if self.stopping:
            if self._journal_close_passed and self.journal is not None:  # the stop found none to close
                await self.journal.close()
            return
        self._watch_out_of_band_kill()
        for start_service, _ in self._services:
            start_service()
        self.load_strategies()
        await self._connect_at_start()
        if self.stopping:
            return
        self.spawn(self._monitor(), "monitor")
        self.started = True

    async def _connect_at_start(self) -> None:
        """Connect and warm up (a failed connect is said, and retried by the reconnect loop), as a task that
        :meth:`stop` cancels.

        A stop waited for them: a gateway that accepts and never answers holds a connect for its whole timeout,
        and a request under way when the stop disconnects is waited out to its own (ib_async drops its answer);
        a headless run went on for as long past its duration.
        """
        self._connecting = asyncio.ensure_future(self._connect_and_warm_up())
        try:
            await self._connecting
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self.stopping or (current is not None and current.cancelling()):
                raise  # the start itself was cancelled, not the stop's doing
        finally:
            self._connecting = None

    async def _connect_and_warm_up(self) -> None:
        try:
            await self.connect_and_sync(startup=True)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self.broker.disconnect()
            self.on_start_connect_failed(exc)
            return
        if self.stopping:  # connected after the stop disconnected: nothing is to be booked from here
            self.broker.disconnect()
            return
        await self.warm_up()

    def _watch_out_of_band_kill(self) -> None:
        """Halt within a second when ``tui-trader kill`` latches the kill in the journal (also on top of an
        automatic trip that kept the positions' protection: the operator's kill cancels everything)."""
        if self.journal is not None:
            self.kill_watcher = KillStateWatcher(self.journal.load_kill_state, self.take_latched_kill,
                                                 self._killed_in_full, self.config.kill_poll_s,
                                                 self.risk.kill_state.to_dict())
            self.spawn(self.kill_watcher.run(), "kill-watch")

    async def stop(self) -> None:
        """Stop strategies, flush the journal and disconnect (working orders stay at the broker)."""
        if self.stopping:
            return
        self.stopping = True
        try:
            await self._wind_down()
        finally:  # also when a step failed or the stop was cancelled: an open journal's aiosqlite thread
            self._journal_close_passed = True  # (not a daemon) would keep the process from ever exiting
            try:  # one the start opens from now on, the start closes (:meth:`start`)
                if self.journal is not None:
                    await self.journal.close()
            finally:
                if self._on_stop is not None:
                    await self._on_stop()

    async def _wind_down(self) -> None:
        """What :meth:`stop` does before the journal closes."""
        if self._connecting is not None:  # a start still connecting or warming up: given up
            self._connecting.cancel()
            await asyncio.wait({self._connecting})
        self.lapse_unsent("the engine stopped")
        for _, stop_service in self._services:
            if stop_service is not None:
                await stop_service()
        await self.cancel_tasks()
        await self._save_kill_state_at_stop()
        self.broker_positions_at_stop = self.broker_quantities()
        self.broker.disconnect()  # no fill is booked after this
        if self.book_settled:
            self.checkpoint_book("clean stop")

    async def _save_kill_state_at_stop(self) -> None:
        """The kill state as it is now: a reset's own save, spawned, may have been cancelled with the tasks
        (a restart then tripped again the triggers the reset released). A failure is logged, not acted on:
        the engine is stopping, and the journal-failure trigger would cancel orders on its way out.

        A kill that ``tui-trader kill`` latched and the engine had not polled yet is kept (the save never
        overwrites it: :meth:`persist_kill_state`), and said: the next start restores it engaged."""
        if self.journal is None or self.journal.failed is not None:
            return
        try:
            await self.persist_kill_state()
            latched = await self.journal.load_kill_state()
        except Exception:  # noqa: BLE001 - stopping: said in the log, the journal's own failure path is closed
            log.exception("kill state not saved at stop")
            return
        if latched and latched.get("engaged") and not self.risk.kill_state.engaged:
            self.alert(AlertLevel.CRITICAL, "kill_switch", f"kill switch latched by {latched.get('by')} as the engine "
                       f"stopped: {latched.get('reason')}; kept, the next start is halted", kind="kill_restored")

    def subscribe(self, name: str, *, maxsize: int = 10_000, lossless: bool = False) -> Subscription:
        """A bounded queue of engine events."""
        return self.bus.subscribe(name, maxsize=maxsize, lossless=lossless)

    # -- snapshot ------------------------------------------------------------------------------

    def snapshot(self) -> EngineSnapshot:
        """The current state as a frozen value."""
        now = self.now()
        kill = self.risk.kill_state
        health = self.health_source() if self.health_source else HealthInfo()
        connection = self.connection
        if health.broker_rtt_ms is not None and self.is_connected:  # the last one measured is no round trip now
            connection = replace(connection, round_trip_ms=health.broker_rtt_ms)
        return EngineSnapshot(
            time=now, heartbeat_at=self.heartbeat_at, mode=self.config.mode, dry_run=self.config.dry_run,
            account_id=self.account_id, trading_state=self.trading_state, kill_engaged=kill.engaged,
            kill_reason=kill.reason, kill_by=kill.by, kill_keeps_protection=self._keeps_protection,
            connection=connection, account=self.account_held(),
            orders=tuple(self.orders.orders.values()), quotes=dict(self.market.quotes),
            modifications=self.modifications, pending_approvals=self.approvals_as_of_now(),
            strategies=self.strategy_statuses(),
            entries_blocked_reason=self.entries_blocked_reason, time_zone=self.config.time_zone,
            health=health, armed=self.armed, read_only_api=self.config.readonly,
            notifications=self.notifier.statuses() if self.notifier is not None else (),
            market_phases=self.market.phases(now) if self.config.exchange_hours else {})

    # -- operations ----------------------------------------------------------------------------

    async def order_trace(self, ref: str) -> OrderTrace | None:
        """The whole story of order ``ref`` (orderRef or broker id) from the journal; ``None`` if unknown."""
        if self.journal is None:
            return None
        from tui_trader.ops.trace import trace_of  # the trace reader loads only when asked for

        await self._flush_journal()  # the latest events are part of the story
        return await trace_of(self.journal, ref)

    async def send_test_notification(self) -> tuple[TestNotificationResult, ...]:
        """Send a test message on every configured channel now; one result per channel (``()``: none)."""
        if self.notifier is None:
            return ()
        return await self.notifier.send_test_results()

    # -- monitor loop --------------------------------------------------------------------------

    async def _monitor(self) -> None:
        while not self.stopping:
            self.tick()
            await asyncio.sleep(self.config.tick_interval_s)

    def tick(self) -> None:
        """One pass of the periodic checks (also called directly by tests)."""
        now = self.now()
        self.heartbeat_at = now
        self.expire_approvals()
        self._check_stale(now)
        self._check_monitors(now)
        self._checkpoint_book_if_due(now)
        self._check_trigger_file()
        if asyncio.get_running_loop().time() >= self._next_position_check:
            self._next_position_check = asyncio.get_running_loop().time() + _POSITION_CHECK_S
            self.check_positions_debounced()
        if self.is_connected:
            self.recheck_cuts_if_due()
        self._check_holding(now)
        self.roll_trading_day(now)
        self.heap.maybe_trim(now)
        for hook in self._tick_hooks:
            hook(now)

    def _check_stale(self, now: datetime) -> None:
        if not self.is_connected or not self.series:  # not while a connect subscribes and reconciles
            return
        due = self._data_due_since(now)
        if due is None:  # every market watched is closed: its quotes stand still, none is late
            age, what = 0.0, ""
        else:
            # Counted from the connect (or the open) when nothing came since: data cannot be late before it was asked
            # for, nor before anything traded (it said "nothing for infs" the moment a session with no data connected).
            (since, since_what), last = due, self.market.last_data_at
            if since is not None and (last is None or last < since):
                age, what = (now - since).total_seconds(), f"none in the {{age:.0f}}s since {since_what}"
            else:
                age, what = self.market.age_s(now), "nothing for {age:.0f}s while connected"
        if age > self.config.market_data_stale_s and not self.market.stale:
            self.market.stale = True
            self.alert(AlertLevel.ERROR, "market_data", f"market data stalled: {what.format(age=age)}",
                       kind="md_stale")
            self.block("stale_data", "market data stalled")
        elif age <= self.config.market_data_stale_s and self.market.stale:
            self.market.stale = False
            self.unblock("stale_data")

    def _data_due_since(self, now: datetime) -> tuple[datetime | None, str] | None:
        """Since when market data is due, and those words: from the connect, or from the open when the first of the
        watched markets open now opened later (``None``: every one is closed). Hours are followed only with
        ``exchange_hours`` (not ``--sim``); a symbol whose hours are not known is taken as always open, as before."""
        connected = self.connection.connected_since
        if not self.config.exchange_hours:
            return connected, "connecting"
        known = [s for s in self.subscribed_symbols if s not in self.unknown_symbols]
        opened = [o for s in known if (o := open_for(self.market.instruments.get(s), now)) is not None]
        if not opened:
            return (connected, "connecting") if not known else None
        if math.isinf(longest := max(opened)):
            return connected, "connecting"
        open_at = now - timedelta(seconds=longest)
        if connected is None or open_at > connected:
            return open_at, "the market opened"
        return connected, "connecting"

    def _check_monitors(self, now: datetime) -> None:
        """The automatic triggers: the risk engine says which fire now (and remembers which did), this performs
        them, one after the other (each sees the state the one before left)."""
        if self.journal is not None and self.journal.failed is None:
            self.risk.journal_writes()  # its next failure is a new one: said, and acted on
        alerts, hits = self.risk.monitor(self.account_snapshot(), now)  # the releases and the peak are its own
        for alert in alerts:
            self.alert(alert.level, alert.source, alert.text, alert.kind)
        for hit in hits:
            self.apply_hit(hit)
        self.apply_hit(self.risk.disconnect(self.disconnected_since, now, ever_connected=self.ever_linked))
        self.apply_hit(self.risk.unknown_orders(self.orders.with_status(S.UNKNOWN), now))

    def checkpoint_book(self, reason: str, extra: Mapping[str, Any] | None = None) -> None:
        """Journal the book as it is now (and note when, for :meth:`_checkpoint_book_if_due`)."""
        super().checkpoint_book(reason, extra)
        self._checkpointed = (self.now(), self._book_figures())

    def _book_figures(self) -> object:
        p = self.portfolio
        return p.day, p.equity, p.high_water_mark

    def _checkpoint_book_if_due(self, now: datetime) -> None:
        """Journal the book every ``book_checkpoint_s`` while its day, equity or high-water mark moved.

        A restart restores the book from its last checkpoint: written only at a clean stop, a seed or
        an adjustment, a crash lost the high-water mark reached since (the drawdown limit then read
        from a lower peak) and the marks (the next day started from stale equity).
        """
        if not self.book_settled or self.stopping or self.journal is None:
            return
        last = self._checkpointed
        if last is not None and (now - last[0]).total_seconds() < self.config.book_checkpoint_s:
            return
        if last is None or last[1] != self._book_figures():
            self.checkpoint_book(BOOK_PERIODIC)

    def apply_hit(self, hit: TriggerHit | None) -> None:
        """Perform an automatic trigger's hit (``None``: nothing fired) as the risk engine decides it
        (:meth:`RiskEngine.respond`): always with an alert, its own or the kill switch's.

        While trading is refused for the account (:attr:`refusal`) a hit latches no kill: the run is HALTED and sends
        nothing already, and an account monitor's figures are the refused account's. Latched, the kill was journaled,
        and the next run, in the right mode with the right account, started HALTED by a loss that was not its own.
        The alert says the figures are the refused account's only for an account monitor's hit
        (:data:`ACCOUNT_TRIGGERS`): a journal failure, a disconnect, has none."""
        if hit is None:
            return
        response = self.risk.respond(hit, self.now())
        if (alert := response.alert) is not None:
            self.alert(alert.level, alert.source, alert.text, alert.kind)
        if response.reduce:
            self.set_trading_state(TradingState.REDUCING, response.by, hit.message)
        elif response.kill and self.refusal:
            whose = f"these figures are account {self.account_id}'s, and " if hit.trigger in ACCOUNT_TRIGGERS else ""
            self.alert(AlertLevel.ERROR, "risk", f"{hit.message}: no kill switch latched, as trading is refused for "
                       f"this run ({self.refusal}): {whose}nothing is sent anyway", kind=hit.monitor)
        elif response.kill:
            self.engage_kill(hit.message, response.by, hit.trigger, response.flatten)

    def on_journal_failure(self, exc: BaseException) -> None:
        """A failed journal write halts trading (the configured journal-failure action), said and acted on once
        per failure (:meth:`RiskEngine.journal_failure`: armed again when the journal writes again and when the
        operator resets the kill switch, so a journal that fails again, or still fails, halts trading again).

        Said in one critical alert: the kill switch's when it halts (the journal's own beside it was a second
        critical message on the trader's phone for the same failure), else the response's, naming the action (of the
        trigger's source and kind: the console's row of the REDUCING it sets goes with it), or that trading stays
        HALTED (:meth:`RiskEngine.respond`)."""
        self.apply_hit(self.risk.journal_failure(str(exc)))

    def on_position_mismatch(self, diffs: dict[str, tuple[float, float]]) -> None:
        """Say the mismatch, and apply the configured position-mismatch trigger (:meth:`RiskEngine.position_mismatch`).

        Said in one alert, naming each symbol's quantities: the reconciliation's ERROR when the trigger only alerts,
        else the trigger's own (:meth:`apply_hit`): the kill switch's critical alert when it halts (the ERROR beside
        it was a second message on the trader's phone for the same mismatch), the REDUCING's ERROR (of the trigger's
        source and kind: the console's row of the REDUCING goes with it)."""
        ours = {s: a for s, (a, _) in diffs.items()}
        theirs = {s: b for s, (_, b) in diffs.items()}
        hit = self.risk.position_mismatch(ours, theirs)
        if hit is None:
            self.alert(AlertLevel.ERROR, "reconcile", f"position mismatch: {diff_text(diffs)}",
                       kind="position_mismatch")
        super().on_position_mismatch(diffs)  # the protection follows the broker's positions
        self.apply_hit(hit)

    def reset_kill(self, reason: str, by: str = "operator", confirm_same_day: bool = False) -> None:
        """Release the kill switch (see :meth:`KillOps.reset_kill`; the risk engine arms the journal-failure
        trigger again with it). Released after a drawdown trip, the portfolio's drawdown peak restarts
        (:meth:`_restart_peak`)."""
        drawdown = self.risk.held_by_drawdown
        super().reset_kill(reason, by, confirm_same_day)
        if drawdown:
            self._restart_peak(by, reason)

    def reduce_only(self, on: bool, reason: str, by: str = "operator") -> None:
        """Enter or leave REDUCING (see :meth:`KillOps.reduce_only`); leaving the REDUCING a drawdown trip
        set restarts the portfolio's drawdown peak (:meth:`_restart_peak`)."""
        drawdown = not on and self.risk.held_by_drawdown
        super().reduce_only(on, reason, by)
        if drawdown and self.trading_state is TradingState.ACTIVE:
            self._restart_peak(by, reason)

    def _restart_peak(self, by: str, reason: str) -> None:
        """The operator released a drawdown trip: the drawdown is measured from the equity now.

        The peak was all-time and nothing restarted it, so the drawdown just accepted tripped again at
        every restart and every new trading day (a kill cancelling every working order each time) until
        equity was back near the old peak. Journaled with the book at once, so a restart keeps it. The
        monitors' own peak and drawdown alarms are restarted by the risk engine with the release itself
        (:meth:`RiskEngine.reset_kill`, :meth:`RiskEngine.set_state`).
        """
        before = self.portfolio.high_water_mark
        self.portfolio.restart_peak()
        self.alert(AlertLevel.WARNING, "risk", f"drawdown peak restarted at the equity now, "
                   f"{self.portfolio.high_water_mark:,.2f} (was {before:,.2f}), by {by}: {reason.strip()}",
                   kind="drawdown_peak_restarted")
        if self.book_settled:
            self.checkpoint_book(f"drawdown peak restarted by {by}")

    def _check_trigger_file(self) -> None:
        """Engage the kill switch when something appears at the trigger file's path.

        A check that fails other than "not there" (its parent a regular file, no permission) was silent:
        ``touch`` cannot create the file either, and an operator counting on it to stop trading believed
        it armed. An ERROR names the path and the error, once while it lasts; an INFO when it is checked again.
        """
        path = self.config.trigger_file
        if path is None:
            return
        try:
            path.stat()
        except FileNotFoundError:
            self._trigger_file_checked(path)
            return
        except OSError as exc:
            if not self._trigger_file_unchecked:
                self._trigger_file_unchecked = True
                self.alert(AlertLevel.ERROR, "kill_switch", f"the kill switch's trigger file {path} cannot be checked "
                           f"({exc.strerror or exc}): creating it would NOT engage the kill switch",
                           kind="trigger_file_unchecked")
            return
        self._trigger_file_checked(path)
        if not self._killed_in_full():  # an automatic trip's kill keeps the stops: the operator's does not
            self.engage_kill(f"trigger file {path} appeared", "trigger_file", KillTrigger.MANUAL)

    def _trigger_file_checked(self, path: Path) -> None:
        if self._trigger_file_unchecked:
            self._trigger_file_unchecked = False
            self.alert(AlertLevel.INFO, "kill_switch", f"the kill switch's trigger file {path} can be checked again: "
                       "creating it engages the kill switch", kind="trigger_file_checked")

    def _check_holding(self, now: datetime) -> None:
        for symbol, pos in self.portfolio.open_positions().items():
            limit = self._holding_limit_s(pos.owner)
            if limit is None or not pos.opened_at or symbol in self._closing:
                continue
            if (held_s := (now - pos.opened_at).total_seconds()) > limit:
                self._closing.add(symbol)
                if limit != self.config.max_holding_s:  # the account's is said by the risk monitor's alert
                    self.alert(AlertLevel.WARNING, "risk", f"{held_words(symbol, pos.quantity)} held {held_s:.0f}s, "
                               f"past {pos.owner}'s max_holding_s {limit:g}s: closing it", kind="holding_time_strategy")
                self.spawn(self._close_stale(symbol), f"holding-{symbol}")

    def _holding_limit_s(self, owner: str) -> float | None:
        """How long a position ``owner`` opened may be held: its strategy's own ``max_holding_s`` (a
        ``[[strategies]]`` entry's: it was accepted and never used), else the account's ``[risk] max_holding_s``."""
        running = self.strategies.get(owner)
        own = running.spec.max_holding_s if running is not None else None
        return own if own is not None else self.config.max_holding_s

    async def _close_stale(self, symbol: str) -> None:
        try:
            await self.close_position(symbol, "maximum holding time reached", "max_holding")
        finally:
            self.call_later(HOLDING_RETRY_S, self._closing.discard, symbol, name=f"holding-{symbol}")

    @property
    def is_connected(self) -> bool:
        """True while the broker connection is up."""
        return self.connection.state in LINK_UP
