"""The console's number formats."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tui_trader.domain.enums import Side
from tui_trader.domain.market import Quote
from tui_trader.domain.orders import Fill
from tui_trader.domain.portfolio import Position
from tui_trader.ui.demo import FROZEN, normal_state
from tui_trader.ui.format import DASH, compact, fit_figures, money, pct, plain, qty, shown_sign, spread
from tui_trader.ui.freshness import assess
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.widgets.positions import position_row
from tui_trader.ui.widgets.status_bar import FIELDS, StatusBar, money_texts, money_variants
from tui_trader.ui.widgets.watchlist import quote_row


@pytest.mark.parametrize(("value", "text"), [
    (-0.0, "0"), (-0.001, "0"),  # a day P&L of 0.00 made "Loss used -0 / 20.00k"
    (0.63, "0.63"), (-0.3, "-0.30"), (0, "0"), (25_000, "25.00k"),  # 0.63 read "1"; ints come too
    (994.0, "994"), (999.6, "999.60"), (999.995, "1.00k"),
    (997_340.0, "997.34k"), (4_961.12, "4.96k"), (-20_000.0, "-20.00k"),
    (999_998.50, "1.00M"),  # an exposure limit of 1x a slightly lower equity: it was drawn "1,000.00k"
    (999.996, "1.00k"), (1_500_000.0, "1.50M"), (2.5e9, "2.50B"), (math.nan, DASH), (None, DASH),
])
def test_compact_then_the_unit_fits_the_printed_figure(value: float | None, text: str) -> None:
    assert compact(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (1234.5, "1,234.5"), (12345.5, "12,345.5"),  # read "1,234" and "1.235e+04"
    (2500.75, "2,500.75"), (0.125, "0.125"), (1_234_567.0, "1,234,567"), (-3.5, "-3.5"),
    (0.1 + 0.2, "0.3"), (100, "100"), (-1e-12, "0"), (math.nan, DASH), (None, DASH),
])
def test_qty_then_exact_without_needless_decimals(value: float | None, text: str) -> None:
    assert qty(value) == text


@pytest.mark.parametrize(("text", "width", "shown"), [
    ("1,234.5", 9, "  1,234.5"), ("—", 3, "  —"),  # it fits: as it is, right-aligned
    ("1,234.5", 6, "1234.5"), ("-1,234,567.89", 11, "-1234567.89"),  # drawn "1,234…", "-1,234,56…"
    ("1,000,000", 6, " 1.00M"), ("-12,345.5", 7, "-12.35k"), ("+1,234,567.89", 8, "  +1.23M"),
    ("-12,345.5", 6, "-12.3k"), ("123,456.5", 6, "123.5k"), ("123,456.5", 5, " 123k"),
    ("1,000@178.58", 10, " 1k@178.58"),
    ("178.50/178.00", 9, "#########"),  # no figure to round: marked, not cut to "178.50/1…"
    ("-1,234,567.89", 4, " -1M"), ("-1,234,567.89", 2, "##"),
])
def test_fit_figures_when_too_wide_then_shorter_never_a_digit_cut(text: str, width: int, shown: str) -> None:
    assert fit_figures(text, width) == shown


@pytest.mark.parametrize(("value", "text"), [
    (12345.67, "12345.67"), (1234.5, "1234.5"), (200.0, "200"), (0.1234, "0.1234"), (3, "3"),
])
def test_plain_then_the_figure_parses_back_exactly(value: float, text: str) -> None:
    assert plain(value) == text
    assert float(text) == value


def test_status_bar_last_fill_when_the_price_is_under_a_dollar_then_four_decimals() -> None:
    fill = Fill("e1", "tt-1", "SNDL", Side.BUY, 1234.5, 0.1234, datetime(2026, 1, 5, 15, tzinfo=UTC))
    bar = StatusBar()

    bar.show_fill(fill, "America/New_York")

    assert bar.texts["fill"] == " last fill BUY 1,234.5 SNDL @ 0.1234 10:00:00"


def test_status_bar_last_fill_shown_before_the_first_snapshot_then_drawn_in_the_snapshots_zone() -> None:
    # A fill recovered after a crash comes before the first snapshot, with no zone yet: "last fill BUY 12 MSFT @
    # 410.77 05:15:03" in UTC, beside a clock reading "00:15:31 EST".
    fill = Fill("e1", "tt-1", "MSFT", Side.BUY, 12, 410.77, datetime(2026, 1, 5, 5, 15, 3, tzinfo=UTC))
    snapshot = replace(normal_state(), time_zone="America/New_York")
    bar = StatusBar()
    bar.show_fill(fill, "")

    bar.show(snapshot, assess(snapshot, FROZEN, ConsoleOptions()), FROZEN)

    assert bar.texts["fill"] == " last fill BUY 12 MSFT @ 410.77 00:15:03"


def test_watchlist_spread_when_the_stock_is_under_a_dollar_then_four_decimals() -> None:
    # Read "0.00" at two decimals.
    penny = Quote("SNDL", datetime(2026, 1, 5, 15, tzinfo=UTC), bid=0.1234, ask=0.1250, last=0.124)
    assert quote_row(penny, "", 0.0, "LIVE").cells[5] == "0.0016"
    assert spread(0.02, 212.4) == "0.02"
    assert spread(math.nan, 1.0) == DASH


@pytest.mark.parametrize(("value", "signed", "text"), [
    (-0.0, True, "+0.00"), (-0.0, False, "0.00"),  # a short at its cost: -100 x 0.0 is -0.0, read "-0.00"
    (-2.8e-12, True, "+0.00"),  # float noise of an average cost: "-0.00", drawn as a loss
    (-0.004, True, "+0.00"), (0.004, True, "+0.00"),  # less than a cent either way: no cent to sign
    (-0.005001, True, "-0.01"), (-0.3, True, "-0.30"), (1234.5, True, "+1,234.50"), (-1234.5, False, "-1,234.50"),
    (math.nan, True, DASH), (None, False, DASH),
])
def test_money_when_the_figure_rounds_to_zero_then_no_minus_sign(value: float | None, signed: bool, text: str) -> None:
    assert money(value, signed=signed) == text


@pytest.mark.parametrize(("value", "text"), [(-0.0, "0.00%"), (-1e-9, "0.00%"), (1e-9, "0.00%"), (-0.01, "-0.01%"),
                                             (2.5, "+2.50%")])
def test_pct_when_the_figure_rounds_to_zero_then_no_sign(value: float, text: str) -> None:
    assert pct(value) == text


@pytest.mark.parametrize(("value", "sign"), [(-2.8e-12, 0), (-0.0, 0), (0.004, 0), (-0.006, -1), (0.006, 1)])
def test_shown_sign_then_the_sign_of_the_figure_as_drawn(value: float, sign: int) -> None:
    assert shown_sign(value) == sign


def test_position_row_when_the_pnl_is_float_noise_below_a_cent_then_neither_gain_nor_loss() -> None:
    # An average cost of 212.40000000000003 marked at 212.4: "-0.00" and "-0.00%", in the loss colour.
    row = position_row(Position("AAPL", 100, 212.40000000000003, 212.4), stale=False)
    assert (row.cells[6], row.roles[6], row.cells[8], row.roles[8]) == ("+0.00", "", "0.00%", "")
    short = position_row(Position("AAPL", -100, 212.4, 212.4), stale=False)
    assert (short.cells[6], short.cells[8]) == ("+0.00", "0.00%")


def test_day_pnl_when_float_noise_below_a_cent_then_not_drawn_as_a_loss() -> None:
    state = normal_state()
    account = replace(state.account, equity=1_000_000.0 - 1e-10, start_of_day_equity=1_000_000.0)
    snapshot = replace(state, account=account)
    fresh = assess(snapshot, FROZEN, ConsoleOptions())
    assert money_texts(snapshot, dict.fromkeys(FIELDS, ""))["day-pnl"] == "Day +0.00 0.00%"
    assert money_variants(snapshot, fresh)["day-pnl"] == ()
