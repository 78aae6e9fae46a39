"""The flatten preview's warnings judge a quote's age as the gate's quote-age check does: a quote stamped in the
future (the gateway's clock ahead of ours) has no known age, so it must not read as fresh."""

from __future__ import annotations

from datetime import datetime

import pytest

from tui_trader.risk.flatten import quote_warnings

from .builders import T0, market, quote, secs


@pytest.mark.parametrize(("stamped", "warned"), [
    (T0 - secs(3), ()),
    (T0 - secs(38), ("AAPL: quote 38 s old: the estimate may be stale",)),
    (T0 + secs(30), ("AAPL: quote stamped 30.0s in the future (clocks disagree by more than 2s): its age is "
                     "unknown: the estimate may be stale",)),
], ids=["fresh", "stale", "stamped in the future"])
def test_quote_warnings_when_a_quote_is_stale_or_stamped_in_the_future_then_warns(
        stamped: datetime, warned: tuple[str, ...]) -> None:
    # Arrange: AAPL's quote stamped at ``stamped``; quotes older than 10 s are stale.
    mkt = market(quote(time=stamped))

    # Act
    warnings = quote_warnings(["AAPL"], mkt, T0, max_age_s=10)

    # Assert
    assert warnings == warned


def test_quote_warnings_when_a_symbol_has_no_quote_then_says_there_is_no_estimate() -> None:
    # Act
    warnings = quote_warnings(["MSFT"], market(), T0, max_age_s=10)

    # Assert
    assert warnings == ("MSFT: no quote: no estimate of the fill",)
