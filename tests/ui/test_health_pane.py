"""The health pane's rows against the configured limits."""

from __future__ import annotations

from tui_trader.config import Settings
from tui_trader.engine.snapshots import HealthInfo
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.widgets.health import health_rows


def test_journal_queue_below_its_configured_warning_then_ok_with_the_configured_limits_shown() -> None:
    # The console kept its own 1,000 / 10,000 while the engine alerted at the configured limits: a queue
    # of 5,000 showed WARN against a "1000" the operator never set, the engine saying nothing.
    settings = Settings(health={"journal_queue_warn": 10_000, "journal_queue_crit": 50_000})
    rows = health_rows(HealthInfo(journal_queue=5_000), ConsoleOptions.from_settings(settings), drops=0)
    queue = next(row for row in rows if row.key == "Journal queue")
    assert queue.cells[1:] == ("5,000", "10000", "50000", "ok")
