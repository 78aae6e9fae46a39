"""ApprovalModal: one pending order with its plan, every risk check, drift and a countdown.

The checks, the price and the drift are as of now (the engine checks the order again with each
snapshot while it waits, and once more when it is approved), not as of when the order was queued.

Focus starts on Reject; ``y`` approves, ``n`` or Escape rejects. The main screen opens one
modal at a time and shows how many more wait; when the order stops being pending (approved
elsewhere, expired, cancelled by the kill switch) the modal closes itself. The title says whose order it
is (the operator's ticket, or which strategy's), before ``y``.

The title, the countdown and the buttons stay in view at any terminal size (80x24 too); the plan, the checks
and the drift scroll between them (PageUp/PageDown). The modal has its own footer: the keys it takes, not
the main screen's (its ``n`` rejects here, it does not open a ticket).

The modal opens when the engine asks, over the main screen and whatever the operator is doing there
(typing a filter, say); while a form or dialog is open it waits, said in a notice, and opens once that
closes. Approve works only once no key has been pressed for ``approve_delay_s`` since it
was first drawn (as browsers delay the accept button of a dialog that pops up, and restart the delay while
keys come): a ``y`` meant for the screen underneath never sends an order, however long the operator goes on
typing, nor however late the first frame reaches the terminal (a slow machine, a slow SSH link). The wait
starts again when the modal is drawn again after a screen that covered it closes, and
Enter or space on the focused button waits with Approve: a bounced Enter that submitted the order ticket
does not reject the order it submitted. Reject by ``n`` or Escape works at once; a stray one can only keep
an order off the market.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Button, Label, Static

from tui_trader.domain.enums import Side
from tui_trader.domain.orders import MANUAL, NOT_STRATEGY_NAMES, OrderTicket
from tui_trader.domain.portfolio import Position
from tui_trader.domain.verdicts import CheckResult, figure
from tui_trader.engine.snapshots import PendingApproval
from tui_trader.ui.format import DASH, age, is_num, money, pct, price, qty
from tui_trader.ui.modals.dialog import Dialog
from tui_trader.ui.widgets.footer import KeyFooter
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.rows import Column, Row

CHECK_COLUMNS = (
    Column("Check", 18, flex=True),  # narrower than most names: at 80 columns the flex share gives them 20
    Column("Value", 15, right=True, figures=True),  # "0.00496x equity", "$1,000,000.00"
    Column("Limit", 15, right=True, figures=True),
    Column("Headroom", 15, right=True, priority=1, figures=True),
    Column("", 4),
)


def check_row(check: CheckResult) -> Row:
    """One risk check: value / limit / headroom and pass or FAIL."""
    cells = (check.name + (f": {check.message}" if check.message and not check.passed else ""),
             figure(check.value, check.unit), figure(check.limit, check.unit), figure(check.headroom, check.unit),
             "ok" if check.passed else "FAIL")
    role = "pos" if check.passed else "crit"
    low = check.headroom is not None and check.limit and check.headroom < 0.2 * abs(check.limit)
    return Row(check.name, cells, ("", "", "dim", "warn" if low else "", role))


def order_line(ticket: OrderTicket) -> str:
    """The order in words: side, quantity, symbol, type and its prices (``BUY 100 AAPL LMT limit 210.50``)."""
    prices = (f"limit {price(ticket.limit_price)}" if ticket.limit_price else "",
              f"stop {price(ticket.stop_price)}" if ticket.stop_price else "")
    return " ".join(w for w in (ticket.side.value, qty(ticket.quantity), ticket.symbol, ticket.order_type.value,
                                *prices) if w)


WHOSE = {MANUAL: "YOUR TICKET", "flatten": "your flatten", "adopted": "adopted from the broker",
         "max_holding": "maximum holding time exit"}
"""Whose order it is, for the orders no strategy signalled."""


def whose(ticket: OrderTicket) -> str:
    """Whose order this is: the operator's ticket, a flatten, or which strategy's."""
    return WHOSE.get(ticket.strategy) or f"strategy {ticket.strategy}"


def exit_text(ticket: OrderTicket, position: Position | None) -> str:
    """What a reduce-only order does to the position held now (as of the snapshot)."""
    held = position.quantity if position is not None else 0.0
    if held == 0 or (held > 0) == (ticket.side is Side.BUY):
        return f"reduce-only: no {ticket.symbol} position it would reduce (the risk gate denies it)"
    side, size = ("LONG" if held > 0 else "SHORT"), abs(held)
    if ticket.quantity >= size - 1e-9:
        return f"closes {side} {qty(size)} {ticket.symbol}"
    return f"reduces {side} {qty(size)} {ticket.symbol} to {qty(size - ticket.quantity)}"


def plan_text(ticket: OrderTicket, pending: PendingApproval, position: Position | None = None) -> str:
    """The order in one paragraph: what, how much, at what price, what it does to a position, why.

    A reduce-only order (a strategy's exit, a close) says which position it closes and has no bracket line:
    it opens nothing to protect ("bracket: none (no protective stop)" read as a warning about an exit).
    """
    lines = [f"{order_line(ticket)} {ticket.tif.value}"]
    if ticket.reduce_only:
        lines.append(exit_text(ticket, position))
    lines.append(f"notional ≈ {money(pending.est_notional)} · commission ≈ {money(pending.est_commission)}")
    if ticket.bracket is not None:
        b = ticket.bracket
        stop = f"stop {price(b.stop_price)}"
        if b.trails:  # placed as a TRAIL order: it follows the price from there
            behind = f"{b.trail_percent:g}%" if b.trail_percent else price(b.trail_amount)
            stop = f"trailing stop {behind} behind the price, starting at {price(b.stop_price)}"
        lines.append(f"bracket: {stop} · target {price(b.take_profit_price)} (GTC: kept overnight)")
    elif not ticket.reduce_only:
        lines.append("bracket: none (no protective stop)")
    if ticket.strategy == MANUAL:
        lines.append("your ticket, typed in this console")
    else:
        lines.append(f"{whose(ticket)}: {ticket.reason or DASH}")
    return "\n".join(lines)


def drift_text(ticket: OrderTicket, pending: PendingApproval) -> str:
    """Price drift since a strategy's signal (the price now, for an order no strategy signalled: a ticket's
    "signal" was the mark when it was submitted), and the what-if margin impact when the broker gave one."""
    signal, now = ticket.signal_price, pending.reference_price
    if ticket.strategy in NOT_STRATEGY_NAMES:
        drift = f"price now {price(now)}"
    elif is_num(signal) and signal > 0 and is_num(now):
        drift = f"drift since signal {pct((now - signal) / signal * 100)} ({price(signal)} → {price(now)})"
    else:
        drift = f"drift since signal: unknown (now {price(now)})"
    if pending.margin_impact is not None:
        what_if = f"what-if margin {money(pending.margin_impact, signed=True)}"
        if pending.what_if_note:  # the broker's warning about the order
            what_if += f" ({pending.what_if_note})"
    else:
        what_if = f"what-if margin: {pending.what_if_note or 'n/a'}"
    return f"{drift} · {what_if}"


ASKED_SHOWN_S = 60.0
"""An approval asked at least this long ago says so beside its countdown: one asked while live trading was not yet
armed waits with its deadline held, and gets the whole timeout from the arming
(:meth:`~tui_trader.engine.approvals.ApprovalQueue.release`), so "expires in 120s" alone read as a signal just made
when it could be minutes old."""

HELD_KEY_S = 1.0
"""The least wait of an approval that opens within this long of the operator's answer to another: the key
that answered may still be held down, and a keyboard repeats a held key after 0.25-0.66 s (660 ms is X11's
default, 500 ms the usual one), past the default ``approve_delay_s`` of 0.5 s; nobody reads an order in less."""

@dataclass
class LastAnswer:
    """When (on the modals' clock) the last approval of one queue was answered: kept by the queue's owner
    and handed to each modal it opens, so the next one can wait out a key still held (:data:`HELD_KEY_S`)."""

    at: float = -math.inf


class ApprovalModal(Dialog[bool | None]):
    """Approve or reject one order; closes itself when the order is no longer pending."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "approve", "Approve", id="approve-order", tooltip="Send this order (risk re-checks it)"),
        Binding("n", "reject", "Reject", id="reject-order", tooltip="Refuse this order"),
        Binding("escape", "reject", "Reject", show=False, id="reject-order-escape"),
    ]
    """y approves, n or Escape rejects (Ctrl+K and PageDown/PageUp, which scroll the plan and checks on a small
    terminal, are every dialog's: :class:`~tui_trader.ui.modals.dialog.Dialog`)."""

    def __init__(self, pending: PendingApproval, waiting: int, now: datetime, approve_delay_s: float = 0.5,
                 monotonic: Callable[[], float] = time.monotonic, last_answer: LastAnswer | None = None,
                 positions: Mapping[str, Position] | None = None) -> None:
        """``positions``: the account's positions by symbol, as of ``now`` (what a reduce-only order closes)."""
        super().__init__()
        self.positions: Mapping[str, Position] = positions or {}
        self._last_answer = last_answer or LastAnswer()
        self.pending = pending
        self.order_ref = pending.order.order_ref
        self.waiting = waiting
        self.now = now
        self.approve_delay_s = approve_delay_s
        self._monotonic = monotonic
        self._opened_at = monotonic()
        """When the modal opened (the held-key wait of :attr:`wait_s` is measured from here)."""
        self._quiet_since = self._opened_at
        """When the modal was drawn (first, or again once uncovered), or when the last key was pressed while
        Approve waited."""
        self._drawn = False
        """Whether the modal has been drawn since it opened or was shown again: until then Approve waits."""
        self._showing = 0
        """Counts the showings (opened, shown again): a frame awaited for an earlier one does not count."""
        self._gone = False
        """The order left the queue while another screen covered this one: it closes once shown again."""

    @property
    def ready(self) -> bool:
        """Approve works: the modal has been drawn, and no key pressed for :attr:`wait_s` since."""
        return self._drawn and self._monotonic() - self._quiet_since >= self.wait_s

    @property
    def wait_s(self) -> float:
        """``approve_delay_s``; at least :data:`HELD_KEY_S` for the next in the queue, opened by the key that
        answered the last one (a held ``y`` repeats 0.66 s later on X11: it approved this order, unseen)."""
        if 0 <= self._opened_at - self._last_answer.at < HELD_KEY_S:
            return max(self.approve_delay_s, HELD_KEY_S)
        return self.approve_delay_s

    def compose(self) -> ComposeResult:
        ticket = self.pending.order.ticket
        with Vertical(id="approval-dialog", classes="dialog"):
            yield Label(self._title(), id="approval-title", classes="dialog-title dialog-head")
            with VerticalScroll(id="approval-body", classes="dialog-body", can_focus=False):
                yield Static(self._plan(self.pending), id="approval-plan")
                table = LineTable(CHECK_COLUMNS, empty="No checks reported", id="approval-checks")
                table.show_cursor = False
                table.can_focus = False
                yield table
                yield Static(drift_text(ticket, self.pending), id="approval-drift")
            with Vertical(classes="dialog-foot"):
                yield Label(self._countdown(), id="approval-countdown")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Reject (n)", id="reject", variant="error")
                    yield Button("Approve (y)", id="approve", variant="success")
        yield KeyFooter()

    def _held(self) -> float:
        """The quantity held of the order's symbol (0 when none)."""
        position = self.positions.get(self.pending.order.ticket.symbol)
        return position.quantity if position is not None else 0.0

    def _plan(self, pending: PendingApproval) -> str:
        ticket = pending.order.ticket
        return plan_text(ticket, pending, self.positions.get(ticket.symbol))

    def on_mount(self) -> None:
        self.query_one(LineTable).set_rows([check_row(c) for c in self.pending.verdict.checks])
        self.query_one("#reject", Button).focus()
        self._wait_for_frame()

    def on_key(self, event: events.Key) -> None:
        """A key while Approve waits was meant for the screen underneath: the wait starts again, and Enter
        or space does not press the focused button (a double Enter that submitted the order ticket went on
        to reject, "by the operator", the order it had just submitted)."""
        if not self.ready:
            self._quiet_since = self._monotonic()
            if event.key in ("enter", "space"):
                event.stop()
                event.prevent_default()

    def on_screen_resume(self) -> None:
        """Shown again after a screen that covered it (a dialog opened from the command palette, Ctrl+Q's
        quit question) closed: closes if its order left the queue meanwhile, else Approve waits again, as
        when the modal opened (the keys typed a moment ago were for the screen that covered it)."""
        if self._gone:
            self.dismiss(None)
            return
        self._wait_for_frame()

    def _wait_for_frame(self) -> None:
        """Approve waits for the next frame and its delay starts there, not here: on a slow machine or SSH
        link the frame came later than the delay, and Approve was live before the order was on screen."""
        self._drawn = False
        self._showing += 1
        self._enable_approve()
        self.call_after_refresh(self._frame_drawn, self._showing)

    def _frame_drawn(self, showing: int) -> None:
        """The screen has been refreshed: the delay starts now, if that frame showed this modal on top for
        its latest showing (covered meanwhile, it waits for the frame after it is shown again)."""
        if showing != self._showing or not self.is_active:
            return
        self._drawn = True
        self._quiet_since = self._monotonic()
        self._wake()

    def _wake(self) -> None:
        """Enable Approve when its wait is over, else look again when it may be (not before it is drawn)."""
        self._enable_approve()
        if self._drawn and not self.ready:
            left = self.wait_s - (self._monotonic() - self._quiet_since)
            self.set_timer(max(left, 0.02), self._wake)

    def _enable_approve(self) -> None:
        """Approve is enabled once the delay is over, until the approval expires or the order leaves the queue."""
        self.query_one("#approve", Button).disabled = not self.ready or self.seconds_left <= 0 or self._gone

    @property
    def seconds_left(self) -> float:
        """Seconds until the approval expires (expiry means deny)."""
        return (self.pending.expires_at - self.now).total_seconds()

    def tick(self, pending: tuple[PendingApproval, ...], now: datetime,
             positions: Mapping[str, Position] | None = None) -> None:
        """Refresh the countdown and queue count (and the plan, with ``positions`` as of ``now``); close when this
        order left the queue."""
        if not self.is_mounted:
            return
        self.now = now
        held = self._held()
        if positions is not None:
            self.positions = positions
        moved = self._held() != held  # the position a reduce-only order closes (its marks are not shown here)
        mine = next((p for p in pending if p.order.order_ref == self.order_ref), None)
        if mine is None:
            self._leave()
            return
        self.waiting = len(pending) - 1
        try:
            title = self.query_one("#approval-title", Label)
            countdown = self.query_one("#approval-countdown", Label)
            if mine != self.pending or moved:  # checked again as of now, the mark or position moved, the what-if
                if mine.verdict != self.pending.verdict:
                    self.query_one(LineTable).set_rows([check_row(c) for c in mine.verdict.checks])
                self.pending = mine
                self.query_one("#approval-plan", Static).update(self._plan(mine))
                self.query_one("#approval-drift", Static).update(drift_text(mine.order.ticket, mine))
            self._enable_approve()
        except NoMatches:  # a snapshot arrived while the console tears the modal down
            return
        title.update(self._title())
        countdown.update(self._countdown())
        self.set_class(self.seconds_left <= 10, "-expiring")

    def _leave(self) -> None:
        """Close: the order is no longer pending. Covered by another screen, it closes when shown again
        (closed now, Textual would close the screen on top instead: an error modal saying trading was halted
        vanished unseen, and this one stayed behind on a rejected order)."""
        if self.is_active:
            self.dismiss(None)
            return
        self._gone = True
        try:
            self.query_one("#approve", Button).disabled = True
            self.query_one("#approval-countdown", Label).update("no longer waiting for approval — nothing to answer")
        except NoMatches:
            pass

    def _title(self) -> str:
        more = f" · {self.waiting} more waiting" if self.waiting > 0 else ""
        order = self.pending.order
        return f"APPROVE ORDER {order.order_ref} ({order.ticket.symbol}) · {whose(order.ticket)}{more}"

    def _countdown(self) -> str:
        left = self.seconds_left
        if left <= 0:
            return "EXPIRED — the order is denied"
        waited = (self.now - self.pending.requested_at).total_seconds()
        asked = f"asked {age(waited)} ago · " if waited >= ASKED_SHOWN_S else ""
        return f"{asked}expires in {left:.0f}s — no answer means deny"

    def action_approve(self) -> None:
        """Approve: the engine re-checks risk before sending (ignored before the delay is over, and once expired)."""
        if self.ready and self.seconds_left > 0 and not self._gone:
            self._answer(True)

    def action_reject(self) -> None:
        """Reject the order."""
        self._answer(False)

    def _answer(self, approve: bool) -> None:
        if self.is_active and not self.answered:
            self._last_answer.at = self._monotonic()
        self.dismiss(approve)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_approve() if event.button.id == "approve" else self.action_reject()

