"""A position held overnight keeps its protection at the broker, and a stop that ended while tui-trader
was away is settled at the next start (IB reports only the current day's orders and executions).

The simulator runs on exchange hours (not ``always_open``) with a manual clock the engine reads too, in
steps of 30 simulated seconds so that a night passes in a few thousand steps. New York is UTC-5 in March.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import (
    Alert,
    Bracket,
    Order,
    OrderStatus,
    OrderTicket,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
)
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.order_path import bracket_children
from tui_trader.engine.reconcile_orders import ENDED_AWAY
from tui_trader.sim import ManualClock, SimGateway

from .helpers import (
    alerts_said,
    buy,
    eventually,
    kinds_of,
    link_down,
    make_config,
    placed_by_another_tool,
    protected_long,
    running,
    status,
)

S = OrderStatus
TUESDAY_1555 = datetime(2024, 3, 5, 20, 55, tzinfo=UTC)
TUESDAY_1000 = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
TUESDAY_1605 = datetime(2024, 3, 5, 21, 5, tzinfo=UTC)
TUESDAY_1559 = datetime(2024, 3, 5, 20, 59, tzinfo=UTC)
TUESDAY_1601 = datetime(2024, 3, 5, 21, 1, tzinfo=UTC)
WEDNESDAY_0931 = datetime(2024, 3, 6, 14, 31, tzinfo=UTC)
WEDNESDAY_0935 = datetime(2024, 3, 6, 14, 35, tzinfo=UTC)


def step_to(sim: SimGateway, when: datetime) -> None:
    """Run the simulator's market (and its order expiry) up to ``when``."""
    sim.control.step((when - sim.clock.now()).total_seconds())


class Alerts:
    """The alerts a subscription delivered, kept as they come."""

    def __init__(self, events: Subscription) -> None:
        self.events = events
        self.seen: list[Alert] = []

    def of(self, kind: str) -> list[Alert]:
        """The alerts of ``kind`` (:func:`kinds_of`) received so far."""
        self.seen.extend(alerts_said(self.events))
        return [a for a in self.seen if kind in kinds_of(a)]


def timers_fired(engine: Engine) -> bool:
    """No engine timer is pending: the look at a position whose protective order ended, an acknowledgement
    timeout later, has been taken."""
    return not engine._timers  # noqa: SLF001


@asynccontextmanager
async def on_hours(sim: SimGateway, config: EngineConfig,
                   ready: str = "quoted") -> AsyncIterator[tuple[Engine, Subscription]]:
    """The engine on ``sim``'s clock once it has AAPL's first quote (``ready="quoted"``), or has reconciled
    with entries open (``"settled"``)."""
    async with running(sim, config, clock=sim.clock.now) as (engine, events):
        if ready == "settled":
            await eventually(lambda: engine.book_settled and not engine.blocks, what="reconciled, entries open")
        else:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
        yield engine, events


def hours_config(tmp_path: Path) -> EngineConfig:
    """The engine tests' config, its journal in ``tmp_path``."""
    return make_config(tmp_path, book_settle_s=0.5)


@pytest.fixture
async def hours(request: pytest.FixtureRequest) -> AsyncIterator[SimGateway]:
    """A simulator on exchange hours whose manual clock starts at ``request.param``."""
    async with SimGateway(port=0, clock=ManualClock(request.param), seed=7, step_seconds=30.0) as gw:
        yield gw


@pytest.mark.parametrize("hours", [TUESDAY_1555], indirect=True)
async def test_bracket_held_over_the_close_then_its_stop_and_target_stay_at_the_broker_and_the_stop_fills_next_morning(
        hours: SimGateway, tmp_path: Path) -> None:
    # Every order went DAY, a bracket's stop and target too: IB expired them at the close, and a position
    # held overnight opened the next morning with nothing at the broker.
    sim = hours
    async with on_hours(sim, hours_config(tmp_path)) as (engine, events):
        entry, stop, target = await protected_long(engine)
        witness = await engine.submit(buy(1, order_type=OrderType.LMT,
                                          limit_price=round(stop.ticket.stop_price - 5, 2)))  # a DAY order
        await eventually(lambda: status(engine, witness.order_ref) is S.SUBMITTED, what="day order working")

        step_to(sim, TUESDAY_1605)
        await eventually(lambda: status(engine, witness.order_ref) is S.CANCELLED, what="day order expired")

        assert entry.ticket.tif is TimeInForce.DAY
        assert {status(engine, stop.order_ref), status(engine, target.order_ref)} == {S.SUBMITTED}
        at_broker = {o.order_ref: o for o in sim.orders() if o.working}
        assert {at_broker[stop.order_ref].tif, at_broker[target.order_ref].tif} == {"GTC"}
        assert engine.portfolio.positions["AAPL"].stop_price == stop.ticket.stop_price

        step_to(sim, WEDNESDAY_0931)
        sim.control.set_price("AAPL", round(stop.ticket.stop_price - 3, 2))  # a gap down at the open
        await eventually(lambda: status(engine, stop.order_ref) is S.FILLED, what="stop filled")
        await eventually(lambda: status(engine, target.order_ref) is S.CANCELLED, what="target cancelled (OCA)")
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 0 and "AAPL" not in sim.positions())
        await eventually(lambda: timers_fired(engine), what="the protection looked at")
        assert Alerts(events).of("protection_lost") == []


@pytest.mark.parametrize("hours", [TUESDAY_1000], indirect=True)
async def test_protective_stop_cancelled_at_the_broker_while_its_position_is_held_then_a_warning_names_it(
        hours: SimGateway, tmp_path: Path) -> None:
    sim = hours
    async with on_hours(sim, hours_config(tmp_path)) as (engine, events):
        _, stop, target = await protected_long(engine)

        sim.control.cancel(stop.order_ref)  # in TWS, say: nobody asked tui-trader
        sim.control.cancel(target.order_ref)

        said = Alerts(events)
        await eventually(lambda: said.of("protection_lost"), what="protection lost said")
        (said,) = said.of("protection_lost")
        assert said.text.startswith("AAPL 10 has no protective order at the broker: ")
        assert stop.order_ref in said.text or target.order_ref in said.text
        assert said.level.value == "WARNING"


@pytest.mark.parametrize(("hours", "ending"), [(TUESDAY_1000, "filled"), (TUESDAY_1000, "cancelled")],
                         indirect=["hours"])
async def test_gtc_stop_ended_on_an_earlier_day_while_the_engine_was_away_then_settled_not_unknown_and_entries_open(
        hours: SimGateway, ending: str, tmp_path: Path) -> None:
    # IB reports completed orders and executions of the current day only: a GTC stop that filled or was
    # cancelled yesterday while the engine was down is found nowhere. It was moved to UNKNOWN, which
    # blocked entries until a reconciliation found it: none ever would.
    sim, config = hours, hours_config(tmp_path)
    async with on_hours(sim, config) as (first, _):
        _, stop, target = await protected_long(first)
    end_overnight(sim, stop, target, ending)
    held = sim.positions().get("AAPL", 0)

    async with on_hours(sim, config, ready="settled") as (second, events):
        assert {status(second, stop.order_ref), status(second, target.order_ref)} == {S.CANCELLED}
        assert second.portfolio.quantity("AAPL") == held
        assert second.trading_state is TradingState.ACTIVE
        seen = Alerts(events)
        said = [a.text for a in seen.of("order_reconciled") if stop.order_ref in a.text]
        assert len(said) == 1
        assert "ended (filled or cancelled) while tui-trader was away" in said[0]
        assert "IB reports only today's orders and executions" in said[0]

        order = await second.submit(buy(1, symbol="MSFT"))
        await eventually(lambda: status(second, order.order_ref) is S.FILLED, what="a new entry fills")
        if ending == "filled":  # the difference is the stop's fill: not a mismatch (no kill switch)
            assert seen.of("position_mismatch") == []
            assert [a.level.value for a in seen.of("position_adopted")] == ["WARNING"]
        else:  # the position is still held, with nothing at the broker
            await eventually(lambda: seen.of("protection_lost"), what="protection lost said")


@pytest.mark.parametrize("hours", [TUESDAY_1000], indirect=True)
async def test_gtc_stop_filled_this_morning_before_the_engine_started_then_its_fill_is_booked(
        hours: SimGateway, tmp_path: Path) -> None:
    # Today's end is still reported: the fill is booked from the executions, not guessed.
    sim, config = hours, hours_config(tmp_path)
    async with on_hours(sim, config) as (first, _):
        _, stop, target = await protected_long(first)
    step_to(sim, WEDNESDAY_0931)
    sim.control.set_price("AAPL", round(stop.ticket.stop_price - 1, 2))
    step_to(sim, WEDNESDAY_0935)

    async with on_hours(sim, config, ready="settled") as (second, events):
        assert status(second, stop.order_ref) is S.FILLED
        assert status(second, target.order_ref) is S.CANCELLED
        assert second.portfolio.quantity("AAPL") == 0
        assert Alerts(events).of("position_mismatch") == []


def test_bracket_children_are_gtc_and_the_entry_keeps_its_time_in_force() -> None:
    entry = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=100.0,
                        bracket=Bracket(stop_price=95.0, take_profit_price=110.0))
    trailing = OrderTicket("AAPL", Side.BUY, 10, bracket=Bracket(stop_price=95.0, trail_amount=2.0))

    assert {c.tif for c in [*bracket_children(entry), *bracket_children(trailing)]} == {TimeInForce.GTC}
    assert entry.tif is TimeInForce.DAY


@pytest.mark.parametrize("hours", [TUESDAY_1559], indirect=True)
async def test_day_bracket_entry_expired_at_the_close_after_a_partial_fill_then_a_gtc_stop_is_placed_for_the_part_held(
        hours: SimGateway, tmp_path: Path) -> None:
    # The broker cancels a bracket's stop and target with its entry: a DAY entry that had filled 30 of 100 by
    # the close expired and took them with it, leaving the 30 with nothing at the broker overnight.
    sim = hours
    async with on_hours(sim, hours_config(tmp_path)) as (engine, events):
        quote = sim.quote("AAPL")
        limit, stop_price = quote.ask, round(quote.bid - 3, 2)
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 100, 30)  # 30 offered at the limit
        entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.LMT, limit_price=limit,
                                                bracket=Bracket(stop_price=stop_price)))
        await eventually(lambda: status(engine, entry.order_ref) is S.PARTIALLY_FILLED, what="30 filled")
        sim.control.set_quote("AAPL", round(limit + 2, 2), round(limit + 2.02, 2))  # away from the limit

        step_to(sim, TUESDAY_1601)

        await eventually(lambda: [(o.action, o.total_qty, o.aux_price, o.tif) for o in sim.orders() if o.working]
                         == [("SELL", 30, stop_price, "GTC")], what="a GTC stop for the 30 at the broker")
        assert status(engine, entry.order_ref) is S.CANCELLED
        assert sim.positions()["AAPL"] == 30
        (placed,) = engine.protection_working("AAPL")
        await eventually(lambda: status(engine, placed.order_ref) is S.SUBMITTED, what="the new stop acknowledged")
        seen = Alerts(events)
        assert [a.level.value for a in seen.of("protection_replaced")] == ["WARNING"]
        await eventually(lambda: timers_fired(engine), what="the protection looked at")
        assert seen.of("protection_lost") == []


@pytest.mark.parametrize(("hours", "ending"), [(TUESDAY_1000, "filled"), (TUESDAY_1000, "cancelled")],
                         indirect=["hours"])
async def test_gtc_stop_ended_on_an_earlier_day_while_the_link_was_down_then_settled_on_reconnect_as_at_a_start(
        hours: SimGateway, ending: str, tmp_path: Path) -> None:
    # The engine kept running through an outage that crossed midnight New York: the stop's end (yesterday)
    # is reported nowhere on reconnect. Only a start took the position its fill explains from the broker:
    # a reconnect called the same difference a position mismatch and its trigger halted trading.
    sim = hours
    async with on_hours(sim, hours_config(tmp_path)) as (engine, events):
        _, stop, target = await protected_long(engine)
        await link_down(engine, sim)
        end_overnight(sim, stop, target, ending)
        held = sim.positions().get("AAPL", 0)
        seen = Alerts(events)

        sim.control.refuse_connections(0)
        await eventually(lambda: engine.reconnects >= 1 and not engine.blocks, what="reconnected, entries open")

        assert {status(engine, stop.order_ref), status(engine, target.order_ref)} == {S.CANCELLED}
        assert ENDED_AWAY in engine.orders.orders[stop.order_ref].history[-1].note
        assert engine.portfolio.quantity("AAPL") == held
        assert engine.trading_state is TradingState.ACTIVE
        assert seen.of("position_mismatch") == []
        order = await engine.submit(buy(1, symbol="MSFT"))
        await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="a new entry fills")
        # Filled: the difference is the stop's fill, taken from the broker and said. Cancelled: the position
        # is still held (nothing to take; that it has no protection is said as at a start, tested above).
        assert [a.level.value for a in seen.of("position_adopted")] == (["WARNING"] if ending == "filled" else [])


def end_overnight(sim: SimGateway, stop: Order, target: Order, ending: str) -> None:
    """The bracket's stop ends at the broker while the engine is away, then the clock moves to Wednesday's
    open: ``filled`` (the price runs through it: flat at the broker) or ``cancelled`` (stop and target, in TWS)."""
    if ending == "filled":
        sim.control.set_price("AAPL", round(stop.ticket.stop_price - 1, 2))  # type: ignore[operator]
        assert sim.positions().get("AAPL", 0) == 0
    else:
        sim.control.cancel(stop.order_ref)
        sim.control.cancel(target.order_ref)
    step_to(sim, WEDNESDAY_0935)


async def tws_stop(sim: SimGateway) -> None:
    """A GTC stop selling 5 AAPL $5 under the bid, typed into TWS (``tws-stop``): working, unknown to the journal."""
    await placed_by_another_tool(sim, ib_async.StopOrder("SELL", 5, round(sim.quote("AAPL").bid - 5, 2),
                                                         tif="GTC", orderRef="tws-stop"))


@pytest.mark.parametrize("hours", [TUESDAY_1000], indirect=True)
async def test_gtc_stop_adopted_from_the_broker_when_it_ended_on_an_earlier_day_then_settled_as_ended_away_not_expired(
        hours: SimGateway, tmp_path: Path) -> None:
    # Adopted as DAY whatever the broker said, a GTC stop gone on a later day was settled EXPIRED as "a day
    # order of an earlier session": a status claiming it could not have filled, which IB no longer reports.
    sim, config = hours, hours_config(tmp_path)
    await tws_stop(sim)
    async with running(sim, config, clock=sim.clock.now) as (first, events):
        adopted = first.orders.orders["tws-stop"]
        assert (adopted.status, adopted.ticket.tif) == (S.SUBMITTED, TimeInForce.GTC)
        (said,) = Alerts(events).of("order_adopted")
        assert "GTC" in said.text
    sim.control.cancel("tws-stop")
    step_to(sim, WEDNESDAY_0935)

    async with on_hours(sim, config, ready="settled") as (second, _):
        order = second.orders.orders["tws-stop"]
        assert order.status is S.CANCELLED
        assert ENDED_AWAY in order.history[-1].note


@pytest.mark.parametrize("hours", [TUESDAY_1000], indirect=True)
async def test_two_gtc_stops_under_one_ref_when_the_first_ended_on_an_earlier_day_then_it_alone_settled_as_ended_away(
        hours: SimGateway, tmp_path: Path) -> None:
    # The second's open order, under the same orderRef, was taken to mention the first: gone from the broker (IB
    # no longer reports it), the first stayed working here for good.
    sim, config = hours, hours_config(tmp_path)
    await tws_stop(sim)
    await tws_stop(sim)
    async with running(sim, config, clock=sim.clock.now) as (first, _):
        (second_ref,) = [ref for ref in first.orders.orders if ref.startswith("tws-stop#")]
        first_perm = first.orders.orders["tws-stop"].perm_id or 0
    sim.control.cancel("tws-stop", perm_id=first_perm)
    step_to(sim, WEDNESDAY_0935)

    async with on_hours(sim, config, ready="settled") as (second, _):
        ended, working = second.orders.orders["tws-stop"], second.orders.orders[second_ref]
        assert (ended.status, working.status) == (S.CANCELLED, S.SUBMITTED)
        assert ENDED_AWAY in ended.history[-1].note


@pytest.mark.parametrize("hours", [TUESDAY_1000], indirect=True)
async def test_stop_typed_in_tws_adopted_and_filled_on_an_earlier_day_then_its_fill_explains_the_position(
        hours: SimGateway, tmp_path: Path) -> None:
    # Only reduce-only orders (a bracket's stop, target) counted as orders whose unreported fills explain a
    # smaller position: an adopted stop is no reduce-only ticket, so its fill overnight read as a position
    # mismatch and its trigger halted trading on every start.
    sim, config = hours, hours_config(tmp_path)
    await tws_stop(sim)
    async with running(sim, config, clock=sim.clock.now) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes and "tws-stop" in first.orders.orders,
                         what="quotes, the stop adopted")
        order = await first.submit(buy(5))
        await eventually(lambda: status(first, order.order_ref) is S.FILLED, what="the buy filled")
    sim.control.set_price("AAPL", round(sim.quote("AAPL").bid - 6, 2))  # the stop fills on Tuesday
    assert sim.positions().get("AAPL", 0) == 0
    step_to(sim, WEDNESDAY_0935)

    async with on_hours(sim, config, ready="settled") as (second, events):
        assert status(second, "tws-stop") is S.CANCELLED
        assert second.portfolio.quantity("AAPL") == 0
        assert second.trading_state is TradingState.ACTIVE
        seen = Alerts(events)
        assert seen.of("position_mismatch") == []
        (adopted,) = seen.of("position_adopted")
        assert "tws-stop" in adopted.text
