"""How the gate prices an order (the price it would fill at, not one it won't), and the fields it
refuses: future quotes, prices and trails that are not finite and positive, fractional shares."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from tui_trader.domain import Bracket, OrderStatus, OrderTicket, OrderType, Quote, Side, TimeInForce
from tui_trader.domain.orders import larger_of
from tui_trader.risk import RiskLimits
from tui_trader.risk.book import build_book
from tui_trader.risk.checks import check_ticket_fields
from tui_trader.risk.market_checks import MAX_CLOCK_SKEW_S

from .builders import T0, account, check, instrument, market, order, quote, ticket

NOTIONAL = RiskLimits(max_order_notional=50_000)
"""$50k per order: 10,000 shares near 100 (about $1M) must not fit."""


def _failed(verdict) -> set[str]:
    return {c.name for c in verdict.failures}


# --- valuation (default quote: bid 99.99, ask 100.01) --------------------------------------------


@pytest.mark.parametrize(
    "t",
    [OrderTicket("AAPL", Side.SELL, 10_000, OrderType.LMT, limit_price=1.0),
     OrderTicket("AAPL", Side.SELL, 10_000, OrderType.STP_LMT, limit_price=1.0, stop_price=99.0),
     OrderTicket("AAPL", Side.BUY, 10_000, OrderType.STP, stop_price=1.0),
     OrderTicket("AAPL", Side.BUY, 10_000, OrderType.MKT, limit_price=1.0),
     OrderTicket("AAPL", Side.BUY, 10_000, OrderType.STP, limit_price=1.0, stop_price=100.5)],
    ids=["sell-lmt-below-bid", "sell-stp-lmt-low-limit", "buy-stp-below-ask", "mkt-stray-limit", "stp-stray-limit"],
)  # fmt: skip
def test_notional_when_own_price_is_one_it_wont_fill_at_then_valued_at_the_market(t: OrderTicket) -> None:
    # Act
    verdict = check(t, NOTIONAL)
    # Assert: about $1M, not $10k
    result = verdict.check("order_notional")
    assert not result.passed
    assert result.value >= 10_000 * 99.99


def test_notional_of_resting_orders_then_their_own_price() -> None:
    sell_above = check(ticket(side=Side.SELL, quantity=100, limit_price=105.0), NOTIONAL).check("order_notional")
    buy_below = check(ticket(quantity=100, limit_price=95.0), NOTIONAL).check("order_notional")
    assert (sell_above.value, buy_below.value) == (10_500, 9_500)  # a buy's limit caps what it pays


def test_cash_when_working_buy_stop_below_the_ask_then_committed_at_the_ask() -> None:
    # Arrange: a working buy stop at 1 triggers at once, paying about 100.01 a share
    working = order(OrderTicket("AAPL", Side.BUY, 400, OrderType.STP, stop_price=1.0), OrderStatus.SUBMITTED)
    # Act
    verdict = check(ticket(quantity=100), RiskLimits(min_cash_fraction=0.5), acct=account(working=[working]))
    # Assert: 100,000 - 40,004 - 10,000 < 50% of equity
    assert "cash_fraction" in _failed(verdict)


@pytest.mark.parametrize(("held", "asked"), [((400, 100.0), (300, 101.0)), ((300, 101.0), (400, 100.0))],
                         ids=["cut-and-raised", "grown-and-lowered"])
def test_cash_when_working_buy_modify_unanswered_then_committed_at_the_larger_quantity_and_higher_limit(
        held: tuple[float, float], asked: tuple[float, float]) -> None:
    # Arrange: a working buy limit modified, the broker's answer awaited: it can fill as held or as asked
    working = order(ticket(quantity=asked[0], limit_price=asked[1]), ref="w1")
    counted = larger_of(ticket(quantity=held[0], limit_price=held[1]), working.ticket)
    acct = account(working=[working]).with_tickets({"w1": counted})
    # Act
    book = build_book(acct, market())
    verdict = check(ticket(quantity=100), RiskLimits(min_cash_fraction=0.5), acct=acct)
    # Assert: 400 at 101 committed, neither ticket's 40,000 or 30,300; 100,000 - 40,400 - 10,000 < 50%
    assert (counted.quantity, counted.limit_price, book.buy_total) == (400, 101.0, 40_400)
    assert "cash_fraction" in _failed(verdict)


def test_larger_of_when_one_price_unset_then_the_other() -> None:
    stop_added = larger_of(ticket(limit_price=None), ticket(limit_price=None, stop_price=99.0))
    assert (stop_added.limit_price, stop_added.stop_price) == (None, 99.0)


def test_market_buy_when_quote_has_no_bid_then_priced_at_the_ask_not_the_last() -> None:
    mkt = market(Quote("AAPL", T0, bid=math.nan, ask=100.0, last=10.0))

    verdict = check(OrderTicket("AAPL", Side.BUY, 1_000, OrderType.MKT), NOTIONAL, mkt=mkt)

    assert verdict.check("order_notional").value == 100_000


def test_market_buy_when_quote_has_no_ask_then_denied_naming_it() -> None:
    mkt = market(Quote("AAPL", T0, bid=99.0, ask=math.nan, last=10.0))

    verdict = check(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT), NOTIONAL, mkt=mkt)

    assert {"quote", "order_notional"} <= _failed(verdict)
    assert "no ask" in verdict.check("quote").message
    assert "no ask" in verdict.check("order_notional").message


def test_limit_buy_when_quote_has_no_ask_then_priced_at_its_limit() -> None:
    mkt = market(Quote("AAPL", T0, bid=99.0, ask=math.nan, last=10.0))

    verdict = check(ticket(quantity=10, limit_price=99.5), NOTIONAL, mkt=mkt)

    assert verdict.passed
    assert verdict.check("order_notional").value == 995


# --- brackets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "stop", "bracket"),
    [(Side.BUY, 90.0, Bracket(stop_price=85.0, take_profit_price=95.0)),
     (Side.SELL, 110.0, Bracket(stop_price=105.0, take_profit_price=115.0))],
    ids=["buy-stop-below-ask", "sell-stop-above-bid"],
)  # fmt: skip
def test_bracket_when_stop_entry_triggers_at_once_then_judged_at_the_market(side, stop, bracket) -> None:
    t = OrderTicket("AAPL", side, 10, OrderType.STP, stop_price=stop, bracket=bracket)

    verdict = check(t, RiskLimits())

    assert "bracket" in _failed(verdict)
    assert "target" in verdict.check("bracket").message


def test_bracket_when_stop_entry_beyond_the_market_then_judged_at_its_stop() -> None:
    t = OrderTicket("AAPL", Side.BUY, 10, OrderType.STP, stop_price=101.0,
                    bracket=Bracket(stop_price=100.5, take_profit_price=103.0))  # fmt: skip
    assert check(t, RiskLimits()).passed


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -5.0], ids=["nan", "inf", "zero", "negative"])
@pytest.mark.parametrize("field", ["stop_price", "take_profit_price", "trail_amount", "trail_percent"])
def test_bracket_when_a_price_is_not_finite_and_positive_then_denied(field: str, bad: float) -> None:
    figures = {"stop_price": 95.0, "take_profit_price": 110.0, field: bad}

    verdict = check(ticket(bracket=Bracket(**figures)), RiskLimits())

    assert "bracket" in _failed(verdict)


# --- ticket fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -5.0], ids=["nan", "inf", "zero", "negative"])
@pytest.mark.parametrize("field", ["trail_amount", "trail_percent"])
def test_trail_when_amount_or_percent_not_finite_and_positive_then_denied(field: str, bad: float) -> None:
    t = OrderTicket("AAPL", Side.SELL, 10, OrderType.TRAIL, **{field: bad})

    assert "ticket_valid" in _failed(check(t, RiskLimits()))


@pytest.mark.parametrize(
    "t",
    [ticket(limit_price=math.inf), ticket(order_type=OrderType.STP, limit_price=None, stop_price=math.inf),
     OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT, limit_price=math.inf)],
    ids=["lmt-inf", "stp-inf", "mkt-stray-inf"],
)  # fmt: skip
def test_ticket_when_a_price_is_infinite_then_denied(t: OrderTicket) -> None:
    verdict = check(t, RiskLimits())

    assert "ticket_valid" in _failed(verdict)
    assert "finite" in verdict.check("ticket_valid").message


def test_ticket_when_quantity_not_a_multiple_of_the_size_increment_then_denied() -> None:
    assert "ticket_valid" in _failed(check(ticket(quantity=0.5), RiskLimits()))
    assert not check_ticket_fields(ticket(quantity=0.5), 1.0).passed


@pytest.mark.parametrize(("fields", "said"), [
    ({"limit_price": 100.005}, "limit price 100.005 is not on the instrument's 0.01 tick"),
    ({"order_type": OrderType.STP, "limit_price": None, "stop_price": 101.123}, "stop price 101.123"),
    ({"bracket": Bracket(stop_price=98.999, take_profit_price=105.0)}, "stop-loss 98.999"),
    ({"bracket": Bracket(stop_price=98.0, take_profit_price=105.001)}, "take-profit 105.001"),
], ids=["limit", "stop", "bracket-stop", "bracket-target"])
def test_ticket_when_a_price_is_off_the_instruments_tick_then_denied_naming_it(
        fields: dict[str, object], said: str) -> None:
    # The broker rejects it (IB's 110): the operator lost the ticket to a rejection instead of a denial that keeps it.
    verdict = check(ticket(**fields), RiskLimits())

    assert "ticket_valid" in _failed(verdict)
    assert said in verdict.check("ticket_valid").message


@pytest.mark.parametrize(("fields", "said"), [
    ({"tif": TimeInForce.IOC}, "time in force IOC is not one the engine sends (DAY or GTC)"),
    ({"tif": TimeInForce.GTD}, "time in force GTD is not one the engine sends (DAY or GTC)"),
    ({"tif": TimeInForce.OTHER}, "time in force OTHER is not one the engine sends (DAY or GTC)"),
    ({"order_type": OrderType.OTHER, "limit_price": None}, "an order type the engine does not model cannot be sent"),
], ids=["ioc", "gtd", "other-tif", "other-type"])
def test_ticket_when_its_type_or_time_in_force_is_one_only_an_adopted_order_carries_then_denied_naming_it(
        fields: dict[str, object], said: str) -> None:
    # Only what the broker holds in an order adopted from it has these; sent, IOC or OPG would work differently
    # from what the engine assumes, and GTD would lose its date.
    verdict = check(ticket(**fields), RiskLimits())

    assert "ticket_valid" in _failed(verdict)
    assert verdict.check("ticket_valid").message == said


@pytest.mark.parametrize(("price", "tick"), [(100.25, 0.01), (100.25, 0.05), (0.5012, 0.01), (100.2, 0.0)],
                         ids=["on-tick", "on-a-coarser-tick", "sub-dollar", "no-tick-known"])
def test_ticket_when_a_price_is_on_the_tick_or_under_a_dollar_then_passes(price: float, tick: float) -> None:
    mkt = market(quote(bid=price - 0.01, ask=price + 0.01, last=price) if price < 1 else quote(),
                 instruments=[instrument(min_tick=tick)])

    assert check_ticket_fields(ticket(limit_price=price), 1.0, tick).passed
    assert "ticket_valid" not in _failed(check(ticket(limit_price=price), RiskLimits(), mkt=mkt))


@pytest.mark.parametrize(("qty", "increment"), [(10, 1.0), (0.3, 0.1), (2.5, 0.5), (0.5, 0.0)])
def test_ticket_when_quantity_in_whole_increments_then_passes(qty: float, increment: float) -> None:
    mkt = market(quote(), instruments=[instrument(size_increment=increment)])

    assert check(ticket(quantity=qty), RiskLimits(), mkt=mkt).passed


# --- quote age ----------------------------------------------------------------------------------------


def test_quote_age_when_stamped_in_the_future_beyond_the_skew_then_denied() -> None:
    mkt = market(quote(time=T0 + timedelta(hours=1)))

    verdict = check(ticket(), RiskLimits(max_quote_age_s=5), mkt=mkt)

    assert "quote_age" in _failed(verdict)
    assert "future" in verdict.check("quote_age").message


def test_quote_age_when_stamped_in_the_future_within_the_skew_then_passes() -> None:
    mkt = market(quote(time=T0 + timedelta(seconds=MAX_CLOCK_SKEW_S)))

    assert check(ticket(), RiskLimits(max_quote_age_s=5), mkt=mkt).passed
