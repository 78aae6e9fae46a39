"""An order that only reduces a position is not trapped by the market-data freshness checks (quote age,
spread): a data outage or a fast market is when an exit matters most. Found by QA: a flatten of SPY 9 with
the quote 38 s old was denied (``quote_age``) and the position stayed open."""

from __future__ import annotations

import pytest

from tui_trader.domain import OrderType, Side
from tui_trader.risk import RiskLimits

from .builders import T0, account, check, market, order, position, quote, secs, ticket

STALE = market(quote(time=T0 - secs(38)))
WIDE = market(quote(bid=95, ask=105))
LIMITS = RiskLimits(max_quote_age_s=10, max_spread_pct=1.0)


@pytest.mark.parametrize(("mkt", "name", "shown"), [(STALE, "quote_age", "38s over the limit of 10s"),
                                                    (WIDE, "spread", "10% over the limit of 1%")],
                         ids=["stale quote", "wide spread"])
def test_market_exit_when_the_quote_is_stale_or_wide_then_passes_saying_what_it_is_exempt_from(
        mkt: object, name: str, shown: str) -> None:
    # Arrange: long 9; a market sell of 9 closes it.
    acct = account(positions=[position(quantity=9)])

    # Act
    verdict = check(ticket(side=Side.SELL, quantity=9, order_type=OrderType.MKT), LIMITS, acct=acct, mkt=mkt)

    # Assert: it passes, and the check still says how old (or wide) the quote was.
    assert verdict.passed, verdict.reason
    result = verdict.check(name)
    assert result is not None
    assert (result.passed, result.message) == (True, f"{shown}; reduces a position: exempt")
    assert result.headroom is not None
    assert result.headroom < 0


@pytest.mark.parametrize("mkt", [STALE, WIDE], ids=["stale quote", "wide spread"])
def test_entry_or_exit_past_flat_when_the_quote_is_stale_or_wide_then_denied(mkt: object) -> None:
    acct = account(positions=[position(quantity=9)])
    entry = ticket(quantity=9, order_type=OrderType.MKT)
    past_flat = ticket(side=Side.SELL, quantity=10, order_type=OrderType.MKT)
    beside_a_stop = ticket(side=Side.SELL, quantity=9, order_type=OrderType.MKT)
    stop = order(ticket(side=Side.SELL, quantity=9, order_type=OrderType.STP, limit_price=None, stop_price=90))

    assert not check(entry, LIMITS, acct=acct, mkt=mkt).passed
    assert not check(past_flat, LIMITS, acct=acct, mkt=mkt).passed
    # With the stop working beside it both could fill: short 9. Not an exit that only reduces.
    assert not check(beside_a_stop, LIMITS, acct=account(positions=[position(quantity=9)], working=[stop]),
                     mkt=mkt).passed


def test_limit_exit_when_the_quote_is_stale_then_its_price_is_still_collared() -> None:
    # The age is exempt; a sell limit 20% under the last bid is still a fat finger.
    acct = account(positions=[position(quantity=9)])
    limits = RiskLimits(max_quote_age_s=10, price_collar_pct=5.0)

    near = check(ticket(side=Side.SELL, quantity=9, limit_price=99.5), limits, acct=acct, mkt=STALE)
    far = check(ticket(side=Side.SELL, quantity=9, limit_price=80.0), limits, acct=acct, mkt=STALE)

    assert near.passed, near.reason
    assert [c.name for c in far.failures] == ["price_collar_pct"]
