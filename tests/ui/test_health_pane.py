"""The health pane's rows against the configured limits, as the engine's alerts judge them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tui_trader.config import Settings
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.engine.snapshots import HealthInfo
from tui_trader.ops.health import HealthMonitor
from tui_trader.ui.demo import FROZEN, normal_state
from tui_trader.ui.format import DASH
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.widgets.health import health_rows
from tui_trader.ui.widgets.line_table import LineTable

from .conftest import Console, running


def test_journal_queue_below_its_configured_warning_then_ok_with_the_configured_limits_shown() -> None:
    # The console kept its own 1,000 / 10,000 while the engine alerted at the configured limits: a queue
    # of 5,000 showed WARN against a "1000" the operator never set, the engine saying nothing.
    settings = Settings(health={"journal_queue_warn": 10_000, "journal_queue_crit": 50_000})
    rows = health_rows(HealthInfo(journal_queue=5_000), ConsoleOptions.from_settings(settings), drops=0)
    queue = next(row for row in rows if row.key == "Journal queue")
    assert queue.cells[1:] == ("5,000", "10000", "50000", "ok")


def health_cells(c: Console, key: str) -> tuple[tuple[str, ...], str]:
    """A health row's cells as drawn, and the role of its status cell."""
    (row,) = [row for row in c.app.main.query_one("#health-table", LineTable).rows if row.key == key]
    return row.cells, row.cell_role(4)


async def test_process_rss_past_its_configured_warning_then_coloured_like_cpu_memory_and_disk() -> None:
    # CPU, memory and disk were coloured by their limits; the process's memory was not, though the engine
    # alerted on process_rss_warn_mb / process_rss_crit_mb.
    settings = Settings(health={"process_rss_warn_mb": 500, "process_rss_crit_mb": 1_000})
    state = normal_state()
    async with running(replace(state, health=replace(state.health, process_rss_mb=700.0)),
                       options=ConsoleOptions.from_settings(settings)) as c:
        assert health_cells(c, "Process RSS") == (("Process RSS", "700.0M", "500M", "1000M", "WARN"), "warn")
        c.engine.state = replace(state, health=replace(state.health, process_rss_mb=1_200.0))
        await c.pull()
        assert health_cells(c, "Process RSS") == (("Process RSS", "1,200.0M", "500M", "1000M", "CRIT"), "crit")


async def test_process_rss_with_only_a_critical_limit_then_the_warning_shown_unset() -> None:
    settings = Settings(health={"process_rss_crit_mb": 1_000})
    state = normal_state()
    async with running(replace(state, health=replace(state.health, process_rss_mb=700.0)),
                       options=ConsoleOptions.from_settings(settings)) as c:
        assert health_cells(c, "Process RSS") == (("Process RSS", "700.0M", DASH, "1000M", "ok"), "pos")


async def test_cpu_hovering_at_its_warning_then_the_pane_holds_the_level_the_alert_said() -> None:
    # The pane judged each figure against the raw limit while the alerts used the hysteresis band: CPU at
    # 79.5 / 80.2 / 79.1 / 80.0 / 79.3 % flickered ok / WARN / ok / WARN / ok after one WARNING alert.
    settings = Settings(health={"alert_after_s": 0, "cpu_alert_after_s": 0})
    alerts: list[Alert] = []
    monitor = HealthMonitor(settings.health, Path("journal.sqlite"), alerts.append, clock=lambda: FROZEN)
    state = normal_state()
    shown = []
    async with running(state, options=ConsoleOptions.from_settings(settings)) as c:
        for cpu in (79.5, 80.2, 79.1, 80.0, 79.3, 70.0):
            c.engine.state = replace(state, health=monitor.evaluate(replace(state.health, cpu_pct=cpu)))
            await c.pull()
            shown.append(health_cells(c, "CPU")[0][4])
    assert shown == ["ok", "WARN", "WARN", "WARN", "WARN", "ok"]
    assert [(a.level, a.text) for a in alerts if a.kind == "health_cpu"] == [
        (AlertLevel.WARNING, "cpu 80.2% reached the warning limit 80% (tui-trader's own process: 11.2%)"),
        (AlertLevel.INFO, "cpu back to normal: 70.0%")]
