"""What a symbol's protective orders may close of its position: the sizes a fitting reads, nothing sent.

A symbol's protective orders (stops, targets) are fitted to its position together: each OCA group counts once at
its largest order, orders linked to none add up, and when together they would close more than the position the
newest give way first (:meth:`ProtectionSizes._allowances`). This module only measures: which orders close the
position, what each may close, the size a cut must bring one to, and how a fitting and a cut are named in the
alerts. Acting on it (the cuts sent, retried and re-checked, the cancels) is
:class:`~tui_trader.engine.cuts.ProtectionCuts`.

The position protection is fitted to is the book's (:meth:`ProtectionSizes.protected_position`), but where a
mismatch with the broker was confirmed while running: the book stays ours then (the mismatch said, trading
halted), yet the broker's position is what a stop sells, so where it is nearer flat on the same side the protection
is fitted to it, and where it is flat or on the other side to nothing. It is followed as the difference the mismatch
found (:attr:`ProtectionSizes.broker_offsets`): our own fills since move both positions alike.
"""

from __future__ import annotations

from tui_trader.broker.base import Broker
from tui_trader.domain.alerts import listed
from tui_trader.domain.orders import Order
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.core import Clock
from tui_trader.engine.strategy_runner import StrategyRunner

_QTY_EPS = 1e-9


class ProtectionSizes(StrategyRunner):
    """The sizes a symbol's protective orders are fitted to its position at (read only).

    Args:
        config: What to trade and how.
        broker: The broker connection.
        clock: Injected clock; the wall clock by default.
    """

    def __init__(self, config: EngineConfig, broker: Broker, clock: Clock | None = None) -> None:
        super().__init__(config, broker, clock)
        self.broker_offsets: dict[str, float] = {}
        """Symbol → the broker's position less ours, as a mismatch confirmed while running found it (the book kept
        ours): the broker's position is taken as ours plus it. Forgotten once the positions agree again or the book
        takes the broker's."""

    def protected_position(self, symbol: str) -> float:
        """The position ``symbol``'s protection is fitted to: ours, or under a confirmed mismatch
        (:attr:`broker_offsets`) the broker's where it is nearer flat on the same side, ``0.0`` where it is flat or
        on the other side (protection could only open or grow a position there). A broker position larger than
        ours is not followed: protection sized for ours is not over-sized for it, and is never grown."""
        held = self.portfolio.quantity(symbol)
        offset = self.broker_offsets.get(symbol)
        if offset is None or not held:
            return held
        theirs = held + offset
        if abs(theirs) <= _QTY_EPS or theirs * held < 0:
            return 0.0
        return theirs if abs(theirs) < abs(held) else held

    def _fitted_protection(self, symbol: str) -> list[Order]:
        """``symbol``'s protective orders fitted to its position: those working, but the children of a bracket
        entry still working (:meth:`waits_for_entry`)."""
        return [o for o in self.protection_working(symbol) if not self.waits_for_entry(o)]

    def _protective_closing(self, symbol: str, held: float) -> list[Order]:
        """``symbol``'s protective orders fitted to its position (:meth:`_fitted_protection`) on the side that
        closes ``held``, as they were tracked: oldest first."""
        return [o for o in self._fitted_protection(symbol) if o.ticket.side.sign * held < 0]

    def _allowances(self, closing: list[Order], held: float) -> dict[str, float]:
        """What each of ``closing`` (a symbol's protective orders) may close of ``held``, by ref: the OCA groups
        (:meth:`oca_group`) oldest first, each counted once at its largest order (one fill cancels or reduces the
        others), take what the older left of the position; orders linked to none add up. So the oldest protection
        stays whole and the newest gives way: cut, or nothing left for it (0). The groups with a stop come first,
        as when adopted orders are judged (:func:`~tui_trader.engine.adopted.judge_protection`): the stop is the one
        to keep, not a limit beside it."""
        groups: dict[str, list[Order]] = {}
        for order in sorted(closing, key=lambda o: o.created_at):
            groups.setdefault(self.oca_group(order), []).append(order)
        room, allowed = abs(held), dict[str, float]()
        for members in sorted(groups.values(), key=lambda g: not any(o.ticket.order_type.is_stop for o in g)):
            give = min(max(o.remaining for o in members), room)
            room -= give
            allowed.update((o.order_ref, min(o.remaining, give)) for o in members)
        return allowed

    def _giving_way(self, symbol: str) -> bool:
        """Some of ``symbol``'s protection works that nothing of its position is left for (being cancelled)."""
        held = self.protected_position(symbol)
        allowed = self._allowances(self._protective_closing(symbol, held), held) if held else {}
        return any(size <= _QTY_EPS for size in allowed.values())

    def _fitting_line(self, symbol: str, held: float, closing: list[Order], allowed: dict[str, float]) -> str:
        """What a fitting of ``symbol``'s protection does, at the sizes the broker holds: ``ORD-2 (STP 100 AAPL) cut
        to the position of 40`` (one OCA group cut to the position), else ``AAPL protection fitted to LONG 5 (it
        would have closed 20), the newest giving way first: ORD-2 (STP 10 AAPL) and ORD-3 (LMT 10 AAPL) cut to 5;
        ORD-5 (STP 10 AAPL) and ORD-6 (LMT 10 AAPL) cancelled``."""
        placed = {o.order_ref: self.placed_ticket(o).quantity - o.filled_quantity for o in closing}
        said = {o.order_ref: f"{o.order_ref} ({o.ticket.order_type.value} {placed[o.order_ref]:g} {symbol})"
                for o in closing}
        cut = {ref: size for ref, size in allowed.items() if _QTY_EPS < size < placed[ref] - _QTY_EPS}
        gone = [ref for ref, size in allowed.items() if size <= _QTY_EPS]
        if not gone and all(abs(size - abs(held)) <= _QTY_EPS for size in cut.values()):
            return f"{listed([said[r] for r in cut])} cut to the position of {held:g}"
        groups: dict[str, float] = {}
        for o in closing:
            groups[self.oca_group(o)] = max(groups.get(self.oca_group(o), 0.0), placed[o.order_ref])
        parts = [f"{listed([said[r] for r, s in cut.items() if s == size])} cut to {size:g}"
                 for size in sorted(set(cut.values()), reverse=True)]
        parts += [f"{listed([said[r] for r in gone])} cancelled"] if gone else []
        return (f"{symbol} protection fitted to {'LONG' if held > 0 else 'SHORT'} {abs(held):g} (it would have closed "
                f"{sum(groups.values()):g}), the newest giving way first: {'; '.join(parts)}")

    def _cut_size(self, order_ref: str) -> tuple[float, float] | None:
        """The quantity protective order ``order_ref`` must be cut to for its position as it is now, fitted
        with the symbol's other protection (:meth:`_allowances`), and that position; ``None`` when it fits (or has
        ended, or the position flipped, or nothing of it is left for the order: it is cancelled,
        :meth:`_fit_protection`)."""
        order = self.orders.get(order_ref)
        if order is None or not order.status.is_working:
            return None
        held = self.protected_position(order.symbol)
        if not held or order.ticket.side.sign * held > 0 or self.waits_for_entry(order):
            return None
        allowed = self._allowances(self._protective_closing(order.symbol, held), held).get(order_ref, 0.0)
        if allowed <= _QTY_EPS or order.remaining <= allowed + _QTY_EPS:
            return None
        return order.filled_quantity + allowed, held

    def _cut_key(self, order_ref: str) -> tuple[float, float] | None:
        """The sizes a cut's failure is said for: the order's (what is left of it) and its position's."""
        order = self.orders.get(order_ref)
        return None if order is None else (order.remaining, self.protected_position(order.symbol))

    def _cut_what(self, order_ref: str) -> str:
        """``ORD-1 (STP 100 AAPL)``: a protective order being cut, as the alerts name it."""
        order = self.orders.orders[order_ref]
        return f"{order_ref} ({order.ticket.order_type.value} {order.remaining:g} {order.symbol})"
