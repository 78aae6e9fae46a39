"""AlertsPane: every alert of the session, newest first, coloured by level, filterable."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from datetime import datetime
from itertools import islice

from textual.app import ComposeResult

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.ui.alert_pairs import Pairing
from tui_trader.ui.format import hhmmss
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, LazyRows, Row

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
LOOKBACK = 8
"""How many of the newest rows a console alert looks back through for its engine alert, and how many console
alerts wait for theirs: the two are raised together, with at most an alert or two between them."""


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
        self._levels: Counter[AlertLevel] = Counter()
        """How many of the kept alerts are at each level."""
        self._dirty = True
        self._awaiting: deque[tuple[int, Alert, Pairing]] = deque(maxlen=LOOKBACK)
        """Console alerts kept whose engine alert has not come yet (numbered as kept)."""
        self._paired: deque[int] = deque(maxlen=LOOKBACK)
        """The newest rows that merged two alerts: none merges a third."""
        self.last_at: datetime | None = None
        self.zone = ""

    def compose(self) -> ComposeResult:
        table = LineTable(COLUMNS, empty="No alerts", id="alerts-table")
        table.newest_first = True
        yield table

    @property
    def alerts(self) -> list[Alert]:
        """Every alert kept this session, oldest first."""
        return [a for _, a in self._alerts]

    def add(self, alerts: list[Alert]) -> None:
        """Keep ``alerts``; they are drawn on the next refresh, not one by one. One that goes with a console
        alert kept just before (:meth:`add_paired`) is merged into its row."""
        for alert in alerts:
            if not self._merge_awaiting(alert):
                self._keep(alert)
        self._dirty = self._dirty or bool(alerts)

    def add_paired(self, alert: Alert, pairing: Pairing | None) -> None:
        """Keep the console's ``alert``, or merge it into the engine's alert that says the same (``pairing``)
        when that came just before; else the engine's merges into it when it comes (:meth:`add`)."""
        self._dirty = True
        if pairing is None:
            self._keep(alert)
            return
        for back in range(1, min(LOOKBACK, len(self._alerts)) + 1):
            index, kept = self._alerts[-back]
            if index not in self._paired and pairing.matches(alert, kept):
                self._replace(index, pairing.merged(alert, kept))
                return
        self._keep(alert)
        self._awaiting.append((self._count, alert, pairing))

    def _merge_awaiting(self, alert: Alert) -> bool:
        """Merge ``alert`` into the newest console row awaiting it; False when none does."""
        for waiting in reversed(self._awaiting):
            index, console, pairing = waiting
            if pairing.matches(console, alert) and self._count - index < len(self._alerts):
                self._awaiting.remove(waiting)
                self._replace(index, pairing.merged(console, alert))
                return True
        return False

    def _keep(self, alert: Alert) -> None:
        self._count += 1
        if len(self._alerts) == MAX_ALERTS:  # the oldest is about to drop out
            self._levels[self._alerts[0][1].level] -= 1
        self._alerts.append((self._count, alert))
        self._levels[alert.level] += 1
        self.last_at = alert.time

    def _replace(self, index: int, alert: Alert) -> None:
        """Put ``alert`` in the place of the kept alert numbered ``index`` (one of the newest)."""
        at = index - self._count - 1
        self._levels[self._alerts[at][1].level] -= 1
        self._alerts[at] = (index, alert)
        self._levels[alert.level] += 1
        self._paired.append(index)

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
        note = " ".join([f"{lvl[0]}{n}" for lvl, n in counts.items() if n] + self.newer_note())
        if self.filter_text:
            note += f" filter '{self.filter_text}' (Esc clears)"
        self.set_age(seconds, stale=False, note=note.strip() or "none")

    def _rows(self) -> Sequence[Row]:
        """The newest alerts that match the filter, at most ``MAX_ROWS``.

        Unfiltered, the rows are lazy: an alert storm formats the rows on screen, not 500 a
        refresh (each has a time to convert to the exchange's zone).
        """
        needle = self.filter_text.lower()
        if not needle:
            newest = list(islice(reversed(self._alerts), MAX_ROWS))
            return LazyRows(newest, lambda item: alert_row(item[0], item[1], self.zone))
        rows: list[Row] = []
        for index, alert in reversed(self._alerts):
            row = alert_row(index, alert, self.zone)
            if not needle or any(needle in c.lower() for c in row.cells):
                rows.append(row)
                if len(rows) >= MAX_ROWS:
                    break
        return rows

    def _level_counts(self) -> dict[str, int]:
        """Alerts kept per level above INFO, counted as they come and go (not re-counted each
        refresh: 10,000 alerts took 3 ms)."""
        return {lvl.value: self._levels[lvl] for lvl in AlertLevel if lvl is not AlertLevel.INFO}
