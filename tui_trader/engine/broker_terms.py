"""The terms of an order as the broker holds them: its type, trail, time in force and extended hours.

Compared with the journal's after a (re)connect
(:meth:`~tui_trader.engine.reconcile_orders.OrderSettlement._settle_figures`), beside its size and prices
(:func:`~tui_trader.engine.reconcile_orders.broker_figures`). An order adopted before the
adopted ticket said what the broker holds was journaled as a MKT DAY order, or as a stop at its trail amount:
shown so, expired as a day order, and re-sent so by a modify. The broker's terms replace such a record.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import OrderType
from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.adopted import ADOPTED, adopted_reason

_EPS = 1e-6
_PRICED = ("limit_price", "stop_price", "trail_amount", "trail_percent")
#: The figures each order type carries as the broker reports them (a TRAIL's stop: where it stands now).
_CARRIED = {OrderType.LMT: ("limit_price",), OrderType.STP: ("stop_price",),
            OrderType.STP_LMT: ("limit_price", "stop_price"),
            OrderType.TRAIL: ("stop_price", "trail_amount", "trail_percent"),
            OrderType.OTHER: ("limit_price", "stop_price")}
_LABELS = {"order_type": "type", "tif": "time in force", "outside_rth": "outside RTH", "quantity": "quantity",
           "limit_price": "limit", "stop_price": "stop", "trail_amount": "trail", "trail_percent": "trail %"}


def broker_terms(ours: OrderTicket, report: BrokerOrderReport) -> OrderTicket:
    """``ours`` with the broker's order type (and the figures it carries), trail, trailing stop, time in force
    and extended-hours flag where the broker reports them and they differ (size, limit and stop prices:
    :func:`~tui_trader.engine.reconcile_orders.broker_figures`)."""
    changes: dict[str, Any] = {}
    if report.raw_order_type and report.order_type is not ours.order_type:
        changes["order_type"] = report.order_type  # with the figures it carries, and none it does not
        changes.update({name: getattr(report, name) if name in _CARRIED[report.order_type] else None
                        for name in _PRICED})
    elif ours.order_type is OrderType.TRAIL:
        changes.update(_trail_changes(ours, report))
    if report.tif is not None and report.tif is not ours.tif:
        changes["tif"] = report.tif
    if report.outside_rth != ours.outside_rth:
        changes["outside_rth"] = report.outside_rth
    if not changes:
        return ours
    theirs = replace(ours, **changes)
    if ours.strategy == ADOPTED and ("order_type" in changes or "tif" in changes):
        theirs = replace(theirs, reason=adopted_reason(report))  # what of it the engine does not model, if any
    return theirs


def _trail_changes(ours: OrderTicket, report: BrokerOrderReport) -> dict[str, Any]:
    """A trailing stop's trail (amount or percent: one of the two) and stop, where the broker's differ."""
    changes: dict[str, Any] = {}
    trail = (report.trail_amount, report.trail_percent)
    if trail != (None, None) and not all(_same(a, b) for a, b in zip(trail, (ours.trail_amount, ours.trail_percent),
                                                                     strict=True)):
        changes["trail_amount"], changes["trail_percent"] = trail
    if report.stop_price is not None and not _same(report.stop_price, ours.stop_price):
        changes["stop_price"] = report.stop_price  # IB trails it without a word: where it stands now
    return changes


def _same(a: float | None, b: float | None) -> bool:
    return a is None and b is None or a is not None and b is not None and abs(a - b) <= _EPS


def terms_differing(ours: OrderTicket, theirs: OrderTicket, raw_type: str = "") -> list[str]:
    """``type TRAIL, not MKT``: each term of ``theirs`` that is not ``ours``, in the order tickets list them; a
    type the engine does not model in the broker's words (``raw_type``: ``type MIT, not MKT``)."""
    words = {name: _word(getattr(theirs, name)) for name in _LABELS}
    if raw_type:
        words["order_type"] = type_word(theirs.order_type, raw_type)
    return [f"{label} {words[name]}, not {_word(getattr(ours, name))}"
            for name, label in _LABELS.items() if getattr(ours, name) != getattr(theirs, name)]


def type_word(order_type: OrderType, raw_type: str) -> str:
    """An order's type as the alerts name it: one the engine does not model in the broker's words (``raw_type``)."""
    return raw_type if order_type is OrderType.OTHER else order_type.value


def only_trailed(ours: OrderTicket, theirs: OrderTicket) -> bool:
    """The one difference is a trailing stop's stop, which the broker moves as the price does (nothing amiss)."""
    trailing = ours.order_type is theirs.order_type is OrderType.TRAIL
    return trailing and replace(theirs, stop_price=ours.stop_price) == ours


def _word(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
