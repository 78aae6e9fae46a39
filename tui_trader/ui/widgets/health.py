"""HealthPane: CPU, memory, journal disk, event-loop lag and queues against configured thresholds."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult

from tui_trader.engine.snapshots import EngineSnapshot, HealthInfo
from tui_trader.ui.format import DASH
from tui_trader.ui.options import ConsoleOptions, Thresholds
from tui_trader.ui.widgets.line_table import Column, LineTable, Row
from tui_trader.ui.widgets.pane import Pane

COLUMNS = (
    Column("Metric", 13),
    Column("Value", 9, right=True),
    Column("Warn", 7, right=True, priority=2),
    Column("Crit", 7, right=True, priority=2),
    Column("", 4, priority=1),
)
LEVEL_TEXT = {"": "ok", "warn": "WARN", "crit": "CRIT"}
LEVEL_ROLE = {"": "pos", "warn": "warn", "crit": "crit"}


def metric_row(name: str, value: float | None, limits: Thresholds | None, unit: str) -> Row:
    """One figure with its thresholds; the status cell says ok / WARN / CRIT."""
    decimals = 0 if unit == "" else 1
    shown = DASH if value is None else f"{value:,.{decimals}f}{unit}"
    if limits is None:
        return Row(name, (name, shown, "", "", ""))
    level = limits.level(value)
    cells = (name, shown, f"{limits.warn:g}{unit}", f"{limits.crit:g}{unit}",
             DASH if value is None else LEVEL_TEXT[level])
    role = "" if value is None else LEVEL_ROLE[level]
    return Row(name, cells, ("", role if level else "", "dim", "dim", role))


def health_rows(health: HealthInfo, options: ConsoleOptions, drops: int) -> list[Row]:
    """Every health figure the engine reports, plus the console's own event drops."""
    return [
        metric_row("CPU", health.cpu_pct, options.cpu, "%"),
        metric_row("Process CPU", health.process_cpu_pct, None, "%"),
        metric_row("Memory", health.mem_pct, options.mem, "%"),
        metric_row("Process RSS", health.process_rss_mb, None, "M"),
        metric_row("Journal disk", health.disk_pct, options.disk, "%"),
        metric_row("Loop lag", health.loop_lag_ms, options.loop_lag_ms, "ms"),
        metric_row("Journal queue", float(health.journal_queue), options.journal_queue, ""),
        metric_row("UI drops", float(drops), Thresholds(1, 1000), ""),
    ]


class HealthPane(Pane):
    """System health, coloured as configured thresholds are crossed."""

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
