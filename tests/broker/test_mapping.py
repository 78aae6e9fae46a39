"""Pure mapping of ib_async objects to domain values."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from ib_async import (
    CommissionReport,
    Contract,
    Execution,
    Fill,
    Future,
    Option,
    Order,
    OrderStatus,
    Stock,
    Ticker,
    Trade,
)
from ib_async.objects import RealTimeBar, TradeLogEntry
from ib_async.util import UNSET_DOUBLE

from tui_trader.broker.base import refuses_modify
from tui_trader.broker.ib import mapping as m
from tui_trader.domain import Bracket, OrderTicket, OrderType, Side, TimeInForce
from tui_trader.domain import Order as DomainOrder
from tui_trader.domain import OrderStatus as S

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _trade(status: str, filled: float = 0, remaining: float = 100, error: int = 0) -> Trade:
    order = Order(orderId=7, action="SELL", totalQuantity=100, orderType="LMT", lmtPrice=10.5,
                  orderRef="tt-1", permId=55, clientId=3)
    log = [TradeLogEntry(NOW, status, "boom" if error else "", error)]
    return Trade(Stock("AAPL", "SMART", "USD"), order,
                 OrderStatus(orderId=7, status=status, filled=filled, remaining=remaining), [], log)


@pytest.mark.parametrize(("raw", "filled", "expected"), [
    ("PendingSubmit", 0, S.SENDING), ("PreSubmitted", 0, S.SUBMITTED), ("Submitted", 0, S.SUBMITTED),
    ("Submitted", 40, S.PARTIALLY_FILLED), ("Filled", 100, S.FILLED), ("Cancelled", 0, S.CANCELLED),
    ("ApiCancelled", 0, S.CANCELLED), ("Inactive", 0, S.REJECTED), ("PendingCancel", 0, None),
])
def test_map_status_covers_ib_statuses(raw: str, filled: float, expected: S | None) -> None:
    assert m.map_status(raw, filled, 100 - filled) is expected


@pytest.mark.parametrize(("why_held", "filled", "expected"), [
    ("locate", 0, S.SUBMITTED), ("locate", 40, S.PARTIALLY_FILLED), ("", 0, S.REJECTED), ("other", 0, S.REJECTED),
])
def test_map_status_when_inactive_then_rejected_unless_held_for_a_locate(why_held: str, filled: float,
                                                                         expected: S) -> None:
    assert m.map_status("Inactive", filled, 100 - filled, why_held) is expected


def test_report_from_trade_when_held_for_a_locate_then_working_and_why_held_carried() -> None:
    trade = _trade("Inactive")
    trade.orderStatus.whyHeld = "locate"
    report = m.report_from_trade(trade)
    assert (report.status, report.why_held, report.raw_status) == (S.SUBMITTED, "locate", "Inactive")
    assert m.held_for_locate(trade.orderStatus)


def test_report_from_trade_maps_fields_in_snake_case() -> None:
    report = m.report_from_trade(_trade("Submitted", 40, 60))
    assert report.order_ref == "tt-1"
    assert report.broker_id == 7
    assert report.perm_id == 55
    assert report.side is Side.SELL
    assert report.order_type is OrderType.LMT
    assert report.status is S.PARTIALLY_FILLED
    assert report.limit_price == 10.5


@pytest.mark.parametrize(("tif", "expected"), [
    ("DAY", TimeInForce.DAY), ("GTC", TimeInForce.GTC), ("GTD", TimeInForce.GTD), ("IOC", TimeInForce.IOC),
    ("OPG", TimeInForce.OPG), ("FOK", TimeInForce.OTHER), ("", None),
])
def test_report_from_trade_when_time_in_force_then_the_broker_s_other_when_unnamed_or_none_when_not_reported(
        tif: str, expected: TimeInForce | None) -> None:
    trade = _trade("Submitted")
    trade.order.tif = tif
    report = m.report_from_trade(trade)
    assert (report.tif, report.raw_tif) == (expected, tif)


def test_report_from_trade_when_gtd_then_its_date_carried() -> None:
    trade = _trade("Submitted")
    trade.order.tif, trade.order.goodTillDate = "GTD", "20260320 16:00:00 US/Eastern"
    assert m.report_from_trade(trade).good_till == "20260320 16:00:00 US/Eastern"


def test_report_from_trade_when_an_order_type_not_modelled_then_other_named_not_a_market_order() -> None:
    trade = _trade("Submitted")
    trade.order.orderType, trade.order.auxPrice = "MIT", 9.8
    report = m.report_from_trade(trade)
    assert (report.order_type, report.raw_order_type) == (OrderType.OTHER, "MIT")


@pytest.mark.parametrize(("fields", "amount", "percent"), [
    ({"auxPrice": 0.5}, 0.5, None), ({"trailingPercent": 1.5}, None, 1.5),
])
def test_report_from_trade_when_trailing_stop_then_its_trail_and_the_stop_where_it_stands(
        fields: dict[str, float], amount: float | None, percent: float | None) -> None:
    trade = _trade("Submitted")
    trade.order.orderType, trade.order.lmtPrice, trade.order.trailStopPrice = "TRAIL", UNSET_DOUBLE, 9.25
    trade.order.outsideRth = True
    for name, value in fields.items():
        setattr(trade.order, name, value)
    report = m.report_from_trade(trade)
    assert (report.order_type, report.stop_price, report.limit_price) == (OrderType.TRAIL, 9.25, None)
    assert (report.trail_amount, report.trail_percent, report.outside_rth) == (amount, percent, True)


def test_report_from_trade_when_a_stop_then_aux_price_is_its_stop_and_no_trail() -> None:
    trade = _trade("Submitted")
    trade.order.orderType, trade.order.auxPrice, trade.order.trailingPercent = "STP", 9.6, 1.0
    report = m.report_from_trade(trade)
    assert (report.stop_price, report.trail_amount, report.trail_percent) == (9.6, None, None)
    assert not report.outside_rth


def test_cancelled_with_error_201_then_rejected_carrying_the_code() -> None:
    report = m.report_from_trade(_trade("Cancelled", error=201))
    assert (report.status, report.error_code) == (S.REJECTED, 201)  # the rejection is one record, with its code


@pytest.mark.parametrize(("code", "logged", "status", "note"), [
    (201, "Error 201, reqId 7: Order rejected - reason:The contract is not available for short sale.", S.REJECTED,
     "Order rejected - reason:The contract is not available for short sale."),
    (202, "Error 202, reqId 7: Order Canceled - reason:cancelled in TWS", S.CANCELLED,
     "Order Canceled - reason:cancelled in TWS"),
    (10148, "Error 10148, reqId 7: OrderId 7 that needs to be cancelled cannot be cancelled, state: Filled.", None,
     "cancel race 10148: OrderId 7 that needs to be cancelled cannot be cancelled, state: Filled."),
])
def test_report_from_trade_when_ib_async_logged_an_error_then_the_note_is_the_brokers_words_alone(
        code: int, logged: str, status: S | None, note: str) -> None:
    # The console cut ib_async's "Error 201, reqId 7: " off the rejection's reason; the journal and the reports kept it.
    trade = _trade("Cancelled", error=code)
    trade.log[-1] = TradeLogEntry(NOW, "Cancelled", logged, code)

    report = m.report_from_trade(trade)

    assert (report.status, report.note) == (status, note)
    assert report.error_code == (code if status is S.REJECTED else 0)


@pytest.mark.parametrize("code", [104, 135, 161, 10147, 10148])
def test_cancelled_with_an_order_ended_or_unknown_code_then_no_status_information(code: int) -> None:
    # Reached only when the error answered no modification (one refused puts the trade back to working first).
    report = m.report_from_trade(_trade("Cancelled", error=code))
    assert report.status is None
    assert str(code) in report.note


@pytest.mark.parametrize(("code", "refuses"), [
    (104, True),  # can't modify a filled order: refused, the order filled as it was
    (135, True),  # can't find order with ID: refused, a reconciliation reads what the broker holds
    (201, True), (2102, True), (110, True),
    (202, False),  # the order's cancellation
    (161, False), (10147, False), (10148, False),  # answers to a cancel
    (399, False), (404, False), (2109, False),  # notices on an order IB works
])
def test_refuses_modify_when_ib_answers_an_order_with_a_modification_unanswered(code: int, refuses: bool) -> None:
    assert refuses_modify(code) is refuses


def test_fill_from_ib_maps_side_and_commission() -> None:
    ex = Execution(execId="x1", time=NOW, side="SLD", shares=5, price=9.5, orderId=7, orderRef="tt-1")
    fill = m.fill_from_ib(Fill(Stock("AAPL"), ex, CommissionReport("x1", 1.0, "USD"), NOW))
    assert fill.side is Side.SELL
    assert fill.quantity == 5
    assert fill.commission == 1.0
    assert fill.order_ref == "tt-1"
    assert fill.time.tzinfo is not None


def test_fill_without_commission_report_then_commission_none() -> None:
    ex = Execution(execId="x1", time=NOW, side="BOT", shares=5, price=9.5)
    assert m.fill_from_ib(Fill(Stock("AAPL"), ex, CommissionReport(), NOW)).commission is None


def test_quote_from_ticker_keeps_unset_as_nan() -> None:
    ticker = Ticker(contract=Contract(symbol="AAPL"))
    ticker.bid, ticker.ask, ticker.bidSize, ticker.askSize = 10.0, 10.1, 3, 4
    quote = m.quote_from_ticker(ticker, NOW)
    assert quote.mid == pytest.approx(10.05)
    assert math.isnan(quote.last)


def test_realtime_bar_maps_open_underscore() -> None:
    bar = m.bar_from_realtime("AAPL", RealTimeBar(NOW, -1, 1.0, 2.0, 0.5, 1.5, 100, 1.2, 3))
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (1.0, 2.0, 0.5, 1.5, 100)


@pytest.mark.parametrize(("seconds", "setting"), [(5, "5 secs"), (60, "1 min"), (300, "5 mins"),
                                                  (3600, "1 hour"), (90, "30 secs"), (420, "1 min"),
                                                  (150, "30 secs"), (7200, "1 hour"), (86400, "1 hour")])
def test_bar_size_setting(seconds: int, setting: str) -> None:
    assert m.bar_size_setting(seconds) == setting


def test_bar_size_no_ib_size_divides_then_value_error_names_it() -> None:
    with pytest.raises(ValueError, match="no IB history bar size divides a bar of 7 s"):
        m.bar_size_setting(7)


@pytest.mark.parametrize(("ticket", "fields"), [
    (OrderTicket("AAPL", Side.BUY, 3, OrderType.MKT, outside_rth=True),
     dict(action="BUY", totalQuantity=3, orderType="MKT", tif="DAY", outsideRth=True)),
    (OrderTicket("AAPL", Side.SELL, 2, OrderType.LMT, limit_price=10.5, tif=TimeInForce.GTC),
     dict(action="SELL", totalQuantity=2, orderType="LMT", tif="GTC", lmtPrice=10.5)),
    (OrderTicket("AAPL", Side.SELL, 2, OrderType.STP_LMT, limit_price=9.5, stop_price=9.6),
     dict(action="SELL", totalQuantity=2, orderType="STP LMT", tif="DAY", lmtPrice=9.5, auxPrice=9.6)),
    (OrderTicket("AAPL", Side.SELL, 10, OrderType.TRAIL, trail_amount=0.5, stop_price=9.0),
     dict(action="SELL", totalQuantity=10, orderType="TRAIL", tif="DAY", auxPrice=0.5, trailStopPrice=9.0)),
])
def test_order_to_ib_when_filling_a_blank_made_ahead_then_the_order_ib_async_would_make(
        ticket: OrderTicket, fields: dict[str, object]) -> None:
    blank = Order()
    filled = m.order_to_ib(DomainOrder("tt-9", ticket, S.SENDING, NOW, NOW), 12, "DU1", blank)
    assert filled is blank
    # ib_async orders compare by identity: compare their fields.
    assert vars(filled) == vars(Order(orderId=12, orderRef="tt-9", account="DU1", **fields))  # type: ignore[arg-type]


def test_order_to_ib_sets_ref_prices_and_trail() -> None:
    ticket = OrderTicket("AAPL", Side.SELL, 10, OrderType.TRAIL, trail_percent=1.5,
                         bracket=Bracket(stop_price=9.0))
    ib = m.order_to_ib(DomainOrder("tt-9", ticket, S.SENDING, NOW, NOW), 12, "DU1")
    assert ib.orderRef == "tt-9"
    assert ib.trailingPercent == 1.5
    assert ib.account == "DU1"
    lmt = m.order_to_ib(DomainOrder("r", OrderTicket("AAPL", Side.BUY, 1, OrderType.STP_LMT,
                                                     limit_price=10.0, stop_price=9.9),
                                    S.SENDING, NOW, NOW), 1)
    assert (lmt.lmtPrice, lmt.auxPrice, lmt.orderType) == (10.0, 9.9, "STP LMT")


@pytest.mark.parametrize(("ticket_stop", "held_stop", "moves"), [
    (99.0, 99.0, False),  # a quantity-only modify: the stop last set, which IB may have trailed since
    (104.5, 99.0, True),  # the stop changed on purpose
    (None, UNSET_DOUBLE, False),  # no stop known: IB started it
])
def test_order_to_ib_when_a_trailing_stop_is_modified_then_its_stop_sent_only_when_moved_on_purpose(
        ticket_stop: float | None, held_stop: float, moves: bool) -> None:
    ticket = OrderTicket("AAPL", Side.SELL, 10, OrderType.TRAIL, trail_amount=1.0, stop_price=ticket_stop)
    order = DomainOrder("tt-9", ticket, S.SUBMITTED, NOW, NOW)
    held = Order(orderType="TRAIL", auxPrice=1.0, trailStopPrice=held_stop)
    assert m.trail_stop_changed(order, held) is moves
    modify = m.order_to_ib(order, 12, "DU1", trail_stop=moves)
    assert modify.trailStopPrice == (ticket_stop if moves else UNSET_DOUBLE)
    assert modify.auxPrice == 1.0  # the trail itself is always sent
    assert m.order_to_ib(order, 12, "DU1").trailStopPrice == (ticket_stop or UNSET_DOUBLE)  # a new order: its start


def test_is_managed_when_not_a_us_stock_then_not_and_described_for_the_operator() -> None:
    call = Option("AAPL", "20261218", 200, "C", "SMART", "100", "USD")
    assert not m.is_managed(call)
    assert m.describe_contract(call) == "AAPL OPT 20261218 200 C x100"
    future = Future("ES", "202612", "CME", currency="USD")
    assert not m.is_managed(future)
    assert m.describe_contract(future) == "ES FUT 202612"
    assert not m.is_managed(Stock("SHOP", "SMART", "CAD"))
    assert m.describe_contract(Stock("SHOP", "SMART", "CAD")) == "SHOP STK CAD"
    assert m.is_managed(Stock("AAPL", "SMART", "USD"))


@pytest.mark.parametrize(("value", "halted"), [(math.nan, None), (0.0, False), (1.0, True), (2.0, True)],
                         ids=["never said", "not halted (or unknown: -1 is stored as 0)", "general halt",
                              "volatility halt"])
def test_quote_from_ticker_maps_ibs_halted_tick(value: float, halted: bool | None) -> None:
    ticker = Ticker(contract=Contract(symbol="SPY"))
    ticker.bid, ticker.ask, ticker.halted = 10.0, 10.1, value

    assert m.quote_from_ticker(ticker, NOW).halted is halted
