"""A position's stop and target are the orders that would close it; a stop shown that covers none of it is no stop.

Pure rules of :func:`~tui_trader.domain.portfolio.protection` and
:func:`~tui_trader.domain.portfolio.unprotected_positions`; the engine's case (a long reversed short while its old
stop's cancel is unanswered) is ``tests/engine/test_shown_stop.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tui_trader.domain import AccountSnapshot, Order, OrderStatus, OrderTicket, OrderType, Position, Side
from tui_trader.domain.portfolio import protection, unprotected_positions

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def _working(ref: str, side: Side, qty: float, order_type: OrderType = OrderType.STP, *, stop: float | None = None,
             limit: float | None = None, filled: float = 0.0, parent: str | None = None) -> Order:
    """A reduce-only AAPL order working at the broker."""
    ticket = OrderTicket("AAPL", side, qty, order_type, limit_price=limit, stop_price=stop, reduce_only=True)
    return Order(ref, ticket, OrderStatus.SUBMITTED, T0, T0, broker_id=1, parent_ref=parent, filled_quantity=filled)


SELL_STOP = _working("sell-stop", Side.SELL, 10, stop=95.0)
SELL_TARGET = _working("sell-target", Side.SELL, 10, OrderType.LMT, limit=105.0)
BUY_STOP = _working("buy-stop", Side.BUY, 15, stop=108.0)
BUY_TARGET = _working("buy-target", Side.BUY, 15, OrderType.LMT, limit=92.0)


@pytest.mark.parametrize(("held", "working", "expected"), [
    (10, (SELL_STOP, SELL_TARGET), (95.0, 105.0, False)),
    (-15, (SELL_STOP, SELL_TARGET), (None, None, False)),  # reversed short: the long's old exits add to it
    (-15, (SELL_STOP, SELL_TARGET, BUY_STOP, BUY_TARGET), (108.0, 92.0, False)),  # the short's own, not the first
    (0, (SELL_STOP, SELL_TARGET), (None, None, False)),  # flat: nothing to close (leftovers being cancelled)
    (10, (_working("trail", Side.SELL, 10, OrderType.TRAIL, stop=94.0),), (94.0, None, True)),
])
def test_protection_when_working_exits_on_either_side_then_only_those_closing_the_position(
        held: float, working: tuple[Order, ...], expected: tuple[float | None, float | None, bool]) -> None:
    assert protection(working, "AAPL", held) == expected


def test_protection_when_a_stop_has_nothing_left_to_fill_then_not_the_positions_stop() -> None:
    filled_through = replace(SELL_STOP, filled_quantity=10)  # its fill heard, its Filled status not yet

    assert protection((filled_through, _working("later", Side.SELL, 5, stop=93.0)), "AAPL", 5) == (93.0, None, False)


def _account(qty: float, stop: float | None, *working: Order) -> AccountSnapshot:
    return AccountSnapshot(T0, positions={"AAPL": Position("AAPL", qty, 100.0, 100.0, stop_price=stop)},
                           working_orders=working)


@pytest.mark.parametrize(("account", "named"), [
    (_account(10, 95.0, SELL_STOP), ()),
    (_account(10, None), ("AAPL LONG 10",)),
    (_account(100, 95.0, SELL_STOP), ("AAPL LONG 100 (a stop for 10 only)",)),
    (_account(10, 95.0, _working("held", Side.SELL, 10, stop=95.0, parent="entry"),
              _working("entry", Side.BUY, 20, OrderType.LMT, limit=99.0)), ("AAPL LONG 10 (its stop not active yet)",)),
    # A stop shown with no working stop closing the position (the long's sell stop under the short it reversed
    # to; a stop shown with none working at all): named as a position without one, not left out.
    (_account(-15, 95.0, SELL_STOP), ("AAPL SHORT 15",)),
    (_account(10, 95.0), ("AAPL LONG 10",)),
])
def test_unprotected_positions_when_the_shown_stop_covers_all_part_or_none_then_named_as_it_covers(
        account: AccountSnapshot, named: tuple[str, ...]) -> None:
    assert unprotected_positions(account) == named


def test_with_tickets_when_a_stop_on_the_positions_own_side_is_modified_then_it_is_not_shown_as_its_stop() -> None:
    # Short 15 (reversed), the long's old sell stop still working: a modification of it figured as asked.
    account = _account(-15, None, SELL_STOP)

    asked = account.with_tickets({"sell-stop": replace(SELL_STOP.ticket, stop_price=96.0)})

    assert asked.positions["AAPL"].stop_price is None
    assert unprotected_positions(asked) == ("AAPL SHORT 15",)
