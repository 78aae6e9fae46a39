"""Where a bracket's trailing stop may stand at the broker, on the prices the engine saw: IB moves it unsaid.

IB trails a stop in the position's favour without telling the client, so the ticket's stop is where the
order started (or was last set). When the broker cancels the stop with its bracket entry (cancelled after a
part filled), the stop the engine places again for the part held would start there: looser than where IB
may have trailed the cancelled one. :class:`TrailMark` follows the prices the engine sees by IB's rule, as the
simulator models it (a sell's stop trails the bid, a buy's the ask; a stop set on purpose stays put until the
price passes the one of that moment), so the new stop starts no looser than the old one could have stood.

It starts at the entry's first fill: no earlier can the broker have trailed the bracket's stop. It may be
tighter than where IB held the cancelled stop (IB activates a bracket's children at its entry's fill; one
that waits for the whole fill never trailed), never looser; quotes the engine missed only leave it looser
than IB's, never past the ticket's own stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tui_trader.domain.enums import Side
from tui_trader.domain.market import Quote
from tui_trader.domain.orders import OrderTicket


@dataclass(slots=True)
class TrailMark:
    """A trailing stop's stop as IB would have trailed it on the quotes seen (:meth:`see`).

    Args:
        side: The stop's side (a SELL protects a long and trails the bid up; a BUY the ask down).
        trail_amount: The trail in price, or ``None`` with ``trail_percent``.
        trail_percent: The trail in percent of the price.
        stop: The stop set (the ticket's): ``None`` when IB starts it from the price.
        tick: The price grid; the trailed stop is rounded the looser way onto it.
    """

    side: Side
    trail_amount: float | None
    trail_percent: float | None
    stop: float | None
    tick: float = 0.01
    set_stop: float | None = None
    """The stop last set on the order (the ticket's): a new one restarts the mark there (:meth:`reset`)."""
    extreme: float | None = None
    """The most favourable price seen since the stop was set: it trails only on a price past it."""

    def __post_init__(self) -> None:
        self.set_stop = self.stop

    @classmethod
    def of(cls, ticket: OrderTicket, tick: float) -> TrailMark:
        """The mark of a trailing stop ``ticket`` starting at its stop."""
        return cls(ticket.side, ticket.trail_amount, ticket.trail_percent, ticket.stop_price, tick)

    def see(self, quote: Quote) -> None:
        """Trail on ``quote`` as IB does: past the most favourable price seen, the stop follows it at the trail."""
        ref = quote.bid if self.side is Side.SELL else quote.ask
        if not ref > 0 or math.isinf(ref):
            return
        if self.extreme is not None and (ref <= self.extreme if self.side is Side.SELL else ref >= self.extreme):
            return
        self.extreme = ref
        amount = self.trail_amount if self.trail_amount is not None else ref * (self.trail_percent or 0.0) / 100
        if self.side is Side.SELL:
            candidate = _on_grid(ref - amount, self.tick, ROUND_FLOOR)
            self.stop = candidate if self.stop is None else max(self.stop, candidate)
        else:
            candidate = _on_grid(ref + amount, self.tick, ROUND_CEILING)
            self.stop = candidate if self.stop is None else min(self.stop, candidate)

    def reset(self, stop: float | None, quote: Quote | None) -> None:
        """The stop was set to ``stop`` (a modify, or the broker's read at a reconnect): IB keeps it there until
        the price passes the one of this moment (``quote``), looser or not."""
        self.stop = self.set_stop = stop
        self.extreme = None
        if quote is not None:
            ref = quote.bid if self.side is Side.SELL else quote.ask
            self.extreme = ref if ref > 0 and not math.isinf(ref) else None


def _on_grid(price: float, tick: float, rounding: str) -> float:
    """``price`` on the ``tick`` grid, rounded the way given (the looser for a stop)."""
    step = Decimal(str(tick))
    return float((Decimal(str(price)) / step).quantize(Decimal(1), rounding=rounding) * step)


class TrailMarks:
    """The marks of the bracket trailing stops whose entry has filled, by symbol and order ref: followed on each
    quote while the stop works, kept once it ended until the stop placed again for it has read it (or its bracket
    has settled without one)."""

    def __init__(self) -> None:
        self._working: dict[str, dict[str, TrailMark]] = {}
        self._ended: dict[str, TrailMark] = {}

    def __contains__(self, order_ref: str) -> bool:
        return order_ref in self._ended or any(order_ref in marks for marks in self._working.values())

    def start(self, symbol: str, order_ref: str, mark: TrailMark, quote: Quote | None) -> None:
        """Follow ``order_ref``'s stop from now (its entry's first fill), on ``quote`` first."""
        self._working.setdefault(symbol, {})[order_ref] = mark
        if quote is not None:
            mark.see(quote)

    def see(self, quote: Quote) -> None:
        """Trail the working stops of the quote's symbol (nothing to do for most quotes: a dict look-up)."""
        marks = self._working.get(quote.symbol)
        if marks:
            for mark in marks.values():
                mark.see(quote)

    def set(self, symbol: str, order_ref: str, stop: float | None, quote: Quote | None) -> None:
        """``order_ref``'s stop is now ``stop`` (its ticket's): the mark restarts there if it changed."""
        mark = self._working.get(symbol, {}).get(order_ref)
        if mark is not None and stop != mark.set_stop:
            mark.reset(stop, quote)

    def end(self, symbol: str, order_ref: str) -> None:
        """``order_ref`` ended at the broker: no longer trailed, its mark kept for :meth:`take`."""
        marks = self._working.get(symbol, {})
        mark = marks.pop(order_ref, None)
        if not marks:
            self._working.pop(symbol, None)
        if mark is not None:
            self._ended[order_ref] = mark

    def take(self, order_ref: str) -> TrailMark | None:
        """``order_ref``'s mark, let go."""
        for marks in self._working.values():
            if order_ref in marks:
                return marks.pop(order_ref)
        return self._ended.pop(order_ref, None)

    def drop(self, order_refs: list[str]) -> None:
        """Let these ended stops' marks go (their bracket settled with nothing to place again)."""
        for ref in order_refs:
            self._ended.pop(ref, None)
