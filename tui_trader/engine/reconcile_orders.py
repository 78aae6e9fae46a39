"""The journal's orders against the broker's, in a reconciliation (:mod:`~tui_trader.engine.reconcile`).

The broker's open orders are settled against ours: an order it finished moves to its final state, one of ours
whose size, prices or terms at the broker are not ours takes the broker's (after a (re)connect), and one not
known here is adopted, as its position's protection when it can only close it (each symbol's judged together,
with the protection already working). A working order missing from the broker's answers is looked up once
more by orderRef, then settled: never sent, a day order of an earlier session, ended while tui-trader was away,
or else UNKNOWN, which blocks new entries. Every order whose state the broker changed behind our back is an alert.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, TimeInForce
from tui_trader.domain.orders import FIGURES_NOTE, HOLD_REASONS, Order, OrderTicket, hold_note, order_words
from tui_trader.engine.adopted import (
    Claim,
    adopted_refs,
    adopted_ticket,
    adoption_note,
    judge_protection,
    protection_note,
)
from tui_trader.engine.broker_terms import broker_terms, only_trailed, terms_differing, type_word
from tui_trader.engine.reconcile_book import BookSettlement

S = OrderStatus
_QTY_EPS = 1e-9
_PRICE_EPS = 1e-6
ENDED_AWAY = ("not at the broker since an earlier session: it ended (filled or cancelled) while tui-trader was "
              "away; IB reports only today's orders and executions")
"""The note of a working order found nowhere at the broker, last known before today (:meth:`_ended_away`)."""


class OrderSettlement(BookSettlement):
    """The journal's orders and the broker's, made to agree."""

    _settled: set[str] | None = None
    """Orders the running reconciliation moved itself (None between reconciliations)."""
    _seen_working: dict[str, datetime]
    """Working orders of ours → when this run last found them among the broker's open orders."""

    # -- the broker's open orders ----------------------------------------------------------------

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
        refs, protective, warnings = await self._judge_adoptions(opened)
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

    async def _judge_adoptions(self, opened: list[BrokerOrderReport]
                               ) -> tuple[dict[BrokerOrderReport, str], frozenset[str], list[str]]:
        """The ref each order among ``opened`` not known here is adopted under (:func:`adopted_refs`: two orders under
        one orderRef are two, and so is one with an earlier order's in the journal), the refs of those adopted as their
        position's protection,
        each symbol's judged together, with the protection already working in it (:func:`judge_protection`); and
        what the operator is told of those that are not because they would take a position through flat.

        One by one, two stops of 10 not linked under a long of 10 were both adopted as protection: kept by an
        automatic trip, both could trigger and leave the account short 10.
        """
        new = [r for r in opened if self.orders.match(r) is None]
        if not new:
            return {}, frozenset(), []
        refs = adopted_refs(new, self.orders.orders,
                            await self._journaled({r.order_ref for r in new} - {"", *self.orders.orders}))
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

    async def _journaled(self, refs: set[str]) -> dict[str, Order]:
        """The journal's order under each of ``refs`` it has one under (an earlier order, ended, no longer tracked)."""
        if self.journal is None:
            return {}
        found = {ref: await self.journal.order(ref) for ref in sorted(refs)}
        return {ref: order for ref, order in found.items() if order is not None}

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
            self.say_rejected(order, before)

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
        """Look the missing orders up once more by orderRef, then settle the ones still not found (set aside while
        trading is refused for the account: :meth:`_set_aside`)."""
        found = await self._look_up(missing) if missing else set()
        gone = [current for order in missing if (current := self.orders.get(order.order_ref)) is not None
                and current.status.is_working and current.order_ref not in found and not self.awaiting_ack(current)]
        if self.refusal:
            self._set_aside(gone)
            return
        for order in gone:
            self._settle_not_found(order)

    def _set_aside(self, gone: list[Order]) -> None:
        """Trading is refused for the account (:attr:`refusal`): the journal's orders and fills are its mode's
        account's record (:func:`~tui_trader.engine.recovery.not_account_record`), not known to be this one's. Those
        orders working in it that the broker does not have (``gone``), the day's finished ones and the fills restored
        from it are set aside, said in one alert.

        Settled against the refused account's broker, a working one went UNKNOWN ("working here but unknown to the
        broker", entries blocked for it), and both were shown and summarized as the refused account's orders beside
        its book. A restored fill still without its commission was awaited from this broker, and said "no commission
        reported" of this account. Nothing is sent or journaled for them: the next run, on the right account, finds
        them as they were. The journal's orders this broker does report are this account's, and stay; an execution
        of a fill set aside that it reports is left out (:attr:`before_book`), as already in the positions the book
        is seeded from.
        """
        working = self.orders.set_aside(o.order_ref for o in gone)
        finished = self.orders.set_aside(self.orders.earlier)
        fills = self.orders.set_fills_aside(self.restored_exec_ids)
        self.before_book |= {f.exec_id for f in fills}
        if not working and not finished and not fills:
            return
        n, k = len(working) + len(finished), len(fills)
        counts = [f"{n} order{'s' if n > 1 else ''}"] if n else []
        counts += [f"{k} fill{'s' if k > 1 else ''}"] if k else []
        parts = [f"{order_words(o)} working in the journal, not at this broker" for o in working]
        parts += [f"{len(finished)} finished today"] if finished else []
        self.alert(AlertLevel.WARNING if working else AlertLevel.INFO, "reconcile",
                   f"{' and '.join(counts)} of the {self.config.mode.value} journal set aside, not shown or counted as "
                   f"account {self.account_id}'s (trading refused for it){': ' if parts else ''}{'; '.join(parts)}. "
                   "Untouched: nothing sent or journaled for them, the journal keeps them as they were",
                   kind="journal_orders_set_aside")

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
