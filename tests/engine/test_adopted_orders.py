"""Orders adopted from the broker after a restart say what the broker holds: a trailing stop's trail and
where its stop stands, extended hours, a GTD order's time in force; a modify re-sends them as they are, or is
refused when the engine could not (never sent back as another order)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import AlertLevel, Order, OrderType, TimeInForce
from tui_trader.domain.events import AlertRaised
from tui_trader.domain.orders import FIGURES_NOTE
from tui_trader.errors import SafetyError
from tui_trader.sim import SimGateway
from tui_trader.ui.widgets.orders import order_row

from .helpers import eventually, link_down, make_config, placed_by_another_tool, running


def _adopted(orders: dict[str, Order]) -> Order:
    (adopted,) = [o for o in orders.values() if o.ticket.strategy == "adopted"]
    return adopted


def _trailing_stop(**fields: object) -> ib_async.Order:
    return ib_async.Order(action="SELL", totalQuantity=5, orderType="TRAIL", tif="GTC", outsideRth=True, **fields)


async def test_trailing_stop_by_amount_adopted_then_its_trail_and_stop_not_the_amount_as_stop(
        sim: SimGateway, tmp_path: Path) -> None:
    # The adopted ticket took IB's auxPrice as the stop price: a trailing stop 2.00 behind the price showed a stop
    # at 2.00, carried no trail (a modify was denied: "TRAIL needs a trail amount or percent"), nor outsideRth.
    held = await placed_by_another_tool(sim, _trailing_stop(auxPrice=2.0))
    assert held.trail_stop_price is not None
    assert held.trail_stop_price > 100  # where the stop stands, well above the 2.00 behind the price

    async with running(sim, make_config(tmp_path)) as (engine, _):
        adopted = _adopted(engine.orders.orders)
        t = adopted.ticket
        assert (t.order_type, t.trail_amount, t.trail_percent, t.stop_price) == (
            OrderType.TRAIL, 2.0, None, held.trail_stop_price)
        assert (t.tif, t.outside_rth) == (TimeInForce.GTC, True)
        cells = order_row(adopted).cells
        assert (cells[5], cells[6]) == ("TRAIL", f"≥{held.trail_stop_price:,.2f}")


async def test_trailing_stop_by_percent_adopted_when_modified_then_sent_again_with_the_same_trail(
        sim: SimGateway, tmp_path: Path) -> None:
    held = await placed_by_another_tool(sim, _trailing_stop(trailingPercent=1.5))

    async with running(sim, make_config(tmp_path)) as (engine, _):
        adopted = _adopted(engine.orders.orders)
        assert (adopted.ticket.trail_percent, adopted.ticket.trail_amount) == (1.5, None)
        assert adopted.ticket.stop_price == held.trail_stop_price

        verdict = await engine.modify(adopted.order_ref, quantity=4)

        assert verdict.passed, verdict.reason
        await eventually(lambda: held.total_qty == 4, what="modified at the broker")
        sent = sim.received_orders()[-1]
        assert (sent.modification, sent.order_type) == (True, "TRAIL")
        assert (held.trailing_percent, held.aux_price, held.tif, held.outside_rth) == (1.5, None, "GTC", True)


async def test_trailing_stop_by_amount_adopted_when_modified_then_the_same_amount_not_a_stop_price(
        sim: SimGateway, tmp_path: Path) -> None:
    held = await placed_by_another_tool(sim, _trailing_stop(auxPrice=2.0))

    async with running(sim, make_config(tmp_path)) as (engine, _):
        verdict = await engine.modify(_adopted(engine.orders.orders).order_ref, quantity=4)

        assert verdict.passed, verdict.reason
        await eventually(lambda: held.total_qty == 4, what="modified at the broker")
        assert (held.order_type, held.aux_price, held.trailing_percent) == ("TRAIL", 2.0, None)
        assert (held.tif, held.outside_rth) == ("GTC", True)


async def test_gtd_order_adopted_then_gtd_with_its_date_and_a_modify_refused_not_sent_as_a_day_order(
        sim: SimGateway, tmp_path: Path) -> None:
    # A GTD order was recorded DAY: shown as a day order, settled EXPIRED as one of an earlier session when gone
    # the next day, and a modify sent it back as a DAY order (expiring at that day's close, not its date).
    stop = round(sim.quote("AAPL").bid - 5, 2)
    held = await placed_by_another_tool(sim, ib_async.StopOrder("SELL", 5, stop, tif="GTD",
                                                                   goodTillDate="20990101 16:00:00 US/Eastern"))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = _adopted(engine.orders.orders)
        assert (adopted.ticket.order_type, adopted.ticket.tif, adopted.ticket.stop_price) == (
            OrderType.STP, "GTD", stop)
        assert "20990101 16:00:00" in adopted.ticket.reason
        (said,) = [e.alert.text for e in events.drain()
                   if isinstance(e, AlertRaised) and e.alert.kind == "order_adopted"]
        assert "STP GTD" in said
        assert "cannot be modified here" in said
        modifications = len(sim.received_orders())

        with pytest.raises(SafetyError, match="modified: not modelled here: time in force GTD 20990101 16:00:00"):
            await engine.modify(adopted.order_ref, stop_price=round(stop - 1, 2))

        assert len(sim.received_orders()) == modifications
        assert (held.tif, held.aux_price, held.good_till_date) == ("GTD", stop, "20990101 16:00:00 US/Eastern")
        assert engine.orders.orders[adopted.order_ref].ticket == adopted.ticket


def _journaled_as_a_day_market_order(journal: Path, order_ref: str) -> None:
    """Rewrite ``order_ref`` in the journal as an adoption before the adopted ticket's fix recorded it: a MKT DAY
    order, no trail, no stop, regular hours."""
    with sqlite3.connect(journal) as db:
        (payload,) = db.execute("SELECT payload FROM orders WHERE order_ref = ?", (order_ref,)).fetchone()
        order = json.loads(payload)
        order["ticket"].update(order_type="MKT", tif="DAY", stop_price=None, trail_amount=None, trail_percent=None,
                               outside_rth=False)
        db.execute("UPDATE orders SET payload = ?, order_type = 'MKT' WHERE order_ref = ?",
                   (json.dumps(order), order_ref))


async def test_adopted_trailing_stop_journaled_as_a_day_market_order_when_restarted_then_the_broker_s_terms_said_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a GTC trailing stop (2.00, extended hours) adopted by a run, then journaled as the adoption before its
    # fix did: a MKT DAY order (shown so, settled EXPIRED as a day order, re-sent as one by a modify).
    held = await placed_by_another_tool(sim, _trailing_stop(auxPrice=2.0))
    config = make_config(tmp_path)
    async with running(sim, config) as (engine, _):
        ref = _adopted(engine.orders.orders).order_ref
    assert config.journal_path is not None
    _journaled_as_a_day_market_order(config.journal_path, ref)

    # Act: the engine restarts, restores the order as journaled, and reconciles with the broker.
    async with running(sim, config) as (engine, events):
        t = engine.orders.orders[ref].ticket
        corrected = (t.order_type, t.tif, t.trail_amount, t.trail_percent, t.stop_price, t.outside_rth)
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "order_figures"]
        await link_down(engine, sim)  # and compares again after a reconnect
        sim.control.refuse_connections(0)
        await eventually(lambda: engine.reconnects >= 1 and "reconciling" not in engine.blocks, what="reconciled")
        said_again = [e for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "order_figures"]
        history = engine.orders.orders[ref].history

    # Assert: the broker's terms replaced the record, with a history step; said once, naming what changed.
    assert corrected == (OrderType.TRAIL, TimeInForce.GTC, 2.0, None, held.trail_stop_price, True)
    what = (f"type TRAIL, not MKT, time in force GTC, not DAY, outside RTH yes, not no, "
            f"stop {held.trail_stop_price:g}, not none, trail 2, not none")
    assert [(a.level, a.text) for a in said] == [
        (AlertLevel.WARNING, f"{ref} (TRAIL SELL AAPL) at the broker: {what}: taken from the broker")]
    assert [h.note for h in history if h.note.startswith(FIGURES_NOTE)] == [f"{FIGURES_NOTE}: {what}"]
    assert said_again == []
