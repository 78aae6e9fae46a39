"""What the engine adds to the risk gate: its entry blocks measured with the orders already working,
and one throttle token per message a send puts on the wire."""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import Bracket, OrderStatus, OrderType
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, limits_for_tests, make_config, running, sell


async def test_entries_blocked_when_a_sell_already_rests_then_a_second_sell_is_an_entry_and_denied(
        engine: Engine) -> None:
    # Under an entry block (an order in an unknown state), a sell of 100 against a long of 100 passed as
    # "reducing" although a sell of 100 already rested: both filling would leave the account short 100.
    await engine.submit(buy(100))
    await eventually(lambda: engine.portfolio.quantity("AAPL") == 100, what="long 100")
    resting = await engine.submit(sell(100, order_type=OrderType.LMT,
                                       limit_price=round(engine.market.mark("AAPL") * 1.05, 2)))
    await eventually(lambda: engine.orders.orders[resting.order_ref].status is OrderStatus.SUBMITTED)
    engine.block("unknown_orders", "an order's state is unknown; reconciling with the broker")

    assert [c.name for c in engine.preview(sell(100)).failures] == ["entries_blocked"]
    await engine.cancel(resting.order_ref)
    await eventually(lambda: engine.orders.orders[resting.order_ref].status is OrderStatus.CANCELLED)
    assert engine.preview(sell(100)).passed  # reduces, with nothing else working on its side


async def test_bracket_when_sent_then_takes_a_throttle_token_for_each_of_its_three_orders(
        sim: SimGateway, tmp_path: Path) -> None:
    # A bracket is three placeOrder messages and took one token: three times the configured rate could go out.
    config = make_config(tmp_path, limits=limits_for_tests(max_orders_per_second=3))
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        mark = eng.market.mark("AAPL")
        bracket = Bracket(stop_price=round(mark * 0.9, 2), take_profit_price=round(mark * 1.1, 2))
        await eng.submit(buy(10, bracket=bracket))
        per_second = eng.risk.throttle.per_second
        assert per_second is not None
        assert per_second.available(eng.now()) < 1.0


async def test_limit_off_the_instruments_tick_then_denied_by_the_gate_not_rejected_by_the_broker(
        engine: Engine, sim: SimGateway) -> None:
    # The simulator, as IB, rejects an off-tick price (110): the gate now says so first, and nothing is sent.
    price = round(engine.market.quotes["AAPL"].bid - 1.0, 2) + 0.003

    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=price))

    assert engine.orders.orders[order.order_ref].status is OrderStatus.REJECTED
    assert "is not on the instrument's 0.01 tick" in engine.orders.orders[order.order_ref].history[-1].note
    assert sim.received_orders() == []
