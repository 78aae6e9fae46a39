"""Reconciliation with the broker, and the book restored from the journal.

The journal is the engine's memory: on start the book (cash, positions, P&L) is rebuilt from
the last checkpoint plus the fills and commissions journaled after it, and open orders are
restored. Then the broker is asked what happened: open and completed orders, executions since
the last journaled one, positions and cash. Every difference is an alert and is settled here,
never silently copied: fills made while the engine was away are booked (once: they are
journaled), orders the broker finished move to their final state, and a position or cash
difference adopts the broker's figure with a checkpoint naming it, then applies the configured
position-mismatch trigger; at start and after a reconnect alike, a position difference that orders
settled as ended while away explain (IB no longer reports their fills) is adopted with a warning, not a
mismatch (:meth:`Reconciliation._conclude_positions`). An order whose state stays unknown blocks new entries.

While connected, a position that disagrees with the broker's for two checks in a row fetches the
broker's executions first (:meth:`Reconciliation.check_positions_debounced`): a fill never heard live is booked
from them, and only what they do not explain is a mismatch. A fill still without its commission at two
checks in a row (its report lost, or sent before its execution, which ib_async then drops) fetches them
once too: the broker sends each execution's commission report again with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.broker.base import BrokerOrderReport, BrokerPosition
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, TimeInForce
from tui_trader.domain.events import BookCheckpointed, CommissionReported, OrderFilled
from tui_trader.domain.orders import FIGURES_NOTE, HOLD_REASONS, Fill, Order, OrderTicket, hold_note
from tui_trader.engine.adopted import (
    Claim,
    adopted_refs,
    adopted_ticket,
    adoption_note,
    judge_protection,
    protection_note,
)
from tui_trader.engine.broker_events import BrokerEvents
from tui_trader.engine.broker_terms import broker_terms, only_trailed, terms_differing, type_word
from tui_trader.store.journal import Journal

log = logging.getLogger(__name__)
S = OrderStatus
_EXEC_OVERLAP = timedelta(minutes=5)
_BOOK_EVENTS = ("BookCheckpointed", "OrderFilled", "CommissionReported")
_QTY_EPS = 1e-9
_PRICE_EPS = 1e-6
ENDED_AWAY = ("not at the broker since an earlier session: it ended (filled or cancelled) while tui-trader was "
              "away; IB reports only today's orders and executions")
"""The note of a working order found nowhere at the broker, last known before today (:meth:`_ended_away`)."""


class Reconciliation(BrokerEvents):
    """The journal's book and the broker's account, made to agree."""

    restored_exec_ids: set[str]
    book_restored = False
    book_settled = False
    _run_ended: asyncio.Event | None = None
    """Set when the running reconciliation ends (None while none runs)."""
    _reconcile_again = False
    _reconcile_owed = ""
    """Why a requested reconciliation that failed was asked for ('' when none is owed): asked again at the
    next periodic check while connected (a reconnect's own reconciliation settles it too)."""
    _sweeping = False
    _mismatch_seen = 0
    """Periodic position checks in a row that found a difference."""
    _no_commission: frozenset[str] = frozenset()
    """Fills without a commission at the last periodic check."""
    _commission_asked: frozenset[str] = frozenset()
    """Fills without a commission that the executions were fetched again for (once each)."""
    _settled: set[str] | None = None
    """Orders the running reconciliation moved itself (None between reconciliations)."""
    _book_moved: asyncio.Event | None = None
    """Set by a position or cash update while the book is settling at startup."""
    _out_of_touch = False
    """Connecting or connected again, the executions not fetched since (:meth:`lose_touch`)."""
    _newest_before: datetime | None = None
    """The newest fill known when touch was lost (None: none known, every execution is fetched)."""
    _charged_by_broker: frozenset[str] = frozenset()
    """Fills still without a commission when the broker's cash was adopted at start (:meth:`book_commission`)."""
    _cash_short_by = 0.0
    """How much lower than ours the adopted cash was, less what those fills' commissions have accounted for."""
    _seen_working: dict[str, datetime]
    """Working orders of ours → when this run last found them among the broker's open orders."""
    _gone_away: dict[str, list[Order]]
    """Symbol → its orders the running reconciliation settled as ended while away (:meth:`_ended_away`): a
    bracket's stop, or one adopted from the broker (a stop typed into TWS); a difference of the position with
    the broker's may be the fills of those that reduce it (:meth:`_explained`)."""

    # -- the book from the journal ---------------------------------------------------------------

    async def restore_book(self, journal: Journal) -> None:
        """Rebuild the book: the last checkpoint, then every fill and commission journaled after it."""
        events = await journal.book_events(_BOOK_EVENTS)
        last = max((i for i, e in enumerate(events) if isinstance(e, BookCheckpointed)), default=-1)
        if last >= 0:
            checkpoint = events[last]
            assert isinstance(checkpoint, BookCheckpointed)
            self.portfolio.restore(checkpoint.state)
        for event in events[last + 1:]:
            if isinstance(event, OrderFilled):
                self.portfolio.apply_fill(event.fill, event.order)
            elif isinstance(event, CommissionReported):
                self.portfolio.apply_commission(event.commission)
        self.book_restored = bool(events)

    def checkpoint_book(self, reason: str) -> None:
        """Journal the book as it is now."""
        self.publish(BookCheckpointed(self.now(), self.portfolio.state(), reason))

    # -- requests --------------------------------------------------------------------------------

    @property
    def _reconciling(self) -> bool:
        """A reconciliation is running."""
        return self._run_ended is not None

    def request_reconcile(self, why: str) -> None:
        """Schedule a reconciliation; a request during one makes it run once more afterwards."""
        if self._reconciling:
            self._reconcile_again = True
        elif self.broker.is_connected:
            self.spawn(self._requested_reconcile(why), "reconcile")

    async def _requested_reconcile(self, why: str) -> None:
        """A reconciliation nobody awaits: a failure is said and owed (:meth:`_retry_owed_reconcile`),
        since what asked for it (an UNKNOWN order, a fill for an unknown order) keeps entries blocked
        until one succeeds."""
        try:
            await self.reconcile(why)
        except (ConnectionError, TimeoutError) as exc:
            self._reconcile_owed = why
            if self.broker.is_connected:  # else the reconnect reconciles, and the disconnect was said
                self.alert(AlertLevel.WARNING, "reconcile", f"reconciliation failed ({exc!r}): asked again at "
                           f"the next position check ({why})", kind="reconcile_failed")

    def _retry_owed_reconcile(self) -> bool:
        """Ask again for a requested reconciliation that failed; ``True`` when one was asked for."""
        if not self._reconcile_owed or self._reconciling or not self.broker.is_connected:
            return False
        self.request_reconcile(f"retry: {self._reconcile_owed}")
        return True

    def check_positions_debounced(self) -> None:
        """The periodic position check: a difference seen two checks in a row fetches the executions.

        Two in a row, because a fill and its position update may straddle one check; none while an
        order is SENDING (its fill could straddle it too) or while reconnecting or reconciling.
        """
        if self._retry_owed_reconcile():
            return
        if not self.broker.is_connected or self.blocks.get("reconciling") or not self.book_settled:
            return
        if self.orders.with_status(S.SENDING):
            return
        diffs = self.position_diffs()
        self._mismatch_seen = self._mismatch_seen + 1 if diffs else 0
        if diffs and self._mismatch_seen == 2:
            self._sweep_fills_soon(f"positions differ from the broker's: {_diff_text(diffs)}")
        else:
            self._ask_late_commissions()

    def _ask_late_commissions(self) -> None:
        """Fetch the executions once for fills still without a commission at two checks in a row."""
        missing = frozenset(self.orders.uncommissioned)
        late = sorted((missing & self._no_commission) - self._commission_asked)
        self._no_commission = missing
        self._commission_asked &= missing
        if late and self._sweep_fills_soon(f"no commission reported yet for {', '.join(late)}", late):
            self._commission_asked |= frozenset(late)

    def _sweep_fills_soon(self, why: str, commissions: list[str] | None = None) -> bool:
        """Fetch the broker's executions in a task, then conclude on the positions (they disagreed at two
        checks in a row) or, with ``commissions``, on those fills' commissions; ``True`` when started.

        An execution never heard live (a message lost on the way, or one ib_async did not emit for
        want of its order's Trade) is booked from them; the position check after it alerts on whatever
        they do not explain. Only the executions are asked for, from a few minutes before the newest
        fill: never the orders, whose completed list is the whole day's and every client's. Skipped
        while a reconciliation runs (it fetches the executions and checks the positions itself).
        """
        if self._reconciling or self._sweeping or not self.broker.is_connected:
            return False
        self._sweeping = True
        self.spawn(self._sweep_fills(why, commissions), "fill-sweep")
        return True

    async def _sweep_fills(self, why: str, commissions: list[str] | None = None) -> None:
        log.info("fetching executions: %s", why)
        try:
            await self._fetch_executions()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("executions not fetched (%r): the positions are compared as they are", exc)
            if commissions is not None:  # not answered: asked again at a later check
                self._commission_asked -= frozenset(commissions)
                return
        finally:
            self._sweeping = False
        if commissions is not None:
            self._say_unanswered(commissions)
            return
        if self.orders.with_status(S.SENDING):
            # A fill of an order on its way could straddle this comparison: not concluded here, the
            # next periodic check (2 s) fetches again.
            self._mismatch_seen = 1
            return
        self.check_positions()

    def _say_unanswered(self, exec_ids: list[str]) -> None:
        """Fills whose commission the executions fetched again did not bring either: said once."""
        unanswered = [e for e in exec_ids if (f := self.orders.fills.get(e)) is not None and f.commission is None]
        if unanswered:
            self.alert(AlertLevel.WARNING, "reconcile", f"no commission reported for {', '.join(unanswered)}, "
                       "also when the executions were asked for again: cash and P&L leave it out until it "
                       "comes", kind="commission_missing")

    async def reconcile(self, why: str, startup: bool = False,
                        before: dict[str, OrderStatus] | None = None) -> None:
        """Fetch orders and executions from the broker and settle every difference.

        An ordinary request while one runs makes that one run once more (owed, should that one fail:
        :meth:`_retry_owed_reconcile`). A connect's (``before``
        given, or ``startup``) waits for the running one to end and then runs itself: folded into it,
        its book was never settled nor its out-of-touch changes said, and its failure (which makes the
        reconnect loop try again) was lost. Only a connect's reconciliation lifts the connect's entry
        block ("reconciling").

        Args:
            why: What asked for it (logged).
            startup: The first reconciliation after a start: positions and cash are settled.
            before: Order statuses from before a (re)connect to compare against (default: as they are now).

        Raises:
            ConnectionError, TimeoutError: The broker did not answer (nothing is left half-blocked:
                the caller retries, or a requested one is owed).
        """
        if self._run_ended is not None and not startup and before is None:
            self._reconcile_again = True
            return
        while self._run_ended is not None:
            await self._run_ended.wait()
        self._run_ended = ended = asyncio.Event()
        try:
            await self._reconcile_once(why, startup, before)
            while self._reconcile_again and self.broker.is_connected:
                self._reconcile_again = False
                await self._reconcile_once("requested during a reconciliation", False, None)
        except (ConnectionError, TimeoutError):
            if self._reconcile_again:  # what asked (an UNKNOWN order) keeps entries blocked until one succeeds
                self._reconcile_owed = self._reconcile_owed or "requested during a reconciliation that failed"
            raise
        finally:
            self._run_ended, self._reconcile_again, self._settled = None, False, None
            ended.set()

    async def _reconcile_once(self, why: str, startup: bool, before: dict[str, OrderStatus] | None) -> None:
        log.info("reconciling: %s", why)
        # While connected the stream keeps delivering acks, fills and OCA cancels during the awaits
        # below: only what this run settled itself changed behind our back. After a (re)connect,
        # everything since the statuses taken before it did.
        out_of_touch = before is not None
        before = before if before is not None else self.working_statuses()
        self._settled, self._gone_away = set(), {}
        opened, asked = await self._open_orders(figures=out_of_touch)
        if self._missing(opened, [], asked):
            # Asked once more before the completed orders: a working order absent from one answer
            # may be a message that crossed the request.
            opened, asked = await self._open_orders(figures=out_of_touch)
        # The completed orders are the whole day's (thousands by the close, each a large object in
        # ib_async, all held at once: 10-30 MB of transient heap): asked for only when a working
        # order is still not an open one.
        completed = await self.broker.completed_orders() if self._missing(opened, [], asked) else []
        for report in completed:
            self._settle_report(report)
        await self._settle_missing(self._missing(opened, completed, asked))
        await self._fetch_executions()
        self._alert_changed(before, None if out_of_touch else self._settled)
        self._settled = None
        if startup:
            await self._settle_book()
        elif self.book_settled:  # else a connect's reconciliation, waiting for this one, settles the book
            if self.position_diffs():  # a fill's position update may still be on its way (see _settle_book)
                await self._await_broker_book(cash=False)
            self._conclude_positions(adopt_all=False)
        self._reconcile_owed = ""
        self._maybe_unblock(connect=out_of_touch)

    async def _open_orders(self, figures: bool) -> tuple[list[BrokerOrderReport], set[str]]:
        """The broker's open orders, each settled against ours (adopted when unknown; with ``figures``, its
        size and prices taken from the broker where they differ: :meth:`_settle_figures`), and the refs of
        the orders that were working and acknowledged when the request went out: only those can be
        missing from its answer. An order placed while the request was out (an entry and its bracket,
        filled at once, in the soak) is answered after it, its acknowledgement read in the same pass
        as the answer's end: it is not missing, and the whole day's completed orders were fetched
        for it (RSS stepped 5-20 MB each time).
        """
        working = self.orders.working()
        asked = {o.order_ref for o in working if not self.awaiting_ack(o)}
        tickets = {o.order_ref: o.ticket for o in working} if figures else {}
        self._seen_working = {ref: t for ref, t in self._seen_working.items() if ref in asked}
        opened = await self.broker.open_orders()
        refs, protective, warnings = self._judge_adoptions(opened)
        now = self.now()
        for report in opened:
            self._settle_open(report, refs, protective)
            self._settle_figures(report, tickets)
            order = self.orders.match(report)
            if order is not None:
                self._seen_working[order.order_ref] = now
        self.broker_oca_groups = self._oca_links(opened)  # those just adopted too
        for warning in warnings:
            self.alert(AlertLevel.WARNING, "reconcile", warning, kind="protection_refused")
        return opened, asked

    def _judge_adoptions(self, opened: list[BrokerOrderReport]
                         ) -> tuple[dict[BrokerOrderReport, str], frozenset[str], list[str]]:
        """The ref each order among ``opened`` not known here is adopted under (:func:`adopted_refs`: two orders under
        one orderRef are two), the refs of those adopted as their position's protection,
        each symbol's judged together, with the protection already working in it (:func:`judge_protection`); and
        what the operator is told of those that are not because they would take a position through flat.

        One by one, two stops of 10 not linked under a long of 10 were both adopted as protection: kept by an
        automatic trip, both could trigger and leave the account short 10.
        """
        new = [r for r in opened if self.orders.match(r) is None]
        if not new:
            return {}, frozenset(), []
        refs = adopted_refs(new, self.orders.orders)
        links = self._oca_links(opened)
        held = self.broker_quantities()
        protective: set[str] = set()
        warnings: list[str] = []
        for symbol in sorted({r.symbol for r in new}):
            position = held.get(symbol, 0.0)
            judged = judge_protection(symbol, position, [r for r in new if r.symbol == symbol],
                                      self._protection_claims(symbol, position, links), refs)
            protective |= judged.protective
            warnings += [judged.warning] if judged.warning else []
        return refs, frozenset(protective), warnings

    def _oca_links(self, opened: list[BrokerOrderReport]) -> dict[str, str]:
        """The OCA group the broker reports each of ``opened`` known here in, by ref (those in a group)."""
        return {o.order_ref: r.oca_group for r in opened if r.oca_group and (o := self.orders.match(r)) is not None}

    def _protection_claims(self, symbol: str, held: float, links: dict[str, str]) -> list[Claim]:
        """``symbol``'s protection working here that closes ``held``, as :func:`judge_protection` counts it: an order
        with its OCA group at the broker (``links``: ref → group), else a bracket child with its siblings. A
        bracket's child whose entry still works is left out: the broker holds it for the entry's fill, it protects
        nothing held yet."""
        entries = {o.order_ref for o in self.orders.working()}
        return [Claim(o.order_ref, links.get(o.order_ref) or o.parent_ref or o.order_ref, o.remaining)
                for o in self.protection_working(symbol)
                if o.ticket.side.sign * held < 0 and not o.held_for(entries)]

    def working_statuses(self) -> dict[str, OrderStatus]:
        """Status of every order that may be live at the broker (compared after a reconciliation)."""
        return {o.order_ref: o.status for o in self.orders.working()}

    # -- orders ----------------------------------------------------------------------------------

    def _settle_report(self, report: BrokerOrderReport) -> None:
        before = self.orders.match(report)
        if before is None:
            return
        order = self.orders.apply_report(report, self.now())
        self._note_settled(order, before)
        self.publish_order(order, before)
        if order is not None:
            self.say_held(order, before)

    def _note_settled(self, order: Order | None, before: Order) -> None:
        if self._settled is not None and order is not None and order.status is not before.status:
            self._settled.add(order.order_ref)

    def _settle_open(self, report: BrokerOrderReport, refs: dict[BrokerOrderReport, str],
                     protective: frozenset[str]) -> None:
        """An open order at the broker: ours settled, one not known adopted under its ref in ``refs`` (as protection
        when it is among ``protective``: :meth:`_judge_adoptions`)."""
        if self.orders.match(report) is not None:
            self._settle_report(report)
            return
        # The broker's positions came with the connect (ib_async waits for them before it returns), ahead of the
        # open orders: an order that can only close the position is adopted as its protection.
        held = self.broker_quantities().get(report.symbol, 0.0)
        ref = refs[report]
        ticket = adopted_ticket(report, ref in protective)  # what the broker holds: type, trail, tif, extended hours
        now = self.now()
        order = Order(ref, ticket, S.SUBMITTED, now, now, broker_id=report.broker_id,
                      perm_id=report.perm_id).with_status(S.SUBMITTED, now, "adopted from the broker")
        if report.why_held in HOLD_REASONS:  # held unworked at the broker (a short sale's locate): shown so
            order = order.with_status(S.SUBMITTED, now, hold_note(report.why_held))
        self.publish_order(self.orders.adopt(order))
        kind = type_word(ticket.order_type, report.raw_order_type)
        shared = f", orderRef {report.order_ref} shared with another order" if report.order_ref not in ("", ref) else ""
        self.alert(AlertLevel.WARNING, "reconcile", f"adopted working order {ref} found at the broker "
                   f"({report.side} {report.quantity:g} {report.symbol} {kind} {report.raw_tif or '?'}{shared})"
                   f"{protection_note(ticket, held)}{adoption_note(ticket)}", kind="order_adopted")
        self.say_held(order, None)

    def _settle_figures(self, report: BrokerOrderReport, asked: dict[str, OrderTicket]) -> None:
        """A working order of ours whose size, prices or terms (type, trail, time in force, extended hours:
        :func:`~tui_trader.engine.broker_terms.broker_terms`) at the broker are not ours takes the broker's, said
        (at INFO when only a trailing stop's stop moved, as the broker moves it; else a WARNING).

        The engine records a modify before it sends it: one lost with the connection (or never sent, the
        engine stopped in between) left the order showing figures the broker never had, a stop cut to
        the position shown while the broker held it larger. Compared only after a (re)connect, and only
        for orders whose ticket is the one they had when the open orders were asked for (``asked``): a
        modify sent since is newer than the answer. A protective order taken larger than its position is
        then cut to it again (:meth:`after_figures_taken`).
        """
        order = self.orders.match(report)
        if order is None or not order.status.is_working or asked.get(order.order_ref) is not order.ticket:
            return
        theirs = broker_figures(broker_terms(order.ticket, report), report)
        if theirs == order.ticket:
            return
        what = ", ".join(terms_differing(order.ticket, theirs, report.raw_order_type))
        self.publish_order(self.orders.amend(order.order_ref, theirs, self.now(), f"{FIGURES_NOTE}: {what}"),
                           order)
        kind = type_word(theirs.order_type, report.raw_order_type)
        level = AlertLevel.INFO if only_trailed(order.ticket, theirs) else AlertLevel.WARNING  # IB trails it so
        self.alert(level, "reconcile", f"{order.order_ref} ({kind} {theirs.side.value} {theirs.symbol}) at the "
                   f"broker: {what}: taken from the broker", kind="order_figures")
        self.after_figures_taken(order.order_ref)

    def after_figures_taken(self, order_ref: str) -> None:
        """Hook after an order's figures were taken from the broker (the engine fits protection to its position)."""

    def after_book_taken(self, symbols: Iterable[str]) -> None:
        """Hook after ``symbols``' positions were taken from the broker (the engine records their protection: a
        position the book did not hold had none, also with an order adopted as its stop)."""

    def _missing(self, opened: list[BrokerOrderReport], completed: list[BrokerOrderReport],
                 asked: set[str]) -> list[Order]:
        """Working orders among ``asked`` the broker's answers do not mention, except those still in flight.

        An order this run journaled as SENDING and placed less than the ack timeout ago is in
        flight, not missing: the broker may not have answered it yet (or may have answered the
        requests before it saw it). The ack watcher turns a missing acknowledgement into UNKNOWN.
        """
        # A ref whose permanent id is another's (two orders placed under one fixed orderRef) does not mention it.
        refs = {r.order_ref for r in (*opened, *completed) if self.orders.named(r.order_ref, r.perm_id) is not None}
        ids = {r.broker_id for r in opened if not r.order_ref}
        perms = {r.perm_id for r in (*opened, *completed) if r.perm_id}
        return [o for o in self.orders.working() if o.order_ref in asked and o.order_ref not in refs
                and o.broker_id not in ids and o.perm_id not in perms and not self.awaiting_ack(o)]

    async def _settle_missing(self, missing: list[Order]) -> None:
        """Look the missing orders up once more by orderRef, then settle the ones still not found."""
        if not missing:
            return
        found = await self._look_up(missing)
        for order in missing:
            current = self.orders.get(order.order_ref)
            if current is None or not current.status.is_working or current.order_ref in found \
                    or self.awaiting_ack(current):
                continue
            self._settle_not_found(current)

    async def _look_up(self, missing: list[Order]) -> set[str]:
        """Fresh open and completed orders: the refs of ``missing`` the broker knows after all (settled)."""
        wanted = {o.order_ref for o in missing}
        ids = {o.broker_id: o.order_ref for o in missing if o.broker_id is not None}
        perms = {o.perm_id: o.order_ref for o in missing if o.perm_id}
        found: set[str] = set()
        opened = await self.broker.open_orders()
        completed = await self.broker.completed_orders()  # every client's: order ids are not unique there
        def by_ref(r: BrokerOrderReport) -> str | None:  # not when its permanent id says it is another order
            named = self.orders.named(r.order_ref, r.perm_id) if r.order_ref in wanted else None
            return named.order_ref if named is not None else None

        candidates = [(r, by_ref(r) or perms.get(r.perm_id) or (None if r.order_ref else ids.get(r.broker_id)))
                      for r in opened]
        candidates += [(r, by_ref(r) or perms.get(r.perm_id)) for r in completed]
        for report, ref in candidates:
            if ref is not None:
                found.add(ref)
                self._settle_report(report)
        return found

    def _settle_not_found(self, order: Order) -> None:
        if order.status in (S.SENDING, S.UNKNOWN) and order.perm_id is None:
            # Journaled but never acknowledged, and the broker has no such orderRef: it never
            # reached the broker. It is not resubmitted: a new signal makes a new order.
            self._move(order, S.CANCELLED, "not found at the broker: never sent")
        elif self._from_earlier_session(order):
            self._move(order, S.EXPIRED, "day order of an earlier session, gone from the broker")
        elif self._ended_away(order):
            # CANCELLED, the status of an order that stopped working with only the fills we know of:
            # it claims no fill nobody reported, and an execution found later may still move it to
            # FILLED (an EXPIRED order can move nowhere). The note says what is not known.
            shown = "the position shown is the broker's" if not self.book_settled else \
                "its position is checked against the broker's"
            self._move(order, S.CANCELLED, f"{ENDED_AWAY}; {shown}")
            self._gone_away.setdefault(order.symbol, []).append(order)
        else:
            self._move(order, S.UNKNOWN, "working here but unknown to the broker")
            self.block("unknown_orders", "an order's state is unknown; reconciling with the broker")

    def _from_earlier_session(self, order: Order) -> bool:
        """A DAY order created before today (exchange time): IB no longer reports it anywhere."""
        return order.ticket.tif is TimeInForce.DAY and self._before_today(order.created_at)

    def _ended_away(self, order: Order) -> bool:
        """An order (a GTC stop, say) last known working before today, neither open at the broker nor among
        its completed orders: it ended on an earlier day, while tui-trader was not there to hear it.

        IB reports the completed orders and executions of the current day only, so its end (a fill or a
        cancel) is not reported any more: left UNKNOWN it would block entries until a reconciliation found
        it, which none ever would. One last known today is missing for a reason this does not explain (a
        broker that lost it): it stays UNKNOWN.
        """
        seen = self._seen_working.get(order.order_ref, order.updated_at)
        return self._before_today(max(order.updated_at, seen))

    def _before_today(self, moment: datetime) -> bool:
        """``moment`` falls on an earlier day than now (exchange time)."""
        tz = ZoneInfo(self.config.time_zone)
        return moment.astimezone(tz).date() < self.now().astimezone(tz).date()

    def _move(self, order: Order, status: OrderStatus, why: str) -> None:
        moved = self.orders.try_move(order.order_ref, status, self.now(), why)
        if moved is not None and moved.status is not order.status:
            self._note_settled(moved, order)
            self.publish_order(moved, order)

    def _alert_changed(self, before: dict[str, OrderStatus], settled: set[str] | None) -> None:
        """One alert per order whose state the broker changed behind our back.

        ``settled``: only these orders (a reconciliation while connected, where the others changed
        through the live stream as usual); None: every order (after a connect).
        """
        for ref, was in before.items():
            order = self.orders.orders.get(ref)
            if order is None or order.status is was or (settled is not None and ref not in settled):
                continue
            note = order.history[-1].note if order.history else ""
            when = "while out of touch" if settled is None else "found by reconciliation"
            self.alert(AlertLevel.WARNING, "reconcile", f"{ref}: {was.value} → {order.status.value} "
                       f"{when} ({note})", kind="order_reconciled")

    # -- executions ------------------------------------------------------------------------------

    def lose_touch(self) -> None:
        """Before each connect: the next executions fetch reaches back from the newest fill known now.

        A fill heard live once the connection is back, while it is set up or reconciled, is newer
        than the fills the outage missed: counted from it, the fetch could start after them (it
        did, by more than the overlap after a long outage, and the missed fill was never booked).
        """
        if not self._out_of_touch:
            self._out_of_touch, self._newest_before = True, self.orders.last_fill_time

    async def _fetch_executions(self) -> None:
        out_of_touch = self._out_of_touch
        fills = await self.broker.executions(self._executions_since())
        if out_of_touch:
            self._out_of_touch, self._newest_before = False, None
        for fill in sorted(fills, key=lambda f: f.time):
            known = self.orders.fills.get(fill.exec_id)
            if known is None:
                if not await self.is_new_fill(fill):  # an old execution the journal already has
                    continue
                self.alert(AlertLevel.WARNING, "reconcile", f"execution {fill.exec_id} recovered after the fact: "
                           f"{fill.side} {fill.quantity:g} {fill.symbol} @ {fill.price:g}", kind="fill_recovered")
                self.book_fill(fill)
            elif known.commission is None and fill.commission is not None:
                self._recover_commission(fill.exec_id, fill.commission, fill.realized_pnl)

    def _executions_since(self) -> datetime | None:
        """From a little before the newest fill known (when touch was lost, after an outage), or from
        the oldest one still without a commission."""
        newest = self._newest_before if self._out_of_touch else self.orders.last_fill_time
        if newest is None:
            return None
        return min([newest - _EXEC_OVERLAP, *(self.orders.fills[e].time for e in self.orders.uncommissioned)])

    def _recover_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        """A commission report lost on the wire (a disconnect), found in the re-requested execution."""
        self.alert(AlertLevel.INFO, "reconcile", f"commission of execution {exec_id} recovered after the fact: "
                   f"{commission:g}", kind="commission_recovered")
        self.on_commission(exec_id, commission, realized_pnl)

    def session_fills(self) -> list[Fill]:
        """Fills recorded by this run (not restored from the journal)."""
        return [f for f in self.orders.fills.values() if f.exec_id not in self.restored_exec_ids]

    # -- positions and cash ----------------------------------------------------------------------

    async def _settle_book(self) -> None:
        """After the first reconciliation: the book against the broker's positions and cash.

        The broker's positions and cash are one cut of its stream, our fills another: an execution
        that has reached its position (and cash) but not yet us, its report still in flight or held
        back, would be counted twice were the book set to the broker's and the execution then booked
        (and a position update still behind a fill we booked would undo it). So a difference is looked
        at again after a round trip to the broker, with the executions fetched again, and given up to
        ``book_settle_s`` for the updates still on their way (IB sends positions, portfolio and
        account values on their own streams, cash often seconds after the fill): only what persists
        is adopted. Entries stay blocked meanwhile.
        """
        if not self.book_restored:
            self.book_settled = True
            self._seed_portfolio()
            return
        if self._book_differs(cash=True):
            await self._await_broker_book(cash=True)
        self.book_settled = True
        self._conclude_positions(adopt_all=True, cash_note=self._settle_cash())
        self._mark_all()

    def _conclude_positions(self, adopt_all: bool, cash_note: str = "") -> None:
        """The positions against the broker's at the end of a reconciliation, at start or after a reconnect.

        A difference the orders settled as ended while away explain (:meth:`_explained`) is
        taken from the broker with a WARNING: not a mismatch. Any other is a mismatch (its trigger
        applies), taken from the broker as well only with ``adopt_all`` (at start, where the book restored
        from the journal has nothing better; while running, the book stays ours, as after a periodic check).
        What is taken is checkpointed with ``cash_note`` (the cash adopted at start).
        """
        diffs = self.position_diffs()
        explained = {s: d for s, d in diffs.items() if self._explained(s, *d)}
        unexplained = {s: d for s, d in diffs.items() if s not in explained}
        adopted = diffs if adopt_all else explained
        for symbol, (_, theirs) in sorted(adopted.items()):
            cost = next((p.avg_cost for p in self.broker.positions() if p.symbol == symbol), 0.0)
            self.portfolio.adjust(symbol, theirs, cost, self.now())
        self.after_book_taken(adopted)
        if adopted or cash_note:
            self.checkpoint_book(f"adjusted to the broker: {_diff_text(adopted)} {cash_note}".strip())
        for symbol, (ours, theirs) in sorted(explained.items()):
            refs = ", ".join(o.order_ref for o in self._reducers(symbol, ours))
            self.alert(AlertLevel.WARNING, "reconcile", f"{symbol}: position taken from the broker ({theirs:g}, "
                       f"not {ours:g}): its closing orders {refs} ended while tui-trader was away, and IB no "
                       "longer reports their executions", kind="position_adopted")
        if unexplained:
            self.on_position_mismatch(_diff_text(unexplained), unexplained)

    def _explained(self, symbol: str, ours: float, theirs: float) -> bool:
        """The broker's position is ours made smaller (not reversed) by no more than what ``symbol``'s
        orders that ended while away and close it could have filled: their fills, which IB no longer reports.

        Not a mismatch then (no position-mismatch trigger: the kill switch engaged on every start after a
        stop had filled overnight); the position is still taken from the broker, with a warning.
        """
        reducing = self._reducers(symbol, ours)
        if not reducing or theirs * ours < 0 or abs(theirs) > abs(ours):
            return False
        return abs(ours - theirs) <= max(o.remaining for o in reducing) + _QTY_EPS

    def _reducers(self, symbol: str, ours: float) -> list[Order]:
        """``symbol``'s orders settled as ended while away that close (part of) a position of ``ours``."""
        return [o for o in self._gone_away.get(symbol, []) if o.ticket.side.sign * ours < 0]

    def _book_differs(self, cash: bool) -> bool:
        return bool(self.position_diffs()) or (cash and self._cash_differs() is not None)

    async def _await_broker_book(self, cash: bool) -> None:
        """Until the positions (and ``cash``) agree with the broker's, or ``book_settle_s`` has passed:
        after each position or account update, a round trip (what was in flight has arrived) and
        the executions fetched again (one the positions count may not have reached us)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.book_settle_s
        self._book_moved = moved = asyncio.Event()
        try:
            while True:
                moved.clear()
                await self.broker.current_time()
                await self._fetch_executions()
                remaining = deadline - loop.time()
                if not self._book_differs(cash) or remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved.wait(), remaining)
        finally:
            self._book_moved = None

    def on_position(self, position: BrokerPosition) -> None:
        """The broker's position changed (wakes a settling book)."""
        super().on_position(position)
        if self._book_moved is not None:
            self._book_moved.set()

    def on_account_value(self, tag: str, value: float, currency: str) -> None:
        """An account value changed (cash wakes a settling book)."""
        super().on_account_value(tag, value, currency)
        if self._book_moved is not None and tag == "TotalCashValue":
            self._book_moved.set()

    def _cash_differs(self) -> float | None:
        """The broker's cash where it differs from ours (None when it agrees or is unknown)."""
        cash = self.broker.account_values().get("TotalCashValue")
        if cash is None or abs(cash - self.portfolio.cash) <= max(0.01, abs(cash) * 1e-9):
            return None
        return cash

    def _settle_cash(self) -> str:
        cash, ours = self._cash_differs(), self.portfolio.cash
        if cash is None:
            return ""
        late = sorted(self.orders.uncommissioned)
        note = (f" (it may include the commissions of {', '.join(late)}, not reported yet: they go into "
                "commissions and P&L when they come, not into cash again)") if late else ""
        self.alert(AlertLevel.WARNING, "reconcile", f"cash differs from the journal: ours {ours:,.2f}, "
                   f"broker {cash:,.2f}; using the broker's{note}", kind="cash_mismatch")
        self.portfolio.cash = cash
        self._charged_by_broker, self._cash_short_by = frozenset(late), max(0.0, ours - cash)
        return f"cash {ours:.2f} → {cash:.2f}"

    def book_commission(self, exec_id: str, commission: float, realized_pnl: float | None,
                        already_in_cash: float = 0.0) -> None:
        """Book a commission; one the broker's cash already had off when it was adopted goes into the
        commissions and P&L only, not into cash a second time.

        At start the book adopts the broker's cash if it still differs after ``book_settle_s``. A fill
        whose commission report was late then (held back, or lost with the session that stopped) was
        charged in the broker's cash but not in ours: taken off cash again when the report came, cash
        stayed one commission short for good. Only what the adopted cash was lower than ours can be
        such a commission (a cash that was not lower did not have it), so no more than that is skipped.
        The book is checkpointed after it, so a restart's replay does not take it off cash either.
        """
        if exec_id not in self._charged_by_broker:
            super().book_commission(exec_id, commission, realized_pnl, already_in_cash)
            return
        self._charged_by_broker -= {exec_id}
        charged = min(commission, self._cash_short_by)
        self._cash_short_by -= charged
        super().book_commission(exec_id, commission, realized_pnl, already_in_cash=charged)
        self.checkpoint_book(f"commission of {exec_id} booked: {charged:.2f} of it was in the broker's cash "
                             "adopted at start")

    def _seed_portfolio(self) -> None:
        """First start on this journal: the book starts from the broker's account (an INFO alert)."""
        values = self.broker.account_values()
        positions = {p.symbol: (p.quantity, p.avg_cost) for p in self.broker.positions() if p.quantity}
        cash = values.get("TotalCashValue", values.get("NetLiquidation", 0.0))
        if not values:
            self.alert(AlertLevel.WARNING, "portfolio", "the broker sent no account values: cash unknown")
        self.portfolio.seed(cash, positions, self.now())
        self.after_book_taken(positions)
        held = ", ".join(f"{s} {q:g}" for s, (q, _) in sorted(positions.items())) or "no positions"
        self.alert(AlertLevel.INFO, "portfolio", f"new journal: book starts from the broker's account "
                   f"(cash {cash:,.2f}; {held})", kind="book_seeded")
        self.checkpoint_book("first start: seeded from the broker")
        self._mark_all()

    def _mark_all(self) -> None:
        for symbol in self.portfolio.open_positions():
            self.portfolio.mark(symbol, self.market.mark(symbol))

    def broker_quantities(self) -> dict[str, float]:
        """Symbol → quantity of the broker's open positions, as last streamed."""
        return {p.symbol: p.quantity for p in self.broker.positions() if p.quantity}

    def position_diffs(self) -> dict[str, tuple[float, float]]:
        """Symbol → (our quantity, the broker's) where they differ."""
        ours = {s: p.quantity for s, p in self.portfolio.open_positions().items()}
        theirs = self.broker_quantities()
        return {s: (ours.get(s, 0.0), theirs.get(s, 0.0)) for s in {*ours, *theirs}
                if abs(ours.get(s, 0.0) - theirs.get(s, 0.0)) > _QTY_EPS}

    def check_positions(self) -> dict[str, tuple[float, float]]:
        """Compare our positions with the broker's; every mismatch is an alert (and a trigger)."""
        diffs = self.position_diffs()
        if diffs:
            self.on_position_mismatch(_diff_text(diffs), diffs)
        return diffs

    def on_position_mismatch(self, text: str, diffs: dict[str, tuple[float, float]]) -> None:
        """A position disagrees with the broker (the engine applies the configured trigger)."""
        self.alert(AlertLevel.ERROR, "reconcile", f"position mismatch: {text}", kind="position_mismatch")

    # -- entry blocks ----------------------------------------------------------------------------

    def after_order_change(self, order_ref: str) -> None:
        """The broker settled an order: lift the unknown-order block once none is left."""
        if "unknown_orders" in self.blocks and not self.orders.with_status(S.UNKNOWN):
            self.unblock("unknown_orders")

    def _maybe_unblock(self, connect: bool) -> None:
        """After a reconciliation that succeeded; ``connect``: a connect's, the one its block waits for."""
        if not self.orders.with_status(S.UNKNOWN):
            self.unblock("unknown_orders")
            self.unblock("unknown_fill")
        if connect and self.broker.is_connected:
            self.unblock("reconciling")


_PRICES_OF = {OrderType.LMT: ("limit_price",), OrderType.STP: ("stop_price",),
              OrderType.STP_LMT: ("limit_price", "stop_price")}
"""The prices an order type carries to the broker as they come back (a TRAIL's stop field holds its amount)."""


def broker_figures(ours: OrderTicket, report: BrokerOrderReport) -> OrderTicket:
    """``ours`` with the size and prices the broker reports for it (where it reports them)."""
    changes: dict[str, Any] = {}
    if report.quantity > 0 and abs(report.quantity - ours.quantity) > _QTY_EPS:
        changes["quantity"] = report.quantity
    for name in _PRICES_OF.get(ours.order_type, ()):
        price, mine = getattr(report, name), getattr(ours, name)
        if price is not None and (mine is None or abs(price - mine) > _PRICE_EPS):
            changes[name] = price
    return replace(ours, **changes) if changes else ours


def _diff_text(diffs: dict[str, tuple[float, float]]) -> str:
    return ", ".join(f"{s}: ours {a:g}, broker {b:g}" for s, (a, b) in sorted(diffs.items()))
