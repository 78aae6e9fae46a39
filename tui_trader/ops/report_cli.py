"""``tui-trader report``: the journal read-only, as Rich tables on a terminal or CSV/JSON for tools.

    tui-trader report [--date YYYY-MM-DD | --from D --to D] [--format table|csv|json]
                      [--section trades|...] [--order REF] [--config PATH] [--journal PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sqlite3
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiosqlite
from rich.console import Console
from rich.table import Table

from tui_trader.domain.money import tool_figures
from tui_trader.errors import TraderError, UsageError
from tui_trader.help_format import HelpFormatter
from tui_trader.ops.modes import add_mode_flags, settings_for
from tui_trader.ops.reports import SECTION_COLUMNS, Period, build_report, jsonable
from tui_trader.ops.trace import order_trace
from tui_trader.ops.trace_export import step_detail
from tui_trader.store.journal import Journal
from tui_trader.store.schema import SCHEMA_VERSION

SECTIONS = ("summary", "by_strategy", "by_symbol", "trades", "open_positions", "kill_switch", "risk_triggers",
            "operator_actions", "uncertain_fills")
COUNTED = ("rejections", "denials", "approvals", "not_sent")
"""Sections that count by reason: broker rejections, risk denials, approval outcomes, orders stopped
before the wire (a dry run's would-be orders)."""
TRACE_COLUMNS = ("time", "step", "order_ref", "detail")


def section_columns(section: str) -> tuple[str, ...]:
    """The columns of ``section`` (``order``: a trace's), for the CSV header of a section without rows:
    a day without trades printed nothing, and a tool reading the CSV failed on it."""
    if section in COUNTED:
        return ("reason", "count")
    return TRACE_COLUMNS if section == "order" else SECTION_COLUMNS.get(section, ())


def readonly_uri(path: Path) -> str:
    """The SQLite URI opening ``path`` read-only.

    Raises:
        UsageError: when there is no journal at ``path``.
    """
    if not path.is_file():
        raise UsageError(f"no journal at {path}")
    return f"{path.resolve().as_uri()}?mode=ro"


async def open_readonly(path: Path, uri: str) -> Journal:
    """The journal at ``uri`` (from :func:`readonly_uri`) opened read-only: no writer, no migration.

    Its one connection is read-only and every write through it is refused (``Journal(read_only=True)``): a
    report beside a live engine never writes to its file nor takes its write lock.

    An older schema is read as it is (what it lacks reads as empty).

    Raises:
        JournalUnreadable: when ``path`` is not a tui-trader journal, or one of a newer tui-trader.
    """
    conn = await aiosqlite.connect(uri, uri=True)
    try:
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version == 0:
            raise JournalUnreadable(f"{path} is not a tui-trader journal (it has no journal schema)")
        if version > SCHEMA_VERSION:
            raise JournalUnreadable(f"{path} has journal schema {version}, newer than this tui-trader reads "
                                    f"({SCHEMA_VERSION}): upgrade tui-trader to report on it")
    except (sqlite3.Error, JournalUnreadable) as exc:
        await conn.close()
        if isinstance(exc, sqlite3.Error):
            raise JournalUnreadable(f"{path} could not be read as a journal: {exc}") from exc
        raise
    return Journal(conn, path, 1, 1.0, None, read_only=True)


class JournalUnreadable(TraderError):
    """The journal given to ``tui-trader report`` cannot be read; exit code 2."""

    title = "Journal unreadable"


def period_from(args: argparse.Namespace, time_zone: str) -> Period:
    """The period the flags ask for (default: today in ``time_zone``)."""
    if args.date and (args.from_ or args.to):
        raise UsageError("use --date, or --from and --to, not both")
    if args.to and not args.from_:  # it read "--to D is before --from <today>", a --from never typed
        raise UsageError(f"--to {args.to} needs --from (or --date for one day)")
    today = datetime.now(ZoneInfo(time_zone)).date()
    first = _day(args.date or args.from_) or today
    last = _day(args.date or args.to) or (first if args.date or not args.from_ else today)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}" if args.to else
                         f"--from {first} is after today ({last} in {time_zone}): give --to as well")
    return Period(first, last, time_zone)


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def render_csv(rows: list[dict[str, Any]], columns: Sequence[str] = ()) -> str:
    """Rows as CSV with a header: that of ``columns`` when there are no rows (empty string without either).

    Numbers are written as :func:`for_tools` writes them: a P&L summed from fills reads ``-8.49``, not
    ``-8.49000000000035``.
    """
    fields = list(rows[0]) if rows else list(columns)
    if not fields:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(for_tools(rows))
    return out.getvalue()


def for_tools(value: Any) -> Any:
    """``value`` as the JSON and CSV formats write it: :func:`jsonable`, with every figure as
    :func:`~tui_trader.domain.money.tool_figures` writes it (the order trace's export too): rounded by the rule of
    the headless summary's P&L (the JSON read ``"gross_pnl": -8.940000000000083`` beside a summary's ``-8.94``), NaN
    and infinities null (a denied check's ``Infinity`` made the JSON unreadable to strict tools). The table keeps its
    own: cents."""
    return tool_figures(jsonable(value))


def section_rows(report: dict[str, Any], section: str) -> list[dict[str, Any]]:
    """One section of the report as rows."""
    value = report[section]
    if section == "summary":
        return [value]
    if isinstance(value, dict):
        return [{"reason": k, "count": v} for k, v in value.items()]
    return list(value)


def render_tables(console: Console, report: dict[str, Any]) -> None:
    """Every non-empty section of the report as a Rich table."""
    p = report["period"]
    console.print(f"[bold]tui-trader report[/] {p['from']} .. {p['to']} (times in {p['time_zone']})")
    summary = [{"figure": k, "value": v} for k, v in jsonable(report["summary"]).items()]
    print_table(console, rows_table("summary", summary))
    zone = ZoneInfo(p["time_zone"])
    for section in (*SECTIONS[1:], *COUNTED):
        rows = section_rows(report, section)
        if rows:
            print_table(console, rows_table(section.replace("_", " "), [_for_terminal(r, zone) for r in rows]))


def _for_terminal(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """A row made readable: times in the report's time zone (the journal's are UTC), holding as a
    duration, no refs."""
    out: dict[str, Any] = {k: v.astimezone(zone) if isinstance(v, datetime) else v
                           for k, v in row.items() if k not in ("entry_ref", "exit_ref")}
    if "holding_s" in out:  # h:mm:ss (minutes alone showed every trade under a minute as "0h00m")
        seconds = round(out.pop("holding_s"))
        out["holding"] = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return out


def rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """A Rich table of plain rows (numbers rounded for reading).

    Nothing is cut short: a figure's or a time's column is as wide as its widest cell, and text (names,
    reasons) wraps inside a column at least :data:`TEXT_MIN_WIDTH` wide on a narrow terminal (an
    80-column terminal showed a trade's P&L as "-0…" and its strategy as "ema…"). Without rows, one cell
    says "none". Print it with :func:`print_table`.
    """
    table = Table(title=title, title_justify="left")
    if not rows:  # a section with no rows: its title and "none" (it ended in an IndexError)
        table.show_header = False
        table.min_width = len(title)  # the title on one line above it
        table.add_column()
        table.add_row("none")
        return table
    cells = [[_cell(v) for v in row.values()] for row in rows]
    for i, column in enumerate(rows[0]):
        widest = max(len(column), *(len(r[i]) for r in cells))
        if isinstance(rows[0][column], int | float):
            table.add_column(column, justify="right", no_wrap=True, min_width=widest)
        elif isinstance(rows[0][column], str):  # names and reasons: wrapped in a column of at least TEXT_MIN_WIDTH
            table.add_column(column, overflow="fold", min_width=min(widest, TEXT_MIN_WIDTH))
        else:  # times
            table.add_column(column, no_wrap=True, min_width=widest)
    for row_cells in cells:
        table.add_row(*row_cells)
    return table


TEXT_MIN_WIDTH = 24


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` at least as wide as its columns' minimum widths: wider than the terminal
    (which then wraps its lines) rather than cropped or squeezed (Rich fits a table to the console's
    width, and measures it against that width too)."""
    needed = console.measure(table, options=console.options.update_width(UNBOUNDED)).minimum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


UNBOUNDED = 100_000


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%m-%d %H:%M:%S}"
    if isinstance(value, float):  # money to the cent, as the console shows it ("0.8364" next to "3.38")
        text = f"{value:,.2f}"
        return "0.00" if text == "-0.00" else text
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    """The ``report`` subcommand's parser."""
    parser = argparse.ArgumentParser(prog="tui-trader report", description="Trades, statistics and order "
                                     "traces from the journal (read-only).", formatter_class=HelpFormatter)
    parser.add_argument("--date", help="one trading day YYYY-MM-DD (default: today)")
    parser.add_argument("--from", dest="from_", metavar="D", help="first day YYYY-MM-DD")
    parser.add_argument("--to", metavar="D", help="last day YYYY-MM-DD (default: today)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default=None,
                        help="table on a terminal, json otherwise (default)")
    parser.add_argument("--section", choices=(*SECTIONS, *COUNTED), default=None,
                        help="print only this section (--format csv prints one: trades by default)")
    parser.add_argument("--order", metavar="REF", help="trace one order by orderRef or broker id")
    parser.add_argument("--config", type=Path, metavar="PATH", help="configuration file (TOML)")
    add_mode_flags(parser, "journal")
    parser.add_argument("--journal", type=Path, metavar="PATH", help="journal file (default: the mode's)")
    parser.add_argument("--tz", default="America/New_York", help="time zone of the trading day")
    return parser


def run_report(argv: Sequence[str]) -> int:
    """Entry point of ``tui-trader report``."""
    args = build_parser().parse_args(list(argv))
    try:
        ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("America") is no zone
        raise UsageError(f"--tz {args.tz!r} is not a time zone (an IANA name such as America/New_York)") from None
    path = args.journal or settings_for(args.config, args.mode).journal_path
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    return asyncio.run(_report(path, readonly_uri(path), args, fmt, Console()))


async def _report(path: Path, uri: str, args: argparse.Namespace, fmt: str, console: Console) -> int:
    period = None if args.order else period_from(args, args.tz)
    journal = await open_readonly(path, uri)
    try:
        report, title = await _read(journal, path, args, period)
    except sqlite3.Error as exc:
        raise JournalUnreadable(f"{path} could not be read as a journal: {exc}") from exc
    finally:
        await journal.close()
    _emit(console, report, fmt, args.section if not args.order else "order", title, ZoneInfo(args.tz))
    return 0


async def _read(journal: Journal, path: Path, args: argparse.Namespace,
                period: Period | None) -> tuple[dict[str, Any], str]:
    """The report of ``period`` (or the trace of ``--order``) and its title."""
    if not args.order:
        assert period is not None
        return await build_report(journal, period), ""
    rows = [_trace_row(s, ZoneInfo(args.tz)) for s in await order_trace(journal, args.order)]
    if not rows:
        raise UsageError(f"no order {args.order!r} in {path}")
    return {"order": rows}, f"order {args.order}"


def _trace_row(step: Any, zone: ZoneInfo) -> dict[str, Any]:
    return {"time": step.time, "step": step.step, "order_ref": step.order_ref, "detail": step_detail(step, zone),
            "data": step.data}


def _emit(console: Console, report: dict[str, Any], fmt: str, section: str | None, title: str,
          zone: ZoneInfo) -> None:
    """Print the report (``section``: only it, when asked for; CSV prints one, trades by default)."""
    if fmt == "json":
        chosen = report if section in (None, "order") else {"period": report["period"], section: report[section]}
        sys.stdout.write(json.dumps(for_tools(chosen), indent=2, allow_nan=False) + "\n")
        return
    if fmt == "table" and section is None:
        render_tables(console, report)
        return
    section = section or "trades"
    rows = _plain(report["order"]) if section == "order" else section_rows(report, section)
    if fmt == "csv":
        sys.stdout.write(render_csv(rows, section_columns(section)))
    elif section == "order":
        print_table(console, rows_table(f"{title} (times in {zone.key})", [_for_terminal(r, zone) for r in rows]))
    else:
        p = report["period"]
        console.print(f"[bold]tui-trader report[/] {p['from']} .. {p['to']} (times in {p['time_zone']})")
        print_table(console, rows_table(section.replace("_", " "), [_for_terminal(r, zone) for r in rows]))


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trace rows without their structured ``data`` (for CSV and tables)."""
    return [{k: v for k, v in r.items() if k != "data"} for r in rows]
