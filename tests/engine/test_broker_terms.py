"""The terms of an order as the broker holds them replace a journal's that differ (pure)."""

from __future__ import annotations

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain import OrderTicket, OrderType, Side, TimeInForce
from tui_trader.engine.adopted import ADOPTED, not_resendable
from tui_trader.engine.broker_terms import broker_terms, only_trailed, terms_differing


def _report(order_type: OrderType, raw: str, **fields: object) -> BrokerOrderReport:
    return BrokerOrderReport("tt-1", 7, 70, 1, "AAPL", Side.SELL, 5, order_type, None, raw_order_type=raw,
                             **fields)  # type: ignore[arg-type]


def test_broker_terms_when_a_trailing_stop_was_journaled_as_a_stop_at_its_amount_then_a_trailing_stop_where_it_stands(
) -> None:
    ours = OrderTicket("AAPL", Side.SELL, 5, OrderType.STP, stop_price=2.0, tif=TimeInForce.GTC)
    report = _report(OrderType.TRAIL, "TRAIL", stop_price=196.41, trail_amount=2.0, tif=TimeInForce.GTC)

    theirs = broker_terms(ours, report)

    assert (theirs.order_type, theirs.stop_price, theirs.trail_amount, theirs.trail_percent, theirs.limit_price) == (
        OrderType.TRAIL, 196.41, 2.0, None, None)
    assert terms_differing(ours, theirs) == ["type TRAIL, not STP", "stop 196.41, not 2", "trail 2, not none"]
    assert not only_trailed(ours, theirs)


def test_broker_terms_when_a_trailing_stop_only_trailed_then_its_stop_taken_and_nothing_amiss() -> None:
    ours = OrderTicket("AAPL", Side.SELL, 5, OrderType.TRAIL, stop_price=99.0, trail_amount=1.0)
    report = _report(OrderType.TRAIL, "TRAIL", stop_price=104.0, trail_amount=1.0, tif=TimeInForce.DAY)

    theirs = broker_terms(ours, report)

    assert theirs.stop_price == 104.0
    assert only_trailed(ours, theirs)
    by_percent = broker_terms(ours, _report(OrderType.TRAIL, "TRAIL", stop_price=104.0, trail_percent=1.5))
    assert (by_percent.trail_amount, by_percent.trail_percent) == (None, 1.5)
    assert not only_trailed(ours, by_percent)


def test_broker_terms_when_the_broker_does_not_report_a_time_in_force_then_ours_kept() -> None:
    ours = OrderTicket("AAPL", Side.SELL, 5, OrderType.LMT, limit_price=200.0, tif=TimeInForce.GTC)

    assert broker_terms(ours, _report(OrderType.LMT, "LMT", limit_price=200.0)) is ours


def test_broker_terms_when_an_adopted_order_is_a_type_not_modelled_then_said_in_the_broker_s_words_and_not_resent(
) -> None:
    ours = OrderTicket("AAPL", Side.SELL, 5, OrderType.MKT, strategy=ADOPTED, reason="found working at the broker")
    report = _report(OrderType.OTHER, "MIT", stop_price=180.5, tif=TimeInForce.DAY)

    theirs = broker_terms(ours, report)

    assert (theirs.order_type, theirs.stop_price) == (OrderType.OTHER, 180.5)
    assert terms_differing(ours, theirs, "MIT") == ["type MIT, not MKT", "stop 180.5, not none"]
    assert not_resendable(theirs) == "not modelled here: order type MIT"
