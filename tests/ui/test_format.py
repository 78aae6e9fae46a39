"""The console's number formats."""

from __future__ import annotations

import math

import pytest

from tui_trader.ui.format import DASH, compact


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
