"""The main screen's commands: tickets, cancels, flatten, strategies, REDUCING, filters, panes.

Every engine call goes through ``EngineHandle``. Awaited calls run as App workers (never
``exclusive``: one order must never cancel another's submission) so the App's single
``Worker.StateChanged`` handler sees a crash; expected refusals (``TraderError``) become an
alert and a notification instead, and so does a command whose answer the engine process took
with it when it died (the App's crash handling reports the death itself, from the event pump).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.widgets import Input

from tui_trader.domain.enums import AlertLevel, TradingState
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.errors import EngineDiedInFlight, TraderError
from tui_trader.ui.modals.flatten import FlattenModal
from tui_trader.ui.modals.modify_order import Modification, ModifyOrderModal
from tui_trader.ui.modals.order_ticket import OrderTicketModal
from tui_trader.ui.modals.strategies import StrategyModal
from tui_trader.ui.screens.trace import TraceScreen
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.orders import OrdersPane
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.positions import PositionsPane

if TYPE_CHECKING:
    from textual.widget import Widget

    from tui_trader.engine.handle import EngineHandle
    from tui_trader.engine.snapshots import EngineSnapshot
    from tui_trader.ui.options import Clock

PANE_IDS = ("watchlist", "positions", "orders", "alerts", "pnl", "connectivity", "health")
COMPACT_HIDDEN = "compact-hidden"
"""The class of the panes the compact layout (``MainScreen.-compact`` in app.tcss) does not show: they open
maximised."""


class MainActions(Screen[None]):
    """Actions of :class:`~tui_trader.ui.screens.main.MainScreen` (kept apart to stay readable)."""

    handle: EngineHandle
    snapshot: EngineSnapshot | None
    clock: Clock
    _back_to: Widget | None = None
    """Where focus returns when a pane the compact layout hides is restored (the pane it was opened from)."""
    submitting: int

    def console_alert(self, level: AlertLevel, text: str) -> None:
        """Implemented by the main screen."""
        raise NotImplementedError

    def request_refresh(self) -> None:
        """Implemented by the main screen."""
        raise NotImplementedError

    def guard(self, call: Callable[..., Any], *args: Any) -> bool:
        """Call a synchronous handle command; an engine refusal becomes an alert."""
        try:
            call(*args)
        except TraderError as exc:
            self.refused(exc)
            return False
        return True

    def refused(self, exc: TraderError) -> None:
        """Tell the operator the engine refused a command (or died after taking it: its outcome is unknown)."""
        if isinstance(exc, EngineDiedInFlight):
            self.outcome_unknown(exc.message)
            return
        self.console_alert(AlertLevel.ERROR, f"{exc.title}: {exc.message}")
        self.notify(exc.message, title=exc.title, severity="error")

    def outcome_unknown(self, what: str) -> None:
        """Tell the operator a command was sent and never answered (``what``: which, and that its outcome is
        unknown): it may have been carried out."""
        text = f"{what} — check the orders at the broker"
        self.console_alert(AlertLevel.CRITICAL, text)
        self.notify(text, title="Outcome unknown", severity="error", timeout=30)

    def command(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        """Run an awaited engine command as an App worker."""
        async def run() -> None:
            try:
                await work()
            except EngineDiedInFlight:
                self.outcome_unknown(f"{name}: the engine process died before answering; whether it was carried "
                                     "out is unknown")
            except TraderError as exc:
                self.refused(exc)
            self.request_refresh()

        self.app.run_worker(run(), name=name, group="commands", exit_on_error=False)

    def answer_key_held(self) -> bool:
        """Implemented by the main screen."""
        raise NotImplementedError

    def action_new_order(self) -> None:
        """Open a ticket (prefilled with the selected position's symbol); not for an ``n`` that was the
        approval's reject key, still held or bounced (:meth:`answer_key_held`)."""
        if self.answer_key_held():
            return
        symbol = self.query_one(PositionsPane).selected_symbol or ""
        known = self.snapshot.quotes if self.snapshot else ()
        ticket = OrderTicketModal(self.handle.preview, symbol, self.handle.what_if, self.handle.watch, known)
        self.app.push_screen(ticket, self._submit_ticket)

    def _submit_ticket(self, ticket: OrderTicket | None) -> None:
        """Submit the ticket; no approval opens until the engine has taken it (its own then opens first)."""
        if ticket is None:
            return

        async def submit() -> None:
            try:
                await self.handle.submit(ticket)
            finally:
                self.submitting -= 1

        self.submitting += 1  # now: a snapshot drawn before the worker starts opens no approval either
        self.command(f"submit {ticket.symbol}", submit)

    def selected_order(self) -> str | None:
        """The order under the orders pane's cursor, while that pane has the focus (else ``None``).

        x, e and t act on the row the operator sees selected: a trader in the positions pane pressing x
        cancelled the order the orders pane's cursor had been left on, which nothing there showed selected.
        """
        pane = self.query_one(OrdersPane)
        focused = self.focused
        return pane.selected_ref if focused is not None and pane in focused.ancestors_with_self else None

    def _no_order_selected(self, working: str = "") -> None:
        """Say that ``x``, ``e`` and ``t`` act on the order selected in the orders pane."""
        where = "select" if self.query_one(OrdersPane).table.has_focus else "focus the orders pane (3) and select"
        self.notify(f"No order selected: {where} {working or 'an'} order first.", severity="warning")

    def action_cancel_order(self, order_ref: str = "") -> None:
        """Cancel the order under the orders pane's cursor while that pane has the focus (or ``order_ref``)."""
        ref = order_ref or self.selected_order()
        if not ref:
            self._no_order_selected()
            return
        self.command(f"cancel {ref}", lambda: self.handle.cancel(ref))

    def action_modify_order(self, order_ref: str = "") -> None:
        """Change the quantity, limit or stop of the working order under the orders pane's cursor while that pane
        has the focus (or ``order_ref``)."""
        ref = order_ref or self.selected_order()
        order = next((o for o in self.snapshot.orders if o.order_ref == ref), None) if self.snapshot and ref else None
        if order is None:
            self._no_order_selected("a working")
            return
        if not order.modifiable:
            self.notify(f"{ref} is {order.status.value}: only an order working at the broker can be modified.",
                        title="Modify", severity="warning")
            return

        pending = self.snapshot.modifications.get(order.order_ref) if self.snapshot else None
        held = pending.held if pending is not None else None  # the broker's figures until it confirms the asked

        def chosen(change: Modification | None) -> None:
            if change is not None:
                self.command(f"modify {ref}", lambda: self._modify(order, change, held))

        self.app.push_screen(ModifyOrderModal(order, held), chosen)

    async def _modify(self, order: Order, change: Modification, held: OrderTicket | None = None) -> None:
        ref, text = order.order_ref, change.describe(order, held)
        verdict = await self.handle.modify(ref, change.quantity, change.limit_price, change.stop_price)
        if verdict.passed:
            self.console_alert(AlertLevel.INFO, f"modify {ref}: {text}: sent")
            self.notify(text, title=f"Modify {ref}")
        else:
            self.console_alert(AlertLevel.WARNING, f"modify {ref} not sent: {verdict.reason} (the order is unchanged)")
            self.notify(f"Not sent: {verdict.reason}. The order is unchanged.", title=f"Modify {ref}",
                        severity="warning")

    def action_cancel_all(self) -> None:
        """Cancel every working order and report what is left."""
        async def work() -> None:
            report = await self.handle.cancel_all()
            text = f"cancelled {len(report.cancelled)}, remaining {len(report.remaining)}"
            if not report.checked:
                text += ", NOT VERIFIED: the broker could not be asked what still works"
            doubt = bool(report.remaining) or not report.checked
            self.console_alert(AlertLevel.WARNING if doubt else AlertLevel.INFO, f"cancel all: {text}")
            self.notify(text, title="Cancel all", severity="warning" if doubt else "information")

        self.command("cancel-all", work)

    def action_flatten(self, symbol: str = "") -> None:
        """Preview the closing orders; send them only on confirmation."""
        modal = FlattenModal(self.handle, symbol or None)

        def confirmed(ok: bool | None) -> None:
            if ok and modal.preview is not None:
                self._send_flatten(symbol, modal.preview.tickets)

        self.app.push_screen(modal, confirmed)

    def _send_flatten(self, symbol: str, shown: tuple[OrderTicket, ...]) -> None:
        """Send the confirmed closing orders, only as ``shown`` (the engine cancels the positions' stops
        and targets first, and refuses when the positions changed since the preview)."""
        self.command(f"flatten {symbol}" if symbol else "flatten",
                     lambda: self.handle.flatten(preview=False, symbol=symbol or None, expected=shown))

    def action_trace_order(self, order_ref: str = "") -> None:
        """Open the timeline of the order under the orders pane's cursor while that pane has the focus (or
        ``order_ref``)."""
        ref = order_ref or self.selected_order()
        if not ref:
            self._no_order_selected()
            return
        zone = self.snapshot.time_zone if self.snapshot else ""
        self.app.push_screen(TraceScreen(self.handle, ref, self.clock, zone))

    def action_test_notification(self) -> None:
        """Send a test message on every notification channel and say how each one did."""
        async def work() -> None:
            results = await self.handle.send_test_notification()
            if not results:
                self.notify("No notification channels are configured.", title="Test notification",
                            severity="warning")
                return
            for r in results:
                level = AlertLevel.INFO if r.ok else AlertLevel.ERROR
                self.console_alert(level, f"test notification via {r.channel}: {'ok' if r.ok else r.detail}")
            failed = [r.channel for r in results if not r.ok]
            text = ", ".join(f"{r.channel} {'ok' if r.ok else 'FAILED'}" for r in results)
            self.notify(text, title="Test notification", severity="error" if failed else "information")

        self.command("test-notification", work)

    def action_pause_strategy(self, name: str = "") -> None:
        """Pause or resume ``name``, or pick one from a list."""
        strategies = self.snapshot.strategies if self.snapshot else ()
        chosen = [s for s in strategies if s.name == name]
        if chosen:
            self.guard(self.handle.pause_strategy, name, not chosen[0].paused)
            self.request_refresh()
        elif strategies:
            self.app.push_screen(StrategyModal(strategies), self._paused)

    def _paused(self, choice: tuple[str, bool] | None) -> None:
        if choice is not None:
            self.guard(self.handle.pause_strategy, *choice)
            self.request_refresh()

    def action_toggle_reducing(self) -> None:
        """ACTIVE ↔ REDUCING; HALTED stays halted until the kill switch is reset."""
        state = self.snapshot.trading_state if self.snapshot else None
        if state is TradingState.HALTED:
            self.notify("Trading is HALTED: reset the kill switch first.", severity="warning")
            return
        on = state is not TradingState.REDUCING
        self.guard(self.handle.reduce_only, on, f"operator turned REDUCING {'on' if on else 'off'}")
        self.request_refresh()

    def action_filter(self) -> None:
        """Open the filter line for the focused pane (orders unless alerts is focused)."""
        box = self.query_one("#filter-input", Input)
        box.display = True
        box.value = self._filter_pane().filter_text
        box.focus()

    def _filter_pane(self) -> OrdersPane | AlertsPane:
        alerts = self.query_one(AlertsPane)
        focused = self.focused
        return alerts if focused is not None and alerts in focused.ancestors_with_self else self.query_one(
            OrdersPane)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter-input":
            self._apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter-input":
            self._close_filter()

    def _apply_filter(self, text: str, pane: OrdersPane | AlertsPane | None = None) -> None:
        """Filter ``pane`` (the one the filter line is for) by ``text`` ('' shows every row)."""
        pane = pane if pane is not None else self._filter_target
        if isinstance(pane, AlertsPane):
            pane.set_filter(text)
        else:
            pane.filter_text = text
        if self.snapshot is not None:
            self.request_refresh()

    @property
    def _filter_target(self) -> OrdersPane | AlertsPane:
        target = getattr(self, "_filter_for", None)
        return target if target is not None else self.query_one(OrdersPane)

    def on_descendant_focus(self) -> None:
        if self.focused is not None and self.focused.id != "filter-input":
            self._filter_for = self._filter_pane()

    def _close_filter(self) -> None:
        box = self.query_one("#filter-input", Input)
        box.display = False
        self._filter_target.query_one(LineTable).focus()

    def key_escape(self) -> None:
        """Escape clears the filter and closes its line (as the line says), clears the filter of the focused
        pane when the line is closed, or else restores a maximised pane."""
        box = self.query_one("#filter-input", Input)
        if box.display:
            with box.prevent(Input.Changed):  # applied once, here: its change would apply it again
                box.value = ""
            self._apply_filter("")
            self._close_filter()
        elif (pane := self._filter_pane()).filter_text and self.focused is pane.table:
            self._apply_filter("", pane)
        elif self.maximized is not None:
            self.minimize()

    def action_focus_pane(self, number: int) -> None:
        """Focus pane ``number`` (1-7); in the compact layout a hidden pane opens maximised."""
        name = PANE_IDS[number - 1]
        pane = self.query_one(f"#{name}-pane", Pane)
        back = self._back_to or self.focused or self.query_one("#positions-table")
        if self.maximized is not None:
            self.minimize()
        pane.query_one(LineTable).focus()
        if self.has_class("-compact") and pane.has_class(COMPACT_HIDDEN):
            self.maximize(pane, container=False)
            self._back_to = back

    def minimize(self) -> None:
        """Restore the maximised pane; focus leaves a pane the layout hides for the pane it was opened from.

        Textual takes focus from a pane it hides and gives it to nothing: keys would reach no pane.
        """
        super().minimize()
        back, self._back_to = self._back_to, None
        if back is not None:
            back.focus()

    def action_cycle_pane(self, step: int) -> None:
        """Focus the next (or previous) pane."""
        current = next((i for i, name in enumerate(PANE_IDS) if self.focused is not None
                        and self.focused.id == f"{name}-table"), -1)
        self.action_focus_pane((current + step) % len(PANE_IDS) + 1)

    def action_maximize_pane(self) -> None:
        """Maximise the focused pane, or restore it."""
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)
