"""An order that only reduces a position is not trapped by the order size limits: a position built past them (in
several orders, or the limit lowered since) is closed in one order. Found beside QA's flatten in a data outage: a
flatten of 9 under ``max_order_quantity = 5`` was denied and the position could not be closed in one step."""

from __future__ import annotations

import pytest

from tui_trader.domain import OrderType, Side
from tui_trader.risk import RiskLimits

from .builders import account, check, position, ticket

SMALL = RiskLimits(max_order_quantity=5, max_order_notional=500)


@pytest.mark.parametrize("name", ["order_quantity", "order_notional"])
def test_exit_when_larger_than_an_order_size_limit_then_passes_saying_it_is_exempt(name: str) -> None:
    # Arrange: long 9 at about 100; a market sell of 9 closes it (9 qty, about 900 $).
    acct = account(positions=[position(quantity=9)])

    # Act
    verdict = check(ticket(side=Side.SELL, quantity=9, order_type=OrderType.MKT), SMALL, acct=acct)

    # Assert
    assert verdict.passed, verdict.reason
    result = verdict.check(name)
    assert result is not None
    assert result.passed
    assert result.message.endswith("reduces a position: exempt")


def test_entry_or_exit_past_flat_when_larger_than_the_limit_then_denied() -> None:
    acct = account(positions=[position(quantity=9)])

    entry = check(ticket(quantity=9, order_type=OrderType.MKT), SMALL, acct=acct)
    past_flat = check(ticket(side=Side.SELL, quantity=10, order_type=OrderType.MKT), SMALL, acct=acct)

    assert {c.name for c in entry.failures} >= {"order_quantity", "order_notional"}
    assert {c.name for c in past_flat.failures} >= {"order_quantity", "order_notional"}
