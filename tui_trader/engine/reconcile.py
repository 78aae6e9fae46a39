"""Reconciliation with the broker: the run that settles every difference, and when it runs.

On start the book and the open orders are restored from the journal. Then the broker is asked what
happened: open and completed orders, executions since the last journaled one, positions and cash.
Every difference is an alert and is settled, never silently copied: fills made while the engine was away
are booked (once: they are journaled), orders the broker finished move to their final state, and a position
or cash difference adopts the broker's figure with a checkpoint naming it, then applies the configured
position-mismatch trigger. An order whose state stays unknown blocks new entries.

The orders are settled in :mod:`~tui_trader.engine.reconcile_orders`, the book (its restore from the journal,
the executions, positions and cash) in :mod:`~tui_trader.engine.reconcile_book`. This module holds the run
itself: asked for (one at a time; asked while one waits to start, folded into it; asked during one, that
one runs once more; owed when it fails), the connect's, the periodic position check between runs, and the
entry blocks a run lifts.

While connected, a position that disagrees with the broker's for two checks in a row fetches the
broker's executions first (:meth:`Reconciliation.check_positions_debounced`): a fill never heard live is booked
from them, and only what they do not explain is a mismatch. A fill still without its commission at two
checks in a row (its report lost, or sent before its execution, which ib_async then drops) fetches them
once too: the broker sends each execution's commission report again with it.
"""

from __future__ import annotations

import asyncio
import logging

from tui_trader.domain.enums import AlertLevel, OrderStatus
from tui_trader.engine.reconcile_book import diff_text
from tui_trader.engine.reconcile_orders import OrderSettlement
from tui_trader.errors import failure_words

log = logging.getLogger(__name__)
S = OrderStatus

RECONCILING_BLOCK = "reconciling"
"""The entry block a (re)connect sets and its reconciliation lifts (silently both: the link's words say it)."""


class Reconciliation(OrderSettlement):
    """The journal's book and the broker's account, made to agree."""

    _run_ended: asyncio.Event | None = None
    """Set when the running reconciliation ends (None while none runs)."""
    _reconcile_again = False
    _reconcile_asked: asyncio.Task[None] | None = None
    """The requested reconciliation spawned and not started yet (None when none waits): a request meanwhile
    is folded into it."""
    _reconcile_owed = ""
    """Why a requested reconciliation that failed was asked for ('' when none is owed): asked again at the
    next periodic check while connected (a reconnect's own reconciliation settles it too)."""
    _sweeping = False
    _mismatch_seen = 0
    """Periodic position checks in a row that found the same difference: one that changes (more sold in TWS) is
    confirmed again, and said again, from its first reading."""
    _mismatch_last: dict[str, tuple[float, float]] = {}
    """The difference the last periodic position check found (replaced, never changed in place)."""
    _no_commission: frozenset[str] = frozenset()
    """Fills without a commission at the last periodic check."""
    _commission_asked: frozenset[str] = frozenset()
    """Fills without a commission that the executions were fetched again for (once each)."""

    # -- requests --------------------------------------------------------------------------------

    @property
    def _reconciling(self) -> bool:
        """A reconciliation is running."""
        return self._run_ended is not None

    def request_reconcile(self, why: str) -> None:
        """Schedule a reconciliation; requests coalesce into at most one more run.

        A request while a requested one waits to start is folded into it: that run starts after the
        request, so it reads whatever the request was about (a kill's cancels that fills overtook are
        answered with a 10148 each, each asking). A request during a run makes that run go once more
        afterwards (it may have read the broker before what the request is about).
        """
        if self._reconciling:
            self._reconcile_again = True
        elif self._reconcile_asked is not None and not self._reconcile_asked.done():
            log.info("reconciliation asked (%s): the one about to start reads it", why)
        elif self.broker.is_connected:
            self._reconcile_asked = self.spawn(self._requested_reconcile(why), "reconcile")

    async def _requested_reconcile(self, why: str) -> None:
        """A reconciliation nobody awaits: a failure is said and owed (:meth:`_retry_owed_reconcile`),
        since what asked for it (an UNKNOWN order, a fill for an unknown order) keeps entries blocked
        until one succeeds."""
        self._reconcile_asked = None  # started: a request from now on is one it may not see
        try:
            await self.reconcile(why)
        except (ConnectionError, TimeoutError) as exc:
            self._reconcile_owed = why
            if self.broker.is_connected:  # else the reconnect reconciles, and the disconnect was said
                self.alert(AlertLevel.WARNING, "reconcile", f"reconciliation failed ({failure_words(exc)}): asked "
                           f"again at the next position check ({why})", kind="reconcile_failed")

    def _retry_owed_reconcile(self) -> bool:
        """Ask again for a requested reconciliation that failed; ``True`` when one was asked for."""
        if not self._reconcile_owed or self._reconciling or not self.broker.is_connected:
            return False
        self.request_reconcile(f"retry: {self._reconcile_owed}")
        return True

    def check_positions_debounced(self) -> None:
        """The periodic position check: a difference seen two checks in a row fetches the executions (the same
        difference: one that changed since is seen anew).

        Two in a row, because a fill and its position update may straddle one check; none while an
        order is SENDING (its fill could straddle it too) or while reconnecting or reconciling.
        """
        if self._retry_owed_reconcile():
            return
        if not self.broker.is_connected or RECONCILING_BLOCK in self.blocks or not self.book_settled:
            return
        if self.orders.with_status(S.SENDING):
            return
        diffs = self.position_diffs()
        self.positions_compared(diffs)
        self._mismatch_seen = self._mismatch_seen + 1 if diffs and diffs == self._mismatch_last else int(bool(diffs))
        self._mismatch_last = diffs
        if diffs and self._mismatch_seen == 2:
            self._sweep_fills_soon(f"positions differ from the broker's: {diff_text(diffs)}")
        else:
            self._ask_late_commissions()

    def _ask_late_commissions(self) -> None:
        """Fetch the executions once for fills still without a commission at two checks in a row."""
        missing = frozenset(self.orders.uncommissioned)
        late = sorted((missing & self._no_commission) - self._commission_asked)
        self._no_commission = missing
        self._commission_asked &= missing
        if late and self._sweep_fills_soon(f"no commission reported yet for {', '.join(late)}", late):
            self._commission_asked |= frozenset(late)

    def _sweep_fills_soon(self, why: str, commissions: list[str] | None = None) -> bool:
        """Fetch the broker's executions in a task, then conclude on the positions (they disagreed at two
        checks in a row) or, with ``commissions``, on those fills' commissions; ``True`` when started.

        An execution never heard live (a message lost on the way, or one ib_async did not emit for
        want of its order's Trade) is booked from them; the position check after it alerts on whatever
        they do not explain. Only the executions are asked for, from a few minutes before the newest
        fill: never the orders, whose completed list is the whole day's and every client's. Skipped
        while a reconciliation runs (it fetches the executions and checks the positions itself).
        """
        if self._reconciling or self._sweeping or not self.broker.is_connected:
            return False
        self._sweeping = True
        self.spawn(self._sweep_fills(why, commissions), "fill-sweep")
        return True

    async def _sweep_fills(self, why: str, commissions: list[str] | None = None) -> None:
        log.info("fetching executions: %s", why)
        try:
            await self._fetch_executions()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("executions not fetched (%r): the positions are compared as they are", exc)
            if commissions is not None:  # not answered: asked again at a later check
                self._commission_asked -= frozenset(commissions)
                return
        finally:
            self._sweeping = False
        if commissions is not None:
            self._say_unanswered(commissions)
            return
        if self.orders.with_status(S.SENDING):
            # A fill of an order on its way could straddle this comparison: not concluded here, the
            # next periodic check (2 s) fetches again.
            self._mismatch_seen = 1
            return
        self.check_positions()

    def _say_unanswered(self, exec_ids: list[str]) -> None:
        """Fills whose commission the executions fetched again did not bring either: said once."""
        unanswered = [e for e in exec_ids if (f := self.orders.fills.get(e)) is not None and f.commission is None]
        if unanswered:
            self.alert(AlertLevel.WARNING, "reconcile", f"no commission reported for {', '.join(unanswered)}, "
                       "also when the executions were asked for again: cash and P&L leave it out until it "
                       "comes", kind="commission_missing")

    async def reconcile(self, why: str, startup: bool = False,
                        before: dict[str, OrderStatus] | None = None) -> None:
        """Fetch orders and executions from the broker and settle every difference.

        An ordinary request while one runs makes that one run once more (owed, should that one fail:
        :meth:`_retry_owed_reconcile`). A connect's (``before``
        given, or ``startup``) waits for the running one to end and then runs itself: folded into it,
        its book was never settled nor its out-of-touch changes said, and its failure (which makes the
        reconnect loop try again) was lost. Only a connect's reconciliation lifts the connect's entry
        block (:data:`RECONCILING_BLOCK`).

        Args:
            why: What asked for it (logged).
            startup: The first reconciliation after a start: positions and cash are settled.
            before: Order statuses from before a (re)connect to compare against (default: as they are now).

        Raises:
            ConnectionError, TimeoutError: The broker did not answer (nothing is left half-blocked:
                the caller retries, or a requested one is owed).
        """
        if self._run_ended is not None and not startup and before is None:
            self._reconcile_again = True
            return
        while self._run_ended is not None:
            await self._run_ended.wait()
        self._run_ended = ended = asyncio.Event()
        try:
            await self._reconcile_once(why, startup, before)
            while self._reconcile_again and self.broker.is_connected:
                self._reconcile_again = False
                await self._reconcile_once("requested during a reconciliation", False, None)
        except (ConnectionError, TimeoutError):
            if self._reconcile_again:  # what asked (an UNKNOWN order) keeps entries blocked until one succeeds
                self._reconcile_owed = self._reconcile_owed or "requested during a reconciliation that failed"
            raise
        finally:
            self._run_ended, self._reconcile_again, self._settled = None, False, None
            ended.set()

    async def _reconcile_once(self, why: str, startup: bool, before: dict[str, OrderStatus] | None) -> None:
        log.info("reconciling: %s", why)
        # While connected the stream keeps delivering acks, fills and OCA cancels during the awaits
        # below: only what this run settled itself changed behind our back. After a (re)connect,
        # everything since the statuses taken before it did.
        out_of_touch = before is not None
        before = before if before is not None else self.working_statuses()
        self._settled, self._gone_away = set(), {}
        opened, asked = await self._open_orders(figures=out_of_touch)
        if self._missing(opened, [], asked):
            # Asked once more before the completed orders: a working order absent from one answer
            # may be a message that crossed the request.
            opened, asked = await self._open_orders(figures=out_of_touch)
        # The completed orders are the whole day's (thousands by the close, each a large object in
        # ib_async, all held at once: 10-30 MB of transient heap): asked for only when a working
        # order is still not an open one.
        completed = await self.broker.completed_orders() if self._missing(opened, [], asked) else []
        for report in completed:
            self._settle_report(report)
        await self._settle_missing(self._missing(opened, completed, asked))
        await self._fetch_executions()
        self._alert_changed(before, None if out_of_touch else self._settled)
        self._settled = None
        if startup:
            await self._settle_book()
        elif self.book_settled:  # else a connect's reconciliation, waiting for this one, settles the book
            if self.position_diffs():  # a fill's position update may still be on its way (see _settle_book)
                await self._await_broker_book(cash=False)
            self._conclude_positions(adopt_all=False)
        self._reconcile_owed = ""
        self._maybe_unblock(connect=out_of_touch)

    # -- entry blocks ----------------------------------------------------------------------------

    def after_order_change(self, order_ref: str) -> None:
        """The broker settled an order: lift the unknown-order block once none is left."""
        if "unknown_orders" in self.blocks and not self.orders.with_status(S.UNKNOWN):
            self.unblock("unknown_orders")

    def _maybe_unblock(self, connect: bool) -> None:
        """After a reconciliation that succeeded; ``connect``: a connect's, the one its block waits for."""
        if not self.orders.with_status(S.UNKNOWN):
            self.unblock("unknown_orders")
            self.unblock("unknown_fill")
        if connect and self.broker.is_connected:  # set silently, lifted so (Recovery._say_lost_link_over)
            self.unblock(RECONCILING_BLOCK, silent=True)
