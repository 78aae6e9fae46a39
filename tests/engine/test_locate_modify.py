"""A short sale held for a locate, modified: the hold is the broker's until the broker says otherwise.

The hold was read from the order's last history step, and a modify appends a step of its own: while the
broker had not answered, the order no longer read as held, and the broker's echo, still ``Inactive`` with
whyHeld ``locate``, put it on hold anew and raised a second "held by the broker" WARNING.
"""

from __future__ import annotations

from tui_trader.domain import AlertLevel, OrderStatus, OrderType
from tui_trader.domain.orders import LOCATING
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import alerts_said, broker_answers, eventually, held_at_broker, sell, status

S = OrderStatus


def hold(engine: Engine, order_ref: str) -> str:
    """The hold of ``order_ref`` as the engine and its snapshot say it."""
    (shown,) = [o for o in engine.snapshot().orders if o.order_ref == order_ref]
    assert shown.broker_hold == engine.orders.orders[order_ref].broker_hold
    return shown.broker_hold


async def held_short(engine: Engine, sim: SimGateway, events: Subscription) -> tuple[str, float]:
    """A sell limit of 10 AAPL a dollar above the ask, held by the broker for a locate and said once: (ref, limit)."""
    sim.control.locate_shorts()
    limit = round(sim.quote("AAPL").ask + 1, 2)
    entry = await engine.submit(sell(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: hold(engine, entry.order_ref) == LOCATING, what="held for a locate")
    assert [a.level for a in alerts_said(events, kind="order_held")] == [AlertLevel.WARNING]
    return entry.order_ref, limit


async def test_held_short_when_modified_then_held_while_unanswered_and_after_the_echo_and_said_once(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange
    events = engine.subscribe("locate-modify", lossless=True)
    ref, limit = await held_short(engine, sim, events)
    sim.control.delay_messages("open_order", 1.0)  # the echo comes when the simulated clock moves on

    # Act
    verdict = await engine.modify(ref, limit_price=round(limit + 1, 2))

    # Assert: unanswered, the broker's hold stands; its echo (still held) confirms the figures, no new warning
    assert verdict.passed
    await eventually(lambda: held_at_broker(sim, ref) == (10, round(limit + 1, 2), None), what="modified at the broker")
    assert ref in engine.snapshot().modifications
    assert hold(engine, ref) == LOCATING
    await broker_answers(sim, engine, "the echo confirming it")
    assert (sim.orders()[0].status, sim.orders()[0].why_held) == ("Inactive", "locate")
    assert hold(engine, ref) == LOCATING
    assert status(engine, ref) is S.SUBMITTED
    assert alerts_said(events, kind="order_held") == []

    # Act: the shares are found
    sim.control.locate_shares(ref)

    # Assert: the broker's word ends the hold, and says nothing more
    await eventually(lambda: hold(engine, ref) == "", what="released")
    assert status(engine, ref) is S.SUBMITTED
    assert alerts_said(events, kind="order_held") == []


async def test_held_short_when_modified_then_a_part_filled_ends_the_hold(engine: Engine, sim: SimGateway) -> None:
    # Arrange: held, modified to a limit under the bid (it fills once worked), the modify echoed; 4 shown at the bid
    events = engine.subscribe("locate-modify", lossless=True)
    ref, _ = await held_short(engine, sim, events)
    quote = sim.quote("AAPL")
    await engine.modify(ref, limit_price=round(quote.bid - 1, 2))
    await eventually(lambda: ref not in engine.snapshot().modifications, what="the echo")
    assert hold(engine, ref) == LOCATING
    sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=4)
    sim.control.delay_messages("order_status", 1.0)  # the execution is heard before the release's status
    sim.control.delay_messages("open_order", 1.0)

    # Act
    sim.control.locate_shares(ref)

    # Assert: the fill, the broker's word, ends the hold (its step follows the modify's)
    await eventually(lambda: status(engine, ref) is S.PARTIALLY_FILLED, what="4 filled")
    order = engine.orders.orders[ref]
    assert [h.note.split(":")[0] for h in order.history[-3:]] == ["held", "modify requested", f"fill 4@{quote.bid:g}"]
    assert hold(engine, ref) == ""
    sim.control.step(1.0)  # the statuses held back go out, then the answers of a reconciliation after them
    await engine.reconcile("test: the broker's statuses after the fill")
    assert hold(engine, ref) == ""
    assert alerts_said(events, kind="order_held") == []
