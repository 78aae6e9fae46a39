"""Connecting and reconnecting to the broker; restoring from the journal.

After every (re)connect the engine checks the account, resubscribes market data and reconciles
(:mod:`tui_trader.engine.reconcile`): open orders, completed orders, the executions since the
last one it journaled, positions. New entries stay blocked until that is done.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tui_trader.broker.base import SyncFailed, account_problem
from tui_trader.domain.alerts import LOST_LINK
from tui_trader.domain.enums import LINK_UP, AlertLevel, ConnectionState, OrderStatus, TradingState
from tui_trader.domain.events import (
    BookCheckpointed,
    CommissionReported,
    Event,
    MessagesSent,
    OrderFilled,
    OrderUpdated,
)
from tui_trader.domain.market import Instrument
from tui_trader.domain.orders import Order
from tui_trader.engine.amend import Amendments
from tui_trader.engine.broker_events import SERVER_LINK_BLOCK
from tui_trader.engine.bus import Subscription
from tui_trader.engine.core import link_state
from tui_trader.engine.kill import restored_kill_text
from tui_trader.engine.orders import FILL_MEMORY
from tui_trader.engine.reconcile import RECONCILING_BLOCK
from tui_trader.errors import BrokerError, failure_words
from tui_trader.risk.engine import RiskEngine, trigger_by
from tui_trader.risk.kill_switch import KillState
from tui_trader.risk.monitors import DISCONNECT_MONITOR
from tui_trader.store.journal import Journal
from tui_trader.store.lock import JournalLock

log = logging.getLogger(__name__)
S = OrderStatus


WATCH_QUOTE_WAIT_S = 3.0
"""How long :meth:`Recovery.watch` waits for a newly watched symbol's first quote."""

DISCONNECT_TRIGGER = trigger_by(DISCONNECT_MONITOR)
"""Who a trading-state change made by the disconnect trigger is recorded as made by (``TriggerResponse.by``)."""

UNSENT = (S.PENDING_APPROVAL, S.APPROVED)
"""Statuses of an order that has not reached the wire: SENDING is journaled before the bytes go out."""

ACCOUNT_RECORD = (OrderUpdated, OrderFilled, CommissionReported, BookCheckpointed)
"""The events a later run restores from the journal as its account's: its orders (the open ones worked, the day's
finished ones shown), its fills and commissions (replayed into the book after its last checkpoint) and the book's
checkpoints. Not journaled while trading is refused for the account (:func:`not_account_record`)."""


class Recovery(Amendments):
    """Journal restore and the connection lifecycle."""

    reconnects = 0
    disconnected_since = None
    ever_linked = False
    """The link has come up this run (connected, synced and reconciled: :meth:`connect_and_sync` done). Not the
    account id, read at the handshake: a run whose every sync failed after it never had a working link."""
    instruments_day: date | None = None
    """Trading day (exchange time) of the last contract details read."""
    _connect_said = ""
    """The reason of a failed connect last alerted in this outage (each attempt's is logged; a new one alerted)."""
    _dropping: tuple[str, str] | None = None
    """Why the engine drops the session itself (a 1100, a 1101): the lost link's detail and its alert."""
    unknown_symbols: frozenset[str] = frozenset()
    """Symbols the broker said it does not know (at the last subscribe): not traded, not warmed up."""
    _reconnecting = False
    _lift_owed = False
    """A lost link's alert said "new entries blocked until reconciled": the link made again says they no longer are."""
    journal_lock: JournalLock | None = None
    """The journal's writer lock when taken ahead of :meth:`open_journal` (the simulator starts after it)."""
    _journal_feed: Subscription | None = None
    """The journal's subscription to the bus: what it keeps is narrowed once trading is refused
    (:meth:`refuse_trading`)."""

    # -- journal -------------------------------------------------------------------------------

    async def open_journal(self) -> None:
        """Open the journal, attach it to the bus, restore the kill state, the open orders and the day's finished
        ones (:meth:`~tui_trader.engine.orders.OrderManager.restore_finished`)."""
        path = self.config.journal_path
        if path is None:
            return
        # One engine per journal: a second one fails here, before it touches the first one's orders.
        lock, self.journal_lock = self.journal_lock or JournalLock.acquire(path), None
        self.journal = await Journal.open(path, batch_size=self.config.journal_batch_size,
                                          flush_interval_ms=self.config.journal_flush_interval_ms,
                                          on_failure=self.on_journal_failure, lock=lock)
        self._journal_feed = self.bus.subscribe("journal", maxsize=100_000, lossless=True)
        self.journal.attach(self._journal_feed)
        kill = await self.journal.load_kill_state()
        if kill and not kill.get("engaged"):  # released: the triggers reset today stay quiet today
            self.risk = RiskEngine(self.config.limits, KillState.from_dict(kill).released_only())
        elif kill:
            self.risk = RiskEngine(self.config.limits, KillState.from_dict(kill))
            self.alert(AlertLevel.CRITICAL, "kill_switch", restored_kill_text(kill, self.config.time_zone),
                       kind="kill_restored")
        # The day's finished orders are shown, never worked: the open ones after them win a shared broker id.
        self.orders.restore_finished(await self.journal.finished_orders(self._day_start(), self.orders.finished_kept))
        restored = [self.orders.adopt(order) for order in await self.journal.open_orders()]
        await self._own_ref_prefix(self.journal, restored)
        for order in restored:  # journaled as SENDING, no answer recorded: the engine died mid-send
            if order.status is S.SENDING and order.parent_ref not in self.in_flight:
                self.resume_in_flight(order)
        self.lapse_unsent("the engine restarted before it was sent", [o for o in restored if o.status in UNSENT])
        await self._remember_sent(self.journal, [o for o in restored if o.status is S.SENDING])
        # Fills within the order manager's memory are kept for deduplication; older ones are
        # looked up in the journal when a broker replays them (BrokerEvents.on_fill).
        self.orders.fill_memory = FILL_MEMORY
        newest = await self.journal.last_execution_time()
        for fill in await self.journal.fills(since=newest - FILL_MEMORY if newest else None):
            self.orders.remember_fill(fill)
            self.restored_exec_ids.add(fill.exec_id)
        await self.restore_book(self.journal)
        if self.book_restored:  # a new day starts from the restored marks, before any quote moves them
            self.portfolio.roll_day(self.now())

    async def _own_ref_prefix(self, journal: Journal, restored: list[Order]) -> None:
        """Draw the run's ref prefix again while the journal holds an order under it (``restored``: its open orders, a
        SENDING one perhaps only in the write-ahead record).

        The engine's refs are ``tt<6 hex digits>-<n>``: the counter makes them unique within a run, the prefix,
        drawn at random, across runs, but only by chance (one in 16.7 million a pair: a crash loop's thousands of
        restarts make a repeat likely). A run under an earlier one's prefix would give its orders that run's refs: the
        journal's rows overwritten, another order's found by a resubmit's look-up at the broker.
        """
        taken = {o.order_ref.rpartition("-")[0] for o in restored}
        while self.orders.ref_prefix in taken or await journal.has_refs_under(self.orders.ref_prefix):
            self.orders.draw_prefix()

    async def _remember_sent(self, journal: Journal, sending: list[Order]) -> None:
        """Seed the throttle and the duplicate check with the messages the run before sent (its journal's
        :class:`MessagesSent` records) and the sends of the orders it left in SENDING (``sending``, the
        records of which it died before writing: :func:`unrecorded_sends`).

        Both lived in memory only: a restarted engine (a supervisor's, a crash loop's) had full buckets
        and had sent nothing, so each restart could send another minute's budget, and the order sent
        right before the restart passed the duplicate check again. A journal written before the records
        existed has none: that one restart counts only the orders left in SENDING.
        """
        now = self.now()
        since = now - timedelta(seconds=self.risk.memory_s)
        events = await journal.events(kinds=(MessagesSent.__name__,), since=since)
        recorded = [e for e in events if isinstance(e, MessagesSent)]
        self.risk.restore_sent([*recorded, *unrecorded_sends(sending, recorded, since)], now)

    def lapse_unsent(self, why: str, orders: list[Order] | None = None) -> None:
        """Expire orders that never reached the broker and whose approval can no longer be given
        (``orders``; default: every order waiting for approval or approved and not yet sending).

        An approval belongs to the run that asked for it: after a restart (or at a stop) the
        operator's answer would come for a stale plan and price, so the order lapses, said once
        in an alert, and a new signal makes a new order. Nothing was sent: nothing to cancel.
        """
        if orders is None:
            orders = [o for o in self.orders.orders.values() if o.status in UNSENT]
        refs = {o.order_ref for o in orders}
        for order in orders:
            if order.parent_ref in refs:
                continue  # moved with its parent's family
            self.approvals.pop(order.order_ref)
            self._move_family(order.order_ref, S.EXPIRED, f"not sent: {why}")
            self.alert(AlertLevel.WARNING, "approvals", f"{order.order_ref} expired unsent: {why}",
                       kind="approval_lapsed")

    # -- connecting ----------------------------------------------------------------------------

    async def connect_and_sync(self, startup: bool) -> None:
        """Connect (the account is checked at its handshake: :meth:`on_account`), subscribe, reconcile; then the link
        is up (CONNECTED, or DEGRADED).

        The link stays CONNECTING until all of it is done: a connect whose sync fails (the gateway stalls or
        drops it) is a connect that failed, said once (:meth:`connect_failed`), not a link that came up and was
        lost. Entries stay blocked until the reconciliation is done; order statuses from before the connect are
        the reference for "changed while out of touch" alerts.

        Raises:
            SyncFailed: Connected, but the sync after it failed.
            ConnectionError, TimeoutError, OSError: No connection was made.
        """
        self._block_until_reconciled()
        before = self.working_statuses()
        self.lose_touch()
        self._dropping = None
        # Each connection's farms report afresh as it opens (while CONNECTING; which were said broken is kept:
        # farms_said_broken); so does a 2110 on a link that is still broken. Kept across connections instead, a
        # 1102 heard by no session would block for good.
        # Not news again on each retry of a reconnect loop (the state stays CONNECTING between its tries).
        self.move_link(ConnectionState.CONNECTING, farms={}, market_data_degraded=False, server_link_broken=False,
                       retry_at=None)
        self.unblock(SERVER_LINK_BLOCK, silent=True)
        try:
            await self.broker.connect()
        except SyncFailed as exc:
            if self._dropping is None:
                raise
            # Dropped on a 1100 in the handshake's own sync (TWS says it to each client while IB is unreachable):
            # that is why, not "the gateway closed the connection".
            raise SyncFailed(self._dropping[0]) from exc
        await self._sync(startup, before)
        self._connect_said = ""
        if not startup:  # a reconnection made, not an attempt: a gateway down for a minute is one
            self.reconnects += 1
        now = self.now()
        self.disconnected_since = None
        self.ever_linked = True
        self._say_lost_link_over()
        state = link_state(self.connection.market_data_degraded or self.connection.server_link_broken)
        self.move_link(state, f"account {self.account_id}", connected_since=now, reconnects=self.reconnects)
        self._watch_held()
        if self.risk.kill_state.engaged and self.kill_cancels_owed:  # engaged in the outage just ended
            self.spawn(self.send_owed_kill_cancels(), "kill-cancels-owed")
        elif self.risk.kill_state.engaged:  # latched from before this connection: say what the broker still holds
            self.spawn(self.verify_latched_kill(), "kill-verify-latched")

    async def _sync(self, startup: bool, before: dict[str, OrderStatus]) -> None:
        """Subscribe and reconcile on the connection just made; a failure is a :class:`SyncFailed` saying where.

        Raises:
            SyncFailed: A request went unanswered, or the connection closed under it (also after the last answer:
                nothing failed then, and nothing is connected).
        """
        stage = "subscribing market data"
        try:
            await self._subscribe()
            stage = "reconciling"
            # The book is settled against the broker once, on the first successful connect.
            await self.reconcile("startup" if startup else "reconnected", startup=not self.book_settled,
                                 before=before)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._block_until_reconciled()
            raise SyncFailed(self._sync_failure(stage, exc)) from exc
        if not self.broker.is_connected:
            self._block_until_reconciled()
            raise SyncFailed(self._sync_failure(stage, ConnectionError()))

    def _block_until_reconciled(self) -> None:
        """Entries blocked until a reconciliation on this connection is done (again after a sync that failed: a
        reconciliation that ended before the connection closed lifted the block). Silently: a start's link made
        says it is done, a lost link's alert said it (:meth:`on_disconnected`)."""
        self.block(RECONCILING_BLOCK, "connecting: waiting to reconcile with the broker", silent=True)

    def _say_lost_link_over(self) -> None:
        """The link is made again after a lost link whose alert said entries are blocked: say they no longer are
        for it (and what blocks them still). Not after the reconciliation that lifted the block: a connection
        closed after it is a sync that failed, and the link is not back."""
        if not self._lift_owed:
            return
        self._lift_owed = False
        still = f" (still blocked: {self.entries_blocked_reason})" if self.blocks else ""
        self.alert(AlertLevel.INFO, "broker", f"reconnected and reconciled: new entries no longer blocked by the lost "
                   f"link{still}{self._outage_reducing()}", kind="reconnected")

    def _outage_reducing(self) -> str:
        """What the link's return leaves in place: the REDUCING the disconnect trigger set during the outage. It stays
        (as every risk trigger's does: an operator decides when to trade again, DESIGN §6), said with how to end it;
        the link back read as all clear while every entry was denied."""
        change = self.risk.last_change
        if self.trading_state is not TradingState.REDUCING or change is None or change.by != DISCONNECT_TRIGGER:
            return ""
        return (f"; trading state still REDUCING ({DISCONNECT_TRIGGER}): resume trading to end it (the console's r; a "
                "headless run keeps it to its end)")

    def _sync_failure(self, stage: str, exc: BaseException) -> str:
        """Why the engine's part of a sync failed: the session it dropped itself (a 1100), or ``exc`` at ``stage``."""
        if self._dropping is not None:
            return self._dropping[0]
        if not self.broker.is_connected:
            return f"{stage}: the gateway closed the connection"
        if isinstance(exc, TimeoutError) and not str(exc):  # the adapter's say how long it waited
            return f"{stage}: the broker did not answer in time"
        return f"{stage}: {failure_words(exc)}"

    def on_account(self, account: str, managed: list[str]) -> None:
        """A connect's handshake named the account in use (``managed``: the gateway's accounts): trading is refused
        when it is not the configured one, or ``--paper``'s is not a paper account (:func:`account_problem`).

        Checked at every handshake, before the sync after it brings any order, fill or position: checked once the
        connect had returned, a fill heard during that sync had the engine cancel the protection it left over, at the
        account it then refused. Once refused, for the rest of the run (a later connect does not lift it: said when
        it was found)."""
        self.account_id = account
        if self.refusal:
            return
        problem = account_problem(account, managed, self.config.expected_account, self.config.mode)
        if problem:
            self.refuse_trading(problem)

    def refuse_trading(self, problem: str) -> None:
        """Trading is refused for this account (``problem`` says why): nothing goes to the broker from this engine
        from now on, no order, modification or cancel, automatic or the operator's, the kill switch's neither (the
        gate denies them all, the sends and cancels check it, and the broker connection itself refuses to write
        them). HALTED, with the refusal as its reason, for the rest of the run; said in one CRITICAL alert. Refused
        before the book is settled, the book is unknown until seeded from this account (:meth:`forget_book`)."""
        self.refusal = problem
        if self._journal_feed is not None:  # the account's record heard from now on is shown, never kept
            self._journal_feed.keep = not_account_record
        self.broker.refuse_orders(problem)
        if not self.book_settled:  # a start's: the journal's book is not this account's (seeded from it once synced)
            self.forget_book()
        self.set_trading_state(TradingState.HALTED, "account", f"trading refused: {problem}")
        self.block("account", f"trading refused: {problem}", silent=True)  # said below
        self.alert(AlertLevel.CRITICAL, "broker", f"trading refused: {problem}. Nothing is sent to the broker for "
                   "the rest of this run (no order, modification or cancel; the kill switch's neither): restart "
                   "in the right mode with the right account, and manage this account's orders in TWS",
                   kind="account_refused")

    @property
    def subscribed_symbols(self) -> tuple[str, ...]:
        """The configured symbols, then those the operator added this session (:meth:`watch`)."""
        return tuple(dict.fromkeys((*self.config.all_symbols, *self.added_symbols)))

    async def watch(self, symbol: str) -> Instrument:
        """Subscribe ``symbol``'s quotes and bars for the rest of the session, and wait (a few seconds at
        most) for its first quote: a manual ticket for a symbol no strategy trades gets a quote to be
        checked against. Kept across reconnects, not across restarts. Returns the instrument.

        Raises:
            BrokerError: Not connected, the broker has no such contract, or it did not answer in time.
        """
        symbol = symbol.strip().upper()
        if not symbol or not symbol.replace(".", "").replace(" ", "").isalnum():
            raise BrokerError(f"{symbol!r}: not a symbol")
        known = self.market.instruments.get(symbol)
        if known is not None and symbol in self.subscribed_symbols:
            return known
        if not self.broker.is_connected:
            raise BrokerError(f"{symbol}: cannot subscribe while disconnected from the broker")
        try:
            instruments = await self.broker.qualify([symbol])
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise BrokerError(f"{symbol}: the broker gave no contract details ({failure_words(exc)})") from exc
        if symbol not in instruments:
            raise BrokerError(f"{symbol}: no such stock at the broker (SMART, USD)")
        self._store_instruments(instruments)
        self.added_symbols[symbol] = None
        self.broker.subscribe_quotes(symbol)
        self.broker.subscribe_bars(symbol)
        self.alert(AlertLevel.INFO, "market_data", f"watching {symbol} for this session", kind="watch")
        if symbol not in self.market.quotes:  # nothing awaited since the subscribe: no quote can be missed
            waiter = self.quote_waiters.setdefault(symbol, asyncio.get_running_loop().create_future())
            try:
                await asyncio.wait_for(asyncio.shield(waiter), WATCH_QUOTE_WAIT_S)
            except TimeoutError:
                if self.quote_waiters.get(symbol) is waiter:
                    del self.quote_waiters[symbol]
        return instruments[symbol]

    def _watch_held(self) -> None:
        """Quotes for every symbol held, or with a working order, that nothing else subscribes (a position
        bought from a ticket before a restart, or outside tui-trader): marked at the market, its P&L live,
        not left at its cost."""
        held = {*self.portfolio.open_positions(), *(o.symbol for o in self.orders.working())}
        for symbol in sorted(held - set(self.subscribed_symbols)):
            self.spawn(self._watch_held_symbol(symbol), f"watch-{symbol}")

    async def _watch_held_symbol(self, symbol: str) -> None:
        try:
            await self.watch(symbol)
        except BrokerError as exc:
            self.alert(AlertLevel.WARNING, "market_data", f"no quotes for {symbol}, which is held: {exc.message}",
                       kind="watch_failed")

    async def _subscribe(self) -> None:
        symbols = self.subscribed_symbols
        # A fallback to delayed data outlives the connection it was made on.
        data_type = 3 if self._delayed_fallback_on else self.config.market_data_type
        if data_type != 1:
            self.broker.set_market_data_type(data_type)
        instruments = await self.broker.qualify(symbols)
        self._store_instruments(instruments)
        unknown = frozenset(s for s in symbols if s not in instruments)
        for symbol in sorted(unknown - self.unknown_symbols):  # said once, not again on every reconnect
            self.alert(AlertLevel.ERROR, "market_data", f"unknown symbol {symbol}: the broker has no such stock "
                       "(SMART, USD); not traded", kind="unknown_symbol")
        self.unknown_symbols = unknown
        for symbol in symbols:
            if symbol in unknown:
                continue
            if self.risk.limits.require_liquid_hours and not instruments[symbol].liquid_sessions:
                self.alert(AlertLevel.ERROR, "market_data", f"trading hours of {symbol} unknown: its entries "
                           "are denied", kind="hours_unknown")
            self.broker.subscribe_quotes(symbol)
            self.broker.subscribe_bars(symbol)

    # -- contract details (trading hours) -------------------------------------------------------

    def _store_instruments(self, instruments: dict[str, Instrument]) -> None:
        self.market.set_instruments(instruments)
        self.instruments_day = self._trading_day(self.now())

    def _trading_day(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.config.time_zone)).date()

    def _day_start(self) -> datetime:
        """Midnight (exchange time) starting today's trading day, the day the portfolio counts."""
        return datetime.combine(self._trading_day(self.now()), time(), ZoneInfo(self.config.time_zone))

    def roll_trading_day(self, now: datetime) -> None:
        """On the first tick of a new trading day, re-read every symbol's contract details.

        Every (re)connect reads them too; this covers an engine that stays connected across
        midnight, so the hours (and the schedule's sessions built on them) roll forward daily.
        """
        day = self._trading_day(now)
        if self.instruments_day is None or day == self.instruments_day or not self.broker.is_connected:
            return
        self.instruments_day = day  # one attempt a day: a failure keeps the (multi-day) hours we have
        self.spawn(self._refresh_instruments(), "refresh-instruments")

    async def _refresh_instruments(self) -> None:
        try:
            instruments = await self.broker.qualify(self.subscribed_symbols)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self.alert(AlertLevel.WARNING, "market_data", f"trading hours not refreshed for the new day: "
                       f"{failure_words(exc)}; the hours read before are kept", kind="hours_refresh_failed")
            return
        self._store_instruments(instruments)

    # -- disconnects ---------------------------------------------------------------------------

    def on_disconnected(self) -> None:
        """A link that was up went down: say it and that entries are blocked until reconciled (one ERROR), block
        them, start the reconnect loop.

        Not while a connect is under way (its sync included): that attempt fails, and says why itself
        (:meth:`connect_failed`). A run that never connected said "disconnected from the broker; reconnecting"
        (ib_async closes a half-open connection as it gives up); a sync that failed said it besides "could not
        connect".
        """
        if self.stopping or self.connection.state not in LINK_UP:
            return
        why, said = self._dropping or ("connection lost", "disconnected from the broker; reconnecting")
        self._dropping = None
        # Said by the alert below. Not held while the link is up (a connect's reconciliation lifts it first).
        self.block(RECONCILING_BLOCK, "disconnected: waiting to reconnect and reconcile", silent=True)
        self._lift_owed = True
        self.alert(AlertLevel.ERROR, "broker", f"{said} (new entries blocked until reconciled)", kind=LOST_LINK)
        self._link_down(why, retry_delay(self.config.reconnect_initial_s))

    def on_start_connect_failed(self, exc: BaseException) -> None:
        """The first connect failed: say why, then try again as after a lost link."""
        delay = retry_delay(self.config.reconnect_initial_s)
        self._link_down(self.connect_failed(exc, delay), delay)

    def _link_down(self, why: str, retry_s: float) -> None:
        now = self.now()
        self.disconnected_since = self.disconnected_since or now
        # Not "connected since" any more; the next try is at the end of the reconnect loop's first wait.
        self.move_link(ConnectionState.DISCONNECTED, why, connected_since=None,
                       retry_at=now + timedelta(seconds=retry_s))
        if not self._reconnecting:
            self._reconnecting = True
            self.spawn(self._reconnect_loop(retry_s), "reconnect")

    def connect_failed(self, exc: BaseException, retry_s: float) -> str:
        """Say that a connect failed, why, and when it is tried again: one wording (:func:`connect_failure_said`)
        in the connectivity pane's last error, the alerts and the log. Returns it.

        Alerted (an ERROR while this run's link has never come up) the first time in an outage and when the reason
        changes; each attempt of a reconnect loop is logged, not alerted again every few seconds.
        """
        why, text = connect_failure_said(f"{self.connection.host}:{self.connection.port}", exc, retry_s)
        now = self.now()
        self.set_connection(self.connection.state, last_error=text, last_error_at=now, last_error_reason=why,
                            retry_at=now + timedelta(seconds=retry_s))
        if why == self._connect_said:
            log.info("%s", text)
        else:
            self._connect_said = why
            level = AlertLevel.WARNING if self.ever_linked else AlertLevel.ERROR
            self.alert(level, "broker", text, kind="connect_failed")
        return text

    def on_connectivity_lost(self, message: str) -> None:
        """1100: tear the session down and reconnect (IB will not replay what we missed)."""
        why = f"connectivity lost (1100): {message.rstrip('.')}"
        self._fresh_session(why, f"{why}; reconnecting")

    def on_malformed(self, what: str) -> None:
        """A message from the gateway could not be decoded: the adapter drops the session (the state may have
        diverged), and the reconnect rebuilds it. Said as the link goes down, in one alert (``what``: the message's
        kind and size, never its bytes, which are logged)."""
        self._dropping = (what, f"{what}; reconnecting")

    def on_data_lost(self, message: str) -> None:
        """1101: the quotes and bars stopped for good; a fresh session resubscribes all of them and
        reconciles (the path every reconnect takes), where the session kept would only go stale (and
        the staleness check block entries)."""
        why = f"market data lost (1101): {message.rstrip('.')}"
        self._fresh_session(why, f"{why}; reconnecting to resubscribe")

    def _fresh_session(self, why: str, said: str) -> None:
        """Drop the session: the reconnect that follows resubscribes and reconciles. ``why`` (the lost link's
        detail) and ``said`` (its alert) are said as the link goes down (:meth:`on_disconnected`): one alert for
        the one thing that happened, not the broker's message and then the disconnect."""
        self._dropping = (why, said)
        asyncio.get_running_loop().call_soon(self.broker.disconnect)

    async def _reconnect_loop(self, delay_s: float) -> None:
        """Connect again in ``delay_s``, then after delays doubling up to the maximum (with jitter)."""
        backoff = self.config.reconnect_initial_s
        try:
            while not self.stopping:
                await asyncio.sleep(delay_s)
                try:
                    await self.connect_and_sync(startup=False)
                    return
                except (ConnectionError, TimeoutError, OSError) as exc:
                    self.broker.disconnect()
                    backoff = min(backoff * 2, self.config.reconnect_max_s)
                    delay_s = retry_delay(backoff)
                    self.connect_failed(exc, delay_s)
        finally:
            self._reconnecting = False
            self.set_connection(self.connection.state, retry_at=None)  # stopped (or connected): no next try


def not_account_record(event: Event) -> bool:
    """Whether the journal keeps ``event`` once trading is refused for the account (:meth:`Recovery.refuse_trading`, at
    the handshake, before the sync brings any of its record): everything but that account's record
    (:data:`ACCOUNT_RECORD`), to the end of the run.

    What the run hears of that account is shown (the console says HALTED, with the refusal, and the account's id),
    never kept: the journal is its mode's account's record, and the next run on it, in the right mode with the right
    account, restored the other account's fills into its book (false P&L, a position and a cash mismatch whose
    trigger halts it), showed its orders (and worked the open ones), and found its own orders settled as gone by a
    broker that never had them. The refusal, the alerts, the operator's actions and a kill the operator latched are
    the run's own, and kept: a Ctrl+K stays latched for the next run, until a reset with a typed reason (a trigger's
    kill is not latched at all while refused: :meth:`~tui_trader.engine.engine.Engine.apply_hit`)."""
    return not isinstance(event, ACCOUNT_RECORD)


def unrecorded_sends(sending: Iterable[Order], recorded: Iterable[MessagesSent],
                     since: datetime) -> list[MessagesSent]:
    """The placeOrder messages of ``sending``, orders restored from the journal in SENDING (from ``since``
    on), that no ``recorded`` place of their family follows.

    An order's :class:`MessagesSent` is journaled in the batch after its send; its SENDING record,
    before the wire. A process killed in between left the order in SENDING with no record of its send:
    it may well have gone out (the ack watcher treats it as in flight), so it counts, one message per
    order of the family, at the time it was journaled as SENDING.
    """
    placed: dict[str, datetime] = {}
    for message in recorded:
        if message.action == "place":
            placed[message.order_ref] = max(message.time, placed.get(message.order_ref, message.time))
    out = []
    for order in sending:
        at = next((h.time for h in reversed(order.history) if h.status is S.SENDING), order.updated_at)
        family = order.parent_ref or order.order_ref
        if at >= since and not (family in placed and placed[family] >= at):
            ticket = order.ticket if order.parent_ref is None else None  # a child went out with its entry
            out.append(MessagesSent(at, "place", 1, order.order_ref, ticket))
    return out


def retry_delay(backoff_s: float) -> float:
    """The wait before the next connect attempt: ``backoff_s`` within ±25 % (clients restarted together do
    not all knock at once)."""
    return backoff_s * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not crypto


SYNC_FAILED = "connected, but the sync failed"
"""How the reason of a connect whose sync failed after the handshake begins (:func:`connect_failure_said`)."""


def connect_failure_said(where: str, exc: BaseException, retry_s: float) -> tuple[str, str]:
    """The one wording of a failed connect, for the log, the alerts and the connectivity pane: its reason (the pane
    shows the gateway and the next try on rows of their own), and the whole sentence.

    A connect that was made but whose sync failed is said as that: it connected.
    """
    wait = f"{max(retry_s, 0.1):.1f}" if retry_s < 10 else f"{retry_s:.0f}"
    if isinstance(exc, SyncFailed):
        return (f"{SYNC_FAILED}: {exc}",
                f"connected to {where} but the sync failed: {exc}; trying again in {wait} s")
    why = connect_failure(exc)
    return why, f"could not connect to {where}: {why}; trying again in {wait} s"


def connect_failure(exc: BaseException) -> str:
    """Why a connect failed, in the operator's words (``ConnectionRefusedError(111, …)`` is not)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the gateway running, listening on this port?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time (is the gateway's API enabled, and this host among its trusted IPs?)"
    return str(exc) or type(exc).__name__
