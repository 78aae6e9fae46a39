"""Positions, cash and P&L from fills and marks (long and short, average cost, net of commissions).

Pure state: the engine feeds it fills, commissions and marks. Realized P&L is net of
commissions; day figures restart at the start of each trading day in the exchange time zone,
from the equity at the last known marks. The equity high-water mark is the all-time one: it
does not restart with the day, and it is kept in the journaled state with the marks; only the
operator's release of a drawdown trip restarts it (:meth:`Portfolio.restart_peak`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.domain.orders import Fill, Order
from tui_trader.domain.portfolio import AccountSnapshot, Position

_EPS = 1e-9
_UNIT_BITS = 1074
"""2**-1074 is the smallest positive float: every finite float is a whole number of them."""
_UNIT_SCALE = 1 << _UNIT_BITS


def exact_term(x: float) -> int | None:
    """``x`` as an exact whole number of 2**-1074; ``None`` for NaN and infinities."""
    try:
        numerator, denominator = x.as_integer_ratio()  # the denominator is a power of two
    except (ValueError, OverflowError):
        return None
    return numerator << (_UNIT_BITS + 1 - denominator.bit_length())


class ExactSum:
    """A sum of floats kept exactly, so one term can change in O(1) with no drift.

    The terms are kept as whole numbers of 2**-1074 (:func:`exact_term`; Python integers are
    unbounded), so adding and removing them never rounds; :attr:`value` rounds once (int / int
    true division is correctly rounded). It is therefore exactly ``math.fsum`` of the current
    terms, whatever the order in which they came and went, which a plain running float sum
    would not be. A non-finite term makes the value NaN until it is removed.
    """

    __slots__ = ("_non_finite", "_units")

    def __init__(self) -> None:
        self._units = 0
        self._non_finite = 0

    def add(self, x: float) -> None:
        """Add the term ``x``."""
        self.add_term(exact_term(x))

    def remove(self, x: float) -> None:
        """Remove the term ``x`` (added earlier)."""
        self.remove_term(exact_term(x))

    def add_term(self, term: int | None) -> None:
        """Add a term already converted by :func:`exact_term` (callers keep it to remove it cheaply)."""
        if term is None:
            self._non_finite += 1
        else:
            self._units += term

    def remove_term(self, term: int | None) -> None:
        """Remove a term given to :meth:`add_term`."""
        if term is None:
            self._non_finite -= 1
        else:
            self._units -= term

    @property
    def value(self) -> float:
        """The correctly rounded sum (NaN while a non-finite term is in, ±inf past the largest float)."""
        if self._non_finite:
            return math.nan
        try:
            return self._units / _UNIT_SCALE
        except OverflowError:
            return math.inf if self._units > 0 else -math.inf


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did to its symbol's position."""

    realized_gross: float
    closed_quantity: float
    opened: bool
    flat_after: bool


def opener_of(order: Order | None) -> str:
    """Whom a fill of ``order`` opens a position for (:attr:`Position.owner`): its ticket's strategy
    (``"manual"`` for the operator's tickets); ``""`` for a reduce-only order (a stop, an exit or a
    flatten that went past flat opens a position nobody entered) or one the engine does not know."""
    if order is None or order.ticket.reduce_only:
        return ""
    return order.ticket.strategy


def apply_fill_to_position(pos: Position, fill: Fill, opener: str = "") -> tuple[Position, FillEffect]:
    """The position after ``fill`` (average-cost accounting, flips open at the fill price).

    ``opener`` (:func:`opener_of`) owns a position the fill opens from flat or flips; a fill that adds
    to a position keeps its owner only when it is the owner's too; one that reduces it keeps it.
    """
    qty, signed = pos.quantity, fill.signed_quantity
    if abs(qty) < _EPS or qty * signed > 0:
        new_qty = qty + signed
        avg = (abs(qty) * pos.avg_cost + abs(signed) * fill.price) / abs(new_qty)
        opened = abs(qty) < _EPS
        opened_at = fill.time if opened else pos.opened_at
        owner = opener if opened or opener == pos.owner else ""
        return replace(pos, quantity=new_qty, avg_cost=avg, opened_at=opened_at, owner=owner), FillEffect(
            0.0, 0.0, opened, False)
    closed = min(abs(qty), abs(signed))
    realized = closed * (fill.price - pos.avg_cost) * (1 if qty > 0 else -1)
    new_qty = qty + signed
    if abs(new_qty) < _EPS:
        flat = replace(pos, quantity=0.0, avg_cost=0.0, opened_at=None, stop_price=None,
                       take_profit_price=None, stop_trails=False, realized_pnl=pos.realized_pnl + realized,
                       owner="")
        return flat, FillEffect(realized, closed, False, True)
    if qty * new_qty > 0:
        return replace(pos, quantity=new_qty, realized_pnl=pos.realized_pnl + realized), FillEffect(
            realized, closed, False, False)
    flipped = replace(pos, quantity=new_qty, avg_cost=fill.price, opened_at=fill.time,
                      realized_pnl=pos.realized_pnl + realized, stop_price=None, take_profit_price=None,
                      stop_trails=False, owner=opener)
    return flipped, FillEffect(realized, closed, True, False)


class Portfolio:
    """The engine's book: positions, cash, realized P&L, commissions, equity high-water mark.

    The sums over positions (market value, gross exposure, unrealized P&L) are kept up to
    date as each position changes (:class:`ExactSum`): a quote revalues one position and the
    high-water mark needs the equity after every one, so recomputing them over every position
    on every quote was most of the engine's per-quote work. For the same reason a quote only
    notes the new mark (:meth:`mark`); the positions are revalued when next read
    (:attr:`positions`), not once per quote. Change :attr:`positions` only through the methods
    here (they keep the sums); read it freely.

    Args:
        time_zone: Exchange time zone whose calendar day defines "today".
    """

    def __init__(self, time_zone: str = "America/New_York") -> None:
        self._tz = ZoneInfo(time_zone)
        self._positions: dict[str, Position] = {}
        self._marks: dict[str, float] = {}
        """Marks noted since the positions were last read, by symbol (already in the sums)."""
        self._value = ExactSum()
        self._gross = ExactSum()
        self._unrealized = ExactSum()
        self._terms: dict[str, tuple[int | None, int | None]] = {}
        """Each position's market value and unrealized P&L as added to the sums."""
        self.cash = 0.0
        self.realized_gross = 0.0
        self.commissions = 0.0
        self.realized_today = 0.0
        self.commissions_today = 0.0
        self.trades_today = 0
        self.trades_by_strategy: dict[str, int] = {}
        self.losing_streak = 0
        self.last_loss_at: datetime | None = None
        self.start_of_day_equity = 0.0
        self.high_water_mark = 0.0
        self.known = False
        """Cash came from the broker (:meth:`seed`) or a journal (:meth:`restore`)."""
        self._day: date | None = None
        self._day_span: tuple[datetime, datetime] | None = None
        """When ``_day`` starts and ends, in UTC (checked before every snapshot: no time-zone conversion)."""

    # -- seeding -----------------------------------------------------------------------------

    def seed(self, cash: float, positions: dict[str, tuple[float, float]], now: datetime) -> None:
        """Start from the broker's cash and positions (symbol → (quantity, avg cost)): a book of its own, nothing kept
        of one held before (fills heard before the seed are in the broker's figures)."""
        self.restore({})  # every figure a checkpoint holds back to none
        self.cash, self.known = cash, True
        self._replace_all({s: Position(s, q, c, opened_at=now) for s, (q, c) in positions.items()
                           if abs(q) >= _EPS})
        self._roll_day(now, force=True)
        self.high_water_mark = max(self.equity, 0.0)  # a new journal: the mark starts here

    def forget(self) -> None:
        """No book known: every figure back to none, shown as unknown until :meth:`seed` (a refused account's, whose
        book the journal's restored one is not: its positions, cash, realized P&L and losing streak are another
        account's)."""
        self.restore({})
        self.known = False

    def adjust(self, symbol: str, quantity: float, avg_cost: float, now: datetime) -> None:
        """Set one position to the broker's figures (after a reconciled difference).

        It keeps its owner only when the broker's is a part of ours (reduced by something we did not
        hear of); grown or reversed by what we do not know, nobody owns it.
        """
        pos = self.positions.get(symbol, Position(symbol, 0.0, 0.0))
        opened_at = pos.opened_at if abs(pos.quantity) >= _EPS else now
        reduced = pos.quantity * quantity > 0 and abs(quantity) <= abs(pos.quantity)
        self._put(replace(pos, quantity=quantity, avg_cost=avg_cost, owner=pos.owner if reduced else "",
                          opened_at=opened_at if abs(quantity) >= _EPS else None))

    # -- persistence -------------------------------------------------------------------------

    _SCALARS = ("cash", "realized_gross", "commissions", "realized_today", "commissions_today",
                "trades_today", "losing_streak", "start_of_day_equity", "high_water_mark")

    def state(self) -> dict[str, Any]:
        """The book as JSON-ready values (journaled as a checkpoint)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self._SCALARS}
        out["day"] = self._day.isoformat() if self._day else None
        out["last_loss_at"] = self.last_loss_at.isoformat() if self.last_loss_at else None
        out["trades_by_strategy"] = dict(self.trades_by_strategy)
        held = {s: p for s, p in self.positions.items() if not p.is_flat}
        out["positions"] = {s: [p.quantity, p.avg_cost, p.realized_pnl,
                                p.opened_at.isoformat() if p.opened_at else None] for s, p in held.items()}
        out["marks"] = {s: p.market_price for s, p in held.items() if p.market_price > 0}
        out["owners"] = {s: p.owner for s, p in held.items() if p.owner}
        return out

    def restore(self, state: dict[str, Any]) -> None:
        """Back to a state written by :meth:`state`, positions valued at the marks it kept.

        Until quotes come, the equity is the last one known, not the positions at cost: the first
        snapshot of a new trading day takes it as the start of the day (at cost, a position that had
        risen showed the fall since as a gain, and the daily loss limit did not trip). A state written
        before marks were kept values its positions at cost, as before; one written before owners were
        kept restores its positions with none (no strategy's signal closes them: their stops still do).
        """
        self.known = True
        for name in self._SCALARS:
            setattr(self, name, type(getattr(self, name))(state.get(name, 0)))
        self._set_day(date.fromisoformat(state["day"]) if state.get("day") else None)
        self.last_loss_at = _when(state.get("last_loss_at"))
        self.trades_by_strategy = {k: int(v) for k, v in state.get("trades_by_strategy", {}).items()}
        marks, owners = state.get("marks", {}), state.get("owners", {})
        self._replace_all({s: Position(s, float(q), float(c), float(marks.get(s, math.nan)), float(r), _when(t),
                                       owner=str(owners.get(s, "")))
                           for s, (q, c, r, t) in state.get("positions", {}).items()})
        self._update_hwm()

    def roll_day(self, now: datetime) -> None:
        """Move to ``now``'s trading day if it is a later one (after a restore: before a quote moves
        the restored marks, so the day starts from the last equity known)."""
        self._roll_day(now)

    def _roll_day(self, now: datetime, force: bool = False) -> bool:
        """Move to ``now``'s trading day when it is a later one (today's counters start over); ``False``
        when ``now`` is in an earlier day, which changes nothing: the day never goes back.

        Otherwise a fill stamped with an earlier day (an execution replayed after a restart, a broker
        clock a day behind) would start today over twice, the second time at the next snapshot:
        today's realized P&L, trade counts and start-of-day equity gone, and with them the daily loss
        and daily trade limits. The day starts from the equity at the last known marks (restored ones
        after a restart, until quotes come); the high-water mark carries over (drawdown is from the
        all-time high, as the monitor read it across days).
        """
        span = self._day_span
        if not force and span is not None:
            if now < span[0]:
                return False
            if now < span[1]:
                return True
        self._set_day(now.astimezone(self._tz).date())
        self.realized_today = self.commissions_today = 0.0
        self.trades_today, self.trades_by_strategy = 0, {}
        self.start_of_day_equity = self.equity
        # Each symbol's realized P&L is the day's too: the positions pane showed yesterday's beside a TOTAL of 0.
        if any(p.realized_pnl or p.is_flat for p in self._positions.values()):
            self._replace_all({s: replace(p, realized_pnl=0.0) for s, p in self.positions.items() if not p.is_flat})
        return True

    def _set_day(self, day: date | None) -> None:
        self._day, self._day_span = day, None
        if day is not None:
            start = datetime.combine(day, time(), self._tz).astimezone(UTC)
            self._day_span = start, datetime.combine(day + timedelta(days=1), time(), self._tz).astimezone(UTC)

    # -- updates -----------------------------------------------------------------------------

    def apply_fill(self, fill: Fill, order: Order | None = None) -> FillEffect:
        """Book one (deduplicated) execution of ``order`` (``None``: unknown); its commission, if already
        known, too. The order's strategy is counted in today's trades, and owns a position it opens
        (:func:`apply_fill_to_position`).

        A fill of an earlier trading day moves the position, cash and the running totals, not
        today's realized P&L, trade counts or day P&L (the start-of-day equity moves with it); its
        commission, paid now, counts today.
        """
        today = self._roll_day(fill.time)
        equity_before = self.equity
        pos = self.positions.get(fill.symbol, Position(fill.symbol, 0.0, 0.0))
        new, effect = apply_fill_to_position(pos, fill, opener_of(order))
        self._put(replace(new, market_price=pos.market_price))
        self.cash -= fill.signed_quantity * fill.price
        if not today:  # what it made or lost against the marks was that day's, not today's
            self.start_of_day_equity += self.equity - equity_before
        self.realized_gross += effect.realized_gross
        if today:
            self.realized_today += effect.realized_gross
            self.trades_today += 1
            strategy = order.ticket.strategy if order is not None else ""
            if strategy:
                self.trades_by_strategy[strategy] = self.trades_by_strategy.get(strategy, 0) + 1
        if fill.commission:
            self.apply_commission(fill.commission)
        self._track_streak(effect, fill.time)
        self._update_hwm()
        return effect

    def _track_streak(self, effect: FillEffect, when: datetime) -> None:
        if effect.closed_quantity <= 0:
            return
        if effect.realized_gross < 0:
            self.losing_streak += 1
            # The latest loss: a replayed older one must not move it back (and shorten the cooldown).
            last = self.last_loss_at
            self.last_loss_at = when if last is None or when > last else last
        elif effect.realized_gross > 0:
            self.losing_streak = 0

    def apply_commission(self, commission: float, already_in_cash: float = 0.0) -> None:
        """Book a commission (reported with or after its fill); ``already_in_cash`` of it was taken off
        cash already (a broker's cash adopted before the report came), so only the rest is."""
        self.cash -= commission - already_in_cash
        self.commissions += commission
        self.commissions_today += commission

    def mark(self, symbol: str, price: float) -> None:
        """Revalue ``symbol`` at ``price`` (the sums and high-water mark now, the position when read)."""
        pos = self._positions.get(symbol)
        if pos is None or not price > 0 or price == self._marks.get(symbol, pos.market_price):
            return  # not held, no price (0, negative, NaN) or the same price
        self._marks[symbol] = price
        # The figures of ``pos.marked(price)``, computed as its properties do, without building it.
        quantity = pos.quantity
        self._move_sums(symbol, quantity * price, quantity * (price - pos.avg_cost))
        self._update_hwm()

    @property
    def positions(self) -> dict[str, Position]:
        """Every position by symbol, flat ones included, valued at its latest mark."""
        if self._marks:
            positions = self._positions
            for symbol, price in self._marks.items():
                positions[symbol] = positions[symbol].marked(price)
            self._marks.clear()
        return self._positions

    def set_protection(self, symbol: str, stop: float | None, target: float | None, trails: bool = False) -> None:
        """Remember the protective stop (``trails``: a trailing one, ``stop`` its start) and target
        working for ``symbol``'s position."""
        pos = self.positions.get(symbol)
        if pos is not None:
            self._put(replace(pos, stop_price=stop, take_profit_price=target, stop_trails=trails))

    def _put(self, pos: Position) -> None:
        """Store ``pos`` (built from :attr:`positions`, so valued at the latest mark) and move the sums."""
        self._marks.pop(pos.symbol, None)
        self._positions[pos.symbol] = pos
        self._move_sums(pos.symbol, pos.market_value, pos.unrealized_pnl)

    def _move_sums(self, symbol: str, market_value: float, unrealized_pnl: float) -> None:
        """``symbol``'s figures are now these: its old ones out of the sums, these in."""
        old = self._terms.get(symbol)
        if old is not None:
            self._value.remove_term(old[0])
            self._gross.remove_term(_abs(old[0]))
            self._unrealized.remove_term(old[1])
        value, unrealized = exact_term(market_value), exact_term(unrealized_pnl)
        self._terms[symbol] = (value, unrealized)
        self._value.add_term(value)
        self._gross.add_term(_abs(value))
        self._unrealized.add_term(unrealized)

    def _replace_all(self, positions: dict[str, Position]) -> None:
        """Start over from ``positions`` (seed, restore)."""
        self._positions, self._marks, self._terms = {}, {}, {}
        self._value, self._gross, self._unrealized = ExactSum(), ExactSum(), ExactSum()
        for pos in positions.values():
            self._put(pos)

    def restart_peak(self) -> None:
        """Restart the equity high-water mark at the equity now: the operator released a drawdown trip, so
        the drawdown is measured from here (kept all-time again from now on)."""
        self.high_water_mark = self.equity

    def _update_hwm(self) -> None:
        self.high_water_mark = max(self.high_water_mark, self.equity)

    # -- figures -----------------------------------------------------------------------------

    @property
    def day(self) -> date | None:
        """The trading day the day figures are for (``None`` before the first)."""
        return self._day

    @property
    def realized_pnl(self) -> float:
        """Realized P&L net of every commission paid."""
        return self.realized_gross - self.commissions

    @property
    def unrealized_pnl(self) -> float:
        """Open P&L of every position at its mark (``math.fsum`` of the positions')."""
        return self._unrealized.value

    @property
    def market_value(self) -> float:
        """Signed market value of every position (``math.fsum`` of the positions')."""
        return self._value.value

    @property
    def gross_exposure(self) -> float:
        """Sum of the absolute market values of the positions (``math.fsum`` of them)."""
        return self._gross.value

    @property
    def equity(self) -> float:
        """Cash plus the market value of every position."""
        return self.cash + self._value.value

    def open_positions(self) -> dict[str, Position]:
        """Positions that are not flat."""
        return {s: p for s, p in self.positions.items() if not p.is_flat}

    def holds(self, symbol: str) -> bool:
        """``symbol`` has a position record (flat or not), without applying the pending marks."""
        return symbol in self._positions

    def quantity(self, symbol: str) -> float:
        """Signed quantity held in ``symbol``."""
        pos = self.positions.get(symbol)
        return pos.quantity if pos else 0.0

    def snapshot(self, now: datetime, account_id: str, working: tuple[Order, ...]) -> AccountSnapshot:
        """A frozen account snapshot for risk checks and the console."""
        self._roll_day(now)
        self._update_hwm()  # an adjustment or a restore may have raised the equity without a mark
        # The sums are kept as positions change (the gate takes a snapshot before every order).
        held = {symbol: pos for symbol, pos in self.positions.items() if not pos.is_flat}
        return AccountSnapshot(
            time=now, account_id=account_id, cash=self.cash, equity=self.equity,
            start_of_day_equity=self.start_of_day_equity, high_water_mark=self.high_water_mark,
            realized_pnl_today=self.realized_today - self.commissions_today,
            unrealized_pnl=self.unrealized_pnl, commissions_today=self.commissions_today,
            positions=held, working_orders=working, trades_today=self.trades_today,
            trades_today_by_strategy=dict(self.trades_by_strategy), losing_streak=self.losing_streak,
            last_loss_at=self.last_loss_at, known=self.known)


def _abs(term: int | None) -> int | None:
    return None if term is None else abs(term)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
