"""The operations commands the console reaches through EngineHandle: the order trace (also of an
order that needed no approval), its export, the notification statuses in the snapshot and the
"send test notification" command — an engine on the simulator, real loopback servers, picklable values.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui_trader.config import load_settings
from tui_trader.domain import OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.ops.trace_export import default_export_path, write_trace
from tui_trader.sim import ManualClock, SimGateway

from .conftest import SMTP_PASSWORD, SMTP_USER, eventually
from .engines import buy, make_engine
from .servers import HttpServer, RecordingHandler, closed_port

TOKEN = "777:TEST-NOTIFY-TOKEN"


async def test_order_without_approval_when_traced_through_the_handle_then_risk_checks_present(
        tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)  # approvals_required=False: the --no-confirm path
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        order = await engine.submit(buy(2))
        await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED,
                         what="the order filled")
        broker_id = engine.orders.orders[order.order_ref].broker_id
        trace = await engine.order_trace(order.order_ref)
        by_broker_id = await engine.order_trace(str(broker_id))
        unknown = await engine.order_trace("no-such-order")
        await engine.stop()

    assert trace is not None
    assert unknown is None
    assert by_broker_id is not None
    assert by_broker_id.order_ref == order.order_ref
    assert pickle.loads(pickle.dumps(trace)) == trace  # crosses a process boundary as it is
    kinds = [s.step for s in trace.steps]
    checks = [s for s in trace.steps if s.step == "risk check"]
    assert checks, kinds
    assert all(s.data["passed"] for s in checks)
    assert any(s.data["check"] == "order_quantity" and s.data["limit"] == 1000 for s in checks)
    assert "approval" not in kinds
    assert kinds.index("risk check") < kinds.index("fill") < kinds.index("position")
    assert trace.journal_path == str(tmp_path / "journal.sqlite")


async def test_approved_order_then_trace_has_the_gate_and_the_recheck_before_send(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path, approvals_required=True)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        order = await engine.submit(buy(1))
        engine.approve(order.order_ref, by="bob")
        await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED)
        trace = await engine.order_trace(order.order_ref)
        await engine.stop()
    assert trace is not None
    kinds = [s.step for s in trace.steps]
    assert kinds.index("risk check") < kinds.index("approval") < kinds.index("risk re-check") < kinds.index("fill")
    moves = [s.detail.split(" (")[0].split(" -> ") for s in trace.steps if " -> " in s.detail]
    assert all(before != after for before, after in moves), moves  # a same-state update is not a move


async def test_trace_exported_as_json_and_csv_then_files_hold_every_step(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        order = await engine.submit(buy(1))
        await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED)
        trace = await engine.order_trace(order.order_ref)
        await engine.stop()
    assert trace is not None
    when = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    json_path = default_export_path(trace, when)
    assert json_path.parent == tmp_path
    assert json_path.name == f"trace-{order.order_ref}-20260303T150000.json"
    written = write_trace(trace, json_path)
    doc = json.loads(written.read_text(encoding="utf-8"))
    assert doc["order_ref"] == order.order_ref
    assert [s["step"] for s in doc["steps"]] == [s.step for s in trace.steps]
    csv_path = write_trace(trace, tmp_path / "out" / "trace.csv")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert [r["step"] for r in rows] == [s.step for s in trace.steps]
    assert [r["detail"] for r in rows] == [s.detail for s in trace.steps]


@pytest.fixture
async def notifying_engine(isolated: Path, http: HttpServer, smtp: tuple[int, RecordingHandler],
                           certificate: tuple[Path, Path]) -> AsyncIterator[Engine]:
    """The CLI's engine on the simulator with Telegram and email on loopback servers and a dead webhook."""
    settings = load_settings(None, {
        "state_dir": str(isolated / "state"), "confirm": False, "strategies": [], "sim": {"port": 0},
        "notifications": {
            "batch_window_s": 0, "retries": 0, "timeout_s": 5, "ca_file": str(certificate[0]),
            "telegram": {"enabled": True, "token": TOKEN, "chat_id": "42", "base_url": http.url},
            "email": {"enabled": True, "host": "127.0.0.1", "port": smtp[0], "username": SMTP_USER,
                      "password": SMTP_PASSWORD, "sender": "bot@example.test", "recipients": ["ops@example.test"]},
            "webhook": {"enabled": True, "url": f"http://127.0.0.1:{closed_port()}/hook"},
        },
    })
    engine = create_engine(settings)
    await engine.start()
    yield engine
    await engine.stop()


async def test_send_test_notification_then_each_channel_reports_and_messages_arrive(
        notifying_engine: Engine, http: HttpServer, smtp: tuple[int, RecordingHandler]) -> None:
    results = await notifying_engine.send_test_notification()

    assert pickle.loads(pickle.dumps(results)) == results
    by_name = {r.channel: r for r in results}
    assert [r.channel for r in results] == ["telegram", "email", "webhook"]
    assert (by_name["telegram"].ok, by_name["email"].ok, by_name["webhook"].ok) == (True, True, False)
    assert by_name["webhook"].detail
    assert any("test notification" in r.json()["text"] for r in http.requests)
    assert any("test notification" in str(m["Subject"]) for m in smtp[1].messages)


async def test_snapshot_then_carries_each_channels_status_after_a_test(notifying_engine: Engine) -> None:
    assert [c.name for c in notifying_engine.snapshot().notifications] == ["telegram", "email", "webhook"]
    await notifying_engine.send_test_notification()

    statuses = {c.name: c for c in notifying_engine.snapshot().notifications}
    assert statuses["telegram"].last_success is not None
    assert statuses["telegram"].last_error == ""
    assert statuses["email"].last_success is not None
    assert statuses["webhook"].last_success is None
    assert statuses["webhook"].last_failure is not None
    assert statuses["webhook"].last_error
    assert TOKEN not in statuses["telegram"].last_error
    assert pickle.loads(pickle.dumps(notifying_engine.snapshot().notifications)) == tuple(statuses.values())


async def test_engine_without_channels_then_test_notification_reports_none(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)  # no notifier attached
        await engine.start()
        assert await engine.send_test_notification() == ()
        assert engine.snapshot().notifications == ()
        await engine.stop()


async def test_bracket_child_when_traced_then_the_brackets_story_with_the_parents_checks(tmp_path: Path) -> None:
    from tui_trader.domain.orders import Bracket

    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        mark = engine.market.quotes["AAPL"].last
        parent = await engine.submit(buy(2, bracket=Bracket(stop_price=round(mark * 0.9, 2))))
        (child,) = engine.orders.children(parent.order_ref)
        await eventually(lambda: engine.orders.orders[child.order_ref].status is OrderStatus.SUBMITTED,
                         what="the protective stop working")
        trace = await engine.order_trace(child.order_ref)
        await engine.cancel(child.order_ref)
        await engine.stop()
    assert trace is not None
    assert trace.order_ref == parent.order_ref
    assert any(s.step == "risk check" and s.order_ref == parent.order_ref for s in trace.steps)
    assert any(s.step == "status" and s.order_ref == child.order_ref for s in trace.steps)


def test_trace_with_a_nan_figure_when_exported_then_strict_json_with_null(tmp_path: Path) -> None:
    from tui_trader.engine.snapshots import OrderTrace, TraceStep

    when = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    trace = OrderTrace("r1", "r1", "AAPL", (TraceStep(when, "sizing", "BUY 1 AAPL", "r1",
                                                      {"signal_price": float("nan"), "quantity": 1.0}),))
    written = write_trace(trace, tmp_path / "t.json")
    doc = json.loads(written.read_text(encoding="utf-8"), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert doc["steps"][0]["data"] == {"signal_price": None, "quantity": 1.0}


def test_trace_with_a_figure_of_binary_noise_when_exported_then_written_as_the_report_writes_it(tmp_path: Path) -> None:
    # Seen in a console export: "signal_price": 503.28999999999996, where `report --order` wrote 503.29.
    from tui_trader.engine.snapshots import OrderTrace, TraceStep

    when = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    noisy = 503.2 + 0.09
    assert noisy != 503.29
    trace = OrderTrace("r1", "r1", "AAPL", (TraceStep(when, "sizing", "BUY 1 AAPL", "r1",
                                                      {"signal_price": noisy, "quantity": 3}),))
    doc = json.loads(write_trace(trace, tmp_path / "t.json").read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO(write_trace(trace, tmp_path / "t.csv").read_text(encoding="utf-8"))))
    assert doc["steps"][0]["data"] == {"signal_price": 503.29, "quantity": 3}
    assert json.loads(rows[0]["data"]) == {"quantity": 3, "signal_price": 503.29}
