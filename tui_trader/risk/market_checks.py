"""Market-data, price-collar and trading-hours checks.

Each is a small pure function returning a :class:`CheckResult`; :mod:`tui_trader.risk.checks`
runs them inside the pre-trade gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

from tui_trader.domain import CheckResult, OrderTicket, Quote, Session, Side
from tui_trader.risk.limits import CollarReference
from tui_trader.risk.results import PASS, upper_bound

# Globals: a read of ``Side.BUY`` (any enum member) costs ~90 ns on Python 3.11, on every check.
_BUY, _FAR = Side.BUY, CollarReference.FAR


def check_quote_usable(quote: Quote | None, watched: bool = True) -> CheckResult:
    """A quote exists, is not crossed, and gives a price (two sides or a last trade).

    ``watched``: the symbol is one the session subscribes to; without a quote, the message says
    when it is not (no quote will ever come for it).
    """
    problem = ""
    if quote is None:
        problem = "no quote" if watched else "no quote: not one of this session's symbols (--symbols, or the config)"
    elif quote.is_crossed:
        problem = f"crossed quote (bid {quote.bid:g} > ask {quote.ask:g})"
    elif not quote.has_two_sides and not quote.last > 0:
        problem = "quote has no bid/ask and no last price"
    return CheckResult("quote", False, message=problem) if problem else PASS["quote"]


HALTED = "halted"
"""The name of :func:`check_halted`."""


def check_halted(symbol: str, quote: Quote | None, reduces: Callable[[], bool]) -> CheckResult:
    """Trading in ``symbol`` is not halted at its exchange (its last quote says so).

    The broker refuses a halted symbol's new orders, exits too. Every order of it is denied (a change to one working
    there too: nothing of the symbol goes out during the halt). An exit (``reduces()``: asked only during a halt) is
    denied before anything is cancelled for it, so its position's stop and target stay at the broker instead of
    being cancelled for an exit the broker then rejects.
    """
    if quote is None or not quote.halted:
        return CheckResult(HALTED, True)
    message = f"{symbol} is halted (trading halt at the exchange)"
    if reduces():  # not "its stop stays": this check also runs right before the send, after the stop was cancelled
        message += ": the exit is denied; ask again once it resumes"
    return CheckResult(HALTED, False, message=message)


MAX_CLOCK_SKEW_S = 2.0
"""How far in the future (seconds) a quote's time may lie and still count as fresh: the gateway's
clock and ours may disagree by a little. Beyond it the quote's time cannot be trusted, so neither
can its age."""


def check_quote_age(quote: Quote | None, now: datetime, max_age_s: float) -> CheckResult:
    """The quote is at most ``max_age_s`` seconds old (a missing quote is infinitely old), and not
    stamped more than :data:`MAX_CLOCK_SKEW_S` in the future."""
    if quote is None:
        return CheckResult("quote_age", False, math.inf, max_age_s, -math.inf, "no quote", "s")
    age = (now - quote.time).total_seconds()
    if age < -MAX_CLOCK_SKEW_S:
        return CheckResult("quote_age", False, age, max_age_s, max_age_s - age,
                           f"quote stamped {-age:.1f}s in the future (clocks disagree by more than "
                           f"{MAX_CLOCK_SKEW_S:g}s): its age is unknown", "s")  # fmt: skip
    return upper_bound("quote_age", age, max_age_s, "s")


def check_spread(quote: Quote | None, max_spread_pct: float) -> CheckResult:
    """A market order needs a quote no wider than ``max_spread_pct`` percent of the mid."""
    spread = math.nan if quote is None or quote.is_crossed else quote.spread / quote.mid * 100
    return upper_bound("spread", spread, max_spread_pct, "%")


def collar_reference(quote: Quote | None, side: Side, reference: CollarReference) -> float:
    """Reference price of the collar: mid, or the far side (ask for buys, bid for sells)."""
    if quote is None:
        return math.nan
    if not quote.has_two_sides or quote.is_crossed:
        return quote.last if quote.last > 0 else math.nan
    if reference is _FAR:
        return quote.ask if side is _BUY else quote.bid
    return quote.mid


def collar_distance(ticket: OrderTicket, reference: float) -> float:
    """Largest absolute distance of the ticket's limit/stop prices from ``reference`` (0 for market)."""
    limit, stop = ticket.limit_price, ticket.stop_price
    if stop is None:
        return 0.0 if limit is None else abs(limit - reference)
    off = abs(stop - reference)
    if limit is None:
        return off
    distance = abs(limit - reference)
    return off if off > distance else distance  # max(distance, off): a NaN distance of the limit stays, as in max()


def check_price_collar_pct(distance: float, reference: float, limit_pct: float) -> CheckResult:
    """A limit/stop price at most ``limit_pct`` percent from the reference (``distance``: :func:`collar_distance`)."""
    value = 0.0 if distance == 0 else distance / reference * 100
    return upper_bound("price_collar_pct", value, limit_pct, "%")


def check_price_collar_ticks(distance: float, tick: float, limit_ticks: float) -> CheckResult:
    """A limit/stop price at most ``limit_ticks`` ticks from the reference (``distance``: :func:`collar_distance`)."""
    value = 0.0 if distance == 0 else round(distance / tick, 6)
    return upper_bound("price_collar_ticks", value, limit_ticks, "ticks")


def current_session(sessions: Sequence[Session], now: datetime) -> Session | None:
    """The session containing ``now``, if any."""
    for session in sessions:
        if session.contains(now):
            return session
    return None


def check_trading_hours(sessions: Sequence[Session], now: datetime) -> CheckResult:
    """``now`` lies inside one of the sessions (unknown hours deny: fail closed)."""
    if not sessions:
        return CheckResult("trading_hours", False, message="trading hours unknown")
    if current_session(sessions, now) is not None:
        return PASS["trading_hours"]
    return CheckResult("trading_hours", False, message="outside trading hours")


def check_close_window(sessions: Sequence[Session], now: datetime, minutes: float) -> CheckResult:
    """No entry in the last ``minutes`` of the current session (value = minutes to the close)."""
    return close_window(current_session(sessions, now), now, minutes)


def close_window(session: Session | None, now: datetime, minutes: float) -> CheckResult:
    """:func:`check_close_window` for an already looked-up session."""
    if session is None:
        return CheckResult("close_window", True, message="no current session")
    left = (session.end - now).total_seconds() / 60
    ok = left >= minutes
    msg = "" if ok else f"{left:.1f} min to the close, entries stop {minutes:g} min before"
    return CheckResult("close_window", ok, left, minutes, left - minutes, msg, "min")


def check_open_window(sessions: Sequence[Session], now: datetime, minutes: float) -> CheckResult:
    """No entry in the first ``minutes`` of the current session (value = minutes since the open)."""
    return open_window(current_session(sessions, now), now, minutes)


def open_window(session: Session | None, now: datetime, minutes: float) -> CheckResult:
    """:func:`check_open_window` for an already looked-up session."""
    if session is None:
        return CheckResult("open_window", True, message="no current session")
    since = (now - session.start).total_seconds() / 60
    ok = since >= minutes
    msg = "" if ok else f"{since:.1f} min after the open, entries start {minutes:g} min after"
    return CheckResult("open_window", ok, since, minutes, since - minutes, msg, "min")
