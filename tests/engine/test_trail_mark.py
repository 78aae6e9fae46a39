"""TrailMark: a trailing stop's stop as IB would have trailed it on the quotes the engine saw (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tui_trader.domain import Side
from tui_trader.domain.market import Quote
from tui_trader.engine.trailing import TrailMark

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def q(bid: float, ask: float) -> Quote:
    return Quote("AAPL", NOW, bid=bid, ask=ask)


def test_trail_mark_of_a_sell_when_the_bid_rises_and_falls_then_keeps_its_best_less_the_trail() -> None:
    mark = TrailMark(Side.SELL, 1.00, None, 99.00)
    for bid in (100.00, 103.00, 105.00, 102.00):
        mark.see(q(bid, bid + 0.02))
    assert mark.stop == 104.00


def test_trail_mark_of_a_buy_by_percent_then_trails_the_ask_down_rounded_the_looser_way() -> None:
    mark = TrailMark(Side.BUY, None, 1.5, None)  # IB starts it from the price
    mark.see(q(99.98, 100.00))
    assert mark.stop == 101.50
    mark.see(q(97.01, 97.03))  # 97.03 + 1.45545 = 98.48545: up to 98.49, not down to 98.48
    assert mark.stop == 98.49
    mark.see(q(99.00, 99.02))
    assert mark.stop == 98.49


@pytest.mark.parametrize(("bid", "stop"), [(105.00, 102.00), (105.50, 104.50)])
def test_trail_mark_when_its_stop_is_set_then_it_stays_there_until_the_price_passes_the_one_of_that_moment(
        bid: float, stop: float) -> None:
    mark = TrailMark(Side.SELL, 1.00, None, 99.00)
    mark.see(q(105.00, 105.02))
    mark.reset(102.00, q(105.00, 105.02))  # set looser on purpose
    mark.see(q(bid, bid + 0.02))
    assert mark.stop == stop
