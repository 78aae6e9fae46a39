"""Cuts of a protective order after fills that shrink its position: one at a time, the last state wins.

Two fills in quick succession spawned two modifies of the same stop, each sized when its fill came;
both waited for the journal's flush, and the flushes could end in either order: the older, larger
size could reach the broker last, the engine showing the stop cut to the position while the broker
held it larger (if it triggered, the position reversed). The journal's flushes are held back here by
another connection holding the file's write lock, as another process can.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised, OrderDenied
from tui_trader.engine.amend import MODIFY_NOTE
from tui_trader.sim import ManualClock, SimGateway

from .helpers import bracket_buy, eventually, journal_held, limits_for_tests, make_config, running, status

S = OrderStatus


async def test_stop_when_two_sells_fill_while_its_first_cut_is_unanswered_then_one_cut_at_a_time_and_the_last_wins(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Arrange: long 100 with a stop of 100; the journal's writes wait for another connection's lock.
    caplog.set_level(logging.INFO, logger="tui_trader.engine.cuts")
    config = make_config(tmp_path)
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        with journal_held(eng):
            # Act: a sell of 30 fills (the stop's cut to 70 waits for the journal), then another.
            first = await eng.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.MKT))
            await eventually(lambda: status(eng, first.order_ref) is S.FILLED, what="the first sell")
            await eventually(lambda: eng.orders.orders[stop.order_ref].ticket.quantity == 70, what="cut to 70")
            caplog.clear()
            second = await eng.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.MKT))
            await eventually(lambda: status(eng, second.order_ref) is S.FILLED, what="the second sell")
            await eventually(lambda: _logged(caplog, f"{stop.order_ref}: a cut in flight, fitted again once"),
                             what="the second sell's fitting left to the cut in flight")
            # Assert: no second modify while the first is unanswered.
            modifies = [h for h in eng.orders.orders[stop.order_ref].history if h.note.startswith(MODIFY_NOTE)]
            assert len(modifies) == 1
        # Then: the cut to 70, checked again once the journal let it go, is no longer reduce-only under the 40
        # now held: not sent, and sized again; the stop goes to the 40 held, in one message.
        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [40],
                         what="the stop at 40 at the broker")
        assert [r.qty for r in sim.ledger.received if r.order_ref == stop.order_ref] == [100, 40]
        assert eng.orders.orders[stop.order_ref].ticket.quantity == 40 == sim.positions()["AAPL"]
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.source == "protection"]
        assert [(a.level, a.text) for a in alerts] == [
            (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40")]


async def test_stop_when_its_cut_meets_an_empty_message_budget_then_tried_again_not_given_up(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # A cut the per-second throttle refused was said CRITICAL and never tried again: the stop stayed at 100
    # on 40 held, though the budget was back a second later.
    limits = limits_for_tests(max_orders_per_second=2, max_orders_per_minute=None)
    async with running(sim, make_config(tmp_path, limits=limits), clock=clock.now) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)  # entry and stop: the second's 2 messages
        clock.advance(1.0)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))
        eng.risk.record_cancel(eng.now())  # a cancel went out in the same second: the budget is spent
        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the sell")
        denied = []
        await eventually(lambda: bool(denied.extend(e for e in events.drain() if isinstance(e, OrderDenied)
                                                    and e.order_ref == stop.order_ref) or denied),
                         what="the cut refused by the throttle")
        assert denied[0].verdict.failures[0].name == "throttle_per_second"

        clock.advance(1.0)  # the budget is back
        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [40],
                         what="the stop cut to 40 at the broker")
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.source == "protection"]
        assert [(a.level, a.text) for a in alerts] == [
            (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40")]


async def test_stop_when_the_operator_modifies_it_during_its_cut_then_after_the_cut_and_on_top_of_it(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The operator's modify and a cut of the same stop each amended the order, then waited for the journal: the
    # one whose wait ended first was sent first, whatever the engine recorded last. Now they take turns.
    caplog.set_level(logging.INFO, logger="tui_trader.engine.amend")
    config = make_config(tmp_path)
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        new_stop = round((stop.ticket.stop_price or 0.0) - 1.0, 2)
        with journal_held(eng):
            sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.MKT))
            await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the sell")
            await eventually(lambda: eng.orders.orders[stop.order_ref].ticket.quantity == 70, what="cut to 70")
            # Act: the operator moves the stop while the cut waits for the journal.
            moved = asyncio.create_task(eng.modify(stop.order_ref, stop_price=new_stop))
            await eventually(lambda: _logged(caplog, f"{stop.order_ref}: modify waits for the 1 asked before it"),
                             what="the operator's modify waiting for the cut")
            # Assert: it waits for the cut to be on the wire before it changes the order.
            modifies = [h for h in eng.orders.orders[stop.order_ref].history if h.note.startswith(MODIFY_NOTE)]
            assert len(modifies) == 1
        assert (await moved).passed
        (at_broker,) = [o for o in sim.orders() if o.order_ref == stop.order_ref]
        await eventually(lambda: (at_broker.total_qty, at_broker.aux_price) == (70, new_stop), what="both changes")
        assert [r.qty for r in sim.ledger.received if r.order_ref == stop.order_ref] == [100, 70, 70]
        ticket = eng.orders.orders[stop.order_ref].ticket
        assert (ticket.quantity, ticket.stop_price) == (70, new_stop)


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """A record starting with ``text`` was logged."""
    return any(r.getMessage().startswith(text) for r in caplog.records)
