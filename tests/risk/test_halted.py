"""A symbol halted at its exchange: the gate denies its orders, entries and exits, before anything is sent.

QA: during a halt of SPY the ticket preview showed every check ok and a BUY 1 SPY LMT went to the broker, which
rejected it ("Trading in SPY is halted"); an exit cancelled the position's stop first and was then rejected,
leaving the position bare. The check is always on (the broker refuses every order of a halted symbol) and an
exit denied by it says that its stop and target stay at the broker.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tui_trader.domain import OrderType, Side
from tui_trader.risk import RiskLimits
from tui_trader.risk.market_checks import HALTED, check_halted

from .builders import ALL_ON, account, check, market, position, quote, ticket

HALTED_SPY = market(replace(quote("SPY"), halted=True))


def test_check_halted_when_the_quote_is_not_halted_or_missing_then_passes() -> None:
    assert check_halted("SPY", quote("SPY"), lambda: False).passed
    assert check_halted("SPY", None, lambda: False).passed


@pytest.mark.parametrize("limits", [RiskLimits(), ALL_ON], ids=["no limits", "every limit"])
def test_submit_entry_when_the_symbol_is_halted_then_denied_saying_so(limits: RiskLimits) -> None:
    # Act
    verdict = check(ticket("SPY", quantity=1), limits, mkt=HALTED_SPY)

    # Assert
    assert not verdict.passed
    result = verdict.check(HALTED)
    assert result is not None
    assert (result.passed, result.message) == (False, "SPY is halted (trading halt at the exchange)")


def test_submit_exit_when_the_symbol_is_halted_then_denied_and_its_stop_said_to_stay() -> None:
    acct = account(positions=[position("SPY", quantity=9)])

    verdict = check(ticket("SPY", side=Side.SELL, quantity=9, order_type=OrderType.MKT), RiskLimits(), acct=acct,
                    mkt=HALTED_SPY)

    assert not verdict.passed
    result = verdict.check(HALTED)
    assert result is not None
    assert result.message == ("SPY is halted (trading halt at the exchange): the exit is denied; ask again once it "
                              "resumes")


def test_submit_when_another_symbol_is_halted_then_passes() -> None:
    mkt = market(quote("AAPL"), replace(quote("SPY"), halted=True))

    verdict = check(ticket("AAPL"), RiskLimits(), mkt=mkt)

    assert verdict.passed, verdict.reason
    assert verdict.check(HALTED) is None  # in the verdict only during a halt of the ticket's symbol
