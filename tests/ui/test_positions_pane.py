"""The positions pane: the owner column (who may close each position by a strategy's signal); P&L
that is unknown (no mark) or not live (a stale mark, or one no quote of this session gave); a stop or
target whose modification the broker has not confirmed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tui_trader.domain import OrderTicket, OrderType, Position, Side
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.engine.snapshots import PendingModification
from tui_trader.ui.demo import normal_state
from tui_trader.ui.format import DASH
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.positions import COLUMNS, PositionsPane, exit_cells, position_row, total_row
from tui_trader.ui.widgets.rows import Row

from .conftest import running


@pytest.mark.parametrize(("owner", "shown"), [("ema_cross", "ema_cross"), ("manual", "manual"), ("", DASH)])
def test_position_row_when_owned_or_not_then_its_owner_or_a_dash_in_the_owner_column(owner: str, shown: str) -> None:
    row = position_row(Position("AAPL", 10, 100.0, 101.0, owner=owner), stale=False)
    assert len(row.cells) == len(COLUMNS)
    assert dict(zip((c.title for c in COLUMNS), row.cells, strict=True))["Owner"] == shown


def test_owner_column_when_the_pane_is_narrow_then_dropped_before_any_figure() -> None:
    owner = next(c for c in COLUMNS if c.title == "Owner")
    assert all(c.priority < owner.priority for c in COLUMNS if c is not owner)


def cell(row: Row, title: str) -> tuple[str, str]:
    """The text and role of the cell under column ``title``."""
    index = [c.title for c in COLUMNS].index(title)
    return row.cells[index], row.cell_role(index)


def test_position_row_when_never_marked_then_value_and_pnl_unknown_not_zero() -> None:
    # Read "+0.00" and "+0.00%" (and a market value at cost) as if the position stood at its cost.
    row = position_row(Position("AAPL", 100, 212.40), stale=False)
    for title in ("Last", "Mkt value", "Unrl P&L", "P&L %"):
        assert cell(row, title)[0] == DASH, title
    assert cell(row, "Rlzd gross")[0] == "+0.00"


def test_total_row_when_one_position_never_marked_then_its_value_and_pnl_totals_unknown() -> None:
    held = [Position("AAPL", 100, 212.40), Position("MSFT", 10, 380.0, 390.0, realized_pnl=-5.0)]
    row = total_row(held)
    # The MSFT figures alone read as the book's: +100.00 of open P&L over two positions, one unknown.
    assert cell(row, "Mkt value")[0] == DASH
    assert cell(row, "Unrl P&L")[0] == DASH
    assert cell(row, "Rlzd gross")[0] == "-5.00"


def test_position_row_when_its_mark_is_stale_then_the_pnl_from_it_is_dimmed_too() -> None:
    row = position_row(Position("AAPL", 100, 212.40, 200.0), stale=True)
    assert cell(row, "Last")[1] == "dim"
    # A loss at an old mark was drawn in the loss colour like a live one.
    assert cell(row, "Unrl P&L") == ("-1,240.00", "dim")
    assert cell(row, "P&L %")[1] == "dim"


async def test_positions_pane_when_a_mark_has_no_quote_this_session_then_dimmed_and_said() -> None:
    # A mark restored from the journal (yesterday's) before any quote of the symbol came, or a held
    # symbol the broker sends no quotes for: drawn like a live mark, its P&L in full colour.
    base = normal_state()
    symbol = next(iter(base.account.positions))
    quotes = {s: q for s, q in base.quotes.items() if s != symbol}
    async with running(replace(base, quotes=quotes)) as c:
        table = c.app.screen.query_one("#positions-table", LineTable)
        rows = {r.key: r for r in table.rows}
        assert cell(rows[symbol], "Last")[1] == "dim"
        assert cell(rows[symbol], "Unrl P&L")[1] == "dim"
        others = [r for k, r in rows.items() if k not in (symbol, "__total__")]
        assert others
        assert all(cell(r, "Last")[1] == "" for r in others)
        pane = c.app.screen.query_one(PositionsPane)
        assert f"mark not live: {symbol}" in str(pane.border_subtitle)


async def test_positions_pane_when_the_account_is_not_known_yet_then_not_no_open_positions() -> None:
    # A console that never reached its gateway (no journal) said "No open positions" of an account it knew
    # nothing about, next to "Equity —".
    state = normal_state()
    unknown = replace(state, account=AccountSnapshot(time=state.time, known=False))
    async with running(unknown) as c:
        table = c.app.screen.query_one("#positions-table", LineTable)
        assert table.render_line(1).text.strip() == "Positions not known yet"
        c.engine.state = state
        await c.pull()
        assert table.rows[0].key != "__total__"
        # Nothing held, nothing realised today (a day of closed trades keeps its total line: see below).
        flat = replace(state.account, positions={}, realized_pnl_today=0.0, commissions_today=0.0)
        c.engine.state = replace(state, account=flat)
        await c.pull()
        assert table.render_line(1).text.strip() == "No open positions"


def test_exit_cells_when_a_modification_of_the_stop_is_unconfirmed_then_the_stop_held_then_the_one_asked() -> None:
    held = Position("AAPL", 10, 100.0, 101.0, stop_price=95.0, take_profit_price=105.0)
    moved = replace(held, stop_price=96.0)
    assert exit_cells(held, 10, False, (moved, 10, False)) == ("95.00→96.00", "warn", "105.00", "")
    # Made smaller: the stop held covers the whole position; the one asked would not (too wide: the arrow says it).
    assert exit_cells(held, 10, False, (held, 6, False)) == ("95.00→…", "warn", "105.00", "")
    assert exit_cells(held, 10, False, (replace(held, take_profit_price=106.0), 10, False)) == (
        "95.00", "", "105.00→…", "warn")


def test_exit_cells_when_a_modification_leaves_the_cells_as_they_are_then_not_marked() -> None:
    # A stop of 10 cut to the 6 held covers the whole position either way.
    held = Position("AAPL", 6, 100.0, 101.0, stop_price=95.0)
    assert exit_cells(held, 10, False, (held, 6, False)) == ("95.00", "", DASH, "")


async def test_positions_pane_when_a_stop_modification_is_unconfirmed_then_the_stop_held_then_the_one_asked() -> None:
    # The snapshot's account has the figures the broker holds (the engine's account_held); the pane adds the
    # ones asked after an arrow, until the broker confirms them.
    base = normal_state()
    ticket = OrderTicket("AAPL", Side.BUY, 100, OrderType.STP, stop_price=220.48, reduce_only=True)
    stop = replace(base.account.working_orders[0], ticket=ticket)
    account = replace(base.account, working_orders=(stop,))
    pending = PendingModification(ticket, replace(ticket, stop_price=219.5))
    state = replace(base, account=account, orders=(stop,), modifications={stop.order_ref: pending})
    async with running(state) as c:
        table = c.app.screen.query_one("#positions-table", LineTable)
        rows = {r.key: r for r in table.rows}
        assert cell(rows["AAPL"], "Stop") == ("220.48→…", "warn")
        assert cell(rows["AMD"], "Stop") == ("113.62", "")
        confirmed = replace(stop, ticket=pending.asked)
        positions = {**account.positions, "AAPL": replace(account.positions["AAPL"], stop_price=219.5)}
        c.engine.state = replace(state, account=replace(account, positions=positions, working_orders=(confirmed,)),
                                 orders=(confirmed,), modifications={})
        await c.pull()
        rows = {r.key: r for r in table.rows}
        assert cell(rows["AAPL"], "Stop") == ("219.50", "")


def day_of(held: dict[str, Position], net: float, commissions: float):
    """The demo session holding ``held``, with the day's realised P&L after ``commissions`` at ``net``."""
    state = normal_state()
    account = replace(state.account, positions=held, realized_pnl_today=net, commissions_today=commissions)
    return replace(state, account=account)


def total_cells(table: LineTable) -> dict[str, str]:
    """The totals line by column title."""
    (total,) = [row for row in table.rows if row.key == "__total__"]
    return dict(zip((c.title for c in COLUMNS), total.cells, strict=True))


async def test_total_realised_when_a_symbol_was_closed_today_then_the_days_gross_and_net_not_the_open_ones() -> None:
    # QA: MSFT closed at a loss today, AAPL still held: TOTAL read -0.30 (AAPL's alone) against the report's
    # gross -3.51 and net -7.70.
    held = {"AAPL": Position("AAPL", 10, 200.0, 201.0, realized_pnl=-0.30)}
    async with running(day_of(held, net=-7.70, commissions=4.19)) as c:
        pane = c.app.main.query_one(PositionsPane)
        assert total_cells(pane.table)["Rlzd gross"] == "-3.51"
        assert "day rlzd net -7.70" in str(pane.border_subtitle)


async def test_total_realised_when_every_position_was_closed_today_then_the_total_line_stays() -> None:
    async with running(day_of({}, net=-7.70, commissions=4.19)) as c:
        pane = c.app.main.query_one(PositionsPane)
        cells = total_cells(pane.table)
        assert (cells["Symbol"], cells["Side"], cells["Rlzd gross"]) == ("TOTAL", "0", "-3.51")
