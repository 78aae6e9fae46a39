"""Protective orders (stops, targets) kept fitted to their position: cut, retried, re-checked.

A position made smaller by another order (a ticket's partial sell, one side of a bracket partly filled) kept
protection of its old size: a stop that triggered then sold more than was held, and the position reversed. Each
fill that shrinks a position, each position and each order whose figures were taken from the broker, fits the
symbol's protective orders to the position together (:meth:`ProtectionCuts._fit_protection`): an OCA group counts
once at its largest order, orders not linked add up, and when together they would close more than the position the
newest give way first (cut, or cancelled when nothing of the position is left for them), so the oldest protection
stays whole; one INFO line says each fitting. One on the position's own side (it flipped) would add to it and is
cancelled; a position gone flat has its leftovers cancelled. A cut is one modify at a time, each sized from the
position when it is sent and waiting for the broker's answer before the next
(:meth:`ProtectionCuts._cut_protection`). The broker's refusal for the moment only (IB still processing the order,
2102; the message rate, 100) is taken over from the amendments (:meth:`ProtectionCuts.claims_refusal`) and the cut
sent again after each of ``cut_retry_delays_s``; a cut only the message-rate throttle refused is tried again each
second, up to :data:`CUT_THROTTLE_RETRIES` times. A cut that gives up is said CRITICAL, once per order and sizes,
and leaves the order working at its size (cancelled, the position would have no stop at all); it is cut again
every ``cut_recheck_s`` from the monitor tick while it is larger than its position
(:meth:`ProtectionCuts._recheck_cuts`). One that stops being larger than its position without a cut (modified,
cancelled, filled, the position grown back) is said once, at INFO: the operator's last word on it is not the
CRITICAL (:meth:`ProtectionCuts._say_no_cut_needed`).

What each order may close, and the size a cut brings it to, are measured by
:class:`~tui_trader.engine.protection_sizes.ProtectionSizes`. A lost stop is placed again, a position left with no
protection said, and a position's stop and target kept by :class:`~tui_trader.engine.protection.Protection`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from tui_trader.broker.base import Broker, BrokerError
from tui_trader.domain.alerts import listed
from tui_trader.domain.enums import AlertLevel, OrderStatus
from tui_trader.domain.orders import Order
from tui_trader.engine.amend import TRANSIENT_REFUSALS
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.core import Clock
from tui_trader.engine.protection_sizes import ProtectionSizes
from tui_trader.errors import SafetyError

if TYPE_CHECKING:
    from tui_trader.domain.orders import OrderTicket

log = logging.getLogger(__name__)
_QTY_EPS = 1e-9


CUT_THROTTLE_RETRIES = 5
"""A protective order's cut that only the message-rate throttle refused is tried again each second this many
times before it is said to have failed (a burst of orders, a kill's cancels, can use the second's budget)."""


@dataclass(slots=True)
class _Cut:
    """A protective order's cut in flight (:meth:`ProtectionCuts._cut_protection`)."""

    quantity: float | None = None
    """The size the last try sent (``None`` before the first)."""
    refusal: BrokerError | None = None
    """The broker's transient refusal of the last try, taken over from the amendments
    (:meth:`ProtectionCuts.claims_refusal`) and not yet acted on."""
    refused: int = 0
    """How many tries of this run of the cut the broker has refused so far (each for the moment only)."""
    tries: int = 0
    """How many tries were made in all, the runs given up included (:meth:`ProtectionCuts._recheck_cuts`)."""
    said: tuple[float, float] | None = None
    """The order's size and its position when a run of the cut last gave up, said CRITICAL then (``None``: none
    gave up): a run given up again at the same sizes says nothing more."""


class ProtectionCuts(ProtectionSizes):
    """Fit protective orders to their position: cut, retried, re-checked.

    Args:
        config: What to trade and how.
        broker: The broker connection.
        clock: Injected clock; the wall clock by default.
    """

    def __init__(self, config: EngineConfig, broker: Broker, clock: Clock | None = None) -> None:
        super().__init__(config, broker, clock)
        self._cutting: dict[str, _Cut] = {}
        """Protective orders with a cut in flight (:meth:`_cut_protection`), and where it stands."""
        self._uncut: dict[str, _Cut] = {}
        """Protective orders whose cut gave up, larger than their position: cut again by :meth:`_recheck_cuts`."""
        self._next_cut_recheck = 0.0
        self._fit_waiting: set[str] = set()
        """Symbols whose newer protection gives way (cancelled) before the older is cut (:meth:`_fit_protection`)."""
        self._fit_lines: dict[str, str] = {}
        """A symbol's fitting not said yet, by symbol: said by the first of its cuts sent (:meth:`_say_fitted`)."""
        self._fitting_said: set[str] = set()
        """Symbols whose protection was said not fitted while trading is refused (:meth:`_fitting_refused`)."""

    # -- hooks ---------------------------------------------------------------------------------

    def after_fill(self, order_ref: str, flat_after: bool) -> None:
        """When a position goes flat, cancel its leftover protective orders; when it shrinks, fit them to it.

        The children of a bracket entry still working are not leftovers: they wait for the position that entry's
        fills will make. Cancelled with the rest, a second bracket's entry filled after the first position was
        sold flat and was left with no stop at the broker."""
        order = self.orders.orders[order_ref]
        if self._fitting_refused(order.symbol):
            return
        if flat_after:
            self._fit_waiting.discard(order.symbol)
            for leftover in self._fitted_protection(order.symbol):
                if leftover.broker_id:
                    self.cancel_at_broker(leftover)
        else:
            self._fit_protection(order.symbol)

    def order_updated(self, order: Order, previous: OrderStatus | None, now: datetime | None = None) -> None:
        """Also: a symbol's older protection waiting for the newer to give way is cut once it has ended; an order
        that ended unfilled in a symbol whose mismatch is followed (an entry the trip cancelled, say) lets its
        protection follow the broker now (:meth:`_follow_again`; a fill is fitted by :meth:`after_fill`)."""
        super().order_updated(order, previous, now)
        if order.status.is_final and order.symbol in self._fit_waiting:
            self.call_later(0, self._fit_again, order.symbol, name=f"fit-{order.symbol}")
        if (order.symbol in self.broker_offsets and order.status.is_final and order.status is not OrderStatus.FILLED
                and previous is not None and not previous.is_final):
            self.call_later(0, self._follow_again, order.symbol, name=f"follow-{order.symbol}")

    def _follow_again(self, symbol: str) -> None:
        """An order in ``symbol``, whose mismatch is followed, ended unfilled: fit its protection to the broker's
        position now, unless a child of an entry that ended unfilled still works (the broker cancels it with its
        entry: fitted once that has ended)."""
        offset = self.broker_offsets.get(symbol)
        if offset is None:
            return
        if any(o.symbol == symbol and (parent := self.orders.get(o.parent_ref or "")) is not None
               and parent.status.is_final and not parent.filled_quantity for o in self.orders.working()):
            return
        self._follow_broker(symbol, offset)

    def after_book_taken(self, symbols: Iterable[str]) -> None:
        """Also: positions taken from the broker (changed while away, or by another client) have their protection
        fitted to them (the broker's position followed until then is ours now)."""
        super().after_book_taken(symbols)
        for symbol in symbols:
            self.broker_offsets.pop(symbol, None)
            self._fit_to_position(symbol)

    def on_position_mismatch(self, diffs: dict[str, tuple[float, float]]) -> None:
        """Also: a mismatch confirmed while the book stays ours (running: the periodic position check, a reconnect's
        reconciliation) has the symbol's protection follow the broker's position (:meth:`_follow_broker`). One the
        book took the broker's figures for (at start) is fitted already (:meth:`after_book_taken`)."""
        super().on_position_mismatch(diffs)
        differing = self.position_diffs()
        for symbol, (ours, theirs) in sorted(diffs.items()):
            if symbol in differing:
                self._follow_broker(symbol, theirs - ours)

    def _follow_broker(self, symbol: str, offset: float) -> None:
        """A confirmed mismatch: the broker holds ``offset`` more of ``symbol`` than the book, which stays ours.

        A stop sells what the broker holds: 5 of a LONG 10 sold in TWS while running, the stop of 10 "fitted" the
        book and stayed at the broker under its LONG 5, and a fall through it left the account SHORT 5. So the
        protection is fitted to the broker's position where it is nearer flat on the same side (cut: it passes the
        mismatch's trip), and cancelled where it is flat or on the other side (:meth:`protected_position`); a broker
        position larger than ours leaves it as it is. Said as a fitting at a restart is: once, INFO for a cut,
        WARNING for a cancel."""
        self.broker_offsets[symbol] = offset
        if abs(self.protected_position(symbol) - self.portfolio.quantity(symbol)) > _QTY_EPS:
            self._fit_to_position(symbol)

    def _fit_to_position(self, symbol: str) -> None:
        """Fit ``symbol``'s protection to the position it protects (:meth:`protected_position`): cut to it, or,
        with nothing of it left on their side, cancelled (:meth:`_cancel_under_flat`)."""
        if self.protected_position(symbol):
            self._fit_protection(symbol)
        else:
            self._cancel_under_flat(symbol)

    def positions_compared(self, diffs: dict[str, tuple[float, float]]) -> None:
        """Also: a symbol whose position agrees with the broker's again is no longer followed (its protection, cut
        to the broker's while they differed, is not grown back: said)."""
        super().positions_compared(diffs)
        for symbol in [s for s in self.broker_offsets if s not in diffs]:
            held = self.portfolio.quantity(symbol)
            followed = abs(self.protected_position(symbol)) < abs(held) - _QTY_EPS
            del self.broker_offsets[symbol]
            if followed:
                self.alert(AlertLevel.WARNING, "protection", f"{symbol}: the broker's position agrees with ours again "
                           f"({held:g}); protection cut or cancelled to fit the broker's while they differed is not "
                           "grown back", kind="protection_fitted")

    def _cancel_under_flat(self, symbol: str) -> None:
        """``symbol`` is flat at the broker (all of it closed elsewhere while away, say), or on the other side of
        ours (a mismatch followed, :meth:`_follow_broker`): its protective orders can only open (or grow) a position
        now (a stop of 10 under nothing sells 10 short), so they are cancelled, said once, as a fill that takes the
        position flat cancels them (:meth:`after_fill`). The children of a bracket entry still working are left:
        they wait for the position its fills make (:meth:`waits_for_entry`). A cancel passes every trading
        state."""
        if self._fitting_refused(symbol):
            return
        asked = self.cancels_asked
        leftovers = [o for o in self._fitted_protection(symbol) if o.broker_id and o.order_ref not in asked]
        if not leftovers:
            return
        said = [self._cut_what(o.order_ref) for o in leftovers]
        for order in leftovers:
            self.cancel_at_broker(order)
        theirs = self.portfolio.quantity(symbol) + self.broker_offsets.get(symbol, 0.0)
        why = (f"{symbol} is {'LONG' if theirs > 0 else 'SHORT'} {abs(theirs):g} at the broker, so they could only "
               "add to it" if abs(theirs) > _QTY_EPS else
               f"{symbol} is flat at the broker, so they could only open a position")
        self.alert(AlertLevel.WARNING, "protection", f"{listed(said)} cancelled: {why}", kind="protection_fitted")

    def after_figures_taken(self, order_ref: str) -> None:
        """An order's size or prices were taken from the broker: a protective order larger than its position
        (a cut lost with the connection) is cut to it again."""
        order = self.orders.get(order_ref)
        if order is not None:
            self._fit_protection(order.symbol)

    # -- fitting to the position --------------------------------------------------------------

    def _fit_protection(self, symbol: str, continued: bool = False) -> None:
        """Fit ``symbol``'s protective orders to its position together, cancel one that would add to it.

        A position made smaller by another order (a ticket's partial sell, one side of the bracket
        partly filled) kept protection of its old size: a stop that triggered then sold more than was
        held, and the position flipped. Fitted one by one, two brackets of 10 under a long of 5 kept
        20 of stops (each cut refused, the other bracket beside it). The orders on the closing side are
        fitted as they can fill (:meth:`_allowances`): the newest give way first, cut, or cancelled when
        nothing of the position is left for them, and the older are cut only once those have ended
        (:meth:`_fit_again`: a cut is measured with them beside it). A protective order on the position's
        own side (it flipped) would add to it. The children of a bracket entry still working are left whole
        (:meth:`waits_for_entry`): they wait for the position its fills make. Skipping the whole fitting while
        an entry worked left a stop of 10 under a LONG 6 (4 sold from a ticket), and its trigger sold the
        position SHORT 4. An order with a cut in flight is left to it: it fits the order again once the broker
        has answered. Said once, at INFO (:meth:`_say_fitted`), unless ``continued`` (the older cut after the
        newer ended: said when the fitting began).
        """
        if self._fitting_refused(symbol):
            return
        held = self.protected_position(symbol)
        self._fit_waiting.discard(symbol)
        if not held:
            return
        for order in self._fitted_protection(symbol):
            if order.ticket.side.sign * held > 0 and order.order_ref not in self.cancels_asked:
                if order.broker_id:
                    self.cancel_at_broker(order)
                self.alert(AlertLevel.WARNING, "protection", f"{order.order_ref} cancelled: a {order.ticket.side} "
                           f"would add to the {symbol} position of {held:g}", kind="protection_fitted")
        closing = self._protective_closing(symbol, held)
        allowed = self._allowances(closing, held)
        giving_way = [o for o in closing if allowed[o.order_ref] <= _QTY_EPS]
        cancels = [o for o in giving_way if o.broker_id and o.order_ref not in self.cancels_asked]
        for order in cancels:
            self.cancel_at_broker(order)
        cuts = [o for o in closing if _QTY_EPS < allowed[o.order_ref] < o.remaining - _QTY_EPS]
        if not continued and (cancels or cuts):
            self._fit_lines[symbol] = self._fitting_line(symbol, held, closing, allowed)
            if cancels:
                self._say_fitted(symbol)
        if giving_way:
            self._fit_waiting.add(symbol)
            return
        for order in cuts:
            if order.order_ref in self._cutting:
                log.info("%s: a cut in flight, fitted again once the broker answers it", order.order_ref)
            elif self._cut_size(order.order_ref) is not None:
                self._start_cut(order.order_ref)

    def _fitting_refused(self, symbol: str) -> bool:
        """Trading is refused for this account (:attr:`refusal`): ``symbol``'s protective orders are neither cut nor
        cancelled from here (nothing goes to the broker); said once a symbol, if any of them works."""
        if not self.refusal:
            return False
        working = [o.order_ref for o in self._fitted_protection(symbol) if o.broker_id]
        if working and symbol not in self._fitting_said:
            self._fitting_said.add(symbol)
            self.alert(AlertLevel.ERROR, "protection", f"{listed(working)} not fitted to the {symbol} position "
                       f"({self.portfolio.quantity(symbol):g} here): trading is refused for this account, nothing is "
                       "cut or cancelled from here; check them in TWS", kind="protection_not_fitted")
        return True

    def _fit_again(self, symbol: str) -> None:
        """A protective order of ``symbol`` ended while its older protection waited for the newer to give way:
        fitted again (the older cut once the newer have all ended)."""
        if symbol in self._fit_waiting:
            self._fit_protection(symbol, continued=True)

    def _say_fitted(self, symbol: str) -> None:
        """Say ``symbol``'s fitting (:meth:`_fitting_line`) once, at INFO: when its cancels are sent, or its first
        cut."""
        line = self._fit_lines.pop(symbol, None)
        if line is not None:
            self.alert(AlertLevel.INFO, "protection", line, kind="protection_fitted")

    def _start_cut(self, order_ref: str) -> None:
        """Cut protective order ``order_ref`` to its position (:meth:`_cut_protection`), on top of the cuts of it
        given up (:attr:`_uncut`)."""
        cut = self._cutting[order_ref] = self._uncut.pop(order_ref, _Cut())
        self.spawn(self._cut_protection(order_ref, cut), f"fit-{order_ref}")

    def arm(self, account_id: str, by: str = "operator") -> None:
        """Also: cuts refused while live trading was not armed (a modify needs the arming an approval does) are
        sent at once (:meth:`_recheck_cuts`), not up to ``cut_recheck_s`` later, the position over-protected
        meanwhile."""
        armed = self.armed
        super().arm(account_id, by)
        if not armed and self.armed and (self._uncut or self._fit_waiting):
            self._recheck_cuts()

    def recheck_cuts_if_due(self) -> None:
        """From the monitor tick while connected: :meth:`_recheck_cuts` every ``cut_recheck_s``, and nothing at
        all while no cut has given up (the usual case)."""
        if (self._uncut or self._fit_waiting) and asyncio.get_running_loop().time() >= self._next_cut_recheck:
            self._recheck_cuts()

    def _recheck_cuts(self) -> None:
        """Cut again every protective order whose cut gave up and is still larger than its position, every
        ``cut_recheck_s`` while connected: nothing else cut it until another fill or a reconciliation happened
        to, and a stop that triggers sells more than is held. One that fits now, or has ended, is said and
        forgotten (:meth:`_say_no_cut_needed`); one the risk gate would deny (trading halted by the operator, say)
        waits quietly for the next: the verdict is only read, not published, and its failure was said CRITICAL
        once already. Run at once, too, when live trading is armed (:meth:`arm`)."""
        self._next_cut_recheck = asyncio.get_running_loop().time() + self.config.cut_recheck_s
        for symbol in list(self._fit_waiting):  # a newer order's cancel unanswered, or sent only now
            self._fit_protection(symbol, continued=True)
        for order_ref in list(self._uncut):
            if order_ref in self._cutting:
                continue
            if (size := self._cut_size(order_ref)) is None:
                self._say_no_cut_needed(order_ref)
            elif self.verdict(replace(self.orders.orders[order_ref].ticket, quantity=size[0]), order_ref).passed:
                self._start_cut(order_ref)

    def _say_no_cut_needed(self, order_ref: str) -> None:
        """A protective order whose cut's failure was said CRITICAL no longer needs one, and no cut made it so: it
        fits its position now (the operator modified it, the position grew back) or it ended (cancelled, filled).
        Said once, at INFO, and forgotten. Kept, and said once that settles, while it works on a position gone
        flat or flipped (it is cancelled: :meth:`after_fill`, :meth:`_fit_protection`) or while an entry in the
        symbol works (it may still be larger than the position once the entry ends unfilled)."""
        order = self.orders.get(order_ref)
        if order is None:
            text = f"{order_ref} ended: no cut needed"
        elif not order.status.is_working:
            text = (f"{order_ref} ({order.ticket.order_type.value} {order.ticket.quantity:g} {order.symbol}) ended "
                    f"{order.status.value}: no cut needed")
        else:
            held = self.protected_position(order.symbol)
            if (not held or order.ticket.side.sign * held > 0 or self.waits_for_entry(order)
                    or order.order_ref in self.cancels_asked):  # giving way to older protection: cancelled
                return
            text = f"{self._cut_what(order_ref)} fits the position of {held:g} now: no cut needed"
        del self._uncut[order_ref]
        self.alert(AlertLevel.INFO, "protection", text, kind="protection_fitted")

    async def _cut_protection(self, order_ref: str, cut: _Cut) -> None:
        """Cut a protective order to its position, one modify at a time, until it fits.

        Each cut is sized from the position when it is sent, and the next waits for the broker's
        answer to it: two fills in quick succession spawned two modifies of the same order, whose
        journal flushes could finish in either order, so the older, larger size could reach the
        broker last (the engine showing the stop cut to the position while the broker held it
        larger); and IB refuses to modify an order whose last modification it is still processing
        (2102): such a refusal is for the moment only, and the cut is sent again a little later
        (:meth:`_cut_refused`). A cut that gives up is run again by :meth:`_recheck_cuts`. ``cut``: where it
        stands, as :meth:`_start_cut` put it in :attr:`_cutting`.
        """
        throttled, given_up, cut.refused = 0, False, 0
        symbol = self.orders.orders[order_ref].symbol
        try:
            while (size := self._cut_size(order_ref)) is not None:
                if self._giving_way(symbol):  # measured with the newer beside it: cut once they have ended
                    self._fit_waiting.add(symbol)
                    return
                sent = await self._cut_once(order_ref, *size, cut, last_try=throttled >= CUT_THROTTLE_RETRIES)
                if sent is None and self._cut_size(order_ref) != size:  # the position moved: sized again
                    continue
                if sent is None:  # only the message rate stood in the way: it frees up within a second
                    throttled += 1
                    await asyncio.sleep(1.0)
                elif (refusal := cut.refusal) is not None:
                    if not await self._cut_refused(order_ref, cut, refusal):
                        given_up = True
                        return
                elif not sent:
                    given_up = True
                    return
        finally:
            self._cutting.pop(order_ref, None)
            if not any(self.orders.orders[r].symbol == symbol for r in self._cutting if r in self.orders.orders):
                self._fit_lines.pop(symbol, None)  # a fitting none of whose cuts was sent: nothing done to say
            if given_up:
                self._cut_given_up(order_ref, cut)
            elif cut.said is not None:  # a re-check's run that ended with no cut taken: it fits, or ended
                self._leave_to_recheck(order_ref, cut)

    def _cut_given_up(self, order_ref: str, cut: _Cut) -> None:
        """A run of the cut gave up (said CRITICAL, here or by the amendments, unless said at these sizes
        already): the order is cut again at the next :meth:`_recheck_cuts` while it is larger than its position,
        or said no longer to need it."""
        if (key := self._cut_key(order_ref)) is None:
            return
        cut.said = key
        self._leave_to_recheck(order_ref, cut)

    def _leave_to_recheck(self, order_ref: str, cut: _Cut) -> None:
        """A protective order whose cut's failure was said: cut again, or said no longer to need it, at the next
        :meth:`_recheck_cuts`."""
        if not self._uncut:
            self._next_cut_recheck = asyncio.get_running_loop().time() + self.config.cut_recheck_s
        self._uncut[order_ref] = cut

    async def _cut_once(self, order_ref: str, quantity: float, held: float, cut: _Cut,
                        last_try: bool) -> bool | None:
        """One cut of ``order_ref`` to ``quantity``, and the broker's answer to it; ``False`` when it was not
        sent or the broker refused it, ``None`` when it is to be tried again: only the message-rate throttle
        refused it (not said, unless ``last_try``), or the position moved while the cut waited for the journal
        (the modify is checked again before the wire: a cut to 70 under the 40 now held is no longer
        reduce-only; sized again)."""
        what = self._cut_what(order_ref)
        cut.quantity, cut.refusal = quantity, None
        try:
            verdict = await self.modify(order_ref, quantity=quantity, operator=False)  # not the operator's
            why = "" if verdict.passed else verdict.reason
            if why and not last_try and all(c.name.startswith("throttle") for c in verdict.failures):
                return None
        except (SafetyError, ValueError) as exc:
            why = str(exc)
        if why and self._cut_size(order_ref) != (quantity, held):
            return None  # sized again from the position as it is now (or it fits, or the order ended)
        cut.tries += 1
        if why:
            self._say_cut_failed(order_ref, cut, what, held, why)
            return False
        if not cut.refused and cut.said is None:  # a try after a refusal is said once the broker has taken it
            self._say_fitted(self.orders.orders[order_ref].symbol)
        return await self._cut_answered(order_ref, quantity, held, cut, what)

    async def _cut_answered(self, order_ref: str, quantity: float, held: float, cut: _Cut, what: str) -> bool:
        """Wait for the broker's answer to a cut sent; ``True`` when it took it (or the answer is to be taken
        from the order as it is now)."""
        if not await self.modification_answered(order_ref, self.config.ack_timeout_s):
            self.alert(AlertLevel.WARNING, "protection", f"{order_ref}: the broker has not confirmed its cut to "
                       f"{quantity:g} within {self.config.ack_timeout_s:g}s", kind="protection_fitted")
            return True  # sized again from the order as it is now (the broker's figures, after a reconnect)
        now = self.orders.get(order_ref)
        # Refused, the order is shown at the size the broker keeps: for the moment only (IB still processing
        # the order), the refusal is the cut's (cut.refusal) and it is sent again; else the amendments said it
        # (CRITICAL) and it is not. Answered by a lost connection, the order is still shown cut: the
        # reconnect's reconciliation takes the broker's figures, and a cut follows from them.
        taken = now is None or not now.status.is_working or abs(now.ticket.quantity - quantity) <= _QTY_EPS
        if taken and now is not None and now.status.is_working and cut.said is not None:
            self.alert(AlertLevel.INFO, "protection", f"{what} cut to the position of {held:g} (after {cut.tries} "
                       "attempts)", kind="protection_fitted")
            cut.said = None  # its failure's story closed
        elif taken and cut.refused and now is not None and now.status.is_working:
            self.alert(AlertLevel.INFO, "protection", f"{what} cut to the position of {held:g} at try "
                       f"{cut.refused + 1}", kind="protection_fitted")
        return taken

    async def _cut_refused(self, order_ref: str, cut: _Cut, refusal: BrokerError) -> bool:
        """The broker refused the cut's last try for the moment only: ``True`` to try again, after the next
        wait of ``cut_retry_delays_s`` (said on the first refusal); ``False`` once they are spent, said
        CRITICAL (once for the order at these sizes: :meth:`_recheck_cuts` tries it again). The order is left
        working at its size: cancelled, the position would have no stop at all."""
        cut.refusal, cut.refused = None, cut.refused + 1
        delays = self.config.cut_retry_delays_s
        size = self._cut_size(order_ref)
        if size is None:
            return True  # it fits the position now, or it ended: nothing left to cut
        what = self._cut_what(order_ref)
        if cut.refused > len(delays):
            self._say_cut_failed(order_ref, cut, what, size[1], f"the broker refused {cut.refused} tries, the last "
                                 f"{refusal.code}: {refusal.message}")
            return False
        delay = delays[cut.refused - 1]
        if cut.refused == 1 and cut.said is None:
            self.alert(AlertLevel.WARNING, "protection", f"{what}: the broker refused its cut to {cut.quantity:g} "
                       f"({refusal.code}: {refusal.message}): tried again in {delay:g}s", kind="protection_fitted")
        await asyncio.sleep(delay)
        return True

    def _say_cut_failed(self, order_ref: str, cut: _Cut, what: str, held: float, why: str) -> None:
        """Say CRITICAL that the cut of ``what`` failed for ``why``, the order left larger than its position of
        ``held``; not again for a run given up at these sizes already (:attr:`_Cut.said`)."""
        if cut.said != self._cut_key(order_ref):
            self.alert(AlertLevel.CRITICAL, "protection", f"{what} is larger than the position of {held:g} and could "
                       f"not be cut to it ({why}): if it fills, the position reverses", kind="protection_fitted")
        else:  # a re-check's try (every cut_recheck_s; in a dry run, every one fails): not said again
            log.debug("%s: cut to the position of %g failed again (%s)", order_ref, held, why)

    def claims_refusal(self, error: BrokerError, refused: OrderTicket) -> bool:
        """A protective cut in flight takes over the broker's refusal of its last try when it is for the moment
        only (:data:`~tui_trader.engine.amend.TRANSIENT_REFUSALS`): it tries again, and says it if it gives up
        (:meth:`_cut_refused`); and any refusal of a cut whose failure was said at these sizes already
        (:meth:`_recheck_cuts`): it gives up again without another CRITICAL."""
        cut = self._cutting.get(error.order_ref)
        if cut is None or cut.quantity is None or abs(refused.quantity - cut.quantity) > _QTY_EPS:
            return False
        if error.code in TRANSIENT_REFUSALS:
            cut.refusal = error
            return True
        return cut.said is not None and cut.said == self._cut_key(error.order_ref)  # said at these sizes: gives up
