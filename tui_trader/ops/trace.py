"""Order trace: one order's whole story from the journal, as one timeline.

Signal, sizing (the ticket as sized), each risk check with value / limit / headroom, the approval
(who, when, how long it waited), the broker's acknowledgements and status changes, each fill and
its commission, and the position the order left — for the order and its bracket children.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tui_trader.domain import events as ev
from tui_trader.domain.market import Bar
from tui_trader.domain.orders import Fill, Order, base_ref
from tui_trader.domain.verdicts import RiskVerdict, check_line
from tui_trader.engine.snapshots import OrderTrace, TraceStep
from tui_trader.ops.trace_fills import FillOrders
from tui_trader.store.journal import Journal

SIGNAL_LOOKBACK = timedelta(minutes=10)
STAGE_STEP = {"pre-trade": "risk check", "re-check": "risk re-check", "modify": "risk check of a modify"}

__all__ = ["OrderTrace", "TraceStep", "execution_order", "find_order", "order_trace", "trace_of"]


async def execution_order(journal: Journal, fills: list[Fill]) -> list[Fill]:
    """``fills`` in the order they executed: by the broker's execution time, and within one second (its
    times have no finer resolution) in the order the engine heard them (its journaled ``OrderFilled``).

    The execution id says nothing about that order (the simulator's, like IB's, begins with the
    order's own id): an older resting limit's fill sorted before a newer market order's in the same
    second, and a report paired them into a trade that never happened.
    """
    seconds = Counter((f.symbol, f.time) for f in fills)
    tied = {f.order_ref for f in fills if seconds[(f.symbol, f.time)] > 1}
    heard: dict[str, datetime] = {}
    for ref in sorted(tied):
        heard.update((e.fill.exec_id, e.time) for e in await journal.events(["OrderFilled"], order_ref=ref)
                     if isinstance(e, ev.OrderFilled))
    return sorted(fills, key=lambda f: (f.time, heard.get(f.exec_id, NEVER), f.exec_id))


NEVER = datetime.max.replace(tzinfo=UTC)
"""When a fill the journal has no ``OrderFilled`` of was heard: after those it has (then by execution id)."""


async def find_order(journal: Journal, ref: str) -> Order | None:
    """The order with orderRef ``ref``, else the one whose broker id is ``ref``."""
    order = await journal.order(ref)
    if order is not None or not ref.isdigit():
        return order
    return next((o for o in await journal.orders() if o.broker_id == int(ref)), None)


async def trace_of(journal: Journal, ref: str) -> OrderTrace | None:
    """The trace of ``ref`` (orderRef or broker id) as one picklable value; ``None`` if unknown."""
    order = await find_order(journal, ref)
    if order is None:
        return None
    steps = await order_trace(journal, order.order_ref)
    root = (await journal.order(order.parent_ref) or order) if order.parent_ref else order
    return OrderTrace(ref, root.order_ref, root.symbol, tuple(steps), str(journal.path))


async def order_trace(journal: Journal, ref: str) -> list[TraceStep]:
    """The timeline of the order ``ref`` (orderRef or broker id) and its bracket; [] if unknown.

    A bracket child's timeline is its parent's: the family was signalled, checked, approved and
    sent as one. A fill is the order's as the engine books it (:class:`~tui_trader.ops.trace_fills.FillOrders`),
    also one journaled under the broker's shared orderRef before the order was adopted as ``<orderRef>#<permId>``;
    one whose order the journal cannot tell is shown, said uncertain.
    """
    order = await find_order(journal, ref)
    if order is None:
        return []
    if order.parent_ref:  # a bracket child: its story is the bracket's (signal, checks, approval)
        order = await journal.order(order.parent_ref) or order
    orders = await journal.orders()
    family = [order, *[o for o in orders if o.parent_ref == order.order_ref]]
    every_fill = await journal.fills()  # read once: the owners, the commissions and the position read them
    owners = await _owners(journal, orders, family, every_fill)
    steps = [*await _signal(journal, order), _sizing(order)]  # the signal first when at the same instant
    for member in family:
        steps += _member_steps(await _events_of(journal, member), member, owners)
    steps += await _commissions(journal, family, owners, every_fill, {s.data["exec_id"]: s.time for s in steps
                                                                      if s.step == "fill"})
    fills = [s.time for s in steps if s.step == "fill"]
    if fills:
        steps.append(await _position(journal, family, owners, every_fill, max(fills)))
    return sorted(steps, key=lambda s: s.time)


async def _owners(journal: Journal, orders: list[Order], family: list[Order], every_fill: list[Fill]) -> FillOrders:
    """The fills' orders, with the doubts of the fills under the family's refs (and the orderRefs they share)."""
    refs = {r for o in family for r in (o.order_ref, base_ref(o.order_ref))}
    fills = [f for f in every_fill if f.order_ref in refs]
    return FillOrders(orders, await journal.fill_doubts(fills), fills)


async def _events_of(journal: Journal, order: Order) -> list[ev.Event]:
    """The order's journaled events, and the fills journaled under the orderRef it shares, before it was adopted as
    ``<orderRef>#<permId>`` (an execution of an order not tracked yet is journaled under the broker's orderRef)."""
    events = await journal.events(order_ref=order.order_ref)
    shared = base_ref(order.order_ref)
    if shared == order.order_ref:
        return events
    earlier = await journal.events(["OrderFilled"], order_ref=shared)
    return sorted([*events, *earlier], key=lambda e: e.time)


def _sizing(order: Order) -> TraceStep:
    t = order.ticket
    prices = ", ".join(f"{k} {v:g}" for k, v in (("limit", t.limit_price), ("stop", t.stop_price)) if v is not None)
    detail = f"{t.side.value} {t.quantity:g} {t.symbol} {t.order_type.value}{' ' + prices if prices else ''} " \
             f"{t.tif.value} by {t.strategy}" + (f": {t.reason}" if t.reason else "")
    bracket = {"stop": t.bracket.stop_price, "target": t.bracket.take_profit_price} if t.bracket else {}
    return TraceStep(t.created_at or order.created_at, "sizing", detail, order.order_ref,
                     {"quantity": t.quantity, "signal_price": t.signal_price, **bracket})


async def _signal(journal: Journal, order: Order) -> list[TraceStep]:
    t = order.ticket
    since = order.created_at - SIGNAL_LOOKBACK
    signals = [e for e in await journal.events(["SignalGenerated"], since=since)
               if isinstance(e, ev.SignalGenerated) and e.time <= order.created_at and e.ticket.symbol == t.symbol
               and e.ticket.side is t.side and e.strategy == t.strategy]
    if not signals:
        return []
    s = signals[-1]
    detail = f"{s.strategy}: {s.ticket.side.value} {s.ticket.symbol} at {s.ticket.signal_price:g}" + \
        (f" ({s.ticket.reason})" if s.ticket.reason else "")
    return [TraceStep(s.time, "signal", detail, order.order_ref, {"reason": s.ticket.reason}),
            *(TraceStep(s.time, "bar", _bar_line(b), order.order_ref, _bar_data(b)) for b in s.bars)]


def _bar_line(b: Bar) -> str:
    """A bar's figures; its time is in its data, shown in the reader's zone
    (:func:`~tui_trader.ops.trace_export.step_detail`)."""
    return f"O {b.open:g} H {b.high:g} L {b.low:g} C {b.close:g} V {b.volume:g}"


def _bar_data(b: Bar) -> dict[str, Any]:
    return {"time": b.time.isoformat(), "open": b.open, "high": b.high, "low": b.low, "close": b.close,
            "volume": b.volume}


def _member_steps(events: list[ev.Event], order: Order, owners: FillOrders) -> list[TraceStep]:
    """The steps of one order's journaled events, in order.

    An update journaled without the status it came from (the engine's, after a fill booked by
    reconciliation) came from the status before it: it read "new -> FILLED" for an order long FILLED.
    """
    steps: list[TraceStep] = []
    last: Order | None = None
    for event in events:
        if isinstance(event, ev.OrderUpdated):
            if event.previous is None and last is not None:
                event = replace(event, previous=last.status)
            steps += _update_steps(event, order.order_ref, last)
            last = event.order
        else:
            steps += _fill_step(event, order, owners) if isinstance(event, ev.OrderFilled) else _steps(event, order)
    return steps


def _update_steps(event: ev.OrderUpdated, ref: str, last: Order | None) -> list[TraceStep]:
    """The step of an order's update: a move from one status to another (and why), or under the same status what
    changed since the order's update before it (``last``): a step of its history (a modify asked, refused, put back),
    the broker's id, a fill, the broker's error; none when nothing did (each update repeated the broker's id)."""
    o = event.order
    broker = {"broker_id": o.broker_id} if o.broker_id else {}
    note = o.history[-1].note if o.history else ""
    error = o.last_error if o.last_error and (last is None or o.last_error != last.last_error) else ""
    bound = f"broker id {o.broker_id}" if o.broker_id and (last is None or o.broker_id != last.broker_id) else ""
    if event.previous is not o.status:
        if error and error.endswith(note):  # a rejection: its note is the broker's words, its error adds the code
            note, error = error, ""
        why = "; ".join(x for x in (note, bound, f"broker: {error}" if error else "") if x)
        before = event.previous.value if event.previous else "new"
        return [TraceStep(event.time, "status", f"{before} -> {o.status.value}" + (f" ({why})" if why else ""), ref,
                          broker)]
    stepped = last is not None and len(o.history) > len(last.history)
    facts = [note if stepped else "", bound,
             f"filled {o.filled_quantity:g}" if o.filled_quantity and (
                 last is None or o.filled_quantity != last.filled_quantity) else "",
             f"broker: {error}" if error else ""]
    said = [f for f in facts if f]
    if not said and last is not None:
        return []
    return [TraceStep(event.time, "status", f"{o.status.value}, updated" + (f": {'; '.join(said)}" if said else ""),
                      ref, broker)]


def _fill_step(event: ev.OrderFilled, order: Order, owners: FillOrders) -> list[TraceStep]:
    """The step of a fill of ``order``; of one under its ref whose order is uncertain, said so; none for another's."""
    f = event.fill
    if not _belongs(f, order, owners):
        return []
    doubt = owners.doubts.get(f.exec_id, "")
    # The step's time is when the engine recorded it; the broker's execution time is in the data.
    detail = f"{f.side.value} {f.quantity:g} @ {f.price:g} ({f.exec_id})" + \
        (f"; which order it filled is uncertain: {doubt}" if doubt else "")
    data = {"exec_id": f.exec_id, "quantity": f.quantity, "price": f.price, "exec_time": f.time.isoformat()}
    return [TraceStep(event.time, "fill", detail, order.order_ref, {**data, **({"uncertain": doubt} if doubt else {})})]


def _steps(event: ev.Event, order: Order) -> list[TraceStep]:
    ref = order.order_ref
    if isinstance(event, ev.ModifyRefused):
        return [TraceStep(event.time, "modify refused", f"the broker refused the modify to {event.asked} "
                          f"({event.code}: {event.message}); the order stays at {event.held}", ref,
                          {"code": event.code, "message": event.message, "asked": event.asked, "held": event.held})]
    if isinstance(event, ev.OrderChecked):
        return _checks(event.time, event.verdict, ref, STAGE_STEP.get(event.stage, "risk check"))
    if isinstance(event, ev.ApprovalRequested):
        return [*_checks(event.time, event.verdict, ref),
                TraceStep(event.time, "approval requested",
                          f"expires after {(event.expires_at - event.time).total_seconds():.0f}s", ref)]
    if isinstance(event, ev.ApprovalResolved):
        return [_approval(event, order)]
    if isinstance(event, ev.WhatIfAnswered):
        return [_what_if(event)]
    if isinstance(event, ev.OrderDenied):
        return [*_checks(event.time, event.verdict, ref), TraceStep(event.time, "denied", event.verdict.reason, ref)]
    if isinstance(event, ev.OperatorAction):  # the operator's cancel or modify: who did it, what it changed
        what = event.action.replace("_", " ")
        detail = f"{event.who}: {what}, {event.before} -> {event.after}" if event.before else f"{event.who}: {what}"
        return [TraceStep(event.time, "operator", detail, ref,
                          {"who": event.who, "action": event.action, "before": event.before, "after": event.after})]
    return []


def _belongs(fill: Fill, order: Order, owners: FillOrders) -> bool:
    """``fill`` is ``order``'s as the engine books it (not another order's under the same orderRef: another tool's
    fixed ``bot1``, told apart by the permanent ids), or it is journaled under ``order``'s ref and which order under
    it filled it is uncertain (shown, said so)."""
    return owners.fills_it(fill, order) or (fill.order_ref == order.order_ref and fill.exec_id in owners.doubts)


def _of_family(fill: Fill, family: list[Order], owners: FillOrders) -> bool:
    return any(_belongs(fill, o, owners) for o in family)


def _checks(when: datetime, verdict: RiskVerdict, ref: str, step: str = "risk check") -> list[TraceStep]:
    return [TraceStep(when, step, check_line(c), ref,
                      {"check": c.name, "passed": c.passed, "value": c.value, "limit": c.limit,
                       "headroom": c.headroom}) for c in verdict.checks]


def _what_if(event: ev.WhatIfAnswered) -> TraceStep:
    """The broker's what-if as the operator saw it in the approval."""
    w, data = event.what_if, {}
    if w is None:
        detail = event.note
    else:
        figures = {"initial margin": w.init_margin_change, "maintenance margin": w.maint_margin_change,
                   "commission": w.commission}
        data = {k.replace(" ", "_"): v for k, v in figures.items() if v is not None}
        detail = ", ".join(f"{k} {v:+,.2f}" if "margin" in k else f"{k} {v:,.2f}"
                           for k, v in figures.items() if v is not None) or "no figures"
        detail += f" ({event.note})" if event.note else ""
    return TraceStep(event.time, "what-if", detail, event.order_ref, data)


def _approval(event: ev.ApprovalResolved, order: Order) -> TraceStep:
    waited = (event.time - order.created_at).total_seconds()
    what = "approved" if event.approved else "rejected"
    detail = f"{what} by {event.by} after {waited:.1f}s" + (f" ({event.note})" if event.note else "")
    return TraceStep(event.time, "approval", detail, order.order_ref,
                     {"approved": event.approved, "by": event.by, "waited_s": waited})


async def _commissions(journal: Journal, family: list[Order], owners: FillOrders, every_fill: list[Fill],
                       heard: dict[str, datetime]) -> list[TraceStep]:
    """Each fill's commission: as the broker reported it, or as it came with the execution (``heard``:
    when each fill was journaled), for a fill booked from the executions asked for after a reconnect
    or a restart, which has no report of its own (its commission was missing from the trace)."""
    fills = {f.exec_id: f for f in every_fill if _of_family(f, family, owners)}  # broker time: no "since"
    reports = [e for e in await journal.events(["CommissionReported"], since=min(o.created_at for o in family))
               if isinstance(e, ev.CommissionReported) and e.exec_id in fills]
    steps = [_commission(e.time, fills[e.exec_id], e.commission, e.realized_pnl) for e in reports]
    reported = {e.exec_id for e in reports}
    return steps + [_commission(heard[f.exec_id], f, f.commission, f.realized_pnl) for f in fills.values()
                    if f.commission is not None and f.exec_id not in reported and f.exec_id in heard]


def _commission(when: datetime, fill: Fill, commission: float, realized_pnl: float | None) -> TraceStep:
    return TraceStep(when, "commission", f"{commission:g} on {fill.exec_id}" +
                     (f", realized P&L {realized_pnl:g}" if realized_pnl is not None else ""),
                     fill.order_ref, {"commission": commission, "realized_pnl": realized_pnl})


async def _position(journal: Journal, family: list[Order], owners: FillOrders, every_fill: list[Fill],
                    when: datetime) -> TraceStep:
    """The symbol's position in the engine's book right after the family's last fill (fills in
    :func:`execution_order`): the fills up to it, and the positions the book took from the broker journaled before
    (:meth:`~tui_trader.store.queries.JournalQueries.book_adjustments`), not the fills alone: those read 5 where the
    account held 15 (10 the broker's when the journal began). Fills journaled before a new journal's seed count
    in its positions, not again."""
    symbol = family[0].symbol
    fills = await execution_order(journal, [f for f in every_fill if f.symbol == symbol])
    last = max(i for i, f in enumerate(fills) if _of_family(f, family, owners))
    start, book = await journal.book_start(), await journal.book_adjustments()
    before_book = start.journaled_before if start is not None else frozenset()
    walked = fills[:last + 1]
    taken = max(book.before_fill(f.exec_id) for f in walked)
    position = sum(f.signed_quantity for f in walked if f.exec_id not in before_book) + \
        sum(a.moved.get(symbol, (0.0, 0.0))[0] for a in book.adjustments[:taken])
    return TraceStep(when, "position", f"{symbol} position {position:g} after this order", family[0].order_ref,
                     {"symbol": symbol, "position": position})
