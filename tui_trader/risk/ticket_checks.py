"""Pre-trade checks of the ticket itself: what it is allowed to be, whether its figures can be sent, whether its
bracket lies on the right sides of its entry.

Each is a small pure function returning a :class:`CheckResult`; :mod:`tui_trader.risk.checks` runs them in the
gate (and names them in its ``__all__``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tui_trader.domain import CheckResult, OrderTicket, OrderType, Quote, Side
from tui_trader.risk.results import PASS

_BUY, _TRAIL = Side.BUY, OrderType.TRAIL  # globals: an enum member read costs ~90 ns on 3.11


def check_symbol_allowed(symbol: str, allowed: tuple[str, ...]) -> CheckResult:
    """The symbol is on the allow-list."""
    if symbol.upper() in allowed:
        return PASS["symbol_allowed"]
    return CheckResult("symbol_allowed", False, message=f"{symbol} not in allowed symbols")


def check_order_type_allowed(order_type: OrderType, allowed: tuple[OrderType, ...]) -> CheckResult:
    """The order type is on the allow-list."""
    if order_type in allowed:
        return PASS["order_type_allowed"]
    return CheckResult("order_type_allowed", False, message=f"{order_type} not allowed")


def check_ticket_fields(ticket: OrderTicket, size_increment: float = 1.0, min_tick: float = 0.0) -> CheckResult:
    """A positive finite quantity in whole ``size_increment`` steps, finite prices, the positive
    prices (or trail) its order type needs, and prices of a dollar or more on the ``min_tick`` grid.

    ``size_increment``: the instrument's (1 for whole shares); ``min_tick``: its price increment.
    Either not positive or not finite: not checked. Prices under a dollar are not held to the tick:
    US stocks may quote them in sub-pennies (IB then prices by its market rules, finer than the
    contract's tick).
    """
    problem = (_quantity_problem(ticket.quantity, size_increment) or _price_problem(ticket)
               or _tick_problem(ticket, min_tick) or _kind_problem(ticket))
    return CheckResult("ticket_valid", False, message=problem) if problem else PASS["ticket_valid"]


def _tick_problem(ticket: OrderTicket, tick: float) -> str:
    """A price of a dollar or more off the ``tick`` grid, said ("" when none): the broker rejects it
    (IB's 110), and the operator would lose the ticket to a rejection instead of a denial that keeps it."""
    if not 0 < tick < math.inf:
        return ""
    bracket = ticket.bracket
    prices = (("limit price", ticket.limit_price), ("stop price", ticket.stop_price),
              ("stop-loss", bracket.stop_price if bracket is not None else None),
              ("take-profit", bracket.take_profit_price if bracket is not None else None))
    for what, price in prices:
        if price is not None and 1.0 <= price < math.inf and abs(price / tick - round(price / tick)) > 1e-6:
            return f"{what} {price:g} is not on the instrument's {tick:g} tick"
    return ""


def _kind_problem(ticket: OrderTicket) -> str:
    """An order type or time in force the engine does not send (one only an order adopted from the broker
    can carry: the mapping keeps what IB holds, OTHER when it is not modelled), said ("" when none)."""
    if not ticket.tif.modelled:  # one rule with the adoption's (domain.enums), not a copy of it
        return f"time in force {ticket.tif} is not one the engine sends (DAY or GTC)"
    if not ticket.order_type.modelled:
        return "an order type the engine does not model cannot be sent"
    return ""


def _quantity_problem(quantity: float, increment: float) -> str:
    """Why ``quantity`` cannot be sent ("" when it can)."""
    if not (0 < quantity < math.inf):
        return f"quantity {quantity} must be positive"
    if 0 < increment < math.inf:
        steps = quantity / increment
        if abs(steps - round(steps)) > 1e-9 * (steps if steps > 1.0 else 1.0):
            return f"quantity {quantity:g} is not a multiple of the instrument's size increment {increment:g}"
    return ""


def _price_problem(ticket: OrderTicket) -> str:
    """Why the ticket's prices cannot be sent ("" when they can)."""
    order_type, limit, stop = ticket.order_type, ticket.limit_price, ticket.stop_price
    if limit is not None and not -math.inf < limit < math.inf:
        return f"limit price {limit} must be finite"
    if stop is not None and not -math.inf < stop < math.inf:
        return f"stop price {stop} must be finite"
    if order_type in _LIMIT_TYPES and not (limit or 0) > 0:
        return f"{order_type} needs a positive limit price"
    if order_type in _STOP_TYPES and not (stop or 0) > 0:
        return f"{order_type} needs a positive stop price"
    if order_type is _TRAIL:
        if ticket.trail_amount is None and ticket.trail_percent is None:
            return "TRAIL needs a trail amount or percent"
        return _positive_problem((("trail amount", ticket.trail_amount), ("trail percent", ticket.trail_percent)))
    return ""


_LIMIT_TYPES = (OrderType.LMT, OrderType.STP_LMT)
_STOP_TYPES = (OrderType.STP, OrderType.STP_LMT)


def _positive_problem(figures: Sequence[tuple[str, float | None]]) -> str:
    """The first figure given that is not finite and positive, said ("" when none)."""
    for what, value in figures:
        if value is not None and not (value > 0 and math.isfinite(value)):
            return f"{what} {value} must be finite and positive"
    return ""


def check_bracket(ticket: OrderTicket, quote: Quote | None) -> CheckResult:
    """A bracket's stop-loss lies below the entry's expected fill and its target above (a sell: the
    reverse); on the wrong side, one would trigger as soon as the entry fills.

    Its prices must be finite and positive. The expected fill: a limit entry's limit, or the far
    side of the quote when that is better (a marketable limit fills there); a stop entry's stop, or
    the far side when the stop is already through it (it triggers at once: max(stop, ask) for a
    buy, min(stop, bid) for a sell), a stop-limit's capped by its limit; a market entry's far side.
    Unknown (a market entry without the side it trades against): not checked here (the quote
    check says why).
    """
    bracket = ticket.bracket
    assert bracket is not None
    problem = _positive_problem((("bracket stop", bracket.stop_price), ("bracket target", bracket.take_profit_price),
                                 ("bracket trail amount", bracket.trail_amount),
                                 ("bracket trail percent", bracket.trail_percent)))  # fmt: skip
    if problem:
        return CheckResult("bracket", False, message=problem)
    entry = expected_fill(ticket, far_side(quote, ticket.side))
    if math.isnan(entry):
        return PASS["bracket"]
    buy = ticket.side is Side.BUY
    stop, target = bracket.stop_price, bracket.take_profit_price
    problems = []
    if stop is not None and (stop >= entry if buy else stop <= entry):
        problems.append(f"stop-loss {stop:,.2f} is {'above' if buy else 'below'} the entry's expected fill "
                        f"{entry:,.2f}: it would trigger at once")
    if target is not None and (target <= entry if buy else target >= entry):
        problems.append(f"target {target:,.2f} is {'below' if buy else 'above'} the entry's expected fill "
                        f"{entry:,.2f}: it would fill at once")
    if not problems:
        return PASS["bracket"]
    return CheckResult("bracket", False, message="; ".join(problems))


def expected_fill(ticket: OrderTicket, far: float) -> float:
    """Where the ticket's entry is expected to fill, given the far side of the quote (NaN: unknown)."""
    buy, order_type, limit, stop = ticket.side is Side.BUY, ticket.order_type, ticket.limit_price, ticket.stop_price
    better, worse = (min, max) if buy else (max, min)
    if order_type in _STOP_TYPES and stop:
        entry = stop if math.isnan(far) else worse(stop, far)  # through the market: triggers at once
        return better(limit, entry) if order_type is OrderType.STP_LMT and limit else entry
    if order_type is OrderType.LMT and limit:
        return limit if math.isnan(far) else better(limit, far)
    return far


def check_reduce_only(reduces: bool) -> CheckResult:
    """A ticket flagged reduce-only must reduce a position and not go past flat."""
    if reduces:
        return PASS["reduce_only"]
    return CheckResult("reduce_only", False, message="reduce-only order would not reduce a position "
                       "(or, with the orders working on its side, would take it past flat)")


def far_side(quote: Quote | None, side: Side) -> float:
    """The side of the quote an order trades against (:meth:`Quote.far_side`); NaN without a quote."""
    return math.nan if quote is None else quote.far_side(side is _BUY)

