"""TraceScreen: one order's whole story from the journal as one timeline, exportable.

The trace reaches the console through ``EngineHandle.order_trace`` as a frozen value (the
engine may run in another process); the screen draws it and writes it to a file on request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Label, Static

from tui_trader.engine.handle import EngineHandle
from tui_trader.engine.snapshots import OrderTrace, TraceStep
from tui_trader.ops.trace_export import default_export_path, step_detail, write_trace
from tui_trader.ui.modals.export_trace import ExportTraceModal
from tui_trader.ui.options import Clock
from tui_trader.ui.widgets.footer import KeyFooter
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.rows import Column, Row

COLUMNS = (Column("Time", 13), Column("Step", 19), Column("Detail", 40, flex=True))
STEP_ROLE = {"signal": "accent", "sizing": "accent", "fill": "pos", "commission": "dim", "position": "badge",
             "denied": "crit"}


def step_role(step: TraceStep) -> str:
    """The colour role of a step: failures and denials stand out, fills are positive."""
    if step.data.get("passed") is False or step.data.get("approved") is False:
        return "crit"
    return STEP_ROLE.get(step.step, "")


def trace_rows(trace: OrderTrace, zone: str) -> list[Row]:
    """One row per step, time in ``zone`` to the millisecond."""
    tz = ZoneInfo(zone) if zone else None
    rows = []
    for i, step in enumerate(trace.steps):
        when = step.time.astimezone(tz) if tz else step.time
        role = step_role(step)
        # A bracket child's steps name the child: the family shares one timeline.
        text = step_detail(step, tz)
        detail = text if step.order_ref in ("", trace.order_ref) else f"{step.order_ref}: {text}"
        rows.append(Row(str(i), (when.strftime("%H:%M:%S.%f")[:-3], step.step, detail),
                        ("dim", role, "crit" if role == "crit" else "")))
    return rows


def step_text(step: TraceStep) -> str:
    """The full text of one step with its structured data (the table cuts long details)."""
    data = json.dumps(step.data, default=str, sort_keys=True) if step.data else ""
    ref = f" [{step.order_ref}]" if step.order_ref else ""
    return f"{step.step}{ref}: {step.detail}" + (f"\n{data}" if data else "")


class TraceScreen(Screen[None]):
    """The timeline of one order (and its bracket children) from the journal."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="close-trace", tooltip="Back to the main screen"),
        Binding("e", "export", "Export", id="export-trace",
                tooltip="Write the trace as JSON or CSV (next to the journal, or a path you choose)"),
    ]
    """Escape goes back; e exports the trace."""

    trace: reactive[OrderTrace | None] = reactive(None, init=False)
    """The trace on screen (``None`` while loading or when the order is unknown)."""

    def __init__(self, handle: EngineHandle, ref: str, clock: Clock, zone: str = "") -> None:
        super().__init__(id="trace-screen")
        self.handle = handle
        self.ref = ref
        self.clock = clock
        self.zone = zone
        self.exported: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="trace-body"):
            yield Label(f"Order trace #{self.ref}", id="trace-title", markup=False)
            yield Label("Loading the order's story from the journal…", id="trace-summary", markup=False)
            yield LineTable(COLUMNS, empty="No steps", id="trace-table")
            yield Static("", id="trace-detail", markup=False)
            yield Label("", id="trace-export-note", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(LineTable).focus()
        self.run_worker(self._load(), name=f"trace {self.ref}", exit_on_error=False)

    async def _load(self) -> None:
        try:
            trace = await self.handle.order_trace(self.ref)
        except Exception as exc:  # noqa: BLE001 - a failed read is shown, and must not halt trading
            self._summary(f"Could not read the trace: {type(exc).__name__}: {exc}", error=True)
            return
        if trace is None:
            self._summary(f"No order {self.ref!r} in the journal.", error=True)
            return
        self.trace = trace

    def _summary(self, text: str, *, error: bool = False) -> None:
        label = self.query_one("#trace-summary", Label)
        label.update(text)
        label.set_class(error, "-error")

    def watch_trace(self, trace: OrderTrace | None) -> None:
        if trace is None:
            return
        asked = f" (the bracket #{trace.query} belongs to)" if trace.query not in (trace.order_ref, "") and \
            not trace.query.isdigit() else ""
        self.query_one("#trace-title", Label).update(f"Order trace #{trace.order_ref}{asked} · {trace.symbol}")
        refs = sorted({s.order_ref for s in trace.steps if s.order_ref})
        family = f" · orders {', '.join(refs)}" if len(refs) > 1 else ""
        self._summary(f"{len(trace.steps)} steps{family} · from {trace.journal_path or 'the journal'}")
        table = self.query_one(LineTable)
        table.set_rows(trace_rows(trace, self.zone))
        self._show_detail()

    def on_line_table_cursor_moved(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        trace, table = self.trace, self.query_one(LineTable)
        if trace is None or not trace.steps:
            return
        index = min(max(table.cursor_row, 0), len(trace.steps) - 1)
        self.query_one("#trace-detail", Static).update(step_text(trace.steps[index]))

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)

    def action_export(self) -> None:
        """Ask where to write the trace (JSON next to the journal by default), then write it."""
        if self.trace is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        now = self.clock()
        default = default_export_path(self.trace, now.astimezone(ZoneInfo(self.zone)) if self.zone else now)
        self.app.push_screen(ExportTraceModal(default), self._export_to)

    def _export_to(self, path: Path | None) -> None:
        if path is None or self.trace is None:
            return
        try:
            written = write_trace(self.trace, path)
        except OSError as exc:
            self.exported = None
            self.query_one("#trace-export-note", Label).update(f"Export failed: {path}: {exc.strerror or exc}")
            self.notify(f"{path}: {exc.strerror or exc}", title="Export failed", severity="error")
            return
        self.exported = written
        self.query_one("#trace-export-note", Label).update(f"Exported to {written}")
        self.notify(str(written), title="Trace exported")
