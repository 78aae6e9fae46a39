"""HealthPane: CPU, memory, journal disk, event-loop lag and queues against configured thresholds."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult

from tui_trader.domain.enums import AlertLevel
from tui_trader.engine.snapshots import EngineSnapshot, HealthInfo
from tui_trader.ui.format import DASH
from tui_trader.ui.options import ConsoleOptions, Thresholds
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, Row

COLUMNS = (
    Column("Metric", 13),
    Column("Value", 9, right=True),
    Column("Warn", 7, right=True, priority=2),
    Column("Crit", 7, right=True, priority=2),
    Column("", 4, priority=1),
)
LEVEL_TEXT = {"": "ok", "warn": "WARN", "crit": "CRIT"}
LEVEL_ROLE = {"": "pos", "warn": "warn", "crit": "crit"}
JUDGED = {AlertLevel.INFO: "", AlertLevel.WARNING: "warn", AlertLevel.ERROR: "crit", AlertLevel.CRITICAL: "crit"}


def metric_row(name: str, value: float | None, limits: Thresholds | None, unit: str,
               judged: AlertLevel | None = None) -> Row:
    """One figure with its thresholds; the status cell says ok / WARN / CRIT.

    ``judged`` is the level the engine's health monitor gave the figure: its limits with the hysteresis
    its alerts use, so a figure hovering at a limit holds the level the alert said instead of flickering.
    Without one (a figure the engine does not watch, an engine that did not say) the bare limits decide.
    """
    decimals = 0 if unit == "" else 1
    shown = DASH if value is None else f"{value:,.{decimals}f}{unit}"
    if limits is None:
        return Row(name, (name, shown, "", "", ""))
    level = limits.level(value) if judged is None else JUDGED[judged]
    cells = (name, shown, _limit(limits.warn, unit), _limit(limits.crit, unit),
             DASH if value is None else LEVEL_TEXT[level])
    role = "" if value is None else LEVEL_ROLE[level]
    return Row(name, cells, ("", role if level else "", "dim", "dim", role))


def _limit(limit: float | None, unit: str) -> str:
    return DASH if limit is None else f"{limit:g}{unit}"


def health_rows(health: HealthInfo, options: ConsoleOptions, drops: int) -> list[Row]:
    """Every health figure the engine reports, plus the console's own event drops."""
    judged = health.levels.get
    return [
        metric_row("CPU", health.cpu_pct, options.cpu, "%", judged("cpu")),
        metric_row("Process CPU", health.process_cpu_pct, None, "%"),
        metric_row("Memory", health.mem_pct, options.mem, "%", judged("memory")),
        metric_row("Process RSS", health.process_rss_mb, options.process_rss_mb, "M", judged("process_rss")),
        metric_row("Journal disk", health.disk_pct, options.disk, "%", judged("disk")),
        metric_row("Loop lag", health.loop_lag_ms, options.loop_lag_ms, "ms", judged("loop_lag")),
        metric_row("Journal queue", float(health.journal_queue), options.journal_queue, "",
                   judged("journal_queue")),
        metric_row("UI drops", float(drops), Thresholds(1, 1000), ""),
    ]


class HealthPane(Pane):
    """System health, coloured at the level the engine's health alerts judge each figure."""

    def __init__(self, options: ConsoleOptions) -> None:
        super().__init__("Health", "7", id="health-pane")
        self.options = options
        self.drops = 0

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, empty="No health samples", id="health-table")

    def show(self, snapshot: EngineSnapshot, now: datetime, engine_stalled: bool) -> None:
        """Draw the health figures of ``snapshot``; their age is the sample's."""
        health = snapshot.health
        self.table.set_rows(health_rows(health, self.options, self.drops))
        seconds = (now - health.time).total_seconds() if health.time else None
        stale = engine_stalled or seconds is None or seconds > self.options.heartbeat_stale_s * 5
        self.set_age(seconds, stale=stale, note="STALLED" if engine_stalled else "")
