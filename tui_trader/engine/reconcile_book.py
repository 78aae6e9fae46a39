"""The book against the broker's account: restored from the journal, executions fetched, positions and cash.

The journal is the engine's memory: on start the book (cash, positions, P&L) is rebuilt from
the last checkpoint plus the fills and commissions journaled after it. A reconciliation
(:mod:`~tui_trader.engine.reconcile`) then fetches the broker's executions since the last journaled one:
fills made while the engine was away are booked (once: they are journaled), a commission lost on the wire is
recovered. Then the positions (and, at start, the cash) are compared with the broker's. Every difference is an
alert, never silently copied: at start the broker's figure is adopted with a checkpoint naming it, and a
position difference applies the configured position-mismatch trigger; at start and after a reconnect alike, a
position difference that orders settled as ended while away explain (IB no longer reports their fills) is
adopted with a warning, not a mismatch (:meth:`BookSettlement._conclude_positions`).

A new journal's book begins at the broker's account (the seed, at its first reconciliation). IB reports the whole
day's executions to every request: those from before the seed (another run's, earlier today) are in the positions it
takes, so they are left out, said once, and kept with the book's checkpoints so that no later fetch books them
(:meth:`BookSettlement._not_this_journals`). So are those a restored journal's start fetches for orders it does not
know (another journal's run with the same client id, earlier today): the difference they make to the positions is
taken from the broker, said once (:meth:`BookSettlement._say_others`), not a mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.broker.base import BrokerPosition
from tui_trader.domain.enums import AlertLevel
from tui_trader.domain.events import BOOK_SEEDED, EXECUTIONS_BEFORE, BookCheckpointed, CommissionReported, OrderFilled
from tui_trader.domain.orders import Fill, Order
from tui_trader.engine.adopted import ADOPTED
from tui_trader.engine.broker_events import BrokerEvents
from tui_trader.store.journal import Journal

_EXEC_OVERLAP = timedelta(minutes=5)
_BOOK_EVENTS = ("BookCheckpointed", "OrderFilled", "CommissionReported")
_QTY_EPS = 1e-9
_IN_ADOPTED_CASH = "commissions_in_adopted_cash"
"""The checkpoint's key for :attr:`BookSettlement._charged_by_broker` and ``_cash_short_by`` (absent: none)."""


class BookSettlement(BrokerEvents):
    """The journal's book and the broker's positions and cash, made to agree."""

    restored_exec_ids: set[str]
    book_restored = False
    book_settled = False
    book_at_start = (0.0, 0.0)
    """The book's realized P&L (net) and commissions as this run took it up: restored from the journal, or none when
    seeded from the broker (a new journal's, a refused account's): what the run's summary counts its own from."""
    _book_moved: asyncio.Event | None = None
    """Set by a position or cash update while the book is settling at startup."""
    _out_of_touch = False
    """Connecting or connected again, the executions not fetched since (:meth:`lose_touch`)."""
    _newest_before: datetime | None = None
    """The newest fill known when touch was lost (None: none known, every execution is fetched)."""
    _charged_by_broker: frozenset[str] = frozenset()
    """Fills still without a commission when the broker's cash was adopted at start (:meth:`book_commission`), on
    this run or an earlier one: journaled with the book's checkpoints until their commissions are booked."""
    _cash_short_by = 0.0
    """How much lower than ours the adopted cash was, less what those fills' commissions have accounted for."""
    _others: dict[str, Fill]
    """Exec id → the executions the start's reconciliation left out as not this journal's
    (:meth:`_not_this_journals`): said once the book is settled, then forgotten (their ids stay in
    :attr:`before_book`)."""
    _gone_away: dict[str, list[Order]]
    """Symbol → its orders the running reconciliation settled as ended while away
    (:meth:`~tui_trader.engine.reconcile_orders.OrderSettlement._ended_away`): a bracket's stop, or one adopted
    from the broker (a stop typed into TWS); a difference of the position with the broker's may be the fills of
    those that reduce it (:meth:`_explained`)."""

    # -- the book from the journal ---------------------------------------------------------------

    async def restore_book(self, journal: Journal) -> None:
        """Rebuild the book: the last checkpoint, then every fill and commission journaled after it.

        The checkpoint also brings back the fills whose commissions a broker's cash adopted at start already had
        off (:meth:`book_commission`), so one that comes on a later run is not taken off cash again (remembered for
        one run only, it was, and that start adopted the broker's cash again with a false cash_mismatch warning).
        A checkpoint written before they were kept has none. So with the executions left out as another run's
        (:attr:`before_book`), when the checkpoint is of today: IB reports only the day's executions, and each
        checkpoint carries them, so an earlier day's are dropped (else a list that grew every day; the seed's own, a
        new journal's first day's, are kept from the seed as before).
        """
        events = await journal.book_events(_BOOK_EVENTS)
        last = max((i for i, e in enumerate(events) if isinstance(e, BookCheckpointed)), default=-1)
        start = await journal.book_start()
        self.before_book = start.executions_before if start is not None else frozenset()
        if last >= 0:
            checkpoint = events[last]
            assert isinstance(checkpoint, BookCheckpointed)
            self.portfolio.restore(checkpoint.state)
            in_cash = checkpoint.state.get(_IN_ADOPTED_CASH, {})
            self._charged_by_broker = frozenset(in_cash.get("exec_ids", ()))
            self._cash_short_by = float(in_cash.get("up_to", 0.0))
            today = self.now().astimezone(ZoneInfo(self.config.time_zone)).date().isoformat()
            if checkpoint.state.get("day") == today:
                self.before_book |= frozenset(checkpoint.state.get(EXECUTIONS_BEFORE, ()))
        for event in events[last + 1:]:
            if isinstance(event, OrderFilled):
                self.portfolio.apply_fill(event.fill, event.order)
            elif isinstance(event, CommissionReported):
                charged = self._in_adopted_cash(event.exec_id, event.commission)  # it died before its checkpoint
                self.portfolio.apply_commission(event.commission, charged)
        self.book_restored = bool(events)
        self.book_at_start = (self.portfolio.realized_pnl, self.portfolio.commissions)

    def forget_book(self) -> None:
        """Trading is refused for the account before its book is settled: the book restored from the journal is its
        mode's account's, not the refused one's (:func:`~tui_trader.engine.recovery.not_account_record`), so none is
        known (shown as unknown) until the first reconciliation seeds the refused account's (:meth:`_settle_book`).
        Between the refusal at the handshake and that seed, the journal's positions, cash and P&L were shown under the
        refused account's id. The run's summary counts from no book either (:attr:`book_at_start`)."""
        self.portfolio.forget()
        self.book_at_start = (0.0, 0.0)

    def checkpoint_book(self, reason: str, extra: Mapping[str, Any] | None = None) -> None:
        """Journal the book as it is now (with the fills whose commissions the adopted cash already had off, the
        executions left out as not this journal's, and ``extra``). While trading is refused for the account the
        journal does not keep it (:func:`~tui_trader.engine.recovery.not_account_record`): the book is that
        account's."""
        state = {**self.portfolio.state(), **(extra or {})}
        if self.before_book:
            state[EXECUTIONS_BEFORE] = sorted(self.before_book)
        if self._charged_by_broker:
            state[_IN_ADOPTED_CASH] = {"exec_ids": sorted(self._charged_by_broker), "up_to": self._cash_short_by}
        self.publish(BookCheckpointed(self.now(), state, reason))

    # -- executions ------------------------------------------------------------------------------

    def lose_touch(self) -> None:
        """Before each connect: the next executions fetch reaches back from the newest fill known now.

        A fill heard live once the connection is back, while it is set up or reconciled, is newer
        than the fills the outage missed: counted from it, the fetch could start after them (it
        did, by more than the overlap after a long outage, and the missed fill was never booked).
        """
        if not self._out_of_touch:
            self._out_of_touch, self._newest_before = True, self.orders.last_fill_time

    async def _fetch_executions(self) -> None:
        out_of_touch = self._out_of_touch
        fills = await self.broker.executions(self._executions_since())
        if out_of_touch:
            self._out_of_touch, self._newest_before = False, None
        for fill in sorted(fills, key=lambda f: f.time):
            known = self.orders.fills.get(fill.exec_id)
            if known is None and fill.exec_id in self.before_book:
                continue  # left out before: in the positions the book took from the broker
            if known is None and self._not_this_journals(fill):
                self._others[fill.exec_id] = fill  # said once the book is settled
                self.orders.drop_pending_commission(fill.exec_id)
            elif known is None:
                if not await self.is_new_fill(fill):  # an old execution the journal already has
                    continue
                self.alert(AlertLevel.WARNING, "reconcile", f"execution {fill.exec_id} recovered after the fact: "
                           f"{fill.side} {fill.quantity:g} {fill.symbol} @ {fill.price:g}", kind="fill_recovered")
                self.book_fill(fill)
            elif known.commission is None and fill.commission is not None:
                self._recover_commission(fill.exec_id, fill.commission, fill.realized_pnl)
        self.before_book |= self._others.keys()

    def _not_this_journals(self, fill: Fill) -> bool:
        """``fill`` is another run's: the start's reconciliation fetched it, before the book is settled against the
        broker's positions (``fill`` in them), for no order this journal knows.

        IB reports the day's executions to every request, another run's from earlier today too (another journal's,
        with the same client id): booked, each was an ERROR "fill for an unknown order" that blocked entries, and
        counted in the run's fills, commissions and P&L. A new journal's order of its own is one restored from it
        (its SENDING record written ahead of the seed's batch, then a crash): its fill is recovered as after any
        crash; an order it adopted at this start is another's, its fills from before the seed too (so a refused
        account's, whose book is seeded as well). A restored journal's orders, adopted ones included, are its own:
        their fills while it was away are recovered.
        """
        if self.book_settled:
            return False
        order = self.orders.find(fill.order_ref, fill.perm_id, fill.broker_id)
        return order is None or (not self._journals_book and order.ticket.strategy == ADOPTED)

    def _executions_since(self) -> datetime | None:
        """From a little before the newest fill known (when touch was lost, after an outage), or from
        the oldest one still without a commission."""
        newest = self._newest_before if self._out_of_touch else self.orders.last_fill_time
        if newest is None:
            return None
        return min([newest - _EXEC_OVERLAP, *(self.orders.fills[e].time for e in self.orders.uncommissioned)])

    def _recover_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        """A commission report lost on the wire (a disconnect), found in the re-requested execution."""
        self.alert(AlertLevel.INFO, "reconcile", f"commission of execution {exec_id} recovered after the fact: "
                   f"{commission:g}", kind="commission_recovered")
        self.on_commission(exec_id, commission, realized_pnl)

    def session_fills(self) -> list[Fill]:
        """Fills recorded by this run (not restored from the journal)."""
        return [f for f in self.orders.fills.values() if f.exec_id not in self.restored_exec_ids]

    # -- positions and cash ----------------------------------------------------------------------

    async def _settle_book(self) -> None:
        """After the first reconciliation: the book against the broker's positions and cash.

        The broker's positions and cash are one cut of its stream, our fills another: an execution
        that has reached its position (and cash) but not yet us, its report still in flight or held
        back, would be counted twice were the book set to the broker's and the execution then booked
        (and a position update still behind a fill we booked would undo it). So a difference is looked
        at again after a round trip to the broker, with the executions fetched again, and given up to
        ``book_settle_s`` for the updates still on their way (IB sends positions, portfolio and
        account values on their own streams, cash often seconds after the fill): only what persists
        is adopted. Entries stay blocked meanwhile.

        Trading refused for the account, the book shown is that account's, seeded from it as a new journal's is,
        whatever the journal holds: the journal is its mode's account's record, not the refused one's; the journal's
        book moved to the refused account's said "cash differs from the journal", a position mismatch (its trigger)
        and "executions today of orders this journal does not know", as if of one account.
        """
        if not self._journals_book:
            self.book_settled = True
            self._seed_portfolio()
            return
        if self._book_differs(cash=True):
            await self._await_broker_book(cash=True)
        self.book_settled = True
        self._conclude_positions(adopt_all=True, cash_note=self._settle_cash())
        self._mark_all()

    @property
    def _journals_book(self) -> bool:
        """The book this start settles is the journal's: restored from it, of the account connected (refused, the
        journal is not that account's: :func:`~tui_trader.engine.recovery.not_account_record`)."""
        return self.book_restored and not self.refusal

    def _conclude_positions(self, adopt_all: bool, cash_note: str = "") -> None:
        """The positions against the broker's at the end of a reconciliation, at start or after a reconnect.

        A difference the orders settled as ended while away explain (:meth:`_explained`) is
        taken from the broker with a WARNING: not a mismatch; so is one that the executions left out as another
        run's (:meth:`_not_this_journals`) make, said once with them (:meth:`_say_others`). Any other is a mismatch
        (its trigger applies), taken from the broker as well only with ``adopt_all`` (at start, where the book
        restored from the journal has nothing better; while running, the book stays ours, as after a periodic
        check). What is taken is checkpointed with ``cash_note`` (the cash adopted at start).
        """
        diffs = self.position_diffs()
        by_others = {s: d for s, d in diffs.items() if self._made_by_others(s, *d)}
        explained = {s: d for s, d in diffs.items() if s not in by_others and self._explained(s, *d)}
        unexplained = {s: d for s, d in diffs.items() if s not in by_others and s not in explained}
        adopted = diffs if adopt_all else {**by_others, **explained}
        for symbol, (_, theirs) in sorted(adopted.items()):
            cost = next((p.avg_cost for p in self.broker.positions() if p.symbol == symbol), 0.0)
            self.portfolio.adjust(symbol, theirs, cost, self.now())
        self.after_book_taken(adopted)
        if adopted or cash_note or self._others:
            self.checkpoint_book(f"adjusted to the broker: {diff_text(adopted)} {cash_note}".strip())
        self._say_others(by_others, cash_note)
        for symbol, (ours, theirs) in sorted(explained.items()):
            refs = ", ".join(o.order_ref for o in self._reducers(symbol, ours))
            self.alert(AlertLevel.WARNING, "reconcile", f"{symbol}: position taken from the broker ({theirs:g}, "
                       f"not {ours:g}): its closing orders {refs} ended while tui-trader was away, and IB no "
                       "longer reports their executions", kind="position_adopted")
        if unexplained:
            self.on_position_mismatch(unexplained)

    def _made_by_others(self, symbol: str, ours: float, theirs: float) -> bool:
        """The broker's position is ours moved by exactly the executions left out as another run's."""
        moved = sum(f.signed_quantity for f in self._others.values() if f.symbol == symbol)
        return bool(moved) and abs(ours + moved - theirs) <= _QTY_EPS

    def _say_others(self, taken: dict[str, tuple[float, float]], cash_note: str) -> None:
        """Say once the executions the start left out as another run's, with the positions ``taken`` from the broker
        that they make and the cash adopted at start (``cash_note``): a WARNING, as the book moved by trades not made
        here; entries are not blocked for them. One alert: it was an ERROR and an entry block for each execution."""
        if not self._others:
            return
        n = len(self._others)
        moved = [f"{s} {a:g} → {b:g}" for s, (a, b) in sorted(taken.items())] + ([cash_note] if cash_note else [])
        self.alert(AlertLevel.WARNING, "reconcile", f"{n} execution{'s' if n > 1 else ''} today of orders this "
                   f"journal does not know (another journal, or another program with client id "
                   f"{self.connection.client_id}?): not booked as this journal's fills; "
                   + (f"taken from the broker: {', '.join(moved)}" if moved else "no position or cash changed by them"),
                   kind="executions_not_this_journals")
        self._others = {}

    def _explained(self, symbol: str, ours: float, theirs: float) -> bool:
        """The broker's position is ours made smaller (not reversed) by no more than what ``symbol``'s
        orders that ended while away and close it could have filled: their fills, which IB no longer reports.

        Not a mismatch then (no position-mismatch trigger: the kill switch engaged on every start after a
        stop had filled overnight); the position is still taken from the broker, with a warning.
        """
        reducing = self._reducers(symbol, ours)
        if not reducing or theirs * ours < 0 or abs(theirs) > abs(ours):
            return False
        return abs(ours - theirs) <= max(o.remaining for o in reducing) + _QTY_EPS

    def _reducers(self, symbol: str, ours: float) -> list[Order]:
        """``symbol``'s orders settled as ended while away that close (part of) a position of ``ours``."""
        return [o for o in self._gone_away.get(symbol, []) if o.ticket.side.sign * ours < 0]

    def _book_differs(self, cash: bool) -> bool:
        return bool(self.position_diffs()) or (cash and self._cash_differs() is not None)

    async def _await_broker_book(self, cash: bool) -> None:
        """Until the positions (and ``cash``) agree with the broker's, or ``book_settle_s`` has passed:
        after each position or account update, a round trip (what was in flight has arrived) and
        the executions fetched again (one the positions count may not have reached us)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.book_settle_s
        self._book_moved = moved = asyncio.Event()
        try:
            while True:
                moved.clear()
                await self.broker.current_time()
                await self._fetch_executions()
                remaining = deadline - loop.time()
                if not self._book_differs(cash) or remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved.wait(), remaining)
        finally:
            self._book_moved = None

    def on_position(self, position: BrokerPosition) -> None:
        """The broker's position changed (wakes a settling book)."""
        super().on_position(position)
        if self._book_moved is not None:
            self._book_moved.set()

    def on_account_value(self, tag: str, value: float, currency: str) -> None:
        """An account value changed (cash wakes a settling book)."""
        super().on_account_value(tag, value, currency)
        if self._book_moved is not None and tag == "TotalCashValue":
            self._book_moved.set()

    def _cash_differs(self) -> float | None:
        """The broker's cash where it differs from ours (None when it agrees or is unknown)."""
        cash = self.broker.account_values().get("TotalCashValue")
        if cash is None or abs(cash - self.portfolio.cash) <= max(0.01, abs(cash) * 1e-9):
            return None
        return cash

    def _settle_cash(self) -> str:
        """Adopt the broker's cash where it differs from ours: a WARNING, unless the start left out executions as
        another run's, whose alert says it (:meth:`_say_others`: those trades moved the cash, and their commissions
        come apart from them, so no sum of ours can match the broker's to the cent). The note for the checkpoint."""
        cash, ours = self._cash_differs(), self.portfolio.cash
        if cash is None:
            return ""
        late = sorted(self.orders.uncommissioned)
        if late or not self._others:
            unreported = (f" (it may include the commissions of {', '.join(late)}, not reported yet: they go into "
                          "commissions and P&L when they come, not into cash again)") if late else ""
            self.alert(AlertLevel.WARNING, "reconcile", f"cash differs from the journal: ours {ours:,.2f}, "
                       f"broker {cash:,.2f}; using the broker's{unreported}", kind="cash_mismatch")
        self.portfolio.cash = cash
        # Those an earlier run's adopted cash had off (restored with the book) are in ours and in this one: kept.
        self._charged_by_broker |= frozenset(late)
        self._cash_short_by += max(0.0, ours - cash)
        return f"cash {ours:.2f} → {cash:.2f}"

    def book_commission(self, exec_id: str, commission: float, realized_pnl: float | None,
                        already_in_cash: float = 0.0) -> None:
        """Book a commission; one the broker's cash already had off when it was adopted goes into the
        commissions and P&L only, not into cash a second time.

        At start the book adopts the broker's cash if it still differs after ``book_settle_s``. A fill
        whose commission report was late then (held back, or lost with the session that stopped) was
        charged in the broker's cash but not in ours: taken off cash again when the report came, cash
        stayed one commission short for good. Only what the adopted cash was lower than ours can be
        such a commission (a cash that was not lower did not have it), so no more than that is skipped.
        Those fills are journaled with every checkpoint until their commissions come, on whatever later run; the
        book is checkpointed after each, so a restart's replay does not take it off cash either.
        """
        if exec_id not in self._charged_by_broker:
            super().book_commission(exec_id, commission, realized_pnl, already_in_cash)
            return
        charged = self._in_adopted_cash(exec_id, commission)
        super().book_commission(exec_id, commission, realized_pnl, already_in_cash=charged)
        self.checkpoint_book(f"commission of {exec_id} booked: {charged:.2f} of it was in the broker's cash "
                             "adopted at start")

    def _in_adopted_cash(self, exec_id: str, commission: float) -> float:
        """How much of ``exec_id``'s ``commission`` the adopted cash already had off (0 for a fill it had not), now
        accounted for: the fill is forgotten, and all of them once no shortfall is left to explain."""
        if exec_id not in self._charged_by_broker:
            return 0.0
        charged = min(commission, self._cash_short_by)
        self._charged_by_broker -= {exec_id}
        self._cash_short_by -= charged
        if not self._charged_by_broker or self._cash_short_by <= 0:
            self._charged_by_broker, self._cash_short_by = frozenset(), 0.0
        return charged

    def _seed_portfolio(self) -> None:
        """First start on this journal: the book starts from the broker's account (an INFO alert). Refused (on any
        journal), it is the refused account's book, shown and not journaled
        (:func:`~tui_trader.engine.recovery.not_account_record`): "new journal: book starts from …" said a journal had
        begun that keeps none of it, and so did the executions left out "from before this journal began"."""
        values = self.broker.account_values()
        positions = {p.symbol: (p.quantity, p.avg_cost) for p in self.broker.positions() if p.quantity}
        cash = values.get("TotalCashValue", values.get("NetLiquidation", 0.0))
        if not values:
            self.alert(AlertLevel.WARNING, "portfolio", "the broker sent no account values: cash unknown")
        self.portfolio.seed(cash, positions, self.now())
        # Refused, the journal's protective orders that this broker reports are fitted to the book shown, a position
        # they protected in the journal's book (forgotten: :meth:`forget_book`) flat in it or not.
        protected = {o.symbol for o in self.orders.working() if o.ticket.reduce_only} if self.refusal else set()
        self.after_book_taken({*protected, *positions})
        held = ", ".join(f"{s} {q:g}" for s, (q, _) in sorted(positions.items())) or "no positions"
        book = f"(cash {cash:,.2f}; {held})"
        said = (f"book of refused account {self.account_id} {book}: shown, not kept in the journal" if self.refusal
                else f"new journal: book starts from the broker's account {book}")
        self.alert(AlertLevel.INFO, "portfolio", said, kind="book_seeded")
        if self._others:
            n = f"{len(self._others)} execution{'s' if len(self._others) > 1 else ''}"
            said = (f"{n} of refused account {self.account_id} today left out: already in its positions, shown, not "
                    "kept in the journal" if self.refusal else f"{n} from before this journal began (earlier today) "
                    "left out: already in the broker's positions the book starts from")
            self.alert(AlertLevel.INFO, "reconcile", said, kind="executions_before_book")
            self._others = {}
        self.checkpoint_book(BOOK_SEEDED)
        self._mark_all()

    def _mark_all(self) -> None:
        for symbol in self.portfolio.open_positions():
            self.portfolio.mark(symbol, self.market.mark(symbol))

    def broker_quantities(self) -> dict[str, float]:
        """Symbol → quantity of the broker's open positions, as last streamed."""
        return {p.symbol: p.quantity for p in self.broker.positions() if p.quantity}

    def position_diffs(self) -> dict[str, tuple[float, float]]:
        """Symbol → (our quantity, the broker's) where they differ."""
        ours = {s: p.quantity for s, p in self.portfolio.open_positions().items()}
        theirs = self.broker_quantities()
        return {s: (ours.get(s, 0.0), theirs.get(s, 0.0)) for s in {*ours, *theirs}
                if abs(ours.get(s, 0.0) - theirs.get(s, 0.0)) > _QTY_EPS}

    def check_positions(self) -> dict[str, tuple[float, float]]:
        """Compare our positions with the broker's; every mismatch is said (and a trigger)."""
        diffs = self.position_diffs()
        if diffs:
            self.on_position_mismatch(diffs)
        return diffs

    # -- hooks -----------------------------------------------------------------------------------

    def on_position_mismatch(self, diffs: dict[str, tuple[float, float]]) -> None:
        """Hook: positions disagree with the broker's, ``diffs`` (symbol → ours, the broker's); the engine says it
        and applies the configured trigger."""

    def after_book_taken(self, symbols: Iterable[str]) -> None:
        """Hook after ``symbols``' positions were taken from the broker (the engine records their protection: a
        position the book did not hold had none, also with an order adopted as its stop)."""

    def positions_compared(self, diffs: dict[str, tuple[float, float]]) -> None:
        """Hook after a periodic position check compared the positions with the broker's: ``diffs`` where they
        differ (a difference not confirmed yet included)."""


def diff_text(diffs: dict[str, tuple[float, float]]) -> str:
    """Each symbol's two quantities, ours and the broker's, for an alert or a checkpoint."""
    return ", ".join(f"{s}: ours {a:g}, broker {b:g}" for s, (a, b) in sorted(diffs.items()))
