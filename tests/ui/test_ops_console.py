"""Pilot tests of the operations views: the order trace screen (key and palette), its export, the
notification channels' strip and the "send test notification" command, on the scripted engine.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

from textual.command import CommandInput, CommandList, CommandPalette
from textual.widgets import Input, Label, Static

from tui_trader.domain.enums import AlertLevel
from tui_trader.ui.demo import normal_state
from tui_trader.ui.modals.export_trace import ExportTraceModal
from tui_trader.ui.screens.help import HelpScreen
from tui_trader.ui.screens.trace import TraceScreen
from tui_trader.ui.scripted_engine import ScriptedEngine
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.channels import NONE_TEXT, ChannelsStrip
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.orders import OrdersPane

from .conftest import Console, running


def files_in(folder: Path) -> list[Path]:
    """The files a test's folder holds."""
    return list(folder.iterdir())


async def open_trace(c: Console) -> TraceScreen:
    await c.pilot.press("3", "t")
    await c.eventually(lambda: isinstance(c.app.screen, TraceScreen) and c.app.screen.trace is not None,
                   "the trace on screen")
    screen = c.app.screen
    assert isinstance(screen, TraceScreen)
    return screen


async def test_t_on_selected_order_then_trace_screen_shows_its_timeline() -> None:
    async with running() as c:
        selected = c.app.main.query_one(OrdersPane).selected_ref
        screen = await open_trace(c)
        assert c.engine.called("order_trace") == [("order_trace", selected)]
        rows = screen.query_one("#trace-table", LineTable).rows
        steps = [r.cells[1] for r in rows]
        assert steps[:2] == ["signal", "sizing"]
        assert "risk check" in steps
        assert "approval" in steps
        assert any("order_notional: pass value" in r.cells[2] and "headroom" in r.cells[2] for r in rows)
        title = str(screen.query_one("#trace-title", Label).render())
        assert f"#{selected}" in title
        await c.pilot.press("escape")
        await c.settle()
        assert c.app.screen is c.app.main


async def test_trace_cursor_then_detail_shows_the_whole_step_with_its_data() -> None:
    async with running() as c:
        screen = await open_trace(c)
        await c.pilot.press("down", "down")
        await c.settle()
        detail = str(screen.query_one("#trace-detail", Static).render())
        assert detail.startswith("risk check")
        assert '"limit": 1000' in detail


async def test_palette_trace_order_command_then_opens_that_orders_trace() -> None:
    async with running() as c:
        await c.pilot.press("ctrl+p")
        await c.settle()
        assert isinstance(c.app.screen, CommandPalette)
        c.app.screen.query_one(CommandInput).value = "trace order #tt-101"  # as typed, one search instead of 19
        await c.eventually(lambda: c.app.screen.query_one(CommandList).option_count > 0, "palette hits")
        await c.pilot.press("enter")
        await c.eventually(lambda: isinstance(c.app.screen, TraceScreen), "the trace screen")
        assert c.engine.called("order_trace") == [("order_trace", "tt-101")]


async def test_trace_of_unknown_order_then_says_so() -> None:
    async with running() as c:
        c.app.main.action_trace_order("tt-999")
        await c.eventually(lambda: c.engine.called("order_trace"))
        await c.settle()
        summary = c.app.screen.query_one("#trace-summary", Label)
        assert "No order 'tt-999'" in str(summary.render())
        assert summary.has_class("-error")


async def test_export_then_json_written_next_to_the_journal_and_says_where(tmp_path: Path) -> None:
    engine = ScriptedEngine(normal_state())
    engine.journal_path = str(tmp_path / "journal.sqlite")
    async with running(engine=engine) as c:
        screen = await open_trace(c)
        await c.pilot.press("e")
        await c.settle()
        modal = c.app.screen
        assert isinstance(modal, ExportTraceModal)
        expected = tmp_path / f"trace-{screen.trace.order_ref}-20250314T103000.json"  # 14:30 UTC, in New York
        assert modal.query_one(Input).value == str(expected)
        await c.pilot.press("enter")
        await c.settle()
        assert c.app.screen is screen
        doc = json.loads(expected.read_text(encoding="utf-8"))
        assert [s["step"] for s in doc["steps"]] == [s.step for s in screen.trace.steps]
        assert screen.exported == expected
        assert str(expected) in str(screen.query_one("#trace-export-note", Label).render())
        assert expected.stat().st_mode & 0o777 == 0o600  # the owner's only, as the journal (it was 0644)


async def test_export_when_it_fails_after_one_that_worked_then_the_note_says_it_failed(tmp_path: Path) -> None:
    # After a failed export the line still read "Exported to <the earlier file>".
    async with running() as c:
        screen = await open_trace(c)
        for target in (tmp_path / "trace.json", tmp_path / "a-file" / "trace.json"):
            (tmp_path / "a-file").touch()
            await c.pilot.press("e")
            await c.settle()
            c.app.screen.query_one(Input).value = str(target)
            await c.pilot.press("enter")
            await c.settle()
        note = str(screen.query_one("#trace-export-note", Label).render())
        assert note.startswith(f"Export failed: {tmp_path / 'a-file' / 'trace.json'}")
        assert screen.exported is None


async def test_export_as_csv_to_a_chosen_path_then_one_row_per_step(tmp_path: Path) -> None:
    async with running() as c:
        screen = await open_trace(c)
        await c.pilot.press("e")
        await c.settle()
        box = c.app.screen.query_one(Input)
        box.value = str(tmp_path / "mine" / "trace.json")
        await c.pilot.press("f3", "enter")
        await c.settle()
        written = tmp_path / "mine" / "trace.csv"
        rows = list(csv.DictReader(io.StringIO(written.read_text(encoding="utf-8"))))
        assert [r["step"] for r in rows] == [s.step for s in screen.trace.steps]


async def test_export_escape_then_nothing_written(tmp_path: Path) -> None:
    engine = ScriptedEngine(normal_state())
    engine.journal_path = str(tmp_path / "journal.sqlite")
    async with running(engine=engine) as c:
        screen = await open_trace(c)
        await c.pilot.press("e")
        await c.settle()
        await c.pilot.press("escape")
        await c.settle()
        assert c.app.screen is screen
        assert files_in(tmp_path) == []
        assert screen.exported is None


async def test_channels_strip_then_each_channel_with_last_success_queue_failures_and_error() -> None:
    async with running(size=(160, 48)) as c:
        text = str(c.app.main.query_one(ChannelsStrip).render())
        lines = text.splitlines()
        assert [line.split()[0] for line in lines] == ["telegram", "email", "webhook"]
        assert "ok" in lines[0]
        assert "queued 1" in lines[1]
        assert "FAIL" in lines[2]
        assert "failed 2" in lines[2]
        assert "connection refused" in lines[2]


async def test_no_channels_then_strip_says_none_configured() -> None:
    async with running(replace(normal_state(), notifications=())) as c:
        assert str(c.app.main.query_one(ChannelsStrip).render()) == NONE_TEXT


async def test_palette_send_test_notification_then_results_per_channel_in_alerts() -> None:
    async with running() as c:
        await c.pilot.press("ctrl+p")
        await c.settle()
        c.app.screen.query_one(CommandInput).value = "send test notification"
        await c.eventually(lambda: c.app.screen.query_one(CommandList).option_count > 0, "palette hits")
        await c.pilot.press("enter")
        await c.eventually(lambda: c.engine.called("send_test_notification"), "the test sent")
        pane = c.app.main.query_one(AlertsPane)
        await c.eventually(lambda: sum("test notification via" in a.text for a in pane.alerts) == 3)
        alerts = {a.text.split()[3].rstrip(":"): a for a in pane.alerts if "test notification via" in a.text}
        assert alerts["telegram"].level is AlertLevel.INFO
        assert alerts["webhook"].level is AlertLevel.ERROR
        assert "connection refused" in alerts["webhook"].text
        await c.pull()
        email = next(s for s in c.app.main.snapshot.notifications if s.name == "email")
        assert email.sent == 4


async def test_test_notification_without_channels_then_console_says_none_configured() -> None:
    async with running(replace(normal_state(), notifications=())) as c:
        c.app.main.action_test_notification()
        await c.eventually(lambda: c.engine.called("send_test_notification"))
        await c.settle()
        assert not any("test notification via" in a.text for a in c.app.main.query_one(AlertsPane).alerts)


async def test_help_then_lists_the_trace_key_with_its_id() -> None:
    async with running() as c:
        await c.pilot.press("question_mark")
        await c.settle()
        assert isinstance(c.app.screen, HelpScreen)
        ids = [r.key for r in c.app.screen.query_one(LineTable).rows]
        assert "trace-order" in ids
