"""Broker callbacks → order manager, portfolio, market state and events.

These handlers run inside the broker client's message dispatch: they update state and publish
events synchronously, and schedule anything that needs a request (reconciliation, fallback to
delayed data) as a task instead of issuing it inline.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from tui_trader.broker.base import (
    CLIENT_ID_IN_USE,
    HISTORICAL_DATA,
    MALFORMED_MESSAGE,
    ORDER_ENDED_OR_UNKNOWN,
    BrokerError,
    BrokerOrderReport,
    BrokerPosition,
    is_pacing,
)
from tui_trader.domain.enums import LINK_UP, AlertLevel, OrderStatus
from tui_trader.domain.events import CommissionReported, OrderFilled
from tui_trader.domain.market import Bar, Quote
from tui_trader.domain.orders import Fill, Order
from tui_trader.engine.core import link_state
from tui_trader.engine.kill import KillOps
from tui_trader.engine.orders import error_text

log = logging.getLogger(__name__)
S = OrderStatus

FARM_BROKEN = frozenset({2103, 2105, 2157})
FARM_OK = frozenset({2104, 2106, 2158})
QUOTE_FARM = frozenset({2103, 2104})
"""A market data farm's status: the quotes and live bars come from it (the link is DEGRADED while one is broken)."""
FARM_NAMES = {2105: "historical data farm", 2106: "historical data farm", 2157: "security definition farm",
              2158: "security definition farm"}
"""The farms that serve no quotes, by their codes: IB's HMDS (history) and Sec-def (contract details) farms."""
FARM_BROKEN_MEANS = {2105: "history (the strategies' warm-up) may not come; quotes and live bars are another farm's",
                     2157: "contract details (a symbol added, the trading hours) may not come; quotes and live bars "
                           "are another farm's"}
CONNECTIVITY_LOST = 1100
DATA_LOST = 1101
"""IB's connectivity is back but the session's market data subscriptions are gone."""
DATA_MAINTAINED = 1102
SERVER_LINK_BROKEN = 2110
"""The gateway's own link to IB's servers is down ("restored automatically": IB then sends 1101 or 1102)."""
SERVER_LINK_BLOCK = "ib_link"
REJECTED_LEAD_IN = "Order rejected - reason:"
"""How IB's words of a rejection begin: the alert, which says "broker rejected", gives the reason after it alone."""
NO_PERMISSION = frozenset({354, 10089, 10168})
HALTED, HALT_OVER = "halted", "halt_over"
"""The kinds of the alerts that a symbol's trading halted, and that the halt is over."""


class BrokerEvents(KillOps):
    """Implements :class:`~tui_trader.broker.base.BrokerListener` for the engine."""

    _pacing_alerted_at: datetime | None = None
    _delayed_fallback_on = False
    quote_farms: frozenset[str] = frozenset()
    """The farms that reported as market data farms (:data:`QUOTE_FARM`): only one of them broken degrades the link."""
    farms_said_broken: frozenset[str] = frozenset()
    """The farms alerted broken and not yet alerted back. Kept across connections, unlike the connection's ``farms``,
    which each connect hears afresh: a farm still broken after a reconnect is the same outage, not news again."""
    bars_refused: frozenset[str] = frozenset()
    """Symbols whose real-time bars the broker refused (a 354 and friends on the bars stream; IB has no delayed ones):
    the strategies on them get no live bars until one comes."""
    before_book: frozenset[str] = frozenset()
    """Ids of the executions the start's reconciliation left out as another run's: from before the journal's book
    began (:data:`~tui_trader.domain.events.BOOK_SEEDED`), or of orders a restored journal does not know; in the
    broker's positions the book took, never this journal's fills. IB reports the whole day's executions to every
    request: another run's, earlier today, would be booked again."""

    # -- market data -----------------------------------------------------------------------------

    def on_quote(self, quote: Quote) -> None:
        """Store the quote, revalue the position, let quote-driven strategies look at it; a halt of its symbol's
        trading, or its end, is said."""
        if self.market.on_quote(quote, self.now()):
            self._say_halt(quote)
        self.portfolio.mark(quote.symbol, quote.mark)
        if self.quote_waiters and (waiter := self.quote_waiters.pop(quote.symbol, None)) and not waiter.done():
            waiter.set_result(None)
        self.quote_hook(quote)

    def _say_halt(self, quote: Quote) -> None:
        """A halt of ``quote``'s symbol at its exchange (a WARNING) or its end (an INFO). The gate denies the
        symbol's orders meanwhile, exits too, before anything is cancelled for them
        (:func:`~tui_trader.risk.market_checks.check_halted`): sent, the broker rejected them, said only in the
        orders pane, and an exit had cancelled its stop first."""
        symbol = quote.symbol
        if quote.halted:
            self.alert(AlertLevel.WARNING, "market", f"{symbol} halted: trading halt at the exchange; no order of "
                       f"{symbol} is sent until it resumes, exits included (a position's stop and target stay at "
                       "the broker)", kind=HALTED)
        else:
            self.alert(AlertLevel.INFO, "market", f"{symbol} resumed: the trading halt at the exchange is over",
                       kind=HALT_OVER)
            self.on_halt_over(symbol)

    def on_halt_over(self, symbol: str) -> None:
        """Hook: ``symbol``'s trading halt is over (protection an exit cancelled, denied during the halt, is placed
        again: :class:`~tui_trader.engine.restore.ProtectionRestore`)."""

    def quote_hook(self, quote: Quote) -> None:
        """Quote-driven strategies (the strategy runner overrides this)."""

    def on_bar(self, bar: Bar) -> None:
        """A 5-second bar: market data is alive; strategies get their aggregated bars."""
        self.market.last_data_at = self.now()
        if bar.symbol in self.bars_refused:
            self.bars_refused -= {bar.symbol}
        self.bar_hook(bar)

    def bar_hook(self, bar: Bar) -> None:
        """Bar-driven strategies (the strategy runner overrides this)."""

    # -- orders and fills ------------------------------------------------------------------------

    def on_order(self, report: BrokerOrderReport) -> None:
        """An acknowledgement or status change from the broker."""
        before = self.orders.match(report)
        order = self.orders.apply_report(report, self.now())
        if order is not None:
            self.publish_order(order, before)
            self.say_held(order, before)
            self.say_rejected(order, before)
            self.after_order_change(order.order_ref)
        if report.status is None and report.note.startswith("cancel race"):
            self.request_reconcile(f"{report.order_ref}: {report.note}")

    def say_held(self, order: Order, before: Order | None) -> None:
        """Say it when the broker begins to hold ``order`` unworked (a short sale while it locates shares to
        borrow): it is not rejected, and counts as working, as it can fill at any moment.

        ``before``: the order as the engine had it (``None``: new to the engine, adopted from the broker). Said
        once, by whichever sees the hold first, the live stream or a reconciliation (after a restart or a
        reconnect); not again while the hold lasts.
        """
        if not order.broker_hold or (before is not None and before.broker_hold):
            return
        t = order.ticket
        self.alert(AlertLevel.WARNING, "orders", f"{order.order_ref} {t.side} {t.quantity:g} {t.symbol} held by "
                   f"the broker ({order.broker_hold}): still working, it can fill at any moment", kind="order_held")

    def say_rejected(self, order: Order, before: Order | None) -> None:
        """Say it when the broker rejects ``order`` (it moved to REJECTED from a status at the broker): once, with
        the broker's code and words, as a WARNING in the alerts pane (and so in the notifications: the rejection's
        one notice). Said by whichever sees it first, the live stream or a reconciliation."""
        if order.status is not S.REJECTED or before is None or before.status is S.REJECTED:
            return
        t = order.ticket
        self.alert(AlertLevel.WARNING, "orders", f"broker rejected {t.side} {t.quantity:g} {t.symbol} "
                   f"({order.order_ref}): {rejection_words(order)}", kind="order_rejected")

    def after_order_change(self, order_ref: str) -> None:
        """Hook after an order changed (the recovery part settles UNKNOWN orders here)."""

    def on_fill(self, fill: Fill) -> None:
        """An execution: recorded once, booked in the portfolio, published.

        An execution older than the order manager's fill memory (a replay of an old day) is
        checked against the journal first, off the dispatch.
        """
        if not self.orders.remembers(fill) and self.journal is not None:
            self.spawn(self._on_old_fill(fill), f"old-fill-{fill.exec_id}")
            return
        self.book_fill(fill)

    async def is_new_fill(self, fill: Fill) -> bool:
        """True when ``fill`` was never booked: memory decides, or for an old one the journal; never one from before
        the book began."""
        if fill.exec_id in self.orders.fills or fill.exec_id in self.before_book:
            return False
        if self.orders.remembers(fill) or self.journal is None:
            return True
        if await self.journal.has_fill(fill.exec_id):
            self.orders.drop_pending_commission(fill.exec_id)
            return False
        return True

    async def _on_old_fill(self, fill: Fill) -> None:
        """Book an old execution only if the journal has never seen it."""
        if await self.is_new_fill(fill):
            self.book_fill(fill)

    def book_fill(self, fill: Fill) -> None:
        """Apply an execution known to be new or deduplicated in memory: order, portfolio, events."""
        result = self.orders.apply_fill(fill, self.now())
        if result is None:
            return
        fill, order = result
        before_status = order.history[-2].status if order is not None and len(order.history) > 1 else None
        effect = self.portfolio.apply_fill(fill, order)
        # Valued at the quote now, not at its cost until the next one moves (equity, exposure, drawdown).
        self.portfolio.mark(fill.symbol, self.market.mark(fill.symbol))
        self.publish(OrderFilled(self.now(), fill, order))
        if order is not None:
            self.publish_order(order) if before_status is not order.status else None
            self.after_fill(order.order_ref, effect.flat_after)
        else:
            self.alert(AlertLevel.ERROR, "orders", f"fill {fill.exec_id} for unknown order {self._unknown_name(fill)}: "
                       f"{fill.side} {fill.quantity:g} {fill.symbol}", kind="unknown_fill")
            self.block("unknown_fill", "a fill arrived for an order this engine does not know")
            self.request_reconcile("fill for an unknown order")

    def _unknown_name(self, fill: Fill) -> str:
        """The order of a fill for an unknown order as the engine tells orders apart: its orderRef (or order id) and
        its permanent id, and the one of the order tracked under that ref, if any (another order under a shared
        orderRef: named by its ref alone, the alert called an order the operator could see unknown)."""
        name = fill.order_ref or str(fill.broker_id)
        if not fill.perm_id:
            return name
        tracked = self.orders.orders.get(fill.order_ref) if fill.order_ref else None
        beside = f"; the {name} tracked here is permId {tracked.perm_id}" if tracked is not None else ""
        return f"{name} (permId {fill.perm_id}{beside})"

    def after_fill(self, order_ref: str, flat_after: bool) -> None:
        """Hook after a fill (protective-stop bookkeeping lives in the engine)."""

    def on_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        """Attach a commission to its fill (once) and book it (not one from before the book began)."""
        if exec_id in self.before_book:
            return
        if self.orders.apply_commission(exec_id, commission, realized_pnl) is not None:
            self.book_commission(exec_id, commission, realized_pnl)

    def book_commission(self, exec_id: str, commission: float, realized_pnl: float | None,
                        already_in_cash: float = 0.0) -> None:
        """Book a commission just attached to its fill: cash (less ``already_in_cash``, taken off it
        already), the totals and P&L, and the event."""
        self.portfolio.apply_commission(commission, already_in_cash)
        self.publish(CommissionReported(self.now(), exec_id, commission, realized_pnl))

    def on_position(self, position: BrokerPosition) -> None:
        """Positions are read on demand through the broker (compared at reconciliation, never copied)."""

    def on_account_value(self, tag: str, value: float, currency: str) -> None:
        """Account values are read on demand through the broker; nothing to do per update."""

    # -- errors and connectivity -------------------------------------------------------------------

    def on_account_currency(self, currency: str) -> None:
        """An account based in another currency: its cash and equity are not dollars, so every check that
        needs them would be wrong. Entries stay blocked for the session; exits and cancels still work."""
        why = (f"the account's base currency is {currency}: tui-trader accounts in US dollars only, so cash, "
               "equity and exposure are unknown")
        self.alert(AlertLevel.CRITICAL, "portfolio", why, kind="account_currency")
        self.block("currency", why)

    def on_unmanaged_position(self, description: str, quantity: float) -> None:
        """A holding that is not a US stock: the operator is told it is outside everything shown."""
        self.alert(AlertLevel.WARNING, "portfolio", f"the account holds {quantity:g} {description}: not a US "
                   "stock, so not shown, not counted in positions, exposure or P&L, and never traded or "
                   "flattened here", kind="unmanaged_position")

    def on_error(self, error: BrokerError) -> None:
        """Route an error code to its handling."""
        code = error.code
        if error.order_ref:
            self.on_order_error(self._as_tracked(error))
        if code in FARM_BROKEN or code in FARM_OK:
            self._on_farm(code, error.message)
        elif code == SERVER_LINK_BROKEN:
            self._on_server_link(code, error.message, broken=True)
        elif code == CONNECTIVITY_LOST:
            self.on_connectivity_lost(error.message)
        elif code == MALFORMED_MESSAGE:
            self.on_malformed(error.message)
        elif code == DATA_LOST:  # its alert says the link is back: the fresh session's (one row for one message)
            self._on_server_link(code, error.message, broken=False, said=False)
            self.on_data_lost(error.message)
        elif code == DATA_MAINTAINED:
            self._on_server_link(code, error.message, broken=False)
            self.request_reconcile(f"connectivity restored ({code})")
        elif code == HISTORICAL_DATA:
            self._on_historical_error(error)
        elif code in NO_PERMISSION:
            self.on_no_permission(error)
        elif code in ORDER_ENDED_OR_UNKNOWN and not error.order_ref:  # ours are reconciled by on_order_error
            self.request_reconcile(f"cancel race {code} on {error.req_id}")
        elif code == CLIENT_ID_IN_USE:
            pass  # the connect fails saying so (ClientIdInUse): not one more alert per retry of a reconnect loop
        elif not error.order_ref:
            self._alert_unhandled(error)

    def _as_tracked(self, error: BrokerError) -> BrokerError:
        """``error`` naming its order by the ref it is tracked under. The adapter names an order by its orderRef,
        which another tool may have given several orders: the second and the next, adopted as
        ``<orderRef>#<permId>``, are found by the broker id the error is for; so is one adopted so on a later run,
        with no order tracked under its orderRef any more (the earlier one ended)."""
        named = self.orders.get(error.order_ref)
        if error.broker_id is None or (named is not None and named.broker_id in (None, error.broker_id)):
            return error
        order = self.orders.by_broker_id(error.broker_id)
        if order is None or not order.order_ref.startswith(f"{error.order_ref}#"):
            return error
        return replace(error, order_ref=order.order_ref)

    def on_order_error(self, error: BrokerError) -> None:
        """An error about one of our orders: shown on the order; one saying the order has ended or is unknown to
        the broker (:data:`~tui_trader.broker.base.ORDER_ENDED_OR_UNKNOWN`: a cancel's race with a fill, say) has
        the order's state read by a reconciliation. The amendments part hears here the broker refusing a
        modification instead (the order works on at the figures it had, or filled at them)."""
        self.show_order_error(error)
        if error.code in ORDER_ENDED_OR_UNKNOWN:
            self.request_reconcile(f"cancel race {error.code} on {error.order_ref}")

    def show_order_error(self, error: BrokerError) -> None:
        """Record the error on its order (the orders pane shows the last one): an update of the order's error
        only, under the status it has (no step of its lifecycle). Not again the error of a rejection, which its
        move to REJECTED carried (:meth:`~tui_trader.engine.orders.OrderManager.apply_report`): one rejection is one
        record."""
        before = self.orders.get(error.order_ref)
        text = error_text(error.code, error.message)
        if before is None or (before.status is S.REJECTED and before.last_error == text):
            return
        self.publish_order(self.orders.set_error(error.order_ref, text), before)

    def _alert_unhandled(self, error: BrokerError) -> None:
        """A broker message nothing else handles is shown, never dropped (order errors show on the order)."""
        if error.code < 0:
            level = AlertLevel.ERROR  # our own codes: the adapter found the stream broken
        elif 2000 <= error.code < 3000:
            level = AlertLevel.INFO  # IB's 2xxx codes are notices
        else:
            level = AlertLevel.WARNING
        self.alert(level, "broker", f"{error.code}: {error.message}", kind="broker_error")

    def _on_farm(self, code: int, message: str) -> None:
        """A data farm's status. A market data farm's moves the link between CONNECTED and DEGRADED, and is
        news only when it does: the farms report at every connect, before the engine has checked the account
        (the link stays CONNECTING until :meth:`connect_and_sync` says otherwise). The farm's outage is said
        too (:meth:`_say_farm`)."""
        farm = message.split(":")[-1].strip() or str(code)
        if code in QUOTE_FARM:
            self.quote_farms |= {farm}
        farms = {**self.connection.farms, farm: "broken" if code in FARM_BROKEN else "ok"}
        degraded = any(farms.get(name) == "broken" for name in self.quote_farms)
        self._set_link(code, message, farms=farms, market_data_degraded=degraded)
        self._say_farm(farm, code, message)

    def _say_farm(self, farm: str, code: int, message: str) -> None:
        """Alert ``farm`` broken, and back (the console says neither itself), once per outage: a farm still broken
        when a reconnect hears the farms afresh was said already, and one back by then is said back as that
        connect reports it. Each is named for what it serves: the historical data (HMDS) and security definition
        farms serve no quotes, so they leave the link and the market data as they are."""
        broken = code in FARM_BROKEN
        if broken is (farm in self.farms_said_broken):
            return  # still broken as said, or fine and never said broken
        self.farms_said_broken ^= {farm}
        name = FARM_NAMES.get(code)
        if broken and name is None:
            self.alert(AlertLevel.WARNING, "broker", f"market data degraded ({code}): {message}",
                       kind="farm_broken")
        elif broken:
            self.alert(AlertLevel.WARNING, "broker", f"{name} broken ({code}): {FARM_BROKEN_MEANS[code]}: {message}",
                       kind="farm_broken")
        else:
            self.alert(AlertLevel.INFO, "broker", f"{name or 'market data farm'} back ({code}): {message}",
                       kind="farm_ok")

    def _on_server_link(self, code: int, message: str, *, broken: bool, said: bool = True) -> None:
        """2110: the gateway lost its link to IB's servers; 1101/1102: IB says it is back (alerted unless not
        ``said``: a 1101's own alert says it).

        The API link stays up (nothing to reconnect: IB restores it itself), but what is sent meanwhile
        stops at the gateway and the market data stops with it. So the link shows DEGRADED and new entries
        are blocked until IB says it is restored; exits, cancels and the kill switch still go (they may
        wait at the gateway too, but holding them back would only make them later).
        """
        if broken is self.connection.server_link_broken:
            return  # a 1102 after a 1100 (no 2110), or a 2110 repeated: no news
        self._set_link(code, message, server_link_broken=broken)
        if broken:
            self.block(SERVER_LINK_BLOCK, f"IB's servers unreachable from the gateway ({code})", silent=True)
            self.alert(AlertLevel.WARNING, "broker", f"the gateway lost its link to IB's servers ({code}): orders "
                       "and market data do not flow; new entries blocked until IB restores it (exits, cancels "
                       f"and Ctrl+K still go): {message}", kind="ib_link_broken")
        else:
            self.unblock(SERVER_LINK_BLOCK, silent=True)
            if said:
                self.alert(AlertLevel.INFO, "broker", f"the gateway's link to IB's servers is restored ({code}): "
                           f"new entries allowed again: {message}", kind="ib_link_restored")

    def _set_link(self, code: int, message: str, **changes: Any) -> None:
        """Apply ``changes`` to the connection; the link is DEGRADED while a farm or IB's servers are broken.

        While CONNECTING the state is left alone: farms report at every connect, before the engine has
        checked the account (:meth:`connect_and_sync` decides the state once it has)."""
        before = self.connection.state
        conn = replace(self.connection, **changes)
        degraded = conn.market_data_degraded or conn.server_link_broken
        state = link_state(degraded) if before in LINK_UP else before
        self.move_link(state, f"{code}: {message}", **changes)

    def on_connectivity_lost(self, message: str) -> None:
        """1100: IB lost its own connectivity (the recovery part reconnects)."""

    def on_malformed(self, what: str) -> None:
        """The gateway sent a message that could not be decoded (``what`` says what it was: the adapter drops the
        session; the recovery part says why as the link goes down)."""

    def on_data_lost(self, message: str) -> None:
        """1101: IB's connectivity is back, the market data subscriptions are not (the recovery part
        resubscribes)."""

    def _on_historical_error(self, error: BrokerError) -> None:
        """162 carries pacing and refusals alike: only a pacing one is news here (the adapter backs off). A refusal
        (no permission for the exchange, no data) answers the request that asked, which says it: the warm-up names
        the symbol and the strategies that cannot warm up on it (:class:`~tui_trader.broker.base.HistoryRefused`)."""
        if is_pacing(error.message):
            self.on_pacing(error.message)
        else:
            log.info("historical data refused for %s (%d): %s", error.symbol or error.req_id, error.code,
                     error.message)

    def on_pacing(self, message: str) -> None:
        """162: historical data paced. The adapter backs off and retries; the operator hears once a minute."""
        now = self.now()
        if self._pacing_alerted_at is None or (now - self._pacing_alerted_at).total_seconds() >= 60:
            self._pacing_alerted_at = now
            self.alert(AlertLevel.WARNING, "market_data", f"historical data pacing (162): backing off: {message}",
                       kind="pacing")

    def on_no_permission(self, error: BrokerError) -> None:
        """354 and friends: alert; with ``delayed_fallback`` switch to delayed data and resubscribe."""
        what = f"{error.symbol} {error.stream}".strip() or f"request {error.req_id}"
        idle = ""
        if error.stream == "bars" and error.symbol:
            self.bars_refused |= {error.symbol}
            if names := self.strategies_on(error.symbol):
                idle = (f"; {', '.join(names)} get no live bars of {error.symbol} (IB has no delayed ones): they "
                        "cannot trade it")
        self.alert(AlertLevel.ERROR, "market_data", f"market data not permitted for {what} ({error.code}): "
                   f"{error.message}{idle}", kind="md_permission")
        if error.stream == "bars":
            return  # IB has no delayed real-time bars: the symbol's strategies get no live bars
        if self.config.delayed_fallback and error.symbol:
            asyncio.get_running_loop().call_soon(self._fall_back_to_delayed, error.symbol)

    def strategies_on(self, symbol: str) -> list[str]:
        """The names of the strategies that trade ``symbol`` (the strategy runner overrides this)."""
        return []

    def _fall_back_to_delayed(self, symbol: str) -> None:
        if not self._delayed_fallback_on:
            self._delayed_fallback_on = True
            self.broker.set_market_data_type(3)
            self.alert(AlertLevel.WARNING, "market_data", "falling back to delayed market data", kind="md_delayed")
        self.broker.resubscribe_quotes(symbol)

    def on_disconnected(self) -> None:
        """The connection dropped (the recovery part reconnects)."""


def rejection_words(order: Order) -> str:
    """Why the broker rejected ``order``: its code and words (``201 Insufficient margin``), from the error it
    carries, else from the note of its last step (a rejection without an error: IB's ``Inactive``)."""
    said = order.last_error or (order.history[-1].note if order.history else "")
    code, sep, words = said.partition(": ")
    if not (sep and code.isdigit()):
        code, words = "", said
    words = words.removeprefix(REJECTED_LEAD_IN).strip() or "no reason given"
    return f"{code} {words}".strip()
