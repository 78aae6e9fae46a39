"""A short sale IB holds while it locates shares to borrow: ``Inactive`` with whyHeld ``locate`` (and warning 404).

The order is alive and can fill at any moment. It was booked REJECTED (final): the console showed it gone, the
risk book no longer counted it, and its later fill landed on a rejected order. Any other ``Inactive`` is still a
rejection.
"""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import AlertLevel, Bracket, OrderStatus, OrderType
from tui_trader.domain.orders import LOCATING
from tui_trader.engine.engine import Engine
from tui_trader.risk.book import build_book
from tui_trader.sim import SimGateway

from .helpers import alerts_said, buy, eventually, make_config, running, sell, status

S = OrderStatus


def at_broker(sim: SimGateway, order_ref: str) -> tuple[str, str]:
    """(status, whyHeld) the simulator holds for ``order_ref``."""
    (order,) = [o for o in sim.orders() if o.order_ref == order_ref]
    return order.status, order.why_held


def working_sells(engine: Engine, symbol: str = "AAPL") -> float:
    """The working sells the risk book counts in ``symbol``."""
    return build_book(engine.account_snapshot(), engine.market.view(), ()).leg(symbol).sells


async def test_short_entry_when_held_for_locate_then_works_on_and_fills_once(
        sim: SimGateway, engine: Engine) -> None:
    # Arrange: the broker holds short sales for a locate; a short entry with its bracket, as ema_cross sends
    events = engine.subscribe("locate", lossless=True)
    sim.control.locate_shorts()
    px = engine.market.quotes["AAPL"].bid
    bracket = Bracket(stop_price=round(px + 2, 2), take_profit_price=round(px - 2, 2))

    # Act
    entry = await engine.submit(sell(10, bracket=bracket))
    await eventually(lambda: status(engine, entry.order_ref) is not S.SENDING, what="the broker's answer")

    # Assert: working (not rejected), shown held, counted in the book, said once
    held = engine.orders.orders[entry.order_ref]
    assert at_broker(sim, entry.order_ref) == ("Inactive", "locate")
    assert held.status is S.SUBMITTED, held.history
    assert held.broker_hold == LOCATING
    assert held.last_error.startswith("404: ")
    assert working_sells(engine) == 10
    assert [(a.level, a.kind, a.text) for a in alerts_said(events) if a.level is not AlertLevel.INFO] == [
        (AlertLevel.WARNING, "order_held", f"{entry.order_ref} SELL 10 AAPL held by the broker ({LOCATING}): still "
                                           "working, it can fill at any moment")]

    await engine.reconcile("test: the broker's view of a held order")
    assert status(engine, entry.order_ref) is S.SUBMITTED
    assert [a for a in alerts_said(events) if a.level is not AlertLevel.INFO] == []  # no difference found

    # Act: the shares are located; the entry works and fills as usual
    sim.control.locate_shares()
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="the entry filled")
    stop, target = engine.orders.children(entry.order_ref)
    await eventually(lambda: {status(engine, stop.order_ref), status(engine, target.order_ref)} == {S.SUBMITTED},
                     what="the bracket working")

    # Assert: booked once, the position right, nothing else said, nothing blocked
    assert [f.order_ref for f in engine.orders.fills.values()] == [entry.order_ref]
    assert engine.portfolio.quantity("AAPL") == -10
    filled = engine.orders.orders[entry.order_ref]
    assert filled.broker_hold == ""
    assert [h.status for h in filled.history][-3:] == [S.SUBMITTED, S.SUBMITTED, S.FILLED]  # held, located, filled
    assert [a for a in alerts_said(events) if a.level is not AlertLevel.INFO] == []
    assert engine.blocks == {}


async def test_short_held_for_locate_when_modified_then_cancelled_then_the_broker_does_both(
        sim: SimGateway, engine: Engine) -> None:
    sim.control.locate_shorts()
    px = engine.market.quotes["AAPL"].ask
    entry = await engine.submit(sell(10, order_type=OrderType.LMT, limit_price=round(px + 1, 2)))
    await eventually(lambda: status(engine, entry.order_ref) is not S.SENDING, what="the broker's answer")
    assert engine.orders.orders[entry.order_ref].broker_hold == LOCATING

    verdict = await engine.modify(entry.order_ref, limit_price=round(px + 2, 2))

    assert verdict.passed
    await eventually(lambda: [o.lmt_price for o in sim.orders() if o.order_ref == entry.order_ref]
                     == [round(px + 2, 2)], what="the modification at the broker")
    await engine.cancel(entry.order_ref)
    await eventually(lambda: status(engine, entry.order_ref) is S.CANCELLED, what="cancelled")
    assert at_broker(sim, entry.order_ref) == ("Cancelled", "")
    assert working_sells(engine) == 0


async def test_inactive_without_why_held_then_rejected(sim: SimGateway, engine: Engine) -> None:
    px = engine.market.quotes["AAPL"].bid
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=round(px - 5, 2)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED, what="working")

    sim.control.deactivate(order.order_ref)

    await eventually(lambda: status(engine, order.order_ref) is S.REJECTED, what="rejected")
    assert at_broker(sim, order.order_ref) == ("Inactive", "")
    assert engine.orders.orders[order.order_ref].broker_hold == ""


async def test_cancel_all_when_a_short_is_held_for_locate_then_cancelled_and_verified(
        sim: SimGateway, engine: Engine) -> None:
    sim.control.locate_shorts()
    entry = await engine.submit(sell(10))
    await eventually(lambda: status(engine, entry.order_ref) is not S.SENDING, what="the broker's answer")

    report = await engine.cancel_all()

    assert report.verified
    assert report.remaining == ()
    assert at_broker(sim, entry.order_ref) == ("Cancelled", "")
    await eventually(lambda: status(engine, entry.order_ref) is S.CANCELLED, what="cancelled")



async def test_start_when_a_short_held_for_a_locate_is_adopted_then_shown_held_and_said_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # A short sale of this client the engine does not know (its journal lost it) is first seen by the startup's
    # reconciliation, which adopts it: it was adopted as a plain working order, the hold neither shown nor said
    # (the live stream's status, heard before the order was adopted, matched no order).
    async with running(sim, make_config(tmp_path / "lost")) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quotes")
        sim.control.locate_shorts()
        entry = await first.submit(sell(10, order_type=OrderType.LMT, limit_price=round(sim.quote("AAPL").ask + 1, 2)))
        await eventually(lambda: first.orders.orders[entry.order_ref].broker_hold == LOCATING, what="held")
    ref = entry.order_ref

    # Act
    async with running(sim, make_config(tmp_path)) as (second, events):

        # Assert: adopted, shown held, said once
        assert second.orders.orders[ref].broker_hold == LOCATING
        assert status(second, ref) is S.SUBMITTED
        (shown,) = [o for o in second.snapshot().orders if o.order_ref == ref]
        assert shown.broker_hold == LOCATING
        said = [(a.level, a.text) for a in alerts_said(events) if a.kind == "order_held"]
        assert said == [(AlertLevel.WARNING, f"{ref} SELL 10 AAPL held by the broker ({LOCATING}): still working, it "
                                             "can fill at any moment")]

        # Act: the live stream hears the same hold (the connection dropped and made again); reconciled again
        reconnects = second.reconnects
        sim.control.drop_sessions()
        await eventually(lambda: second.reconnects > reconnects and not second.blocks, what="reconnected, reconciled")
        await second.reconcile("test: the held order seen again")

        # Assert: nothing more said
        assert second.orders.orders[ref].broker_hold == LOCATING
        assert [a for a in alerts_said(events) if a.kind == "order_held"] == []
