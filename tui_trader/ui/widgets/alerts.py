"""AlertsPane: every alert of the session, newest first, coloured by level, filterable."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from textual.app import ComposeResult

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.ui.format import hhmmss
from tui_trader.ui.widgets.line_table import Column, LineTable, Row
from tui_trader.ui.widgets.pane import Pane

COLUMNS = (
    Column("Time", 8, priority=2),
    Column("Level", 8),
    Column("Source", 10, priority=1),
    Column("Text", 20, flex=True),
)
LEVEL_ROLE = {AlertLevel.INFO: "", AlertLevel.WARNING: "warn", AlertLevel.ERROR: "neg",
              AlertLevel.CRITICAL: "crit"}
MAX_ALERTS = 10_000
MAX_ROWS = 500


def alert_row(index: int, alert: Alert, zone: str = "") -> Row:
    """One alert as a row; the level colours the level cell, CRITICAL the whole line."""
    cells = (hhmmss(alert.time, zone), alert.level.value, alert.source, alert.text)
    role = LEVEL_ROLE[alert.level]
    row_role = "crit" if alert.level is AlertLevel.CRITICAL else ""
    return Row(str(index), cells, (role, role, "", ""), row_role)


class AlertsPane(Pane):
    """Alerts persist for the whole session (up to 10,000); the newest 500 matching are drawn."""

    def __init__(self) -> None:
        super().__init__("Alerts", "4", id="alerts-pane")
        self.filter_text = ""
        self._alerts: deque[tuple[int, Alert]] = deque(maxlen=MAX_ALERTS)
        self._count = 0
        self._dirty = True
        self.last_at: datetime | None = None
        self.zone = ""

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, empty="No alerts", id="alerts-table")

    @property
    def alerts(self) -> list[Alert]:
        """Every alert kept this session, oldest first."""
        return [a for _, a in self._alerts]

    def add(self, alerts: list[Alert]) -> None:
        """Keep ``alerts``; they are drawn on the next refresh, not one by one."""
        for alert in alerts:
            self._count += 1
            self._alerts.append((self._count, alert))
            self.last_at = alert.time
        self._dirty = self._dirty or bool(alerts)

    def set_filter(self, text: str) -> None:
        """Show only alerts whose level, source or text contain ``text``."""
        self.filter_text = text
        self._dirty = True

    def show(self, now: datetime) -> None:
        """Redraw when alerts arrived or the filter changed; always refresh the age."""
        if self._dirty:
            self._dirty = False
            self.table.set_rows(self._rows())
        seconds = (now - self.last_at).total_seconds() if self.last_at else None
        counts = self._level_counts()
        note = " ".join(f"{lvl[0]}{n}" for lvl, n in counts.items() if n)
        if self.filter_text:
            note += f" filter '{self.filter_text}'"
        self.set_age(seconds, stale=False, note=note.strip() or "none")

    def _rows(self) -> list[Row]:
        needle = self.filter_text.lower()
        rows: list[Row] = []
        for index, alert in reversed(self._alerts):
            row = alert_row(index, alert, self.zone)
            if not needle or any(needle in c.lower() for c in row.cells):
                rows.append(row)
                if len(rows) >= MAX_ROWS:
                    break
        return rows

    def _level_counts(self) -> dict[str, int]:
        counts = {lvl.value: 0 for lvl in AlertLevel if lvl is not AlertLevel.INFO}
        for _, alert in self._alerts:
            if alert.level.value in counts:
                counts[alert.level.value] += 1
        return counts
