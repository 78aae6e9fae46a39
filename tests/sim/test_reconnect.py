"""Reconnect and restart: the client rebuilds open orders, completed orders, fills and positions."""

from __future__ import annotations

from pathlib import Path

import ib_async
from ib_async import LimitOrder, MarketOrder

from tui_trader.sim import ManualClock, SimGateway

from .helpers import connect, eventually


async def _trade_some(ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    filled = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="filled-1"))
    working = ib.placeOrder(aapl, LimitOrder("SELL", 10, 120.00, tif="GTC", orderRef="working-1"))
    await eventually(lambda: filled.isDone() and working.orderStatus.status == "Submitted")


async def _with_aapl(sim: SimGateway) -> tuple[ib_async.IB, ib_async.Contract]:
    """A client connected to ``sim`` and AAPL qualified."""
    ib = await connect(sim)
    (aapl,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    return ib, aapl


def _assert_rebuilt(ib: ib_async.IB) -> None:
    assert [t.order.orderRef for t in ib.openTrades()] == ["working-1"]
    done = [t for t in ib.trades() if t.isDone()]
    assert [t.order.orderRef for t in done] == ["filled-1"]
    assert [f.execution.orderRef for f in ib.fills()] == ["filled-1"]
    assert ib.fills()[0].commissionReport.commission > 0
    assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("AAPL", 10)]


async def test_reconnect_when_client_reconnects_then_state_rebuilt(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    await _trade_some(ib, sim, aapl)
    ib.disconnect()
    again = await connect(sim)
    _assert_rebuilt(again)
    working = again.openTrades()[0]
    again.cancelOrder(working.order)
    await eventually(lambda: working.orderStatus.status == "Cancelled")
    again.disconnect()


async def test_restart_when_state_path_set_then_account_orders_executions_survive(tmp_path: Path) -> None:
    state = tmp_path / "sim-state.json"
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as sim:
        ib, aapl = await _with_aapl(sim)
        await _trade_some(ib, sim, aapl)
        cash = sim.cash
        ib.disconnect()
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as restarted:
        assert restarted.cash == cash
        ib = await connect(restarted)
        _assert_rebuilt(ib)
        next_id = ib.client.getReqId()
        assert next_id > max(o.order_id for o in restarted.orders())
        ib.disconnect()


async def test_restart_a_day_later_then_only_working_orders_kept_and_no_order_id_handed_out_again(
        tmp_path: Path) -> None:
    # The state kept from run to run (--sim keeps it by default) held every order and execution of every
    # run before, saved five times a second while trading.
    from datetime import timedelta

    from tui_trader.sim.clock import DEFAULT_MANUAL_START

    state = tmp_path / "sim-state.json"
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as sim:
        ib, aapl = await _with_aapl(sim)
        await _trade_some(ib, sim, aapl)
        used = max(o.order_id for o in sim.orders())
        ib.disconnect()
    later = ManualClock(DEFAULT_MANUAL_START + timedelta(days=1, minutes=1))
    async with SimGateway(port=0, clock=later, state_path=state) as restarted:
        assert [o.order_ref for o in restarted.orders()] == ["working-1"]
        assert restarted.executions() == []
        assert restarted.positions() == {"AAPL": 10}  # the account is not history: it stays
        ib = await connect(restarted)
        assert [t.order.orderRef for t in ib.openTrades()] == ["working-1"]
        assert ib.client.getReqId() > used
        ib.disconnect()


async def test_fill_when_state_path_set_then_saved_before_the_client_hears_of_it(tmp_path: Path) -> None:
    # The state was saved 0.2 s after a change: a --sim run killed in that window came back with a fill in
    # its journal that its simulator did not have (a position mismatch, and the kill switch, at the start).
    import json

    state = tmp_path / "sim-state.json"
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as sim:
        ib, aapl = await _with_aapl(sim)
        on_disk: list[list[str]] = []
        ib.execDetailsEvent += lambda trade, fill: on_disk.append(
            [e["exec_id"] for e in json.loads(state.read_text())["ledger"]["executions"]])
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="filled-1"))
        await eventually(lambda: trade.isDone() and on_disk)
        assert on_disk == [[trade.fills[0].execution.execId]]
        ib.disconnect()


async def test_restart_when_orders_changed_between_saves_then_the_last_save_has_them_as_they_were(
        tmp_path: Path) -> None:
    # Each save encodes a done order and an execution once and reuses it (a save of a day's orders took
    # 40 ms at 2,400 orders, in the --sim engine's loop): a working order must still be saved as it is now.
    state = tmp_path / "sim-state.json"
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as sim:
        ib, aapl = await _with_aapl(sim)
        await _trade_some(ib, sim, aapl)  # saved: one filled, one working
        working = next(t for t in ib.openTrades() if t.order.orderRef == "working-1")
        working.order.lmtPrice = 121.5
        ib.placeOrder(aapl, working.order)
        await eventually(lambda: next(o for o in sim.orders() if o.order_ref == "working-1").lmt_price == 121.5)
        ib.disconnect()
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as restarted:
        by_ref = {o.order_ref: o for o in restarted.orders()}
        assert by_ref["working-1"].lmt_price == 121.5
        assert (by_ref["filled-1"].status, by_ref["filled-1"].filled) == ("Filled", 10)
        assert [e.order_ref for e in restarted.executions()] == ["filled-1"]


async def _a_day_later(state: Path) -> SimGateway:
    """The simulator restarted with ``state`` a day and a minute after the default start (orders done before are
    forgotten, as IB reports only the current day's)."""
    from datetime import timedelta

    from tui_trader.sim.clock import DEFAULT_MANUAL_START

    later = SimGateway(port=0, clock=ManualClock(DEFAULT_MANUAL_START + timedelta(days=1, minutes=1)),
                       state_path=state)
    await later.start()
    return later


async def test_modify_of_a_bracket_stop_naming_its_entry_forgotten_overnight_then_135_and_with_parent_id_0_moved(
        tmp_path: Path) -> None:
    # IB looks up a parentId on every placeOrder: a stop whose entry filled on an earlier day, modified with the
    # parentId IB reported for it, was refused with 135 "Can't find order with id = <entry>" (erdewit/ib_insync#647);
    # sent with parentId 0 it moved. The simulator took the first modify as IB never did.
    state = tmp_path / "sim-state.json"
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as sim:
        ib, aapl = await _with_aapl(sim)
        sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
        entry, target, stop = ib.bracketOrder("BUY", 10, 100.02, 110.00, 95.00, tif="GTC")
        trades = [ib.placeOrder(aapl, o) for o in (entry, target, stop)]
        await eventually(lambda: trades[0].isDone() and trades[2].orderStatus.status == "Submitted")
        stop.auxPrice = 95.5  # the same day: the filled entry is known, the modify names it and passes
        ib.placeOrder(aapl, stop)
        await eventually(lambda: next(o for o in sim.orders() if o.order_id == stop.orderId).aux_price == 95.5)
        ib.disconnect()
    later = await _a_day_later(state)
    try:
        assert entry.orderId not in {o.order_id for o in later.orders()}
        ib = await connect(later)
        held = next(t for t in ib.openTrades() if t.order.orderId == stop.orderId)
        assert held.order.parentId == entry.orderId  # IB still reports the link
        errors: list[tuple[int, int, str]] = []
        ib.errorEvent += lambda req_id, code, text, *_: errors.append((req_id, code, text))

        held.order.auxPrice = 96.0
        ib.placeOrder(aapl, held.order)
        await eventually(lambda: errors, what="the modify answered")
        assert errors == [(stop.orderId, 135, f"Can't find order with id = {entry.orderId}")]
        at_sim = next(o for o in later.orders() if o.order_id == stop.orderId)
        assert (at_sim.aux_price, at_sim.status) == (95.5, "Submitted")

        held.order.parentId = 0  # ib_async took the 135 as the stop's end (as in #647): sent past its book-keeping
        ib.client.placeOrder(stop.orderId, aapl, held.order)
        await eventually(lambda: at_sim.aux_price == 96.0, what="the stop moved")
        assert at_sim.status == "Submitted"
        assert len(errors) == 1
        ib.disconnect()
    finally:
        await later.stop()


async def test_new_order_under_an_id_forgotten_overnight_then_103_duplicate_and_nothing_placed(
        tmp_path: Path) -> None:
    # The simulator forgets done orders after a day and keeps each client's highest id only: a new order under a
    # lower id it had used was taken as a new order. IB refuses a reused order id.
    state = tmp_path / "sim-state.json"
    async with SimGateway(port=0, clock=ManualClock(), state_path=state) as sim:
        ib, aapl = await _with_aapl(sim)
        await _trade_some(ib, sim, aapl)  # filled-1, then working-1 under a higher id
        reused = next(t for t in ib.trades() if t.order.orderRef == "filled-1").order.orderId
        ib.disconnect()
    later = await _a_day_later(state)
    try:
        assert [o.order_ref for o in later.orders()] == ["working-1"]
        ib = await connect(later)
        errors: list[tuple[int, int]] = []
        ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
        ib.client.placeOrder(reused, aapl, LimitOrder("BUY", 1, 90.00, orderRef="reused-1"))
        await eventually(lambda: errors, what="the order answered")
        assert errors == [(reused, 103)]
        assert [o.order_ref for o in later.orders()] == ["working-1"]
        fresh = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.00, orderRef="fresh-1"))
        await eventually(lambda: fresh.orderStatus.status == "Submitted", what="a fresh id works")
        ib.disconnect()
    finally:
        await later.stop()
