"""Engine events: immutable facts, named in the past tense, published on the event bus.

Every event carries ``time`` (timezone-aware). The journal stores each as ``kind`` plus a
JSON payload (see :func:`tui_trader.domain.codec.to_record`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import ConnectionState, OrderStatus, TradingState
from tui_trader.domain.market import Bar
from tui_trader.domain.orders import Fill, Order, OrderTicket, WhatIf
from tui_trader.domain.verdicts import RiskVerdict


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every engine event."""

    time: datetime

    @property
    def kind(self) -> str:
        """The event's type name, used as the journal's ``kind`` column."""
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class SignalGenerated(Event):
    """A strategy asked for an order; ``bars`` are the last bars it saw (oldest first), for the trace."""

    strategy: str
    ticket: OrderTicket
    bars: tuple[Bar, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderDenied(Event):
    """The risk gate (or the trading state) refused a ticket; a denial is never silent."""

    ticket: OrderTicket
    verdict: RiskVerdict
    order_ref: str = ""


@dataclass(frozen=True, slots=True)
class OrderChecked(Event):
    """The risk gate passed an order right before it was sent (its verdict, check by check).

    ``stage`` is ``"pre-trade"`` when no approval was needed (the gate's verdict is the send
    check), ``"re-check"`` after an approval (prices moved while the modal was open), or
    ``"modify"`` when a working order is re-placed with new figures.
    """

    order_ref: str
    verdict: RiskVerdict
    stage: str = "pre-trade"


@dataclass(frozen=True, slots=True)
class ApprovalRequested(Event):
    """An order waits for the operator; it expires at ``expires_at`` (expiry means deny)."""

    order: Order
    verdict: RiskVerdict
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WhatIfAnswered(Event):
    """The broker's what-if of an order waiting for approval: its figures, or why there are none."""

    order_ref: str
    what_if: WhatIf | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalResolved(Event):
    """The operator approved or rejected an order, or its approval expired."""

    order_ref: str
    approved: bool
    by: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class OrderUpdated(Event):
    """An order changed state (the order carries its new status and history)."""

    order: Order
    previous: OrderStatus | None = None


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    """An execution was recorded (once per exec id)."""

    fill: Fill
    order: Order | None = None


@dataclass(frozen=True, slots=True)
class CommissionReported(Event):
    """The broker reported the commission of an execution."""

    exec_id: str
    commission: float
    realized_pnl: float | None = None


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    """The trading state changed; ``by`` names who or what changed it."""

    previous: TradingState
    state: TradingState
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class KillSwitchEngaged(Event):
    """The kill switch was engaged (latched until an explicit reset).

    ``cancelled`` and ``remaining`` are set only in journals written before :class:`KillChecked`
    (2026-11-22), where a failed verification was journaled as a second engagement carrying them.
    """

    by: str
    reason: str
    cancelled: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KillLatchTaken(Event):
    """The engine acted on a kill ``tui-trader kill`` latched in the journal (halted, cancels sent): not a
    second kill. The command's own KillSwitchEngaged and OperatorAction are that kill's record.

    ``again``: the switch was engaged already (an automatic trip that kept the positions' protection): the
    latch makes it cancel everything in scope, as the operator's Ctrl+K does.
    """

    by: str
    reason: str
    again: bool = False


@dataclass(frozen=True, slots=True)
class KillReport:
    """What cancels of working orders did (a kill's, a cancel-all's), as the broker was asked afterwards.

    ``checked`` False: the broker could not be asked (disconnected, or its answer did not come), so
    nothing is verified; ``remaining`` then lists only what the engine itself still tracks as working.
    """

    cancelled: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()
    checked: bool = False
    kept: tuple[str, ...] = ()
    """The positions' protective orders (reduce-only: stops, targets, working exits) an automatic trip left
    working on purpose; not counted as remaining (a Ctrl+K cancels them)."""

    @property
    def verified(self) -> bool:
        """The broker was asked, and nothing asked to cancel, nor anything else in scope, still works."""
        return self.checked and not self.remaining


@dataclass(frozen=True, slots=True)
class KillChecked(Event):
    """The broker was asked what still works after a kill's cancels, or after a connect with the kill latched
    (``report.checked`` False: it could not be asked)."""

    report: KillReport
    superseded: bool = False
    """A later kill was decided before this check came (Ctrl+K during an automatic trip's check, a reset and
    another trip): it reports on the cancels of a kill no longer the latest, whose own check follows or came
    already. The console's banner keeps showing (or waiting for) the latest kill's."""


@dataclass(frozen=True, slots=True)
class KillSwitchReset(Event):
    """The kill switch was released by an operator with a typed reason."""

    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class AlertRaised(Event):
    """An alert for the operator."""

    alert: Alert


@dataclass(frozen=True, slots=True)
class ConnectionChanged(Event):
    """The broker connection changed state, from ``previous`` (the engine fills it where the state changes).

    Its readers (the console, the notifier) take "was the link up before?" from ``previous`` instead of each
    inferring it from the events it happened to see. Journal rows written before the field load with
    DISCONNECTED, the state an engine starts in.
    """

    state: ConnectionState
    detail: str = ""
    previous: ConnectionState = ConnectionState.DISCONNECTED


@dataclass(frozen=True, slots=True)
class OperatorAction(Event):
    """Something the operator did: who, what, why, and the state before and after; ``order_ref`` the order it
    was done to, if any (a cancel, a modify: the journal indexes it with the order's other events)."""

    who: str
    action: str
    why: str
    before: str = ""
    after: str = ""
    order_ref: str = ""


@dataclass(frozen=True, slots=True)
class ModifyRefused(Event):
    """The broker refused a modification of ``order_ref`` (the operator's or the engine's): ``asked``, the figures
    it was sent to (:func:`~tui_trader.domain.orders.figures`); ``held``, the ones the order is at instead; ``code``
    and ``message``, the broker's words. The operator's ``modify_order`` action is not what happened then: the report
    and the trace say it was refused."""

    order_ref: str
    code: int
    message: str
    asked: str
    held: str


@dataclass(frozen=True, slots=True)
class OrderNotSent(Event):
    """An approved order was stopped before the wire: dry run, kill switch, journal failure.

    In a dry run this records the order exactly as it would have been sent.
    """

    order: Order
    reason: str
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class MessagesSent(Event):
    """Order messages the engine put on the wire to the broker, as its message throttle counted them.

    ``action``: ``"place"`` (an order's placeOrder messages, a bracket's family one each), ``"modify"``
    (a working order re-placed, its resized exits with it) or ``"cancel"`` (cancelOrder messages, or a
    global cancel); ``ticket``: what the duplicate check remembered (the order placed, its new figures),
    none for a cancel. The journal keeps them so that a restart seeds the throttle and the duplicate
    check with what the run before it sent (a crash loop must not get a fresh budget per restart).
    """

    action: str
    count: int = 1
    order_ref: str = ""
    ticket: OrderTicket | None = None


@dataclass(frozen=True, slots=True)
class BookCheckpointed(Event):
    """The engine's book (cash, positions, P&L) as of this point of the journal.

    On start the engine restores the book from the last checkpoint plus the fills and
    commissions journaled after it, then reconciles that with the broker. ``state`` is the
    portfolio's JSON-ready state; ``reason`` says why it was written (first start, adjustment
    to the broker after a difference, clean stop).
    """

    state: dict[str, Any]
    reason: str = ""


BOOK_SEEDED = "first start: seeded from the broker"
"""The :attr:`BookCheckpointed.reason` of the checkpoint a new journal's book begins with: the broker's positions
(at its average costs) and cash, at the first reconciliation. Executions from before it are in those positions, not
the journal's fills; its ``state`` names those the broker reported then under :data:`EXECUTIONS_BEFORE`."""

BOOK_PERIODIC = "periodic: the book moved"
"""The :attr:`BookCheckpointed.reason` of the checkpoints written while the book moves (its marks, a fill): the book as
the fills journaled before it make it, never a position taken from the broker, so a walk of the journal's book
adjustments reads past them (:meth:`~tui_trader.store.queries.JournalQueries.book_adjustments`): they are most of a
journal's checkpoints, one every ``book_checkpoint_s`` while positions are held."""

EXECUTIONS_BEFORE = "executions_before"
"""The key of a checkpoint's ``state`` listing the ids of the executions left out of the book as another run's: from
before the book began (the seed's; absent in a journal seeded before it was written), or of orders a restored journal
did not know at a start (later checkpoints carry them all for the day)."""
