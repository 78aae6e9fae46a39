"""The positions pane's owner column: who may close each position by a strategy's signal."""

from __future__ import annotations

import pytest

from tui_trader.domain import Position
from tui_trader.ui.format import DASH
from tui_trader.ui.widgets.positions import COLUMNS, position_row


@pytest.mark.parametrize(("owner", "shown"), [("ema_cross", "ema_cross"), ("manual", "manual"), ("", DASH)])
def test_position_row_when_owned_or_not_then_its_owner_or_a_dash_in_the_owner_column(owner: str, shown: str) -> None:
    row = position_row(Position("AAPL", 10, 100.0, 101.0, owner=owner), stale=False)
    assert len(row.cells) == len(COLUMNS)
    assert dict(zip((c.title for c in COLUMNS), row.cells, strict=True))["Owner"] == shown


def test_owner_column_when_the_pane_is_narrow_then_dropped_before_any_figure() -> None:
    owner = next(c for c in COLUMNS if c.title == "Owner")
    assert all(c.priority < owner.priority for c in COLUMNS if c is not owner)
