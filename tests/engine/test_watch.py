"""Watching a symbol no strategy trades, for a manual ticket: subscribed at once, kept across reconnects."""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import OrderType
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.errors import BrokerError
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, make_config, outside_client, running


async def test_watch_when_a_symbol_is_not_subscribed_then_quoted_checked_and_kept_after_a_fresh_session(
        engine: Engine, sim: SimGateway) -> None:
    # A ticket for NVDA (the session trades AAPL and MSFT) was denied "no quote: not one of this session's
    # symbols", with no way to add it short of a restart with another config.
    ticket = buy(5, symbol="NVDA", order_type=OrderType.LMT, limit_price=round(sim.quote("NVDA").last, 2))
    assert "not one of this session's symbols" in engine.verdict(ticket).reason
    events = engine.subscribe("test", lossless=True)

    instrument = await engine.watch(" nvda ")

    assert instrument.symbol == "NVDA"
    assert "NVDA" in engine.market.quotes  # watch returns once the first quote is in
    assert engine.verdict(ticket).passed
    assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "watch"] == [
        "watching NVDA for this session"]
    assert engine.subscribed_symbols == ("AAPL", "MSFT", "NVDA")
    sim.control.connectivity_restored(data_lost=True)  # 1101: IB dropped every subscription; a fresh session
    await eventually(lambda: engine.reconnects >= 1, what="the fresh session")
    price = round(engine.market.quotes["NVDA"].last + 2.37, 2)
    sim.control.set_price("NVDA", price)
    await eventually(lambda: engine.market.quotes["NVDA"].last == price, what="NVDA quoted on the fresh session")


@pytest.mark.parametrize(("symbol", "said"), [("ZZZZ", "ZZZZ: no such stock at the broker"),
                                              ("AA;PL", "'AA;PL': not a symbol")])
async def test_watch_when_the_broker_has_no_such_symbol_then_refused_naming_it(
        engine: Engine, symbol: str, said: str) -> None:
    events = engine.subscribe("test", lossless=True)
    with pytest.raises(BrokerError) as refused:
        await engine.watch(symbol)
    assert refused.value.message.startswith(said)
    assert engine.subscribed_symbols == ("AAPL", "MSFT")
    # Said once, by the refusal: not again as the broker's raw "200: No security definition" alert.
    assert not [e for e in events.drain() if isinstance(e, AlertRaised) and "200" in e.alert.text]


async def test_start_when_a_symbol_is_held_that_nothing_subscribes_then_watched_and_marked(
        sim: SimGateway, tmp_path: Path) -> None:
    # A position bought from a ticket (or outside tui-trader) in a symbol no strategy trades came back after a
    # restart with no quotes: marked at its cost, its P&L never moving.
    async with outside_client(sim) as (outsider, _):
        (nvda,) = await outsider.qualifyContractsAsync(ib_async.Stock("NVDA", "SMART", "USD"))
        outsider.placeOrder(nvda, ib_async.MarketOrder("BUY", 5))
        await eventually(lambda: sim.positions().get("NVDA") == 5, what="NVDA bought outside")
    async with running(sim, make_config(tmp_path)) as (engine, _):
        await eventually(lambda: "NVDA" in engine.market.quotes, what="NVDA quoted")
        assert engine.subscribed_symbols == ("AAPL", "MSFT", "NVDA")
        price = round(engine.market.quotes["NVDA"].last + 4.21, 2)
        sim.control.set_price("NVDA", price)
        await eventually(lambda: engine.portfolio.positions["NVDA"].market_price == price, what="marked at the market")
