"""AlertsPane: level counts over the kept alerts, lazy rows, the filter."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.ui.demo import FROZEN
from tui_trader.ui.widgets.alerts import MAX_ALERTS, AlertsPane


class AlertsApp(App[None]):
    """The alerts pane alone."""

    def compose(self) -> ComposeResult:
        yield AlertsPane()


def alerts(level: AlertLevel, n: int, text: str = "x") -> list[Alert]:
    """``n`` alerts at ``level``."""
    return [Alert(level, "engine", f"{text} {i}", FROZEN) for i in range(n)]


async def test_counts_when_the_oldest_alerts_drop_out_then_count_only_those_kept() -> None:
    async with AlertsApp().run_test(size=(80, 20)) as pilot:
        pane = pilot.app.query_one(AlertsPane)
        pane.add(alerts(AlertLevel.CRITICAL, 2))
        pane.add(alerts(AlertLevel.WARNING, MAX_ALERTS - 3))
        pane.add(alerts(AlertLevel.ERROR, 3))  # the two CRITICAL drop out
        pane.show(FROZEN)
        await pilot.pause()
        assert pane.border_subtitle.startswith("W9997 E3 ·")
        assert len(pane.alerts) == MAX_ALERTS


async def test_rows_when_unfiltered_then_newest_first_and_filtered_by_text() -> None:
    async with AlertsApp().run_test(size=(80, 20)) as pilot:
        pane = pilot.app.query_one(AlertsPane)
        pane.add(alerts(AlertLevel.INFO, 600, "info"))
        pane.add(alerts(AlertLevel.ERROR, 2, "broken"))
        pane.show(FROZEN)
        await pilot.pause()
        table = pane.table
        assert len(table.rows) == 500
        assert [r.cells[3] for r in table.rows[:3]] == ["broken 1", "broken 0", "info 599"]
        pane.set_filter("broken")
        pane.show(FROZEN)
        await pilot.pause()
        assert [r.cells[3] for r in table.rows] == ["broken 1", "broken 0"]
