"""MainScreen: the status bar, the kill banner and the seven panes; it routes engine output.

The bridge posts snapshots and event batches here. ``watch_snapshot`` draws every pane from
one frozen snapshot (at the refresh rate, never per tick) and keeps the approval modal and the
live preflight up to date; ``on_engine_events`` records alerts and kill reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import LINK_UP, AlertLevel, ConnectionState
from tui_trader.domain.events import (
    AlertRaised,
    ApprovalRequested,
    ConnectionChanged,
    Event,
    KillChecked,
    KillLatchTaken,
    KillSwitchEngaged,
    OrderFilled,
    TradingStateChanged,
)
from tui_trader.domain.orders import MANUAL
from tui_trader.engine.collector import freeze_startup_heap
from tui_trader.engine.handle import EngineHandle
from tui_trader.engine.snapshots import EngineSnapshot, PendingApproval
from tui_trader.errors import TraderError
from tui_trader.ui.alert_pairs import Pairing, trading_pairing
from tui_trader.ui.compositor import DirtyBandCompositor
from tui_trader.ui.format import qty
from tui_trader.ui.freshness import assess
from tui_trader.ui.messages import EngineEvents, EventsDropped, SnapshotPulled
from tui_trader.ui.modals.approval import HELD_KEY_S, ApprovalModal, LastAnswer
from tui_trader.ui.options import Clock, ConsoleOptions
from tui_trader.ui.screens.main_actions import COMPACT_HIDDEN, MainActions
from tui_trader.ui.screens.preflight import PreflightScreen
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.channels import ChannelsStrip
from tui_trader.ui.widgets.connectivity import ConnectivityPane
from tui_trader.ui.widgets.footer import KeyFooter
from tui_trader.ui.widgets.health import HealthPane
from tui_trader.ui.widgets.orders import OrdersPane
from tui_trader.ui.widgets.pnl import PnLPane
from tui_trader.ui.widgets.positions import PositionsPane
from tui_trader.ui.widgets.status_bar import KillBanner, StatusBar
from tui_trader.ui.widgets.watchlist import WatchlistPane

COMPACT_WIDTH = 120
W = TypeVar("W", bound=Widget)
COMPACT_HEIGHT = 34
SETTLED_DRAWS = 5
"""Draws after which the screen's long-lived render state is built (half a second at 10 Hz)."""
CONNECTION_ALERT_LEVEL = {
    ConnectionState.CONNECTING: AlertLevel.INFO,
    ConnectionState.CONNECTED: AlertLevel.INFO,
    ConnectionState.DEGRADED: AlertLevel.WARNING,
}
"""The alert of each connection change the console says itself (the start's connect, the link made): a normal
start (connecting, connected, farms OK) is no warning; a trader who sees five warnings on every start learns to
ignore them."""


class MainScreen(MainActions):
    """The operator console's main screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_order", "Order", id="new-order", tooltip="New order ticket (risk + approval)"),
        Binding("x", "cancel_order", "Cancel", id="cancel-order", tooltip="Cancel the selected order"),
        Binding("e", "modify_order", "Modify", show=False, id="modify-order",
                tooltip="Modify the selected working order: quantity, limit, stop"),
        Binding("X", "cancel_all", "Cancel all", id="cancel-all", tooltip="Cancel every working order"),
        Binding("f", "flatten", "Flatten", id="flatten", tooltip="Preview, then close every position"),
        Binding("p", "pause_strategy", "Pause", id="pause-strategy", tooltip="Pause or resume a strategy"),
        Binding("r", "toggle_reducing", "Reducing", id="toggle-reducing", tooltip="REDUCING on/off"),
        Binding("slash", "filter", "Filter", id="filter", key_display="/",
                tooltip="Filter the orders or alerts pane"),
        Binding("t", "trace_order", "Trace", show=False, id="trace-order",
                tooltip="Trace the selected order: its whole story from the journal, exportable"),
        Binding("m", "maximize_pane", "Max", id="maximize-pane", tooltip="Maximise or restore the pane"),
        Binding("1", "focus_pane(1)", "Watch", show=False, id="focus-watchlist", tooltip="Focus watchlist"),
        Binding("2", "focus_pane(2)", "Pos", show=False, id="focus-positions", tooltip="Focus positions"),
        Binding("3", "focus_pane(3)", "Orders", show=False, id="focus-orders", tooltip="Focus orders"),
        Binding("4", "focus_pane(4)", "Alerts", show=False, id="focus-alerts", tooltip="Focus alerts"),
        Binding("5", "focus_pane(5)", "P&L", show=False, id="focus-pnl", tooltip="Focus P&L and risk"),
        Binding("6", "focus_pane(6)", "Conn", show=False, id="focus-connectivity", tooltip="Focus connectivity"),
        Binding("7", "focus_pane(7)", "Health", show=False, id="focus-health", tooltip="Focus health"),
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, id="next-pane", tooltip="Cycle panes"),
        Binding("shift+tab", "cycle_pane(-1)", "Prev pane", show=False, id="previous-pane",
                tooltip="Cycle panes backwards"),
    ]
    """Trading and navigation keys of the main screen (the kill switch is an App binding)."""

    snapshot: reactive[EngineSnapshot | None] = reactive(None, always_update=True, init=False, repaint=False)
    """The latest engine snapshot; every pane is drawn from it (no repaint of the whole screen:
    the panes refresh only the lines that changed)."""

    armed: reactive[bool] = reactive(True, repaint=False)
    """False while a live session waits for its preflight: no approval modal opens."""

    def __init__(self, handle: EngineHandle, options: ConsoleOptions, clock: Clock) -> None:
        super().__init__(id="main-screen")
        self._compositor = DirtyBandCompositor()  # a frame renders only the changed bands (ui/compositor.py)
        self.handle = handle
        self.options = options
        self.clock = clock
        self.approval: ApprovalModal | None = None
        self._deferred: set[str] = set()
        """Approvals said to be waiting for a form or dialog to close (each said once)."""
        self._last_answer = LastAnswer()
        """When the operator last answered an approval: the next one waits out a held key, and so does ``n``."""
        self._swallowed_at = -math.inf
        """When an ``n`` was last taken as the approval's answer key still held (it opened no ticket)."""
        self.submitting = 0
        """Tickets whose submit is under way: no approval opens meanwhile, so the ticket's own is the first."""
        self.approval_clock: Callable[[], float] = time.monotonic
        """The approvals' clock, for their approve delay and held-key wait (tests step one by hand: on the
        wall clock, a machine slower than the delay let a test's early 'y' through)."""
        self.preflight: PreflightScreen | None = None
        self._parts: dict[type[Widget], Widget] = {}
        self._drawn = 0
        self._taken = -1.0
        """When the screen last took a snapshot itself (``time.monotonic()``): pulls taken earlier are stale."""
        self._link_heard = False
        """Whether a connection change came yet: the first CONNECTING is the start's, later ones retries."""

    def compose(self) -> ComposeResult:
        with Vertical(id="top"):
            yield StatusBar(id="status-bar")
            yield KillBanner()
        with Grid(id="panes"):  # the compact layout shows positions, orders and alerts; the others open maximised
            yield WatchlistPane().add_class(COMPACT_HIDDEN)
            yield PositionsPane()
            yield OrdersPane()
            yield AlertsPane()
            yield PnLPane(self.options.limits).add_class(COMPACT_HIDDEN)
            with ConnectivityPane().add_class(COMPACT_HIDDEN):
                yield ChannelsStrip()  # notification channels, under the broker link
            yield HealthPane(self.options).add_class(COMPACT_HIDDEN)
        yield Input(placeholder="filter (Enter to apply, Esc to clear)", id="filter-input")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#filter-input").display = False
        self.query_one("#positions-table").focus()

    def on_resize(self) -> None:
        compact = self.size.width < COMPACT_WIDTH or self.size.height < COMPACT_HEIGHT
        self.set_class(compact, "-compact")

    def on_snapshot_pulled(self, message: SnapshotPulled) -> None:
        # A pull queued before a command's own refresh (or Ctrl+K's) must not draw the state before it:
        # the status bar back to ACTIVE after a kill, an approved order's modal opening again.
        if message.taken >= self._taken:
            self.snapshot = message.snapshot

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        now = self.clock()
        fresh = assess(snapshot, now, self.options)
        part = self.part
        part(StatusBar).show(snapshot, fresh, now)
        part(KillBanner).show(snapshot)
        part(WatchlistPane).show(snapshot, fresh)
        part(PositionsPane).show(snapshot, fresh)
        part(OrdersPane).show(snapshot, fresh)
        part(PnLPane).show(snapshot, fresh)
        part(ConnectivityPane).show(snapshot, fresh, now)
        part(ChannelsStrip).show(snapshot.notifications, snapshot.time_zone)
        part(HealthPane).show(snapshot, now, fresh.engine_stalled)
        alerts = part(AlertsPane)
        alerts.zone = snapshot.time_zone
        alerts.show(now)
        self.set_class(snapshot.kill_engaged, "-halted")
        if self.preflight is not None:
            self.preflight.show(snapshot, fresh)
        self._approvals(snapshot, now)
        self._refresh_screens_between()
        self._drawn += 1
        if self._drawn == SETTLED_DRAWS:
            # What the first draws built (Textual's line caches, strips and styles, tens of
            # thousands of objects living as long as the screen) is frozen too: unfrozen, each
            # full pass walked them again, 6-11 ms of a frame against 2.5-3 ms.
            self.call_after_refresh(freeze_startup_heap)

    def part(self, kind: type[W]) -> W:
        """The screen's one widget of type ``kind``, looked up once (every refresh draws them all)."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = self.query_one(kind)
        return found  # type: ignore[return-value]

    def on_engine_events(self, message: EngineEvents) -> None:
        pane = self.part(AlertsPane)
        for event in message.events:
            if isinstance(event, AlertRaised):
                pane.add([event.alert])
            elif isinstance(event, ConnectionChanged):
                if (alert := self._connection_alert(event)) is not None:
                    pane.add([alert])
            elif said := self._on_event(event):
                pane.add_paired(*said)

    def _on_event(self, event: Event) -> tuple[Alert, Pairing | None] | None:
        """Side effects of one event; returns the console's alert for it, with the engine alert it goes with
        (:mod:`~tui_trader.ui.alert_pairs`: the two are one row)."""
        # The engine raises the alerts that go with these (the engagement, orders still working): one line each.
        if isinstance(event, KillSwitchEngaged) or (isinstance(event, KillLatchTaken) and not event.again):
            self.query_one(KillBanner).engage(event.time)
        elif isinstance(event, KillLatchTaken):  # on top of a trip: cancels sent again, as a Ctrl+K's
            self.query_one(KillBanner).check_pending(event.time)
        elif isinstance(event, KillChecked):
            self.query_one(KillBanner).record_check(event)
        elif isinstance(event, TradingStateChanged):
            text = f"{event.previous.value} → {event.state.value} by {event.by}: {event.reason}"
            return self._alert(AlertLevel.WARNING, text, event.time), trading_pairing(event)
        elif isinstance(event, ApprovalRequested):
            self.app.call_later(self.request_refresh)
        elif isinstance(event, OrderFilled):
            zone = self.snapshot.time_zone if self.snapshot else ""
            self.part(StatusBar).show_fill(event.fill, zone)
        return None

    def _connection_alert(self, event: ConnectionChanged) -> Alert | None:
        """The console's alert for a connection change: the start's connect, and the link made. Every other change
        the engine says in an alert of its own (one producer for one thing that happened): a failed connect and when
        it tries again (once an outage, not at each try), a lost link, a broken farm or link to IB's servers and
        their recovery. ``previous`` (from the engine) says whether the link was up before."""
        first, self._link_heard = not self._link_heard, True
        if event.state is ConnectionState.CONNECTING:
            said = first  # later: a try again, which the engine said it would make, and when
        else:
            said = event.state in LINK_UP and event.previous not in LINK_UP  # the link made
        if not said:
            return None
        level = CONNECTION_ALERT_LEVEL[event.state]
        return self._alert(level, f"connection {event.state.value} {event.detail}".strip(), event.time)

    def _alert(self, level: AlertLevel, text: str, when: datetime | None = None) -> Alert:
        return Alert(level=level, source="console", text=text, time=when or self.clock())

    def console_alert(self, level: AlertLevel, text: str) -> None:
        """Record an alert raised by the console itself."""
        self.query_one(AlertsPane).add([self._alert(level, text)])

    def on_events_dropped(self, message: EventsDropped) -> None:
        self.query_one(HealthPane).drops = message.total
        self.console_alert(AlertLevel.WARNING, f"console fell behind: {message.total} events dropped")

    def _refresh_screens_between(self) -> None:
        """Refresh the screens between this one and the screen on top, when there are any.

        Textual repaints a screen seen through one modal, but not one seen through two: the modal in
        between keeps the picture of this screen it had. An approval over the order ticket froze the
        panes and the clock behind both until one closed. Refreshing the screens in between makes the
        one on top draw this screen as it is now.
        """
        stack = self.app.screen_stack
        if len(stack) < 3 or stack[-1] is self or self not in stack:
            return
        for screen in stack[stack.index(self) + 1:-1]:
            screen.refresh()

    def show_state_now(self) -> None:
        """Draw the status bar from a fresh snapshot; the banner and panes wait for the timer.

        Used right after Ctrl+K: HALTED is on screen at once (one line repainted), and the
        cancels the kill scheduled are not queued behind a redraw. The banner would be: it
        pushes the panes down, which lays out and repaints the whole screen.
        """
        self._taken = time.monotonic()
        snapshot = self.handle.snapshot()
        self.set_reactive(MainScreen.snapshot, snapshot)  # commands see it; drawing waits
        now = self.clock()
        self.part(StatusBar).show(snapshot, assess(snapshot, now, self.options), now)
        self._approvals(snapshot, now)  # the kill rejected them: an open approval closes now

    def request_refresh(self) -> None:
        """Pull a snapshot now (after a command) instead of waiting for the timer."""
        self._taken = time.monotonic()
        self.snapshot = self.handle.snapshot()

    def _approvals(self, snapshot: EngineSnapshot, now: datetime) -> None:
        """Keep the open approval up to date, or open the next one: the operator's own tickets first.

        A strategy's approval opened over a ticket just submitted (Ctrl+S), and the ``y`` meant for the ticket
        approved the strategy's order: none opens while a ticket's submit is under way, and then the tickets'
        approvals come before the strategies' (each modal's title says whose order it is).
        """
        if self.approval is not None:
            self.approval.tick(snapshot.pending_approvals, now, snapshot.account.positions)
            return
        live = sorted((p for p in snapshot.pending_approvals if p.expires_at > now),
                      key=lambda p: p.order.ticket.strategy != MANUAL)  # stable: queue order within each
        if not self.armed or not live or self.submitting:
            return
        if self.app.screen is not self:
            # A form or dialog is open (a ticket being typed, say): its keys are not for an approval, and an
            # approval opened over it took them (a 'n' typed into a symbol rejected an order). It waits.
            self._say_deferred(live, now)
            return
        self.approval = ApprovalModal(live[0], len(snapshot.pending_approvals) - 1, now,
                                      approve_delay_s=self.options.approve_delay_s, monotonic=self.approval_clock,
                                      last_answer=self._last_answer, positions=snapshot.account.positions)
        self.app.push_screen(self.approval, partial(self._answered, live[0].order.order_ref))

    def _say_deferred(self, live: list[PendingApproval], now: datetime) -> None:
        for item in live:
            if item.order.order_ref not in self._deferred:
                t = item.order.ticket
                left = (item.expires_at - now).total_seconds()
                self.notify(f"{t.side.value} {qty(t.quantity)} {t.symbol} waits for approval: it opens when this "
                            f"dialog closes (expires in {left:.0f}s; no answer means deny)",
                            title="Approval waiting", severity="warning")
        self._deferred = {item.order.order_ref for item in live}  # only those still waiting are remembered

    def answer_key_held(self) -> bool:
        """Whether a key now is the one that answered the last approval, still held or bounced: pressed within
        :data:`HELD_KEY_S` of that answer, or of the last key taken so. ``n`` rejects an approval; the
        repeats of a held ``n`` (or the rest of a burst) that reached this screen once the queue was empty
        opened a new-order ticket nobody asked for."""
        now = self.approval_clock()
        if now - max(self._last_answer.at, self._swallowed_at) >= HELD_KEY_S:
            return False
        self._swallowed_at = now
        return True

    def _answered(self, order_ref: str, answer: bool | None) -> None:
        self.approval = None
        if answer is not None:
            self._answer(order_ref, answer)
        self.request_refresh()

    def _answer(self, order_ref: str, approve: bool) -> None:
        """Send the operator's answer; one the engine no longer waits for is said, not raised.

        The engine may have resolved the approval since the last snapshot (it expired, the kill
        switch or a cancel rejected it): it then raises ``KeyError``, which escaped this callback
        and closed the console. It is an :class:`~tui_trader.errors.UnknownOrderError`, a ``TraderError``
        too: taken as a ``KeyError`` first, or it reads as a bare refusal.
        """
        try:
            (self.handle.approve if approve else self.handle.reject)(order_ref)
        except KeyError:
            order = next((o for o in self.handle.snapshot().orders if o.order_ref == order_ref), None)
            status = order.status.value if order is not None else "no longer tracked"
            text = (f"{'approve' if approve else 'reject'} of {order_ref} not taken: the order no longer "
                    f"waited for approval (now {status})")
            self.console_alert(AlertLevel.WARNING, text)
            self.notify(text, title="Approval", severity="warning")
        except TraderError as exc:
            self.refused(exc)
