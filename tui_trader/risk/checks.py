"""Pre-trade checks: one small pure function per control, and the gate that runs them all.

The checks live by what they look at: the ticket (:mod:`~tui_trader.risk.ticket_checks`), the market
(:mod:`~tui_trader.risk.market_checks`), the order flow (:mod:`~tui_trader.risk.rate_checks`); the account and
book checks and the gate are here.

Each check returns a :class:`CheckResult` with its value, limit and headroom so the approval modal
can show them; a check whose limit is unset does not run. Orders that only reduce a position
(never past flat, counting working orders on their side) are exempt from the order size, exposure,
count, hours and cooldown limits, and from the market-data freshness checks (quote age, spread): a limit
must never trap the operator in a position, and a data outage is when an exit matters most. Such an
exit still needs a quote that can price it (``quote``), and a priced one stays inside the collar
(measured from the last quote); a market exit has no price to collar, so it goes at the market.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tui_trader.domain import (
    AccountSnapshot,
    CheckResult,
    Instrument,
    MarketSnapshot,
    Order,
    OrderTicket,
    OrderType,
    Quote,
    RiskVerdict,
    Side,
    TradingState,
)
from tui_trader.risk.book import Book, Leg, build_book
from tui_trader.risk.limits import RiskLimits
from tui_trader.risk.market_checks import (
    check_close_window,
    check_halted,
    check_open_window,
    check_price_collar_pct,
    check_price_collar_ticks,
    check_quote_age,
    check_quote_usable,
    check_spread,
    check_trading_hours,
    close_window,
    collar_distance,
    collar_reference,
    current_session,
    open_window,
)
from tui_trader.risk.rate_checks import RecentOrder, check_cooldown, check_duplicate, check_throttle, order_price
from tui_trader.risk.results import PASS, STATE_PASS, exempt, exempted, growth_bound, upper_bound
from tui_trader.risk.throttle import Throttle
from tui_trader.risk.ticket_checks import (
    check_bracket,
    check_order_type_allowed,
    check_reduce_only,
    check_symbol_allowed,
    check_ticket_fields,
    expected_fill,
    far_side,
)

ORDER_NOTIONAL = "order_notional"
"""The check of an order's notional against ``max_order_notional``; its value is the order valued as the gate
prices it (at the quote now), the figure the order ticket shows."""

if TYPE_CHECKING or sys.version_info >= (3, 12):
    from functools import cached_property as lazy
else:

    class lazy:  # noqa: N801 - reads as the decorator it stands in for
        """``functools.cached_property`` without the lock Python 3.11 takes on every first read.

        A verdict reads seven derived values of a fresh context; on 3.11 each first read acquired an
        RLock, a third of the gate's cost with every default check on. 3.12 dropped the lock, and
        there this name is ``functools.cached_property`` itself.
        """

        def __init__(self, func: Callable[[Any], Any]) -> None:
            self.func, self.name, self.__doc__ = func, func.__name__, func.__doc__

        def __get__(self, obj: Any, owner: type | None = None) -> Any:
            if obj is None:
                return self
            value = obj.__dict__[self.name] = self.func(obj)
            return value


# Globals: a read of ``Side.BUY`` (any enum member) costs ~90 ns on Python 3.11, and these are read on every check.
_SELL, _MKT = Side.SELL, OrderType.MKT
_ACTIVE, _REDUCING = TradingState.ACTIVE, TradingState.REDUCING

__all__ = [
    "RecentOrder",
    "TicketContext",
    "check_bracket",
    "check_cancel",
    "check_cash_fraction",
    "check_close_window",
    "check_cooldown",
    "check_duplicate",
    "check_open_window",
    "check_order_type_allowed",
    "check_price_collar_pct",
    "check_price_collar_ticks",
    "check_quote_age",
    "check_quote_usable",
    "check_reduce_only",
    "check_spread",
    "check_symbol_allowed",
    "check_throttle",
    "check_ticket_fields",
    "check_trading_hours",
    "check_trading_state",
    "exempt",
    "expected_fill",
    "far_side",
    "growth_bound",
    "order_price",
    "pre_trade_check",
    "upper_bound",
]


def check_trading_state(state: TradingState, reduces: bool) -> CheckResult:
    """HALTED denies every new order; REDUCING passes only orders that reduce a position."""
    if state is _ACTIVE:  # the usual case, before the conversion below
        return STATE_PASS[state]
    state = TradingState(state)  # a plain string from a caller must not slip past the identity tests
    if state is TradingState.ACTIVE or (state is TradingState.REDUCING and reduces):
        return STATE_PASS[state]
    why = "trading halted" if state is TradingState.HALTED else "reducing only: order would add exposure"
    return CheckResult("trading_state", False, message=why)


def check_cash_fraction(cash_after: float, equity: float, limit: float) -> CheckResult:
    """Cash left after every working buy (and this one) fills, as a fraction of equity, stays >= limit."""
    value = cash_after / equity if equity > 0 else math.nan
    passed = value >= limit
    msg = "" if passed else f"cash would fall to {value:.1%} of equity, minimum {limit:.1%}"
    return CheckResult("cash_fraction", passed, value, limit, value - limit, msg, "of equity")


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------


class TicketContext:
    """Everything the checks derive from a ticket and the snapshots, each part the first time a check reads it.

    The account snapshot, the book and the ticket's legs are most of a verdict's cost, and a check
    whose limit is unset reads none of them: with size and quote limits alone (and trading
    ACTIVE) the gate builds neither. ``account`` may be a callable that builds the snapshot (the
    engine passes its own); it is called at most once, when a check first needs the account. So
    may ``in_flight`` (read with the account, for the book). The quote, the instrument and the far
    side are read by nearly every verdict and cost a lookup each: they are taken at once.
    """

    def __init__(
        self,
        ticket: OrderTicket,
        account: AccountSnapshot | Callable[[], AccountSnapshot],
        market: MarketSnapshot,
        limits: RiskLimits,
        now: datetime,
        in_flight: Sequence[Order] | Callable[[], Sequence[Order]] = (),
        order_ref: str | None = None,
    ) -> None:
        self.ticket, self.limits, self.now = ticket, limits, now
        self.quote: Quote | None = market.quotes.get(ticket.symbol)
        self.instrument: Instrument = market.instruments.get(ticket.symbol) or Instrument(ticket.symbol)
        """The ticket's instrument (a default one when the market does not know it)."""
        self.far = far_side(self.quote, ticket.side)
        """The side of the quote the ticket trades against (:func:`far_side`)."""
        self._account, self._market, self._in_flight, self._order_ref = account, market, in_flight, order_ref

    @lazy
    def account(self) -> AccountSnapshot:
        """Positions, cash, equity, working orders and today's counters."""
        account = self._account
        return account if isinstance(account, AccountSnapshot) else account()

    @property
    def watched(self) -> dict[str, Instrument]:
        """The symbols the session subscribes to (their instruments)."""
        return self._market.instruments

    @lazy
    def book(self) -> Book:
        """Positions and counted orders by symbol, priced (the ticket's own limit prices its symbol if nothing else)."""
        own_price = {self.ticket.symbol: self.ticket.price_for_notional(math.nan)}
        # callable() rather than isinstance(..., Sequence): an ABC check walks abc's caches, on every order.
        in_flight = self._in_flight() if callable(self._in_flight) else self._in_flight
        return build_book(self.account, self._market, in_flight, self._order_ref, own_price)

    @lazy
    def leg(self) -> Leg:
        """The ticket's symbol in the book, before the ticket."""
        return self.book.leg(self.ticket.symbol)

    @lazy
    def leg_after(self) -> Leg:
        """The ticket's symbol in the book with the ticket working."""
        return self.leg.adding(self.ticket.side, self.ticket.quantity)

    @lazy
    def reduces(self) -> bool:
        """The ticket only reduces its symbol's position (never past flat, counting working orders)."""
        return self.leg.reduces(self.ticket.side, self.ticket.quantity)

    @lazy
    def price(self) -> float:
        """Estimated price: the larger of the order's own price (:attr:`OrderTicket.own_price`) and
        the far side of the quote; without either, the book's mark only when there is no quote at all.

        A quote without the side the order trades against gives NaN (the limits deny; see
        :attr:`price_problem`): its last trade may be long stale.
        """
        ticket = self.ticket
        price = ticket.price_for_notional(self.far)
        if self.quote is None and math.isnan(price):
            price = self.book.price(ticket.symbol)
        return price

    @property
    def price_problem(self) -> str:
        """Why :attr:`price` is unknown, for the limits that cannot measure the order without it."""
        quote = self.quote
        if quote is None:
            return "no quote and no mark to price the order"
        if quote.bid > quote.ask > 0:
            return f"crossed quote (bid {quote.bid:g} > ask {quote.ask:g}): no price to value the order"
        return missing_side_message(quote, self.ticket)

    @lazy
    def notional(self) -> float:
        """Estimated notional of the ticket."""
        return self.ticket.quantity * self.price


def missing_side_message(quote: Quote, ticket: OrderTicket) -> str:
    """Why an order without a price of its own cannot be valued on ``quote``: the side it trades against is missing."""
    side = "ask" if ticket.side is Side.BUY else "bid"
    last = f" (last trade {quote.last:g} is not a price it would fill at)" if quote.last > 0 else ""
    return f"no {side} to price a {ticket.order_type} {ticket.side.value.lower()}{last}"


def pre_trade_check(
    ticket: OrderTicket,
    account: AccountSnapshot | Callable[[], AccountSnapshot],
    market: MarketSnapshot,
    limits: RiskLimits,
    now: datetime,
    throttle: Throttle,
    state: TradingState,
    in_flight: Sequence[Order] | Callable[[], Sequence[Order]] = (),
    *,
    recent: Sequence[RecentOrder] = (),
    order_ref: str | None = None,
) -> RiskVerdict:
    """Run every enabled check on ``ticket``; the order passes only when all of them pass.

    Args:
        ticket: The order asked for (for a modify: the new ticket).
        account: Positions, cash, equity, working orders and today's counters (or a callable
            building them, called only when an enabled check needs them).
        market: Quotes and instruments by symbol.
        limits: The limits; unset ones do not run.
        now: The clock (timezone-aware); nothing here reads the wall clock.
        throttle: The message buckets as they are now.
        state: The engine's trading state.
        in_flight: Orders sent (or approved) that the account snapshot may not show yet.
        recent: Orders sent recently, for the duplicate check.
        order_ref: Ref of this ticket's own order when re-checked after approval or modified;
            that order is left out of the book so it is not counted twice.

    Returns:
        The verdict with every check's value, limit and headroom.
    """
    ctx = TicketContext(ticket, account, market, limits, now, in_flight, order_ref)
    # Whether the ticket reduces matters only when REDUCING (the book is built for it then).
    results = [check_trading_state(state, state == _REDUCING and ctx.reduces)]
    _ticket_checks(ctx, results)
    _market_checks(ctx, results)
    _size_checks(ctx, results)
    _book_checks(ctx, results)
    _time_checks(ctx, results)
    _rate_checks(ctx, throttle, recent, results)
    return RiskVerdict(all(map(_PASSED, results)), tuple(results))


_PASSED = operator.attrgetter("passed")


def check_cancel(throttle: Throttle, now: datetime) -> RiskVerdict:
    """A cancel always passes (also in HALTED, also on an empty bucket); the check reports the rate."""
    ok = throttle.allows(now)
    msg = "" if ok else "message rate exceeded; cancel sent anyway"
    return RiskVerdict(True, (CheckResult("cancel", True, message=msg),))


def _ticket_checks(ctx: TicketContext, out: list[CheckResult]) -> None:
    lim, ticket = ctx.limits, ctx.ticket
    out.append(check_ticket_fields(ticket, ctx.instrument.size_increment, ctx.instrument.min_tick))
    if ticket.bracket is not None:
        out.append(check_bracket(ticket, ctx.quote))
    if lim.allowed_symbols is not None:
        allowed = check_symbol_allowed(ticket.symbol, lim.allowed_symbols)
        out.append(allowed if allowed.passed or not ctx.reduces else exempt("symbol_allowed"))
    if lim.allowed_order_types is not None:
        out.append(check_order_type_allowed(ticket.order_type, lim.allowed_order_types))
    if ticket.reduce_only:
        out.append(check_reduce_only(ctx.reduces))


def _market_checks(ctx: TicketContext, out: list[CheckResult]) -> None:
    lim, quote, ticket = ctx.limits, ctx.quote, ctx.ticket
    # Always on, in the verdict during a halt: the broker refuses every order of a halted symbol (an exit is denied
    # before its stop is cancelled for it).
    if quote is not None and quote.halted:
        out.append(check_halted(ticket.symbol, quote, lambda: ctx.reduces))
    if lim.require_quote:
        usable = check_quote_usable(quote, quote is not None or ticket.symbol in ctx.watched)
        if usable.passed and math.isnan(ctx.far) and math.isnan(ticket.own_price):
            assert quote is not None  # a usable quote
            usable = CheckResult("quote", False, message=missing_side_message(quote, ticket))
        out.append(usable)
    # An exit is not trapped by a data outage or a wide market (the book is built only when one fails).
    if lim.max_quote_age_s is not None:
        out.append(_unless_reducing(ctx, check_quote_age(quote, ctx.now, lim.max_quote_age_s)))
    if lim.max_spread_pct is not None and ticket.order_type is _MKT:
        out.append(_unless_reducing(ctx, check_spread(quote, lim.max_spread_pct)))
    if lim.price_collar_pct is None and lim.price_collar_ticks is None:
        return
    reference = collar_reference(quote, ticket.side, lim.collar_reference)
    distance = collar_distance(ticket, reference)
    if lim.price_collar_pct is not None:
        out.append(check_price_collar_pct(distance, reference, lim.price_collar_pct))
    if lim.price_collar_ticks is not None:
        out.append(check_price_collar_ticks(distance, ctx.instrument.min_tick, lim.price_collar_ticks))


def _size_checks(ctx: TicketContext, out: list[CheckResult]) -> None:
    lim = ctx.limits
    # A position built past an order's size limits (several orders, or the limit lowered since) can still be closed
    # in one: an order that only reduces it is exempt (the book is built only when one fails).
    if lim.max_order_quantity is not None:
        out.append(_unless_reducing(ctx, upper_bound("order_quantity", ctx.ticket.quantity, lim.max_order_quantity,
                                                     "qty")))
    if lim.max_order_notional is not None:
        notional = _unless_reducing(ctx, upper_bound(ORDER_NOTIONAL, ctx.notional, lim.max_order_notional, "$"))
        out.append(notional if notional.passed else _priced(ctx, notional))
    if lim.max_position_quantity is None and lim.max_position_notional is None:
        return
    before, after = ctx.leg.worst_abs, ctx.leg_after.worst_abs
    if lim.max_position_quantity is not None:
        out.append(growth_bound("position_quantity", before, after, lim.max_position_quantity, "qty"))
    if lim.max_position_notional is not None:
        price = ctx.book.price(ctx.ticket.symbol)
        price = price if price > 0 else ctx.price
        out.append(growth_bound("position_notional", before * price, after * price, lim.max_position_notional, "$"))


def _book_checks(ctx: TicketContext, out: list[CheckResult]) -> None:
    lim = ctx.limits
    if lim.max_open_positions is not None:
        before = float(ctx.book.open_total)
        after = before + (0.0 if ctx.leg.is_open else 1.0)
        out.append(growth_bound("open_positions", before, after, lim.max_open_positions, "positions"))
    if lim.max_gross_exposure is not None or lim.max_leverage is not None:
        book, equity = ctx.book, ctx.account.equity
        gross_after = book.gross(ctx.ticket.symbol, ctx.leg_after.worst_abs)
        # Over equity; NaN (deny) when equity is not positive or the exposure unknown.
        before, after = (book.gross_total / equity, gross_after / equity) if equity > 0 else (math.nan, math.nan)
        if lim.max_gross_exposure is not None:
            out.append(growth_bound("gross_exposure", before, after, lim.max_gross_exposure, "x equity"))
        if lim.max_leverage is not None:
            out.append(growth_bound("leverage", before, after, lim.max_leverage, "x"))
    if lim.min_cash_fraction is not None:
        if ctx.ticket.side is _SELL or ctx.reduces:
            out.append(exempt("cash_fraction"))
        else:
            cash_after = ctx.account.cash - ctx.book.buy_total - ctx.notional
            cash = check_cash_fraction(cash_after, ctx.account.equity, lim.min_cash_fraction)
            out.append(cash if cash.passed else _priced(ctx, cash))


def _unless_reducing(ctx: TicketContext, result: CheckResult) -> CheckResult:
    """``result``, or, failed for an order that only reduces a position, passed as exempt with its figures kept
    (:func:`~tui_trader.risk.results.exempted`). Whether it reduces is asked only of a failure: the book is built
    then, not on every order."""
    return result if result.passed or not ctx.reduces else exempted(result)


def _priced(ctx: TicketContext, result: CheckResult) -> CheckResult:
    """Failed ``result``, its message saying why the order has no price when that is why it failed."""
    if not math.isnan(ctx.price):
        return result
    return replace(result, message=ctx.price_problem)


def _time_checks(ctx: TicketContext, out: list[CheckResult]) -> None:
    lim = ctx.limits
    if lim.require_liquid_hours or lim.no_entry_before_close_min is not None or lim.no_entry_after_open_min is not None:
        _session_checks(ctx, out)
    if lim.max_losing_streak is not None and lim.cooldown_s is not None:
        out.append(exempt("cooldown") if ctx.reduces else check_cooldown(ctx.account, lim, ctx.now))


def _session_checks(ctx: TicketContext, out: list[CheckResult]) -> None:
    """The checks that need the current session (looked up only when one of them is on).

    The session: liquid hours, or the full trading hours for an order allowed outside regular hours.
    """
    lim, now, reduces, instrument = ctx.limits, ctx.now, ctx.reduces, ctx.instrument
    sessions = instrument.liquid_sessions
    if ctx.ticket.outside_rth:
        sessions = instrument.trading_sessions or sessions
    session = current_session(sessions, now)
    if lim.require_liquid_hours:
        hours = PASS["trading_hours"] if session is not None else check_trading_hours(sessions, now)
        out.append(exempt("trading_hours") if reduces else hours)
    if lim.no_entry_before_close_min is not None:
        out.append(exempt("close_window") if reduces else close_window(session, now, lim.no_entry_before_close_min))
    if lim.no_entry_after_open_min is not None:
        out.append(exempt("open_window") if reduces else open_window(session, now, lim.no_entry_after_open_min))


def _rate_checks(
    ctx: TicketContext, throttle: Throttle, recent: Sequence[RecentOrder], out: list[CheckResult]
) -> None:
    lim, now = ctx.limits, ctx.now
    if throttle.per_second is not None:
        out.append(check_throttle("throttle_per_second", throttle.per_second, now))
    if throttle.per_minute is not None:
        out.append(check_throttle("throttle_per_minute", throttle.per_minute, now))
    if lim.max_daily_trades is not None or lim.max_daily_trades_per_strategy is not None:
        _trade_counts(ctx, out)
    if lim.duplicate_window_s is not None:
        out.append(check_duplicate(ctx.ticket, ctx.book.working, recent, now, lim.duplicate_window_s))


def _trade_counts(ctx: TicketContext, out: list[CheckResult]) -> None:
    """Executions today, plus one per unfilled working order, plus this one: for the account, and for
    the ticket's strategy (the unfilled orders are listed once, for both). A bracket's stop and target
    are one: one cancels the other, so only one of them can execute."""
    lim, strategy = ctx.limits, ctx.ticket.strategy
    if ctx.reduces:
        names = ("daily_trades", lim.max_daily_trades), ("daily_trades_strategy", lim.max_daily_trades_per_strategy)
        out.extend(exempt(name) for name, limit in names if limit is not None)
        return
    unfilled = list({(o.parent_ref or o.order_ref, o.parent_ref is None): o.ticket.strategy  # their strategies
                     for o in ctx.book.working if o.filled_quantity == 0}.values())
    account = ctx.account
    if lim.max_daily_trades is not None:
        out.append(_trades("daily_trades", account.trades_today, len(unfilled), lim.max_daily_trades))
    if lim.max_daily_trades_per_strategy is not None:
        done = account.trades_today_by_strategy.get(strategy, 0)
        out.append(_trades("daily_trades_strategy", done, unfilled.count(strategy), lim.max_daily_trades_per_strategy))


def _trades(name: str, done: int, working: int, limit: int) -> CheckResult:
    """The day's trades with this order's against ``limit``; a denial adds them up ("7 trades over the limit of 4"
    read as if 7 had executed)."""
    result = upper_bound(name, done + working + 1, limit, "trades")
    if result.passed:
        return result
    return replace(result, message=f"{result.message} ({done} executed today, {working} working "
                                   f"order{'s' if working != 1 else ''} that may execute, and this one)")
