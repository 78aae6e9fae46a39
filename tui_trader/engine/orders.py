"""The order manager: every order's checked lifecycle, its fills (deduplicated) and commissions.

Pure state, no I/O: the engine feeds it operator decisions, broker reports, executions and
commission reports, and publishes the orders it returns. Broker reports that would move an
order backwards (a late ``Submitted`` after ``Filled``) are ignored, never applied.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import OrderStatus
from tui_trader.domain.orders import HOLD_REASONS, Fill, Order, OrderTicket, StatusChange, hold_note, order_of

S = OrderStatus

#: Which status may follow which. Final states only move on hard evidence (a fill after a
#: cancel that lost its race); UNKNOWN resolves to whatever the broker says.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SENDING, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.SENDING: frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED,
                          S.UNKNOWN}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED,
                            S.UNKNOWN}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.UNKNOWN}),
    # UNKNOWN → SENDING only through a resubmit, after the broker was asked for the orderRef.
    S.UNKNOWN: frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED,
                          S.EXPIRED, S.SENDING}),
    S.CANCELLED: frozenset({S.FILLED}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


FINISHED_ORDERS_KEPT = 500
"""Orders in a final state kept in memory (the newest); the journal keeps every one."""
FILL_MEMORY = timedelta(days=2)
"""How far back (by execution time) every known fill stays in memory for deduplication, once a
journal backs it (see :attr:`OrderManager.fill_memory`): longer than a broker replays executions."""
PENDING_COMMISSIONS_KEPT = 1000
"""Commission reports held for fills that have not arrived (the oldest are dropped beyond this)."""
_HOUR = timedelta(hours=1)


def draw_ref_prefix() -> str:
    """A run's ref prefix, drawn at random: ``tt`` and six hex digits (:meth:`OrderManager.new_ref`)."""
    return f"tt{secrets.token_hex(3)}"


def _step_note(report: BrokerOrderReport) -> str:
    """The note of the step a broker report makes: a working order the broker holds says why (the reasons
    known only: another ``whyHeld`` IB may send with a working status is carried, not shown as a hold)."""
    if report.why_held in HOLD_REASONS and report.status is not None and report.status.is_working:
        return hold_note(report.why_held)
    return report.note or report.raw_status


def error_text(code: int, message: str) -> str:
    """A broker error as an order keeps it (:attr:`~tui_trader.domain.orders.Order.last_error`): ``201: Order
    rejected - reason:…``."""
    return f"{code}: {message}"


class IllegalTransition(ValueError):
    """An order was asked to move to a status its current status does not allow."""


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    """True when ``target`` may follow ``current``."""
    return target in TRANSITIONS[current]


class OrderManager:
    """Orders by idempotent ``order_ref``, fills by ``exec_id``.

    Memory stays bounded over a long session: every order not in a final state is kept, but of the
    finished ones only the newest ``finished_kept`` (and any parent whose bracket child still works);
    fills are kept while their execution time is within :attr:`fill_memory` of the newest one (by
    default forever; the engine sets :data:`FILL_MEMORY` once a journal holds every fill). A fill
    older than that is not decided here: :meth:`remembers` says so, and the caller asks the journal.

    Args:
        ref_prefix: Prefix of every order ref (default: a per-process token, :func:`draw_ref_prefix`, drawn again
            while the journal holds orders under it: :meth:`draw_prefix`; it keeps refs unique across restarts, so a
            resubmit check against the broker can never match a stranger, nor a journal row another order's).
        finished_kept: Orders in a final state kept in memory.
    """

    def __init__(self, ref_prefix: str | None = None, finished_kept: int = FINISHED_ORDERS_KEPT) -> None:
        self._prefix = ref_prefix or draw_ref_prefix()
        self._made = 0
        """Refs :meth:`new_ref` made (the last one's number)."""
        self.orders: dict[str, Order] = {}
        self.fills: dict[str, Fill] = {}
        self.fill_memory: timedelta | None = None
        """Fills executed more than this before the newest known execution are forgotten (None: never)."""
        self.finished_kept = finished_kept
        self.finished_count = 0
        """Orders that reached a final state in this run (including the ones no longer in memory)."""
        self.last_fill_time: datetime | None = None
        self.uncommissioned: set[str] = set()
        """Exec ids of the fills in memory that have no commission yet."""
        self.forgotten: Counter[OrderStatus] = Counter()
        """Final statuses of the orders no longer in memory (summaries add them to what is)."""
        self.earlier: set[str] = set()
        """Refs of the orders in memory that had finished before this run (:meth:`restore_finished`)."""
        self._finished: dict[str, None] = {}
        self._open: dict[str, None] = {}
        """Refs of the orders not in a final state, oldest first: the order path's scans (working
        orders, in-flight ones) stay short however many finished orders memory keeps."""
        self._children: dict[str, dict[str, None]] = {}
        self._by_broker_id: dict[int, str] = {}
        self._by_perm_id: dict[int, str] = {}
        self._pending_commissions: dict[str, tuple[float, float | None]] = {}
        self._fills_pruned_at: datetime | None = None

    # -- creation and lookup ------------------------------------------------------------------

    def new_ref(self) -> str:
        """A fresh idempotent order reference: ``<prefix>-<n>``."""
        self._made += 1
        return f"{self._prefix}-{self._made}"

    @property
    def ref_prefix(self) -> str:
        """What every ref :meth:`new_ref` makes begins with (before its ``-<n>``)."""
        return self._prefix

    def draw_prefix(self) -> None:
        """Draw the ref prefix again (another run's, in the journal). Only before the first ref is made.

        Raises:
            RuntimeError: A ref was made under the prefix drawn before.
        """
        if self._made:
            raise RuntimeError(f"refs already made under {self._prefix}")
        self._prefix = draw_ref_prefix()

    def create(self, ticket: OrderTicket, status: OrderStatus, now: datetime,
               parent_ref: str | None = None, note: str = "", passed: tuple[StatusChange, ...] = ()) -> Order:
        """Track a new order in ``status``; ``passed`` are the steps it went through on the way, oldest first.

        An order gated and sent in one step is born in SENDING with its APPROVED step in ``passed``:
        the history is the same as moving it there, without the copies nobody sees in between.
        """
        # Born in ``status`` with that step last in its history (a denial is created final: counted as finished).
        steps = (*passed, StatusChange(status, now, note))
        for before, after in zip(steps, steps[1:]):  # noqa: B905 - one shorter by design
            if not can_move(before.status, after.status):
                raise IllegalTransition(f"new order: {before.status} -> {after.status}")
        order = Order(self.new_ref(), ticket, status, now, now, parent_ref=parent_ref, history=steps)
        return self._store(order)

    def adopt(self, order: Order) -> Order:
        """Track an order that already exists (restored from the journal or found at the broker)."""
        if order.broker_id is not None:
            self._by_broker_id[order.broker_id] = order.order_ref
        return self._store(order)

    def restore_finished(self, orders: Iterable[Order]) -> None:
        """Show orders that finished before this run (the day's, from the journal, oldest first) as finished
        orders in memory: found by a report or a fill as any other, kept and forgotten by the same rule (the
        oldest first, :attr:`finished_kept`), never working, and not this run's (:attr:`finished_count`,
        :attr:`forgotten`, :attr:`earlier`). An order already tracked, or not final, is left out."""
        for order in orders:
            if order.status.is_final and order.order_ref not in self.orders:
                self.earlier.add(order.order_ref)
                self.adopt(order)

    def get(self, order_ref: str) -> Order | None:
        """The order with ``order_ref``."""
        return self.orders.get(order_ref)

    def by_broker_id(self, broker_id: int) -> Order | None:
        """The order the broker knows as ``broker_id``."""
        ref = self._by_broker_id.get(broker_id)
        return self.orders.get(ref) if ref else None

    def by_perm_id(self, perm_id: int) -> Order | None:
        """The order the broker knows by the permanent id ``perm_id`` (the account's, unique)."""
        ref = self._by_perm_id.get(perm_id)
        return self.orders.get(ref) if ref else None

    def named(self, order_ref: str, perm_id: int | None) -> Order | None:
        """The order ``order_ref`` names, unless ``perm_id`` (the broker's, of the order a report or fill is about)
        says it is another: both known and different.

        Our refs are unique per order and a modify keeps the permanent id, but another tool (or a TWS user) may
        place several orders under one fixed orderRef: each is an order of its own, tracked under a ref of its own
        (:func:`~tui_trader.engine.adopted.adopted_refs`), and the first one's ref names none of the others.
        """
        order = self.orders.get(order_ref) if order_ref else None
        return order if order is not None and order.may_be(perm_id) else None

    def find(self, order_ref: str, perm_id: int | None, broker_id: int | None) -> Order | None:
        """The tracked order a broker record (a report, an execution) is about: by ref unless the permanent ids
        differ, else by permanent id (:func:`~tui_trader.domain.orders.order_of`, the rule the journal's readers
        follow too), then, for a record without a ref, by broker id.

        The broker id only without a ref: an order id is the placing client's, and another client's order (with a
        ref of its own) may carry one of ours. The permanent id is the account's, unique: it finds an order adopted
        without a ref in the completed orders, which carry no order id, and each of the orders placed under one
        orderRef.
        """
        order = order_of(order_ref, perm_id, self.orders.get, self.by_perm_id)
        if order is None and not order_ref and broker_id is not None:
            order = self.by_broker_id(broker_id)
            order = order if order is not None and order.may_be(perm_id) else None
        return order

    def placed_again(self, order_ref: str) -> Order:
        """``order_ref`` is about to be placed again (a resubmit under the same ref): the broker gives the new
        placement a permanent id of its own, so the old one no longer names it (a late report of the old
        placement is then not applied to it)."""
        order = self.orders[order_ref]
        if not order.perm_id:
            return order
        if self._by_perm_id.get(order.perm_id) == order_ref:
            del self._by_perm_id[order.perm_id]
        return self._store(replace(order, perm_id=None))

    def working(self) -> list[Order]:
        """Orders live (or possibly live) at the broker."""
        orders = self.orders
        return [o for o in map(orders.__getitem__, self._open) if o.status.is_working]

    def with_status(self, *statuses: OrderStatus) -> list[Order]:
        """Orders currently in one of ``statuses``."""
        if any(s.is_final for s in statuses):
            return [o for o in self.orders.values() if o.status in statuses]
        return [o for o in map(self.orders.__getitem__, self._open) if o.status in statuses]

    def children(self, parent_ref: str) -> list[Order]:
        """Bracket children of ``parent_ref``."""
        refs = self._children.get(parent_ref, ())
        return [self.orders[r] for r in refs if r in self.orders]

    # -- transitions ---------------------------------------------------------------------------

    def move(self, order_ref: str, status: OrderStatus, now: datetime, note: str = "") -> Order:
        """Move an order to ``status`` (raises :class:`IllegalTransition` when not allowed)."""
        order = self.orders[order_ref]
        if not can_move(order.status, status):
            raise IllegalTransition(f"{order_ref}: {order.status} -> {status}")
        return self._store(order.with_status(status, now, note))

    def try_move(self, order_ref: str, status: OrderStatus, now: datetime, note: str = "") -> Order | None:
        """Move when allowed; ``None`` (and no change) otherwise."""
        order = self.orders.get(order_ref)
        if order is None or not can_move(order.status, status):
            return None
        return self._store(order.with_status(status, now, note))

    def bind(self, order_ref: str, broker_id: int) -> Order:
        """Record the broker id an order is sent under."""
        self._by_broker_id[broker_id] = order_ref
        return self._store(self.orders[order_ref].with_broker_id(broker_id))

    def amend(self, order_ref: str, ticket: OrderTicket, now: datetime, note: str) -> Order:
        """Replace a working order's ticket (a modify), noting it in the history under the same status.

        ``note`` begins with one of :data:`~tui_trader.domain.orders.AMENDMENT_NOTES`: the step changes figures,
        not what the broker does with the order (:attr:`Order.broker_hold` looks past it)."""
        order = self.orders[order_ref]
        return self._store(replace(order, ticket=ticket).with_status(order.status, now, note))

    def set_error(self, order_ref: str, text: str) -> Order | None:
        """Record the last broker error on an order."""
        order = self.orders.get(order_ref)
        return self._store(replace(order, last_error=text)) if order else None

    def _index(self, order: Order) -> None:
        ref = order.order_ref
        if order.status.is_final:
            self._open.pop(ref, None)
        else:
            self._open[ref] = None
        if order.parent_ref is not None:
            self._children.setdefault(order.parent_ref, {})[ref] = None

    def _store(self, order: Order) -> Order:
        ref = order.order_ref
        self.orders[ref] = order
        if order.perm_id:
            self._by_perm_id[order.perm_id] = ref
        self._index(order)
        if order.status.is_final and ref not in self._finished:
            self._finished[ref] = None
            if ref not in self.earlier:  # else it finished before this run
                self.finished_count += 1
            if len(self._finished) > self.finished_kept:
                self._forget_finished()
        return order

    def _forget_finished(self) -> None:
        """Drop the oldest finished orders beyond :attr:`finished_kept` (never a working child's parent)."""
        parents = {o.parent_ref for o in self.orders.values() if o.parent_ref and not o.status.is_final}
        excess = len(self._finished) - self.finished_kept
        for ref in list(self._finished):
            if excess <= 0:
                break
            if ref in parents:
                continue
            earlier = ref in self.earlier
            order = self._drop(ref)
            if order is not None and not earlier:
                self.forgotten[order.status] += 1
            excess -= 1

    def set_aside(self, refs: Iterable[str]) -> list[Order]:
        """Stop tracking the orders under ``refs`` (another account's, restored from the journal, while trading is
        refused for the connected one): not shown, not worked, not counted as this run's. Returns those tracked."""
        return [order for ref in list(refs) if (order := self._drop(ref)) is not None]

    def set_fills_aside(self, exec_ids: Iterable[str]) -> list[Fill]:
        """Forget the fills under ``exec_ids`` (another account's, restored from the journal, while trading is
        refused for the connected one): not awaited for a commission, not where the executions are fetched from.
        Returns those known."""
        gone = [fill for exec_id in list(exec_ids) if (fill := self.fills.pop(exec_id, None)) is not None]
        if gone:
            self.uncommissioned -= {f.exec_id for f in gone}
            self.last_fill_time = max((f.time for f in self.fills.values()), default=None)
        return gone

    def _drop(self, ref: str) -> Order | None:
        """Forget the order under ``ref`` and every index of it; returns it (``None`` when not tracked)."""
        self._finished.pop(ref, None)
        self._open.pop(ref, None)
        self.earlier.discard(ref)
        order = self.orders.pop(ref, None)
        if order is None:
            return None
        self._forget_child(order)
        if order.broker_id is not None and self._by_broker_id.get(order.broker_id) == ref:
            del self._by_broker_id[order.broker_id]
        if order.perm_id and self._by_perm_id.get(order.perm_id) == ref:
            del self._by_perm_id[order.perm_id]
        return order

    def _forget_child(self, order: Order | None) -> None:
        if order is None or order.parent_ref is None:
            return
        siblings = self._children.get(order.parent_ref)
        if siblings is not None:
            siblings.pop(order.order_ref, None)
            if not siblings:
                del self._children[order.parent_ref]

    # -- broker input --------------------------------------------------------------------------

    def match(self, report: BrokerOrderReport) -> Order | None:
        """The tracked order a broker report is about (:meth:`find`)."""
        return self.find(report.order_ref, report.perm_id, report.broker_id)

    def apply_report(self, report: BrokerOrderReport, now: datetime) -> Order | None:
        """Apply a broker status report; returns the order when it changed, else ``None``."""
        order = self.match(report)
        if order is None:
            return None
        changed = self._absorb_ids(order, report)
        target = report.status
        if target is S.SENDING:  # PendingSubmit says nothing new: only the engine moves to SENDING
            target = None
        if target is not None and target is not order.status and can_move(order.status, target):
            moved = changed.with_status(target, now, _step_note(report))
            if target is S.REJECTED and report.error_code:  # the rejection carries the broker's error: one record
                moved = replace(moved, last_error=error_text(report.error_code, report.note))
            return self._store(moved)
        if target is order.status and target is not None and target.is_working and (
                (report.why_held in HOLD_REASONS) is not bool(order.broker_hold)):
            return self._store(changed.with_status(target, now, _step_note(report)))  # put on hold, or released
        if target is S.PARTIALLY_FILLED and order.status is S.PARTIALLY_FILLED:
            return None
        return self._store(changed) if changed is not order else None

    def _absorb_ids(self, order: Order, report: BrokerOrderReport) -> Order:
        if report.broker_id and report.broker_id != order.broker_id:
            self._by_broker_id[report.broker_id] = order.order_ref
            order = replace(order, broker_id=report.broker_id)
        if report.perm_id and report.perm_id != order.perm_id:
            order = replace(order, perm_id=report.perm_id)
        return self._store(order) if order is not self.orders[order.order_ref] else order

    def apply_fill(self, fill: Fill, now: datetime) -> tuple[Fill, Order | None] | None:
        """Record an execution once; returns (fill, updated order or None) or ``None`` if seen.

        The order is found as a report's (:meth:`find`): by ref unless the permanent ids differ, by permanent id,
        then (a fill without a ref) by broker id; ``None`` in the pair means the fill is for an order this engine
        does not know.
        """
        if fill.exec_id in self.fills:
            return None
        fill = self._with_pending_commission(fill)
        order = self.find(fill.order_ref, fill.perm_id, fill.broker_id or None)
        if order is not None and fill.order_ref != order.order_ref:
            fill = replace(fill, order_ref=order.order_ref)
        self.remember_fill(fill)
        self._forget_old_fills()
        return fill, (self._fill_order(order, fill, now) if order is not None else None)

    def remember_fill(self, fill: Fill) -> None:
        """Know ``fill`` for deduplication (recorded here, or restored from the journal)."""
        if self.fills.setdefault(fill.exec_id, fill) is fill and fill.commission is None:
            self.uncommissioned.add(fill.exec_id)
        if self.last_fill_time is None or fill.time > self.last_fill_time:
            self.last_fill_time = fill.time

    def remembers(self, fill: Fill) -> bool:
        """True when memory alone decides whether ``fill`` is new: it is known, or it is recent
        enough that every fill of its time is still in memory (else ask the journal).

        "Recent" is measured from the newest execution known (broker time on both sides)."""
        return (fill.exec_id in self.fills or self.fill_memory is None or self.last_fill_time is None
                or fill.time >= self.last_fill_time - self.fill_memory)

    def drop_pending_commission(self, exec_id: str) -> None:
        """Forget a commission held for a fill that turned out to be a duplicate."""
        self._pending_commissions.pop(exec_id, None)

    def _forget_old_fills(self) -> None:
        """At most hourly (of execution time): forget fills older than :attr:`fill_memory` before the
        newest one (the journal keeps them)."""
        newest = self.last_fill_time
        if self.fill_memory is None or newest is None:
            return
        if self._fills_pruned_at is not None and newest - self._fills_pruned_at < min(self.fill_memory, _HOUR):
            return
        self._fills_pruned_at = newest
        cutoff = newest - self.fill_memory
        for exec_id in [k for k, f in self.fills.items() if f.time < cutoff]:
            del self.fills[exec_id]
            self.uncommissioned.discard(exec_id)

    def _with_pending_commission(self, fill: Fill) -> Fill:
        pending = self._pending_commissions.pop(fill.exec_id, None)
        if pending is None or fill.commission is not None:
            return fill
        return replace(fill, commission=pending[0], realized_pnl=pending[1])

    def _fill_order(self, order: Order, fill: Fill, now: datetime) -> Order:
        qty = order.filled_quantity + fill.quantity
        avg = (order.avg_fill_price * order.filled_quantity + fill.price * fill.quantity) / qty
        commission = order.commission + (fill.commission or 0.0)
        order = replace(order, filled_quantity=qty, avg_fill_price=avg, commission=commission)
        target = S.FILLED if qty >= order.ticket.quantity - 1e-9 else S.PARTIALLY_FILLED
        if can_move(order.status, target) and not (target is order.status is S.PARTIALLY_FILLED):
            order = order.with_status(target, now, f"fill {fill.quantity:g}@{fill.price:g}")
        return self._store(order)

    def apply_commission(self, exec_id: str, commission: float,
                         realized_pnl: float | None) -> tuple[Fill, Order | None] | None:
        """Attach a commission to its fill (once); held back if the fill has not arrived yet."""
        fill = self.fills.get(exec_id)
        if fill is None:
            self._pending_commissions[exec_id] = (commission, realized_pnl)
            if len(self._pending_commissions) > PENDING_COMMISSIONS_KEPT:
                del self._pending_commissions[next(iter(self._pending_commissions))]
            return None
        if fill.commission is not None:
            return None
        fill = replace(fill, commission=commission, realized_pnl=realized_pnl)
        self.fills[exec_id] = fill
        self.uncommissioned.discard(exec_id)
        order = self.named(fill.order_ref, fill.perm_id)  # not another order under a shared orderRef
        if order is not None:
            order = self._store(replace(order, commission=order.commission + commission))
        return fill, order
