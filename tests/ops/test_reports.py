"""Reports on a journal populated with real events: FIFO trades, statistics, reasons, incidents, CLI."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from tests.engine.helpers import limits_for_tests, long_at_the_broker, make_config, running
from tests.store.old_journal import shared_ref_events, write_old_journal
from tui_trader.domain import events as ev
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.orders import Bracket, Fill, Order, OrderTicket
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.engine import Engine
from tui_trader.ops.notify import Notice
from tui_trader.ops.report_cli import open_readonly, readonly_uri, render_csv
from tui_trader.ops.reports import HELD_IN_THE_BOOK, Period, build_report, close_session, pair_fills, trade_stats
from tui_trader.ops.trace import order_trace
from tui_trader.risk.limits import TriggerAction
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store import sending
from tui_trader.store.journal import Journal
from tui_trader.store.queries import PERIODIC_LIKE
from tui_trader.store.schema import SCHEMA_VERSION

from .conftest import eventually
from .engines import buy, make_engine, sell

NY = ZoneInfo("America/New_York")
DAY = date(2026, 3, 3)


def at(hhmm: str, day: date = DAY) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=NY)


class Book:
    """Writes orders, fills and commissions into a journal the way the engine does."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.n = 0

    def trade(self, symbol: str, side: Side, qty: float, price: float, when: datetime, strategy: str,
              commission: float = 1.0) -> str:
        self.n += 1
        ref = f"{strategy}-{self.n}"
        ticket = OrderTicket(symbol, side, qty, OrderType.MKT, strategy=strategy, created_at=when)
        order = Order(ref, ticket, OrderStatus.FILLED, when, when, broker_id=100 + self.n, filled_quantity=qty,
                      avg_fill_price=price)
        self.journal.append(ev.OrderUpdated(when, order, OrderStatus.SUBMITTED))
        fill = Fill(f"x{self.n}", ref, symbol, side, qty, price, when, 100 + self.n)
        self.journal.append(ev.OrderFilled(when, fill, order))
        self.journal.append(ev.CommissionReported(when, fill.exec_id, commission))
        return ref


def denial(when: datetime, *checks: str) -> ev.OrderDenied:
    ticket = OrderTicket("AAPL", Side.BUY, 5000, strategy="ema_cross")
    verdict = RiskVerdict(False, tuple(CheckResult(c, False, 5000, 1000, -4000) for c in checks))
    return ev.OrderDenied(when, ticket, verdict, "")


def rejected(when: datetime) -> ev.OrderUpdated:
    ticket = OrderTicket("MSFT", Side.BUY, 1, strategy="volume_breakout")
    order = Order("rej-1", ticket, OrderStatus.REJECTED, when, when, last_error="201: Order rejected")
    return ev.OrderUpdated(when, order, OrderStatus.SENDING)


def turned_down(when: datetime, ref: str, previous: OrderStatus | None) -> ev.OrderUpdated:
    """An order REJECTED before it reached the broker: by the risk gate (created so), or its approval."""
    order = Order(ref, OrderTicket("AAPL", Side.BUY, 1, strategy="ema_cross"), OrderStatus.REJECTED, when, when)
    return ev.OrderUpdated(when, order, previous)


async def report_of(tmp_path: Path, *events: ev.Event) -> dict[str, Any]:
    """The report of :data:`DAY` from a journal holding only ``events``."""
    j = await Journal.open(tmp_path / "journal.sqlite")
    for event in events:
        j.append(event)
    await j.flush()
    try:
        return await build_report(j, Period(DAY, DAY))
    finally:
        await j.close()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.sqlite")
    book = Book(j)
    book.trade("NVDA", Side.BUY, 10, 100, at("15:00", date(2026, 3, 2)), "ema_cross", 0)
    book.trade("NVDA", Side.SELL, 10, 101, at("10:00"), "ema_cross", 0)
    book.trade("AAPL", Side.BUY, 10, 100, at("10:01"), "ema_cross")
    book.trade("AAPL", Side.SELL, 10, 105, at("10:30"), "ema_cross")
    book.trade("AAPL", Side.BUY, 10, 110, at("10:40"), "ema_cross")
    book.trade("AAPL", Side.SELL, 5, 108, at("11:00"), "ema_cross", 0.5)
    book.trade("AAPL", Side.SELL, 5, 107, at("11:10"), "ema_cross", 0.5)
    book.trade("MSFT", Side.SELL, 20, 50, at("12:00"), "volume_breakout")
    book.trade("MSFT", Side.BUY, 20, 49, at("13:00"), "volume_breakout")
    book.trade("MSFT", Side.BUY, 5, 48, at("13:30"), "volume_breakout")
    j.append(denial(at("11:30"), "max_order_quantity"))
    j.append(denial(at("11:31"), "max_order_quantity", "price_collar"))
    j.append(rejected(at("11:32")))
    # Counted as denials and approvals, not as the broker's rejections (they were counted twice).
    j.append(turned_down(at("11:30"), "den-1", None))
    j.append(turned_down(at("11:33"), "op-1", OrderStatus.PENDING_APPROVAL))
    j.append(ev.ApprovalResolved(at("11:33"), "op-1", False, "operator"))
    j.append(ev.ApprovalResolved(at("11:34"), "ok-1", True, "operator"))
    j.append(ev.ApprovalResolved(at("11:35"), "ok-2", True, "operator"))
    j.append(ev.ApprovalResolved(at("11:36"), "exp-1", False, "timeout", "approval expired"))
    dry = Order("dry-1", OrderTicket("AAPL", Side.BUY, 1, strategy="ema_cross"), OrderStatus.SENDING, at("11:37"),
                at("11:37"))
    j.append(ev.OrderNotSent(at("11:37"), dry, "dry run: not sent", dry_run=True))
    j.append(ev.TradingStateChanged(at("14:00"), TradingState.ACTIVE, TradingState.HALTED, "risk:daily_loss", "loss"))
    j.append(ev.KillSwitchEngaged(at("14:00"), "risk:daily_loss", "daily loss limit"))
    j.append(ev.AlertRaised(at("14:00"), Alert(AlertLevel.CRITICAL, "kill_switch", "engaged", at("14:00"))))
    j.append(ev.KillSwitchReset(at("14:30"), "alice", "reviewed"))
    j.append(ev.OperatorAction(at("14:30"), "alice", "reset_kill", "reviewed", "HALTED", "ACTIVE"))
    await j.flush()
    yield j
    await j.close()


async def test_report_of_a_day_then_round_trips_flat_to_flat_with_commission(journal: Journal) -> None:
    report = await build_report(journal, Period(DAY, DAY))
    trades = [(t["symbol"], t["direction"], t["quantity"], round(t["net_pnl"], 6)) for t in report["trades"]]
    # AAPL's second position was sold in two pieces: one round trip (it counted as two trades).
    assert trades == [("NVDA", "LONG", 10, 10.0), ("AAPL", "LONG", 10, 48.0), ("AAPL", "LONG", 10, -27.0),
                      ("MSFT", "SHORT", 20, 18.0)]
    assert report["trades"][2]["exit_price"] == pytest.approx(107.5)
    assert report["trades"][1]["holding_s"] == 29 * 60
    assert report["trades"][1]["strategy"] == "ema_cross"
    assert [(p["symbol"], p["direction"], p["quantity"]) for p in report["open_positions"]] == [("MSFT", "LONG", 5)]


async def test_report_statistics(journal: Journal) -> None:
    s = (await build_report(journal, Period(DAY, DAY)))["summary"]
    assert (s["trades"], s["wins"], s["losses"], s["fills"]) == (4, 3, 1, 9)
    # The day's nine executions paid 7.00; the open MSFT lot's 1.00 is in no closed trade yet.
    assert s["fills_commission"] == pytest.approx(7.0)
    assert s["win_rate"] == pytest.approx(0.75)
    assert s["net_pnl"] == pytest.approx(49.0)
    assert s["avg_win"] == pytest.approx(76 / 3)
    assert s["avg_loss"] == pytest.approx(-27.0)
    assert s["profit_factor"] == pytest.approx(76 / 27)
    assert s["max_drawdown"] == pytest.approx(27.0)


async def test_report_totals_reasons_and_incidents(journal: Journal) -> None:
    report = await build_report(journal, Period(DAY, DAY))
    assert {r["strategy"]: round(r["net_pnl"], 6) for r in report["by_strategy"]} == {"ema_cross": 31.0,
                                                                                       "volume_breakout": 18.0}
    assert {r["symbol"]: r["trades"] for r in report["by_symbol"]} == {"AAPL": 2, "MSFT": 1, "NVDA": 1}
    assert report["denials"] == {"max_order_quantity": 2, "price_collar": 1}
    assert report["rejections"] == {"201: Order rejected": 1}
    assert report["approvals"] == {"approved by operator": 2, "rejected by operator": 1, "expired": 1}
    assert report["not_sent"] == {"dry run: not sent": 1}  # a dry run's report showed none of its orders
    assert [k["event"] for k in report["kill_switch"]] == ["engaged", "reset"]
    assert [r["by"] for r in report["risk_triggers"]] == ["risk:daily_loss"]
    assert [a["action"] for a in report["operator_actions"]] == ["reset_kill"]


async def test_report_of_the_day_before_then_only_its_fill_and_no_trade(journal: Journal) -> None:
    report = await build_report(journal, Period(date(2026, 3, 2), date(2026, 3, 2)))
    assert report["summary"]["trades"] == 0
    assert report["summary"]["fills"] == 1


async def test_report_of_a_journal_begun_by_a_seed_then_trades_start_from_its_positions_not_the_replayed_fills(
        tmp_path: Path) -> None:
    # Arrange: as an earlier version journaled it on an account another run had traded the same day: that run's
    # executions (a QQQ round trip), replayed by the first executions request, then the seed (the broker's SPY short
    # of 9 at 500, the QQQ in it), then the journal's own fills: SPY covered, an AAPL round trip.
    j = await Journal.open(tmp_path / "journal.sqlite")
    book = Book(j)
    book.trade("QQQ", Side.SELL, 10, 451, at("09:40"), "unknown")
    book.trade("QQQ", Side.BUY, 10, 450, at("09:50"), "unknown")
    j.append(ev.BookCheckpointed(at("10:00"), {"cash": 1e6, "positions": {"SPY": [-9, 500.0, 0.0, None]}},
                                 "first start: seeded from the broker"))
    book.trade("SPY", Side.BUY, 9, 499, at("10:10"), "manual")
    book.trade("AAPL", Side.BUY, 5, 100, at("10:20"), "ema_cross")
    book.trade("AAPL", Side.SELL, 5, 101, at("10:30"), "ema_cross")
    await j.flush()
    try:
        # Act
        report = await build_report(j, Period(DAY, DAY))
    finally:
        await j.close()
    # Assert: the short the book began with is covered (its entry the broker's cost); the QQQ is no trade of it.
    trades = [(t["symbol"], t["strategy"], t["direction"], t["quantity"], t["entry_price"], round(t["net_pnl"], 6))
              for t in report["trades"]]
    assert trades == [("SPY", "held at journal start", "SHORT", 9, 500.0, 8.0),
                      ("AAPL", "ema_cross", "LONG", 5, 100, 3.0)]
    assert report["open_positions"] == []
    assert (report["summary"]["fills"], report["summary"]["fills_commission"]) == (3, pytest.approx(3.0))


async def test_report_when_a_reconciliation_adjusted_a_position_to_flat_then_no_open_position_that_day(
        tmp_path: Path) -> None:
    # Arrange: the engine bought 10 AAPL; at a reconciliation the broker held none (sold outside the engine): the book
    # was adjusted to flat, no fill of the journal. The next day's reconciliation took 10 MSFT from the broker.
    j = await Journal.open(tmp_path / "journal.sqlite")
    Book(j).trade("AAPL", Side.BUY, 10, 100, at("10:00"), "ema_cross")
    j.append(ev.BookCheckpointed(at("11:00"), {"positions": {}}, "adjusted to the broker: AAPL: ours 10, broker 0"))
    j.append(ev.BookCheckpointed(at("10:00", date(2026, 3, 4)), {"positions": {"MSFT": [10, 50.0, 0.0, None]}},
                                 "adjusted to the broker: MSFT: ours 0, broker 10"))
    await j.flush()
    try:
        # Act
        report = await build_report(j, Period(DAY, DAY))
    finally:
        await j.close()
    # Assert: from the fills alone the report held the 10 AAPL the broker no longer had.
    assert report["open_positions"] == []


async def test_report_when_a_reconciliation_took_part_of_a_position_away_then_the_rest_sold_closes_the_round_trip(
        tmp_path: Path) -> None:
    # Arrange: the engine bought 10 AAPL; 6 were sold in TWS: a reconciliation adjusted the book to the broker's 4 (no
    # fill of the journal). Then the engine sold the 4: flat. From the fills, the round trip never closed (6 left).
    j = await Journal.open(tmp_path / "journal.sqlite")
    book = Book(j)
    entry = book.trade("AAPL", Side.BUY, 10, 100, at("10:00"), "ema_cross")
    j.append(ev.BookCheckpointed(at("11:00"), {"positions": {"AAPL": [4, 100.0, 0.0, None]},
                                               "owners": {"AAPL": "ema_cross"}},
                                 "adjusted to the broker: AAPL: ours 10, broker 4"))
    exit_ = book.trade("AAPL", Side.SELL, 4, 103, at("12:00"), "ema_cross")
    await j.flush()
    try:
        # Act
        report = await build_report(j, Period(DAY, DAY))
    finally:
        await j.close()
    # Assert: the 4 the book held, entered by the engine's buy, sold at a gain of 3 each (commissions 0.4 and 1).
    assert [(t["entry_ref"], t["exit_ref"], t["quantity"], round(t["net_pnl"], 6)) for t in report["trades"]] == [
        (entry, exit_, 4, 10.6)]
    assert report["open_positions"] == []


async def test_book_adjustments_read_past_the_periodic_checkpoints_the_book_writes_as_it_moves(tmp_path: Path) -> None:
    # Most of a journal's checkpoints are periodic (one every book_checkpoint_s while positions are held): the book as
    # its fills make it. Each was read and parsed to find the few adjustments: a report or trace of a year-old
    # journal parsed some hundred thousand of them. The query leaves them in SQLite, matched as the journal encodes
    # their reason.
    j = await Journal.open(tmp_path / "journal.sqlite")
    book = Book(j)
    book.trade("AAPL", Side.BUY, 10, 100, at("10:00"), "ema_cross")
    j.append(ev.BookCheckpointed(at("10:30"), {"positions": {"AAPL": [12, 100.0, 0.0, None]}}, ev.BOOK_PERIODIC))
    j.append(ev.BookCheckpointed(at("11:00"), {"positions": {"AAPL": [4, 100.0, 0.0, None]}},
                                 "adjusted to the broker: AAPL: ours 10, broker 4"))
    await j.flush()
    try:
        # Act
        adjustments = await j.book_adjustments()
        (matched,) = await j._one("SELECT COUNT(*) FROM events WHERE kind = 'BookCheckpointed' AND payload LIKE ?",
                                  (PERIODIC_LIKE,))
    finally:
        await j.close()
    # Assert: the periodic one's reason is matched as stored, and only the reconciliation's is an adjustment.
    assert matched == 1
    assert [(a.reason, a.moved["AAPL"][0]) for a in adjustments.adjustments] == [
        ("adjusted to the broker: AAPL: ours 10, broker 4", -6)]


async def test_close_session_then_summary_journaled_and_notified(journal: Journal) -> None:
    sent: list[Notice] = []
    summary = await close_session(journal, DAY, "America/New_York", sent.append)
    assert summary["summary"]["trades"] == 4
    (notice,) = sent
    assert notice.kind == "daily_summary"
    assert "trades 4 (win rate 75%)" in notice.text


def run_cli(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "tui_trader.cli", "report", *args], capture_output=True,
                          text=True, timeout=60, check=False, env=env)


async def test_cli_json_csv_and_table_read_the_journal(journal: Journal, tmp_path: Path) -> None:
    path = str(tmp_path / "journal.sqlite")
    as_json = run_cli("--journal", path, "--date", "2026-03-03", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["summary"]["trades"] == 4
    as_csv = run_cli("--journal", path, "--from", "2026-03-02", "--to", "2026-03-03", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["symbol"] for r in rows] == ["NVDA", "AAPL", "AAPL", "MSFT"]
    table = run_cli("--journal", path, "--date", "2026-03-03", "--format", "table")
    assert "by strategy" in table.stdout
    assert "volume_breakout" in table.stdout
    # Holding as h:mm:ss (trades under a minute read "0h00m"); figures to the cent ("0.8364" beside "3.38").
    assert "0:29:00" in table.stdout
    assert re.search(r"win_rate\s+│\s+0\.75 ", table.stdout), table.stdout


async def test_cli_section_when_given_then_json_and_table_print_only_that_section(
        journal: Journal, tmp_path: Path) -> None:
    # `report --section operator_actions`, as the kill's help suggests, printed the whole report: --section only
    # chose the CSV's section.
    path = str(tmp_path / "journal.sqlite")
    as_json = run_cli("--journal", path, "--date", "2026-03-03", "--section", "by_symbol", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert sorted(doc) == ["by_symbol", "period"]
    assert {row["symbol"] for row in doc["by_symbol"]} >= {"AAPL"}
    table = run_cli("--journal", path, "--date", "2026-03-03", "--section", "by_symbol", "--format", "table")
    assert table.returncode == 0, table.stderr
    assert "by symbol" in table.stdout
    assert "by strategy" not in table.stdout
    assert "open positions" not in table.stdout


async def test_cli_table_on_an_80_column_terminal_then_no_figure_name_or_time_is_cut_short(
        journal: Journal, tmp_path: Path) -> None:
    # At 80 columns a trade's P&L read "-0…", its strategy "ema…" and its times "11-23 18:…".
    path = str(tmp_path / "journal.sqlite")
    report = json.loads(run_cli("--journal", path, "--date", "2026-03-03", "--format", "json").stdout)
    table = run_cli("--journal", path, "--date", "2026-03-03", "--format", "table", columns=80)
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    assert "(times in America/New_York)" in table.stdout.splitlines()[0]
    trades = table.stdout.split("\ntrades")[1].split("\nkill switch")[0].splitlines()
    for trade in report["trades"]:
        line = next(ln for ln in trades if f"{trade['net_pnl']:,.2f}" in ln)
        assert trade["symbol"] in line
        assert trade["strategy"] in line
        # In the report's time zone, as its header says (they were UTC under a header naming New York).
        entry = datetime.fromisoformat(trade["entry_time"]).astimezone(ZoneInfo("America/New_York"))
        assert entry.strftime("%m-%d %H:%M:%S") in line


async def test_cli_with_a_mode_flag_then_that_modes_journal(tmp_path: Path) -> None:
    # A --paper trader's `tui-trader report` read the sim journal: report had no mode flags (kill has them).
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n')
    j = await Journal.open(tmp_path / "journal-paper.sqlite")
    j.append(denial(at("11:30"), "max_order_quantity"))
    await j.flush()
    await j.close()
    paper = run_cli("--paper", "--config", str(config), "--date", "2026-03-03", "--format", "json")
    assert paper.returncode == 0, paper.stderr
    assert json.loads(paper.stdout)["denials"] == {"max_order_quantity": 1}
    sim = run_cli("--config", str(config), "--date", "2026-03-03", "--format", "json")  # the configured mode
    assert sim.returncode == 2
    assert "journal-sim.sqlite" in sim.stderr


def test_cli_without_a_journal_then_usage_error(tmp_path: Path) -> None:
    result = run_cli("--journal", str(tmp_path / "missing.sqlite"))
    assert result.returncode == 2
    assert "no journal" in result.stderr


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America"])
def test_cli_with_a_tz_that_is_no_time_zone_then_usage_error_naming_it(journal: Journal, tmp_path: Path,
                                                                        zone: str) -> None:
    # "America", a folder of zones, raised IsADirectoryError: a traceback, not a message.
    result = run_cli("--journal", str(tmp_path / "journal.sqlite"), "--tz", zone)
    assert result.returncode == 2, result.stderr
    assert f"--tz '{zone}' is not a time zone" in result.stderr
    assert "Traceback" not in result.stderr


def test_csv_of_summed_figures_then_numbers_without_binary_noise() -> None:
    # Arrange: a P&L summed from fills carries binary noise; prices, quantities and flags do not.
    rows = [{"symbol": "AAPL", "pnl": -8.49000000000035, "price": 0.0012, "notional": 9_876_543_210.12,
             "quantity": 7, "win": True, "commission": math.nan}]
    # Act
    text = render_csv(rows)
    # Assert
    (row,) = csv.DictReader(io.StringIO(text))
    assert row == {"symbol": "AAPL", "pnl": "-8.49", "price": "0.0012", "notional": "9876543210.12",
                   "quantity": "7", "win": "True", "commission": ""}  # unknown: empty


async def test_cli_json_and_csv_of_figures_summed_from_fills_then_rounded_as_the_headless_summary(
        tmp_path: Path) -> None:
    # Arrange: a round trip whose P&L and commission, summed from its fills, carry binary noise
    # (the JSON read "gross_pnl": -8.940000000000055 where the headless summary says -8.94).
    j = await Journal.open(tmp_path / "journal.sqlite")
    book = Book(j)
    book.trade("AAPL", Side.BUY, 10, 100.123, at("10:00"), "ema_cross", 0.1)
    book.trade("AAPL", Side.SELL, 10, 99.229, at("10:05"), "ema_cross", 0.2)
    await j.flush()
    await j.close()
    path = str(tmp_path / "journal.sqlite")
    # Act
    as_json = run_cli("--journal", path, "--date", "2026-03-03", "--format", "json")
    as_csv = run_cli("--journal", path, "--date", "2026-03-03", "--format", "csv", "--section", "by_symbol")
    # Assert: to the digits of the headless summary's P&L (money(): 6 decimals), in both formats
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    (trade,) = report["trades"]
    assert (trade["gross_pnl"], trade["commission"], trade["net_pnl"]) == (-8.94, 0.3, -9.24)
    assert (report["summary"]["gross_pnl"], report["summary"]["fills_commission"]) == (-8.94, 0.3)
    assert report["by_strategy"][0]["avg_loss"] == -9.24
    (row,) = csv.DictReader(io.StringIO(as_csv.stdout))
    assert (row["gross_pnl"], row["commission"], row["net_pnl"]) == ("-8.94", "0.3", "-9.24")


async def test_report_of_a_day_when_events_came_the_evening_before_then_only_in_that_days_report(
        tmp_path: Path) -> None:
    # Arrange: the engine journals in UTC; 02:30 UTC on the 5th is 21:30 in New York on the 4th. Compared
    # as text with the day's start written in New York time ("2026-03-05T00:00:00-05:00"), it was in both.
    j = await Journal.open(tmp_path / "journal.sqlite")
    evening = datetime(2026, 3, 5, 2, 30, tzinfo=UTC)
    book = Book(j)
    book.trade("AAPL", Side.BUY, 10, 100, evening, "ema_cross")
    j.append(ev.OperatorAction(evening, "alice", "kill", "evening kill", "ACTIVE", "HALTED"))
    j.append(ev.KillSwitchEngaged(evening, "alice", "evening kill"))
    j.append(denial(evening, "max_order_quantity"))
    j.append(rejected(evening))
    j.append(ev.ApprovalResolved(evening, "ok-1", True, "operator"))
    dry = Order("dry-1", OrderTicket("AAPL", Side.BUY, 1, strategy="ema_cross"), OrderStatus.SENDING, evening,
                evening)
    j.append(ev.OrderNotSent(evening, dry, "dry run: not sent", dry_run=True))
    await j.flush()
    try:
        # Act
        fourth = await build_report(j, Period(date(2026, 3, 4), date(2026, 3, 4)))
        fifth = await build_report(j, Period(date(2026, 3, 5), date(2026, 3, 5)))
    finally:
        await j.close()
    # Assert
    sections = ("operator_actions", "kill_switch", "denials", "rejections", "approvals", "not_sent")
    assert all(fourth[s] for s in sections), {s: fourth[s] for s in sections}
    assert fourth["summary"]["fills"] == 1
    assert {s: fifth[s] for s in sections if fifth[s]} == {}
    assert fifth["summary"]["fills"] == 0


def fill(n: int, side: Side, qty: float, price: float, minute: int, ref: str, symbol: str = "AAPL",
         commission: float = 1.0) -> Fill:
    return Fill(f"e{n}", ref, symbol, side, qty, price, datetime(2026, 3, 5, 15, minute, tzinfo=UTC),
                commission=commission)


def test_pair_fills_when_the_entry_filled_in_pieces_then_one_losing_round_trip() -> None:
    # Arrange: one buy order filled 1 @ 99 then 99 @ 101, one sell of 100 @ 100.5 (it made two trades, one a win).
    fills = [fill(1, Side.BUY, 1, 99.0, 0, "B1", commission=0.0), fill(2, Side.BUY, 99, 101.0, 1, "B1"),
             fill(3, Side.SELL, 100, 100.5, 5, "S1")]
    # Act
    trades, open_lots = pair_fills(fills, {"B1": "ema_cross", "S1": "ema_cross"})
    # Assert
    (trade,) = trades
    assert (trade["quantity"], trade["entry_ref"], trade["exit_ref"]) == (100, "B1", "S1")
    assert trade["entry_price"] == pytest.approx(100.98)
    assert trade["gross_pnl"] == pytest.approx(-48.0)
    assert trade["net_pnl"] == pytest.approx(-50.0)
    assert trade["holding_s"] == 5 * 60
    assert open_lots == []
    assert trade_stats(pd.DataFrame(trades))["win_rate"] == 0.0


def test_pair_fills_when_scaled_in_and_out_then_one_trade_per_flat_to_flat() -> None:
    # Arrange: long 10, add 10, sell 15, sell 5 (flat); then short 10, crossing to long 5 in one buy of 15.
    fills = [fill(1, Side.BUY, 10, 100, 0, "B1"), fill(2, Side.BUY, 10, 102, 1, "B2"),
             fill(3, Side.SELL, 15, 103, 2, "S1"), fill(4, Side.SELL, 5, 99, 3, "S2"),
             fill(5, Side.SELL, 10, 50, 4, "S3", "MSFT"), fill(6, Side.BUY, 15, 48, 5, "B3", "MSFT", 1.5)]
    # Act
    trades, open_lots = pair_fills(fills, {})
    # Assert
    long, short = trades
    assert (long["direction"], long["quantity"], long["entry_ref"], long["exit_ref"]) == ("LONG", 20, "B1,B2",
                                                                                           "S1,S2")
    assert long["entry_price"] == pytest.approx(101.0)
    assert long["exit_price"] == pytest.approx(102.0)
    assert long["gross_pnl"] == pytest.approx(20.0)
    assert long["commission"] == pytest.approx(4.0)
    assert (short["direction"], short["quantity"], short["exit_price"]) == ("SHORT", 10, 48)
    assert short["gross_pnl"] == pytest.approx(20.0)
    assert short["commission"] == pytest.approx(2.0)  # the sell's 1.00 and 10/15 of the buy's 1.50
    assert [(p["symbol"], p["direction"], p["quantity"]) for p in open_lots] == [("MSFT", "LONG", 5)]


def test_cli_on_a_journal_of_an_older_schema_then_reported_read_only(tmp_path: Path) -> None:
    # Arrange: a schema-1 journal (before the write-ahead `sending` table) with one denial; read-only, it
    # is not migrated, and reading orders crashed on "no such table: sending".
    path = tmp_path / "old.sqlite"
    write_old_journal(path, 1, [denial(at("11:30"), "max_order_quantity")])
    # Act
    report = run_cli("--journal", str(path), "--date", "2026-03-03", "--format", "json")
    trace = run_cli("--journal", str(path), "--order", "nope", "--format", "json")
    # Assert
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["denials"] == {"max_order_quantity": 1}
    assert trace.returncode == 2, trace.stderr
    assert "no order 'nope'" in trace.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)  # not migrated


def test_cli_on_a_journal_before_the_fills_permanent_id_then_report_and_trace_read_it_read_only(
        tmp_path: Path) -> None:
    # Arrange: a schema-3 journal with a round trip, written as that version wrote it (no perm_id column in fills)
    path = tmp_path / "old.sqlite"
    refs: list[str] = []
    events: list[ev.Event] = []
    for n, (side, price, hhmm) in enumerate([(Side.BUY, 100.0, "10:00"), (Side.SELL, 103.0, "10:30")], start=1):
        when, ref = at(hhmm), f"ema_cross-{n}"
        order = Order(ref, OrderTicket("AAPL", side, 10, OrderType.MKT, strategy="ema_cross", created_at=when),
                      OrderStatus.FILLED, when, when, broker_id=n, filled_quantity=10, avg_fill_price=price)
        fill = Fill(f"x{n}", ref, "AAPL", side, 10, price, when, n, commission=1.0, perm_id=900 + n)
        events += [ev.OrderUpdated(when, order, OrderStatus.SUBMITTED), ev.OrderFilled(when, fill, order)]
        refs.append(ref)
    write_old_journal(path, 3, events)
    # Act
    report = run_cli("--journal", str(path), "--date", "2026-03-03", "--format", "json")
    trace = run_cli("--journal", str(path), "--order", refs[1], "--format", "json")
    # Assert
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["summary"]["trades"] == 1
    assert trace.returncode == 0, trace.stderr
    assert "AAPL position 0 after this order" in trace.stdout
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)  # not migrated


async def test_report_when_a_writer_holds_the_lock_then_it_reads_and_its_journal_never_writes(
        journal: Journal, tmp_path: Path) -> None:
    # Arrange: a writer mid-transaction beside the report (the engine committing a batch): it holds the write lock.
    path = tmp_path / "journal.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO operator_actions(time, who, action, why) VALUES (?, 'bob', 'note', 'uncommitted')",
                   (at("15:00").isoformat(),))
    reader = await open_readonly(path, readonly_uri(path))
    try:
        # Act: the report reads beside it (it neither waits for the lock nor sees what is not committed)
        report = await build_report(reader, Period(DAY, DAY))
        writer.execute("ROLLBACK")
        # Assert: with the lock free, nothing goes through the report's journal (it held a second,
        # writable connection that committed whatever it was given: here a daily summary).
        with pytest.raises(sqlite3.OperationalError, match="read-only"):
            await reader.save_daily_summary(DAY.isoformat(), {"written": "by a report"})
        with pytest.raises(PermissionError, match="read-only"):
            reader.commit_orders_now([Order("rep-1", OrderTicket("AAPL", Side.BUY, 1), OrderStatus.SENDING,
                                            at("15:01"), at("15:01"))])
    finally:
        writer.close()
        await reader.close()
    assert report["summary"]["trades"] == 4
    assert [a["who"] for a in report["operator_actions"]] == ["alice"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM daily_summaries").fetchone() == (0,)
    assert not sending.log_path(path).exists()


@pytest.mark.parametrize(("content", "says"), [
    (b"not a database at all, just text" * 100, "could not be read as a journal"),
    (b"", "not a tui-trader journal"),
    (None, "newer than this tui-trader"),
], ids=["text", "empty", "newer-schema"])
def test_cli_on_a_file_that_is_no_journal_it_can_read_then_error_naming_it(
        tmp_path: Path, content: bytes | None, says: str) -> None:
    path = tmp_path / "odd.sqlite"
    if content is None:
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.close()
    else:
        path.write_bytes(content)
    result = run_cli("--journal", str(path), "--date", "2026-03-03", "--format", "json")
    assert result.returncode == 2
    assert says in result.stderr
    assert "odd.sqlite" in result.stderr
    assert "Traceback" not in result.stderr


async def filled(engine: Engine, ticket: OrderTicket) -> str:
    """Submit ``ticket`` and wait until it is filled with its commission; its orderRef."""
    order = await engine.submit(ticket)
    await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED
                     and engine.orders.orders[order.order_ref].commission > 0, what=f"{order.order_ref} filled")
    return order.order_ref


async def test_report_when_an_older_resting_exit_fills_in_the_same_second_as_newer_orders_then_trades_as_traded(
        tmp_path: Path) -> None:
    # Arrange: long 10 with a resting sell limit; in the same second (the broker's execution times are to
    # the second) sell at market (flat), buy 10 again, then the limit fills (flat). The simulator's exec ids,
    # like IB's, do not sort in execution order: the limit's, older, sorted first, and the report showed a
    # SHORT trade from the market sell to the buy that never happened.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        sim.control.set_price("AAPL", 100.0)
        first = await filled(engine, buy(10))
        limit = await engine.submit(sell(10, order_type=OrderType.LMT, limit_price=105.0))
        await eventually(lambda: engine.orders.orders[limit.order_ref].status is OrderStatus.SUBMITTED)
        flat = await filled(engine, sell(10))
        again = await filled(engine, buy(10))
        sim.control.set_price("AAPL", 106.0)
        await eventually(lambda: engine.orders.orders[limit.order_ref].status is OrderStatus.FILLED
                         and engine.orders.orders[limit.order_ref].commission > 0, what="the limit filled")
        realized = engine.portfolio.realized_pnl
        await engine.stop()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    try:
        assert len({f.time for f in await journal.fills()}) == 1  # one second
        # Act
        report = await build_report(journal, Period(date(2024, 3, 5), date(2024, 3, 5)))
        trace = await order_trace(journal, again)
    finally:
        await journal.close()
    # Assert
    trades = [(t["direction"], t["entry_ref"], t["exit_ref"]) for t in report["trades"]]
    assert trades == [("LONG", first, flat), ("LONG", again, limit.order_ref)]
    assert report["summary"]["net_pnl"] == pytest.approx(realized)
    (position,) = [s for s in trace if s.step == "position"]
    assert position.data["position"] == 10  # it read 0: the limit's later fill counted as before it


async def test_report_of_positions_the_engine_took_from_the_broker_then_they_start_the_open_positions(
        tmp_path: Path) -> None:
    # Arrange: another client (TWS) bought 10 AAPL before the engine's first start: the new journal's seed holds
    # them. It bought 10 more while the engine was stopped: the next start adjusted the book to the broker's 20 (that
    # execution is not the journal's; the mismatch left trading only reducing, as configured). Then the engine sold 15.
    # From the fills, the report said SHORT 5 (the seed's 10 less 15): the engine and the broker held 5 long.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        await long_at_the_broker(sim)
        async with running(sim, make_config(tmp_path)) as (engine, _):
            await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="seeded from the broker")
        await long_at_the_broker(sim)
        reducing = limits_for_tests(position_mismatch_action=TriggerAction.REDUCING)
        async with running(sim, make_config(tmp_path, limits=reducing)) as (engine, _):
            await eventually(lambda: engine.portfolio.quantity("AAPL") == 20, what="adjusted to the broker")
            await eventually(lambda: "AAPL" in engine.market.quotes, what="AAPL quoted")
            await filled(engine, sell(15))
            held = (engine.portfolio.quantity("AAPL"), engine.portfolio.positions["AAPL"].avg_cost)
            day = engine.now().astimezone(NY).date().isoformat()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    try:
        reasons = [e.reason for e in await journal.events(["BookCheckpointed"]) if isinstance(e, ev.BookCheckpointed)]
        # Act
        report = await build_report(journal, Period(date.fromisoformat(day), date.fromisoformat(day)))
    finally:
        await journal.close()
    cli = run_cli("--journal", str(path), "--date", day, "--format", "json")
    # Assert
    assert reasons[0] == ev.BOOK_SEEDED
    assert any(r.startswith("adjusted to the broker") for r in reasons), reasons
    assert held[0] == 5
    expected = [("AAPL", "LONG", 5, held[1], HELD_IN_THE_BOOK)]
    assert [(p["symbol"], p["direction"], p["quantity"], p["price"], p["strategy"])
            for p in report["open_positions"]] == expected
    assert cli.returncode == 0, cli.stderr
    assert [(p["symbol"], p["direction"], p["quantity"], p["price"], p["strategy"])
            for p in json.loads(cli.stdout)["open_positions"]] == expected


async def test_report_and_trace_of_a_position_partly_taken_from_the_broker_then_paired_from_what_the_book_held(
        tmp_path: Path) -> None:
    # Arrange: another client (TWS) bought 10 AAPL before the engine's first start (the seed holds them); the engine
    # bought 5. TWS bought 10 more while the engine was stopped: the next start adjusted the book to the broker's 25.
    # Then the engine sold 25: flat. From the fills, the trace said "position 5" after the buy and -20 after the sell,
    # and the report closed a trade of 10 only (the sell's other 15 a SHORT against nothing).
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        await long_at_the_broker(sim)
        async with running(sim, make_config(tmp_path), clock=sim.clock.now) as (engine, _):
            await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="seeded from the broker")
            await eventually(lambda: "AAPL" in engine.market.quotes, what="AAPL quoted")
            bought = await filled(engine, buy(5))
        sim.clock.advance(600)
        await long_at_the_broker(sim)
        reducing = limits_for_tests(position_mismatch_action=TriggerAction.REDUCING)
        async with running(sim, make_config(tmp_path, limits=reducing), clock=sim.clock.now) as (engine, _):
            await eventually(lambda: engine.portfolio.quantity("AAPL") == 25, what="adjusted to the broker")
            cost = engine.portfolio.positions["AAPL"].avg_cost
            await eventually(lambda: "AAPL" in engine.market.quotes, what="AAPL quoted")
            sold = await filled(engine, sell(25))
            assert engine.portfolio.quantity("AAPL") == 0
            day = sim.clock.now().astimezone(NY).date()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    try:
        # Act
        report = await build_report(journal, Period(day, day))
        traces = [await order_trace(journal, ref) for ref in (bought, sold)]
    finally:
        await journal.close()
    # Assert: one round trip of 25 from flat to flat, each lot at its cost as the book held it.
    trades = [(t["strategy"], t["quantity"], t["entry_ref"], t["exit_ref"]) for t in report["trades"]]
    assert trades == [("held at journal start", 10, "", sold), ("manual", 5, bought, sold),
                      (HELD_IN_THE_BOOK, 10, "", sold)]
    assert report["trades"][2]["entry_price"] == cost
    assert report["open_positions"] == []
    positions = [[s.data["position"] for s in steps if s.step == "position"] for steps in traces]
    assert positions == [[15], [0]]


async def test_report_of_a_dry_run_bracket_then_not_sent_counts_its_stop_and_target_as_the_summary_does(
        tmp_path: Path) -> None:
    # Arrange: a dry run "sends" a bracket: entry, stop and target. The headless summary counted the 3 orders
    # it would have sent (dry_run_orders), the report's not_sent 1: after a minute's run, 18 against 6.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path, dry_run=True)
        try:
            await engine.start()
            await eventually(lambda: "AAPL" in engine.market.quotes)
            sim.control.set_price("AAPL", 100.0)
            await eventually(lambda: engine.market.quotes["AAPL"].ask < 101, what="AAPL quoted at 100")
            order = await engine.submit(buy(10, bracket=Bracket(stop_price=95.0, take_profit_price=110.0)))
            await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.CANCELLED)
        finally:
            await engine.stop()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    try:
        # Act
        report = await build_report(journal, Period(date(2000, 1, 1), date(2100, 1, 1)))
    finally:
        await journal.close()
    # Assert
    assert engine.unsent_counts["dry_run"] == 3
    assert report["not_sent"] == {"dry run: not sent": 3}


@pytest.mark.parametrize(("flags", "says"), [
    (("--to", "2026-03-03"), "--to 2026-03-03 needs --from"),
    (("--from", "2999-01-02"), "--from 2999-01-02 is after today"),
], ids=["to-alone", "from-after-today"])
def test_cli_with_one_end_of_a_range_then_error_names_what_was_given(
        journal: Journal, tmp_path: Path, flags: tuple[str, ...], says: str) -> None:
    # `--to 2026-03-03` alone read "--to 2026-03-03 is before --from <today>", a --from never typed.
    result = run_cli("--journal", str(tmp_path / "journal.sqlite"), *flags, "--format", "json")
    assert result.returncode == 2
    assert says in " ".join(result.stderr.split()), result.stderr


@pytest.mark.parametrize("section", ["trades", "by_strategy", "by_symbol", "open_positions", "kill_switch",
                                     "risk_triggers", "operator_actions", "rejections", "denials", "approvals",
                                     "not_sent"])
async def test_cli_csv_of_a_section_with_no_rows_then_its_header_the_same_as_with_rows(
        journal: Journal, tmp_path: Path, section: str) -> None:
    # Arrange: a day with one denial and nothing else; the fixture's day has a row in every section.
    j = await Journal.open(tmp_path / "quiet.sqlite")
    j.append(denial(at("11:30", date(2026, 3, 9)), "max_order_quantity"))
    await j.flush()
    await j.close()
    # Act: a day without trades printed nothing at all for --format csv (a tool reading it failed)
    quiet = run_cli("--journal", str(tmp_path / "quiet.sqlite"), "--date", "2026-03-10", "--format", "csv",
                    "--section", section)
    busy = run_cli("--journal", str(tmp_path / "journal.sqlite"), "--date", "2026-03-03", "--format", "csv",
                   "--section", section)
    # Assert
    assert quiet.returncode == 0, quiet.stderr
    assert busy.returncode == 0, busy.stderr
    assert quiet.stdout.splitlines() == busy.stdout.splitlines()[:1]
    assert quiet.stdout.strip()


@pytest.mark.parametrize("section", ["denials", "rejections", "approvals", "uncertain_fills", "risk_triggers",
                                     "kill_switch", "trades"])
async def test_cli_table_of_a_section_with_no_rows_then_its_title_and_none(tmp_path: Path, section: str) -> None:
    # Arrange: a day with nothing in it (the journal has a denial the day before).
    j = await Journal.open(tmp_path / "quiet.sqlite")
    j.append(denial(at("11:30", date(2026, 3, 9)), "max_order_quantity"))
    await j.flush()
    await j.close()
    # Act: it ended in "IndexError: list index out of range", exit 1.
    table = run_cli("--journal", str(tmp_path / "quiet.sqlite"), "--date", "2026-03-10", "--format", "table",
                    "--section", section)
    # Assert
    assert table.returncode == 0, table.stderr
    lines = [ln.strip(" │┃|") for ln in table.stdout.splitlines()]
    title = lines.index(section.replace("_", " "))
    assert "none" in [ln.strip() for ln in lines[title + 1:]], table.stdout


async def test_report_when_a_kill_left_an_order_working_then_its_kill_events_say_so(tmp_path: Path) -> None:
    # Arrange: a resting buy limit; the kill's cancel is never answered, so the broker still holds it.
    # The report listed the kill as "engaged" and nothing else: it read as a kill that worked.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path, ack_timeout_s=0.5)
        seen = engine.subscribe("test", lossless=True)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes)
        price = round(engine.market.quotes["AAPL"].bid * 0.97, 2)
        order = await engine.submit(buy(5, order_type=OrderType.LMT, limit_price=price))
        await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.SUBMITTED)
        for kind in ("order_status", "error"):  # the cancel's answers never arrive
            sim.control.drop_messages(kind, -1)
        engine.kill("operator pressed ctrl+k")
        checks: list[ev.KillChecked] = []
        await eventually(lambda: checks.extend(e for e in seen.drain() if isinstance(e, ev.KillChecked)) or checks,
                         within=15, what="the kill's verification")
        await engine.stop()
    path = tmp_path / "journal.sqlite"
    journal = await open_readonly(path, readonly_uri(path))
    day = checks[0].time.astimezone(NY).date()
    try:
        # Act
        report = await build_report(journal, Period(day, day))
    finally:
        await journal.close()
    # Assert
    events = [(k["event"], k["reason"]) for k in report["kill_switch"]]
    assert events[0] == ("engaged", "operator pressed ctrl+k")
    assert events[1][0] == "NOT verified"
    assert f"still working: {order.order_ref}" in events[1][1]


async def test_report_of_a_journal_before_kill_checks_then_a_failed_verification_still_said(tmp_path: Path) -> None:
    # Such a journal recorded a failed verification as a second engagement naming what still worked;
    # the report dropped it.
    report = await report_of(tmp_path, ev.KillSwitchEngaged(at("14:00"), "operator", "fat finger"),
                             ev.KillSwitchEngaged(at("14:00"), "operator", "fat finger", ("a-1",), ("a-2",)))
    assert [(k["event"], k["reason"]) for k in report["kill_switch"]] == [
        ("engaged", "fat finger"), ("NOT verified", "still working: a-2 (1 cancelled)")]


async def test_report_of_an_automatic_trip_that_kept_the_protection_then_the_kept_orders_are_counted(
        tmp_path: Path) -> None:
    # The verification's kept stops and targets (a JSON field of the journaled event) are said, not dropped.
    report = await report_of(tmp_path, ev.KillChecked(at("14:00"), ev.KillReport(("a-1",), (), checked=True,
                                                                               kept=("a-2", "a-3"))))
    assert [(k["event"], k["reason"]) for k in report["kill_switch"]] == [
        ("verified", "1 cancelled, 2 protective kept, nothing still working")]


async def test_report_of_a_kill_check_superseded_by_a_later_kill_then_labelled_so(tmp_path: Path) -> None:
    # Arrange: an automatic trip keeps the stop a-2; Ctrl+K is pressed before the trip's check comes, so that
    # check (a-2 kept) is superseded: the Ctrl+K's own check, a-2 cancelled, is the latest word.
    trip, ctrl_k = ev.KillReport(("a-1",), (), checked=True, kept=("a-2",)), ev.KillReport(("a-2",), (), checked=True)
    # Act: the report showed both checks alike, the superseded one read as the word on the kill then latched.
    report = await report_of(tmp_path, ev.KillSwitchEngaged(at("14:00"), "risk", "daily loss"),
                             ev.KillSwitchEngaged(at("14:01"), "operator", "ctrl+k"),
                             ev.KillChecked(at("14:01"), trip, superseded=True), ev.KillChecked(at("14:02"), ctrl_k))
    # Assert
    assert [(k["event"], k["reason"]) for k in report["kill_switch"]] == [
        ("engaged", "daily loss"), ("engaged", "ctrl+k"),
        ("verified", "superseded by a later kill: 1 cancelled, 1 protective kept, nothing still working"),
        ("verified", "1 cancelled, nothing still working")]


async def test_daily_summary_when_a_superseded_kill_check_left_orders_working_then_not_counted_unverified(
        tmp_path: Path) -> None:
    # Arrange: an automatic trip's check, superseded by Ctrl+K before it came, names a-2 still working; Ctrl+K's own
    # check (the latest word) has it cancelled.
    trip = ev.KillReport(("a-1",), ("a-2",), checked=True)
    ctrl_k = ev.KillReport(("a-2",), (), checked=True)
    j = await Journal.open(tmp_path / "journal.sqlite")
    for event in (ev.KillSwitchEngaged(at("14:00"), "risk", "daily loss"),
                  ev.KillSwitchEngaged(at("14:01"), "operator", "ctrl+k"),
                  ev.KillChecked(at("14:01"), trip, superseded=True), ev.KillChecked(at("14:02"), ctrl_k)):
        j.append(event)
    await j.flush()
    sent: list[Notice] = []
    # Act
    try:
        summary = await close_session(j, DAY, "America/New_York", sent.append)
    finally:
        await j.close()
    # Assert: the day's summary said a kill was left unverified, which the later kill's check had settled.
    assert summary["kill_not_verified"] == 0
    (notice,) = sent
    assert "kill switch: 2 engaged, 1 superseded check, 1 verified" in notice.text


def test_pair_fills_when_every_fill_of_a_side_has_one_price_then_that_price_exactly() -> None:
    # A short of 9 @ 503.2 read entry_price 503.20000000000005 in the JSON: the average by quantity of one price.
    fills = [fill(1, Side.SELL, 9, 503.2, 0, "S1"), fill(2, Side.BUY, 4, 503.34, 1, "B1"),
             fill(3, Side.BUY, 5, 503.34, 2, "B2")]
    (trade,), _ = pair_fills(fills, {})
    assert (trade["entry_price"], trade["exit_price"]) == (503.2, 503.34)


def _trade_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(t["symbol"], t["strategy"], t["entry_ref"], t["exit_ref"]) for t in report["trades"]]


async def test_report_when_two_orders_share_an_order_ref_then_each_fill_is_its_own_orders(tmp_path: Path) -> None:
    # Arrange: another tool's orderRef "bot1": the first order adopted as bot1 (permId 11); a second, working, adopted
    # as bot1#22, whose fill came before it was adopted (journaled as a fill for an unknown order, under bot1); a third
    # never seen working (permId 33), its fill under bot1 too. By the orderRef alone the report gave every fill under
    # bot1 to bot1: its exits read "bot1", and the third order's MSFT trade counted as the adopted bot1's.
    from tests.store.old_journal import filled, order  # this module's filled() is another: an engine's order filled

    bot1 = order("bot1", "AAPL", Side.BUY, 3, at("09:50"), "adopted", 11, 50)
    bot1_22 = order("bot1#22", "AAPL", Side.SELL, 5, at("10:40"), "adopted", 22, 51, OrderStatus.PARTIALLY_FILLED)
    ours = order("tt1-1", "MSFT", Side.SELL, 2, at("11:30"), "macd", 901, 1)
    other = order("bot1", "MSFT", Side.BUY, 2, at("11:00"), "-", 33, 52)  # never journaled: only its fill is
    # Act
    report = await report_of(
        tmp_path, *(ev.OrderUpdated(o.created_at, o, OrderStatus.SUBMITTED) for o in (bot1, bot1_22, ours)),
        filled("x1", "bot1", bot1, 3, 100.0, at("10:00"), perm_id=11),
        filled("x2", "bot1", bot1_22, 3, 104.0, at("10:30"), perm_id=22),
        filled("x3", "bot1", other, 2, 50.0, at("11:00"), perm_id=33),
        filled("x4", "tt1-1", ours, 2, 51.0, at("11:30"), perm_id=901))
    # Assert
    assert _trade_rows(report) == [("AAPL", "adopted", "bot1", "bot1#22"), ("MSFT", "unknown", "bot1#33", "tt1-1")]
    assert [(s["strategy"], s["trades"]) for s in report["by_strategy"]] == [("adopted", 1), ("unknown", 1)]
    assert (report["summary"]["uncertain_fills"], report["uncertain_fills"]) == (0, [])


async def test_report_and_trace_of_an_old_journal_read_only_then_fills_of_uncertain_orders_said_so(
        tmp_path: Path) -> None:
    # Arrange: a schema-3 journal (fills without permanent ids) with fills its event log or its one order under the
    # ref ties to an order, and fills it cannot (tests/store/old_journal.py: shared_ref_events says which and why).
    path = tmp_path / "old.sqlite"
    times = ("09:00", "10:00", "10:10", "10:20", "10:30", "10:50", "11:00", "11:30", "11:50", "12:00")
    write_old_journal(path, 3, shared_ref_events({t: at(t) for t in times}))
    journal = await open_readonly(path, readonly_uri(path))
    try:
        # Act
        report = await build_report(journal, Period(DAY, DAY))
        traces = {ref: [(s.step, s.data.get("exec_id"), "uncertain" in s.detail)
                        for s in await order_trace(journal, ref) if s.step == "fill"] for ref in ("bot1", "bot1#22")}
    finally:
        await journal.close()
    # Assert: a fill whose order is uncertain is given to none of the orders under its ref: said, with why.
    assert _trade_rows(report) == [("AAPL", "ema_cross", "tt1-1", "bot1#22,bot1#?"),
                                   ("MSFT", "uncertain", "bot2#?", "tt1-2")]
    assert [(p["symbol"], p["strategy"], p["order_ref"]) for p in report["open_positions"]] == [
        ("NVDA", "uncertain", "tt1-3#?")]
    assert report["summary"]["uncertain_fills"] == 3
    assert [(u["exec_id"], u["order_ref"], u["why"]) for u in report["uncertain_fills"]] == [
        ("x3", "bot1", "2 orders were journaled under orderRef bot1: bot1 (permId 11), bot1#22 (permId 22)"),
        ("x4", "bot2", "2 orders were journaled under orderRef bot2: bot2 (permId 5), bot2 (permId 6)"),
        ("x6", "tt1-3", "the order journaled under orderRef tt1-3 is a BUY of NVDA")]
    assert traces == {"bot1": [("fill", "x3", True)], "bot1#22": [("fill", "x2", False)]}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)  # not migrated
    conn.close()


async def test_report_of_a_rejection_journaled_as_two_updates_then_counted_once_under_the_brokers_code(
        tmp_path: Path) -> None:
    # A journal written before a rejection was one record holds the move to REJECTED (the broker's words in its
    # step's note) and then the broker's error as an update from nowhere: counted twice, under two reasons.
    ticket = OrderTicket("SPY", Side.SELL, 10, strategy="manual")
    moved = Order("rej-2", ticket, OrderStatus.REJECTED, at("10:00"), at("10:00")).with_status(
        OrderStatus.REJECTED, at("10:00"), "Order rejected - reason:Insufficient margin")
    errored = replace(moved, last_error="201: Order rejected - reason:Insufficient margin")

    report = await report_of(tmp_path, ev.OrderUpdated(at("10:00"), moved, OrderStatus.SENDING),
                             ev.OrderUpdated(at("10:00"), errored, None))

    assert report["rejections"] == {"201: Order rejected - reason:Insufficient margin": 1}


async def test_report_of_a_modify_the_broker_refused_then_the_operators_action_says_refused_and_the_figures_kept(
        tmp_path: Path) -> None:
    # The operator's modify is journaled when sent; the broker's refusal after it. The report showed the modify
    # as done ("limit 512.7 -> limit 510") while the order worked on at 512.7. A later modify it took stays done.
    before, asked = "quantity 10, limit 512.7", "quantity 10, limit 510"
    modify = ev.OperatorAction(at("10:00"), "operator", "modify_order", "tt1-4 (SELL 10 SPY LMT)", before, asked,
                               "tt1-4")
    refused = ev.ModifyRefused(at("10:00"), "tt1-4", 201, "Order rejected - reason:Simulated", asked, before)
    taken = replace(modify, time=at("10:05"))

    report = await report_of(tmp_path, modify, refused, taken)

    assert [(a["before"], a["after"]) for a in report["operator_actions"]] == [
        (before, f"{before}: the broker refused {asked} (201: Order rejected - reason:Simulated)"), (before, asked)]
