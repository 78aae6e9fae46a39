"""Connecting, reconnecting and reconciling with the broker; restoring from the journal.

After every (re)connect the engine resubscribes market data, fetches open orders, completed
orders and the executions since the last one it journaled, and compares positions. Every
difference is an alert; an order whose state stays unknown blocks new entries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import AlertLevel, ConnectionState, Mode, OrderStatus
from tui_trader.domain.events import ConnectionChanged
from tui_trader.domain.orders import Fill, Order, OrderTicket
from tui_trader.engine.broker_events import BrokerEvents
from tui_trader.risk.engine import RiskEngine
from tui_trader.risk.kill_switch import KillState
from tui_trader.store.journal import Journal

log = logging.getLogger(__name__)
S = OrderStatus
_EXEC_OVERLAP = timedelta(minutes=5)


class Recovery(BrokerEvents):
    """Journal restore, connection lifecycle, reconciliation."""

    reconnects = 0
    disconnected_since = None
    refusal = ""
    restored_exec_ids: set[str]
    _reconnecting = False
    _reconcile_task: asyncio.Task[None] | None = None

    # -- journal -------------------------------------------------------------------------------

    async def open_journal(self) -> None:
        """Open the journal, attach it to the bus, restore the kill state and open orders."""
        path = self.config.journal_path
        if path is None:
            return
        self.journal = await Journal.open(path, batch_size=self.config.journal_batch_size,
                                          flush_interval_ms=self.config.journal_flush_interval_ms,
                                          on_failure=self.on_journal_failure)
        self.journal.attach(self.bus.subscribe("journal", maxsize=100_000, lossless=True))
        kill = await self.journal.load_kill_state()
        if kill and kill.get("engaged"):
            self.risk = RiskEngine(self.config.limits, KillState.from_dict(kill))
            self.alert(AlertLevel.CRITICAL, "kill_switch", f"kill switch still engaged from "
                       f"{kill.get('engaged_at')} by {kill.get('by')}: {kill.get('reason')}", kind="kill_restored")
        for order in await self.journal.open_orders():
            self.orders.adopt(order)
        for fill in await self.journal.fills():
            self.orders.fills.setdefault(fill.exec_id, fill)
            self.restored_exec_ids.add(fill.exec_id)

    def session_fills(self) -> list[Fill]:
        """Fills recorded by this run (not restored from the journal)."""
        return [f for f in self.orders.fills.values() if f.exec_id not in self.restored_exec_ids]

    # -- connecting ----------------------------------------------------------------------------

    async def connect_and_sync(self, startup: bool) -> None:
        """Connect, check the account, subscribe, reconcile (raises when the connect fails)."""
        self.set_connection(ConnectionState.CONNECTING)
        self.publish(ConnectionChanged(self.now(), ConnectionState.CONNECTING))
        await self.broker.connect()
        self.account_id = self.broker.account_id
        self._guard_account()
        now = self.now()
        self.disconnected_since = None
        self.set_connection(ConnectionState.CONNECTED, connected_since=now, reconnects=self.reconnects)
        self.publish(ConnectionChanged(now, ConnectionState.CONNECTED, f"account {self.account_id}"))
        await self._subscribe()
        await self.reconcile("startup" if startup else "reconnected", startup=startup)

    def _guard_account(self) -> None:
        """--paper against a non-paper account, or an unexpected account, refuses to trade."""
        acct, expected = self.account_id, self.config.expected_account
        problem = ""
        if expected and acct != expected:
            problem = f"connected account {acct} is not the configured account {expected}"
        elif self.config.mode is Mode.PAPER and not acct.startswith("DU"):
            problem = f"--paper but account {acct} is not a paper account (paper ids start with DU)"
        if problem:
            self.refusal = problem
            self.alert(AlertLevel.CRITICAL, "broker", f"trading refused: {problem}", kind="account_refused")
            self.block("account", problem)

    async def _subscribe(self) -> None:
        symbols = self.config.all_symbols
        if self.config.market_data_type != 1:
            self.broker.set_market_data_type(self.config.market_data_type)
        instruments = await self.broker.qualify(symbols)
        self.market.instruments.update(instruments)
        for symbol in symbols:
            if symbol not in instruments:
                self.alert(AlertLevel.ERROR, "market_data", f"unknown symbol {symbol}: not traded")
                continue
            if self.risk.limits.require_liquid_hours and not instruments[symbol].liquid_sessions:
                self.alert(AlertLevel.ERROR, "market_data", f"trading hours of {symbol} unknown: its entries "
                           "are denied", kind="hours_unknown")
            self.broker.subscribe_quotes(symbol)
            self.broker.subscribe_bars(symbol)

    # -- disconnects ---------------------------------------------------------------------------

    def on_disconnected(self) -> None:
        """Mark the connection down, block entries, start the reconnect loop."""
        if self.stopping:
            return
        self.disconnected_since = self.disconnected_since or self.now()
        self.set_connection(ConnectionState.DISCONNECTED)
        self.publish(ConnectionChanged(self.now(), ConnectionState.DISCONNECTED, "connection lost"))
        self.alert(AlertLevel.WARNING, "broker", "disconnected from the broker; reconnecting", kind="disconnect")
        self.block("reconciling", "disconnected: waiting to reconnect and reconcile")
        if not self._reconnecting:
            self._reconnecting = True
            self.spawn(self._reconnect_loop(), "reconnect")

    def on_connectivity_lost(self, message: str) -> None:
        """1100: tear the session down and reconnect (IB will not replay what we missed)."""
        self.alert(AlertLevel.WARNING, "broker", f"connectivity lost (1100): {message}", kind="disconnect")
        asyncio.get_running_loop().call_soon(self.broker.disconnect)

    async def _reconnect_loop(self) -> None:
        delay = self.config.reconnect_initial_s
        try:
            while not self.stopping:
                await asyncio.sleep(delay * random.uniform(0.75, 1.25))  # noqa: S311 - jitter, not crypto
                try:
                    self.reconnects += 1
                    await self.connect_and_sync(startup=False)
                    return
                except (ConnectionError, TimeoutError, OSError) as exc:
                    log.info("reconnect failed: %s", exc)
                    self.broker.disconnect()
                    delay = min(delay * 2, self.config.reconnect_max_s)
        finally:
            self._reconnecting = False

    # -- reconciliation ------------------------------------------------------------------------

    def request_reconcile(self, why: str) -> None:
        """Schedule one reconciliation (requests coalesce while one is running)."""
        if self._reconcile_task is not None and not self._reconcile_task.done():
            return
        if self.broker.is_connected:
            self._reconcile_task = self.spawn(self.reconcile(why), "reconcile")

    async def reconcile(self, why: str, startup: bool = False) -> None:
        """Fetch orders and executions from the broker and settle every difference."""
        log.info("reconciling: %s", why)
        opened = await self.broker.open_orders()
        completed = await self.broker.completed_orders()
        for report in opened:
            self._settle_open(report)
        for report in completed:
            self._settle_report(report)
        self._settle_missing({r.order_ref for r in opened if r.order_ref},
                             {r.broker_id for r in opened}, {r.order_ref for r in completed})
        await self._fetch_executions(book=not startup)
        if startup:
            self._seed_portfolio()
        else:
            self.check_positions()
        self._maybe_unblock()

    def _settle_report(self, report: BrokerOrderReport) -> None:
        before = self.orders.match(report)
        if before is None:
            return
        order = self.orders.apply_report(report, self.now())
        self.publish_order(order, before)

    def _settle_open(self, report: BrokerOrderReport) -> None:
        if self.orders.match(report) is not None:
            self._settle_report(report)
            return
        ticket = OrderTicket(report.symbol, report.side, report.quantity, report.order_type,
                             limit_price=report.limit_price, stop_price=report.stop_price,
                             strategy="adopted", reason="found working at the broker")
        ref = report.order_ref or f"broker-{report.perm_id or report.broker_id}"
        now = self.now()
        order = Order(ref, ticket, S.SUBMITTED, now, now, broker_id=report.broker_id,
                      perm_id=report.perm_id).with_status(S.SUBMITTED, now, "adopted from the broker")
        self.publish_order(self.orders.adopt(order))
        self.alert(AlertLevel.WARNING, "reconcile", f"adopted working order {ref} found at the broker "
                   f"({report.side} {report.quantity:g} {report.symbol})", kind="order_adopted")

    def _settle_missing(self, open_refs: set[str], open_ids: set[int], done_refs: set[str]) -> None:
        for order in self.orders.working():
            ref = order.order_ref
            if ref in open_refs or ref in done_refs or order.broker_id in open_ids:
                continue
            if order.status in (S.SENDING, S.UNKNOWN) and order.perm_id is None:
                # Journaled but never acknowledged, and the broker has no such orderRef: it never
                # reached the broker. It is not resubmitted: a new signal makes a new order.
                self._mark_final(order, S.CANCELLED, "not found at the broker: never sent")
            else:
                self._mark_final(order, S.UNKNOWN, "working here but unknown to the broker")

    def _mark_final(self, order: Order, status: OrderStatus, why: str) -> None:
        moved = self.orders.try_move(order.order_ref, status, self.now(), why)
        if moved is not None and moved.status is not order.status:
            self.publish_order(moved, order)
            self.alert(AlertLevel.WARNING, "reconcile", f"{order.order_ref}: {why}", kind="reconcile")

    async def _fetch_executions(self, book: bool) -> None:
        since = max((f.time for f in self.orders.fills.values()), default=None)
        fills = await self.broker.executions(since - _EXEC_OVERLAP if since else None)
        for fill in sorted(fills, key=lambda f: f.time):
            if fill.exec_id in self.orders.fills:
                continue
            if book:
                self.on_fill(fill)
            else:
                self.record_fill_only(fill)
            self.alert(AlertLevel.WARNING, "reconcile", f"execution {fill.exec_id} recovered after the fact: "
                       f"{fill.side} {fill.quantity:g} {fill.symbol} @ {fill.price:g}", kind="fill_recovered")

    def record_fill_only(self, fill: object) -> None:
        """Record a missed fill in orders and journal without booking it (the broker seed has it)."""
        from tui_trader.domain.events import OrderFilled

        result = self.orders.apply_fill(fill, self.now())  # type: ignore[arg-type]
        if result is not None:
            self.publish(OrderFilled(self.now(), result[0], result[1]))
            self.publish_order(result[1])

    def _seed_portfolio(self) -> None:
        values = self.broker.account_values()
        positions = {p.symbol: (p.quantity, p.avg_cost) for p in self.broker.positions() if p.quantity}
        cash = values.get("TotalCashValue", values.get("NetLiquidation", 0.0))
        if not values:
            self.alert(AlertLevel.WARNING, "portfolio", "the broker sent no account values: cash unknown")
        self.portfolio.seed(cash, positions, self.now())
        for symbol in positions:
            self.portfolio.mark(symbol, self.market.mark(symbol))

    def check_positions(self) -> dict[str, tuple[float, float]]:
        """Compare our positions with the broker's; every mismatch is an alert (and a trigger)."""
        ours = {s: p.quantity for s, p in self.portfolio.open_positions().items()}
        theirs = {p.symbol: p.quantity for p in self.broker.positions() if p.quantity}
        diffs = {s: (ours.get(s, 0.0), theirs.get(s, 0.0)) for s in {*ours, *theirs}
                 if abs(ours.get(s, 0.0) - theirs.get(s, 0.0)) > 1e-9}
        if diffs:
            text = ", ".join(f"{s}: ours {a:g}, broker {b:g}" for s, (a, b) in sorted(diffs.items()))
            self.on_position_mismatch(text)
        return diffs

    def on_position_mismatch(self, text: str) -> None:
        """A position disagrees with the broker (the engine applies the configured trigger)."""
        self.alert(AlertLevel.ERROR, "reconcile", f"position mismatch: {text}", kind="position_mismatch")

    def _maybe_unblock(self) -> None:
        if not self.orders.with_status(S.UNKNOWN):
            self.unblock("unknown_orders")
            self.unblock("unknown_fill")
        if self.broker.is_connected:
            self.unblock("reconciling")
