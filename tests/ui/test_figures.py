"""Figures in the panes are never cut: a quantity, price or P&L too wide for its column is written
shorter (without separators, then compact), never drawn with digits missing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.geometry import Region

from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import OrderTicket
from tui_trader.domain.portfolio import Position
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.demo import FROZEN, make_order, normal_state
from tui_trader.ui.format import asked
from tui_trader.ui.modals.flatten import FlattenModal
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.orders import PRICE_WIDTH, QTY_WIDTH

from .conftest import Console, running


def big_state() -> EngineSnapshot:
    """A short of 12,345.5 with a stop for 1,000 of it, a million shares long, a price of 99,999.99, a STP LMT
    for 1,234.5, a fill of 100,000 and an order for 123,456.5; a realized loss of 1,234,567.89."""
    base = normal_state()
    pos = {
        "AAPL": Position("AAPL", -12_345.5, 178.42, 190.10, realized_pnl=-1_234_567.89, stop_price=195.00),
        "SPY": Position("SPY", 1_000_000, 500.00, 498.7654),
        "NVR": Position("NVR", 10, 99_999.99, 99_850.50),
    }
    stop = make_order("tt-201", OrderTicket("AAPL", Side.BUY, 1_000, OrderType.STP, stop_price=195.00,
                                            reduce_only=True), OrderStatus.SUBMITTED, FROZEN)
    stop_limit = make_order("tt-202", OrderTicket("MSFT", Side.BUY, 1_234.5, OrderType.STP_LMT, limit_price=178.50,
                                                  stop_price=178.00), OrderStatus.SUBMITTED, FROZEN)
    filled = make_order("tt-203", OrderTicket("SPY", Side.BUY, 100_000, OrderType.MKT), OrderStatus.FILLED, FROZEN,
                        filled=100_000)
    odd_lot = make_order("tt-204", OrderTicket("SPY", Side.SELL, 123_456.5, OrderType.LMT, limit_price=510.00),
                         OrderStatus.SUBMITTED, FROZEN)
    orders = (stop, stop_limit, filled, odd_lot)
    account = replace(base.account, positions=pos, working_orders=(stop, stop_limit, odd_lot))
    return replace(base, orders=orders, account=account)


def drawn(c: Console, table_id: str) -> dict[str, str]:
    """Each row of a table as drawn on screen, by its key."""
    table = c.app.screen.query_one(f"#{table_id}", LineTable)
    lines = [strip.text for strip in table.render_lines(Region(0, 1, table.size.width, len(table.rows)))]
    return {row.key: line for row, line in zip(table.rows, lines, strict=True)}


def assert_shown(lines: dict[str, str], expected: dict[str, tuple[str, ...]]) -> None:
    """Every expected figure is on its row, whole (between blanks), and no row has a figure cut or marked."""
    for key, figures in expected.items():
        cells = lines[key].split()
        assert all(figure in cells for figure in figures), (figures, lines[key])
    assert not [line for line in lines.values() if "…" in line or "#" in line]


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_figures_when_wider_than_usual_then_drawn_in_full_or_without_separators_never_cut(
        size: tuple[int, int]) -> None:
    # The quantity columns were 7 (positions), 6 (orders) and 8 (flatten) wide, cut with an ellipsis:
    # -12,345.5 shares read "-12,34…", 1,000,000 read "1,000…", a STP LMT's 178.50/178.00 "178.50/1…".
    wide = size[0] > 120
    async with running(big_state(), size=size) as c:
        assert_shown(drawn(c, "positions-table"), {
            "AAPL": ("-12,345.5", "178.42", "190.10", "-144,195.44", "-6.55%", "1,000@195.00",
                     *(("-2346879.55", "-1234567.89") if wide else ())),
            "SPY": ("1,000,000", "-1234600.00", *(("498765400.00",) if wide else ())),
            "NVR": ("10", "99,999.99", "99,850.50"),
        })
        assert_shown(drawn(c, "orders-table"), {"tt-202": ("1234.5", "178.50/178.00", "SUBMITTED"),
                                                 "tt-203": ("100000", "FILLED"),
                                                 "tt-204": ("123.5k", "510.00")})  # compact: rounded, and says so
        await c.pilot.press("f")
        await c.settle(3)
        assert isinstance(c.app.screen, FlattenModal)
        assert_shown(drawn(c, "flatten-table"), {"AAPL": ("12,345.5", "2,603,727.68"), "SPY": ("1,000,000",)})


@pytest.mark.parametrize(("held", "new", "width", "drawn"), [
    ("70", "40", QTY_WIDTH, "70→40"),
    ("1,000", "500", QTY_WIDTH, "1000→…"),  # both do not fit: the held one, and that it changes
    ("12,345", "500", QTY_WIDTH, "12,345"),  # nor that: the held one (the status says MODIFYING)
    ("190.50", "189.25", PRICE_WIDTH, "190.50→189.25"),
    ("100.00/99.50", "101.00/100.50", PRICE_WIDTH, "100.00/99.50"),
    ("5", "5", QTY_WIDTH, "5"),
])
def test_modification_pending_then_the_figure_held_first_and_the_one_asked_when_it_fits(
        held: str, new: str, width: int, drawn: str) -> None:
    assert asked(held, new, width) == drawn
