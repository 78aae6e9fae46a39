"""Order trace of a real order: engine on the simulator with approvals, then the journal's timeline."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tui_trader.domain import OrderStatus, OrderType
from tui_trader.domain import events as ev
from tui_trader.domain.enums import Side
from tui_trader.domain.events import CommissionReported
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.snapshots import OrderTrace, TraceStep
from tui_trader.ops.report_cli import open_readonly, readonly_uri, run_report
from tui_trader.ops.trace import order_trace, trace_of
from tui_trader.ops.trace_export import step_detail, trace_csv, trace_json
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

from .conftest import eventually
from .engines import buy, make_engine, sell


async def test_approved_market_order_then_trace_tells_its_whole_story(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path, approvals_required=True)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        order = await engine.submit(buy(3))
        engine.approve(order.order_ref, by="alice")
        await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED
                         and engine.orders.orders[order.order_ref].commission > 0, what="filled with commission")
        broker_id = engine.orders.orders[order.order_ref].broker_id
        await engine.stop()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    steps = await order_trace(journal, str(broker_id))  # by broker id
    by_ref = await order_trace(journal, order.order_ref)
    await journal.close()
    assert [s.detail for s in steps] == [s.detail for s in by_ref]
    kinds = [s.step for s in steps]
    assert kinds[0] == "sizing"
    assert {"risk check", "approval requested", "approval", "status", "fill", "commission", "position"} <= set(kinds)
    assert kinds.index("approval") < kinds.index("fill") < kinds.index("position")
    checks = [s for s in steps if s.step == "risk check"]
    assert all(s.data["passed"] for s in checks)
    assert any(s.data["limit"] is not None and s.data["headroom"] is not None for s in checks)
    (approval,) = [s for s in steps if s.step == "approval"]
    assert approval.data["by"] == "alice"
    assert approval.data["waited_s"] >= 0
    statuses = " ".join(s.detail for s in steps if s.step == "status")
    assert "SUBMITTED" in statuses
    assert "FILLED" in statuses
    (position,) = [s for s in steps if s.step == "position"]
    assert position.data["position"] == 3

    cli = run_cli("report", "--journal", str(path), "--order", order.order_ref, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert [row["step"] for row in json.loads(cli.stdout)["order"]] == kinds


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui_trader.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "COLUMNS": "200"})


async def test_unknown_order_then_empty_trace(tmp_path: Path) -> None:
    from tui_trader.store.journal import Journal

    journal = await Journal.open(tmp_path / "j.sqlite")
    assert await order_trace(journal, "nope") == []
    assert await order_trace(journal, "12345") == []
    await journal.close()


async def test_strategy_order_then_trace_shows_the_signal_with_its_bars(tmp_path: Path) -> None:
    from tui_trader.config.sections import StrategySettings
    from tui_trader.engine.strategy_runner import SIGNAL_BARS

    ema = StrategySettings(name="ema_cross", symbols=["AAPL"], bar_size_s=5, params={"enter_on_start": True})
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path, strategies=(ema,))
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)

        def entry() -> str | None:
            sim.control.step(5)  # one 5-second bar per poll until the strategy enters
            return next((o.order_ref for o in engine.orders.orders.values() if o.ticket.strategy == "ema_cross"
                         and o.parent_ref is None), None)

        await eventually(entry, within=20, what="an ema_cross entry")
        ref = entry()
        assert ref is not None
        trace = await engine.order_trace(ref)
        await engine.stop()
    assert trace is not None
    kinds = [s.step for s in trace.steps]
    bars = [s for s in trace.steps if s.step == "bar"]
    assert kinds.index("signal") < kinds.index("bar") < kinds.index("risk check")
    assert 0 < len(bars) <= SIGNAL_BARS
    assert all(b.data["low"] <= b.data["close"] <= b.data["high"] for b in bars)
    assert [b.data["time"] for b in bars] == sorted(b.data["time"] for b in bars)  # oldest first


async def test_fill_booked_after_a_reconnect_with_its_commission_then_trace_shows_the_commission(
        tmp_path: Path) -> None:
    # Arrange: the exit's execution and commission report are lost on the wire, then the connection drops;
    # the engine books the fill from the executions it asks for after reconnecting, commission included
    # (no commission report of its own). The trace showed no commission for it, and read "new -> FILLED"
    # for an order FILLED long before.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        entry = await engine.submit(buy(10))
        await eventually(lambda: engine.orders.orders[entry.order_ref].commission > 0, what="entry commission")
        limit = round(engine.market.quotes["AAPL"].ask + 1, 2)
        exit_order = await engine.submit(sell(10, order_type=OrderType.LMT, limit_price=limit))
        await eventually(lambda: engine.orders.orders[exit_order.order_ref].status is OrderStatus.SUBMITTED)
        sim.control.drop_messages("execution", 1)
        sim.control.drop_messages("commission", 1)
        sim.control.set_price("AAPL", limit + 0.5)
        sim.control.disconnect()
        await eventually(lambda: engine.orders.orders[exit_order.order_ref].commission > 0, within=20,
                         what="the exit's fill booked after the reconnect")
        commission = engine.orders.orders[exit_order.order_ref].commission
        await engine.stop()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    try:
        exits = {f.exec_id for f in await journal.fills() if f.order_ref == exit_order.order_ref}
        reported = {e.exec_id for e in await journal.events(["CommissionReported"])
                    if isinstance(e, CommissionReported)}
        assert exits
        assert not exits & reported  # booked with the execution, no report of its own
        # Act
        steps = await order_trace(journal, exit_order.order_ref)
    finally:
        await journal.close()
    # Assert
    (paid,) = [s for s in steps if s.step == "commission"]
    assert paid.data["commission"] == pytest.approx(commission)
    assert [s.step for s in steps].index("fill") < [s.step for s in steps].index("commission")
    statuses = [s.detail for s in steps if s.step == "status"]
    assert not [d for d in statuses[1:] if d.startswith("new ->")], statuses


def test_bar_step_when_read_in_a_zone_then_its_time_is_that_zones_as_every_other_step() -> None:
    # The bar's time was written into its detail in UTC ("01:57:10 O 460.01 ...") beside steps shown at 20:57 in
    # New York: read as bars five hours off.
    bar = TraceStep(datetime(2026, 11, 25, 1, 57, 30, tzinfo=UTC), "bar", "O 460.01 H 460.2 L 459.9 C 460.1 V 900",
                    "tt-1", {"time": "2026-11-25T01:57:10+00:00", "close": 460.1})
    assert step_detail(bar, ZoneInfo("America/New_York")) == "20:57:10 O 460.01 H 460.2 L 459.9 C 460.1 V 900"
    assert step_detail(bar, None) == "01:57:10 O 460.01 H 460.2 L 459.9 C 460.1 V 900"
    other = TraceStep(bar.time, "signal", "ema_cross: BUY AAPL at 460.1", "tt-1", {"time": "not a bar's"})
    assert step_detail(other, ZoneInfo("America/New_York")) == other.detail



def _strict(text: str) -> object:
    """``text`` read as JSON by a strict reader: ``NaN`` and ``Infinity`` are no JSON."""
    def refuse(word: str) -> object:
        raise ValueError(f"not JSON: {word}")
    return json.loads(text, parse_constant=refuse)


async def _journal_with_an_infinite_check(path: Path) -> OrderTrace:
    """A journal holding an order checked by a check denied for no quote (its age infinite, its headroom minus
    infinity) and sized without a signal price (NaN); the order's trace."""
    at = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    order = Order("tt-1", OrderTicket("AAPL", Side.BUY, 10, strategy="manual", created_at=at), OrderStatus.SUBMITTED,
                  at, at)
    check = CheckResult("quote_age", False, math.inf, 5.0, -math.inf, "no quote", "s")
    journal = await Journal.open(path)
    journal.append(ev.OrderUpdated(at, order, OrderStatus.SENDING))
    journal.append(ev.OrderChecked(at, "tt-1", RiskVerdict(False, (check,))))
    await journal.flush()
    try:
        trace = await trace_of(journal, "tt-1")
    finally:
        await journal.close()
    assert trace is not None
    return trace


def test_report_and_export_of_a_check_with_an_infinite_figure_then_valid_json_with_null_in_both(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Arrange: `report --order --format json` wrote Infinity, which is no JSON; the trace's export wrote null.
    path = tmp_path / "j.sqlite"
    trace = asyncio.run(_journal_with_an_infinite_check(path))
    # Act
    code = run_report(["--journal", str(path), "--order", "tt-1", "--format", "json"])
    reported = _strict(capsys.readouterr().out)
    exported = _strict(trace_json(trace))
    cells = [_strict(row["data"]) if row["data"] else {} for row in csv.DictReader(io.StringIO(trace_csv(trace)))]
    # Assert: null in each, and the same figures in each
    assert code == 0
    assert isinstance(reported, dict)
    assert isinstance(exported, dict)
    assert [r["data"] for r in reported["order"]] == [s["data"] for s in exported["steps"]] == cells
    assert {"check": "quote_age", "passed": False, "value": None, "limit": 5.0, "headroom": None} in cells
    assert {"quantity": 10.0, "signal_price": None} in cells
