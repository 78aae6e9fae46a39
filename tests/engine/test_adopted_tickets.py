"""The ticket of an order adopted from the broker, and the refusal to re-send one the engine does not model."""

from __future__ import annotations

import pytest

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain import Order, OrderStatus, OrderType, Side, TimeInForce
from tui_trader.engine.adopted import adopted_ticket, judge_protection, not_resendable
from tui_trader.engine.engine import Engine
from tui_trader.errors import SafetyError
from tui_trader.sim import SimGateway


def _report(order_type: OrderType = OrderType.LMT, tif: TimeInForce | None = TimeInForce.DAY,
            raw_order_type: str = "LMT", raw_tif: str = "DAY", good_till: str = "") -> BrokerOrderReport:
    return BrokerOrderReport("", 77, 9001, 11, "AAPL", Side.SELL, 5, order_type, OrderStatus.SUBMITTED,
                             limit_price=150.0, tif=tif, raw_order_type=raw_order_type, raw_tif=raw_tif,
                             good_till=good_till)


def test_adopted_ticket_when_type_and_tif_modelled_then_resendable() -> None:
    ticket = adopted_ticket(_report(tif=TimeInForce.GTC, raw_tif="GTC"))
    assert (ticket.order_type, ticket.tif, ticket.limit_price, ticket.strategy) == (
        OrderType.LMT, TimeInForce.GTC, 150.0, "adopted")
    assert not_resendable(ticket) == ""


@pytest.mark.parametrize(("report", "said"), [
    (_report(OrderType.OTHER, raw_order_type="MIT"), "not modelled here: order type MIT"),
    (_report(tif=TimeInForce.GTD, raw_tif="GTD", good_till="20260320 16:00:00 US/Eastern"),
     "not modelled here: time in force GTD 20260320 16:00:00 US/Eastern"),
    (_report(tif=None, raw_tif=""), "not modelled here: time in force not reported"),
    (_report(OrderType.OTHER, TimeInForce.OTHER, "REL", "FOK"), "not modelled here: order type REL, time in force FOK"),
])
def test_adopted_ticket_when_type_or_tif_not_modelled_then_said_in_the_broker_s_words_and_not_resendable(
        report: BrokerOrderReport, said: str) -> None:
    ticket = adopted_ticket(report)
    assert ticket.order_type is report.order_type  # never a market order in its place
    assert ticket.tif is (report.tif or TimeInForce.OTHER)  # never a day order in its place
    assert said in ticket.reason
    assert not_resendable(ticket) == said


def test_judge_protection_when_a_target_and_a_stop_not_linked_over_the_position_then_the_stop_is_protection(
) -> None:
    # A target listed first took the room, and the stop was left out: an automatic trip cancelled the stop.
    target = BrokerOrderReport("", 77, 9001, 11, "AAPL", Side.SELL, 10, OrderType.LMT, OrderStatus.SUBMITTED,
                               limit_price=160.0)
    stop = BrokerOrderReport("", 78, 9002, 11, "AAPL", Side.SELL, 10, OrderType.STP, OrderStatus.SUBMITTED,
                             stop_price=140.0)

    judged = judge_protection("AAPL", 10, [target, stop])

    assert judged.protective == {"broker-9002"}
    assert judged.warning.startswith("broker-9002 and broker-9001 together would sell 20 against AAPL LONG 10: "
                                     "broker-9001 not adopted as protection")


async def test_modify_when_adopted_order_type_not_modelled_then_refused_naming_it_and_nothing_sent(
        engine: Engine, sim: SimGateway) -> None:
    # A MIT order adopted as a market order was re-sent as one by a modify; as OTHER it went out typed OTHER.
    now = engine.now()
    ticket = adopted_ticket(_report(OrderType.OTHER, raw_order_type="MIT"))
    order = engine.orders.adopt(Order("broker-9001", ticket, OrderStatus.SUBMITTED, now, now, broker_id=77,
                                      perm_id=9001))
    received = len(sim.received_orders())

    with pytest.raises(SafetyError, match="broker-9001 cannot be modified: not modelled here: order type MIT"):
        await engine.modify(order.order_ref, quantity=4)

    assert len(sim.received_orders()) == received
    assert engine.orders.orders[order.order_ref].ticket == ticket
