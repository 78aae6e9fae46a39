"""Faults on demand: sessions dropped, connections refused, error codes, pacing, message faults, stalls."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import ib_async
import pytest
from ib_async import LimitOrder, MarketOrder

from tui_trader.sim import SimGateway
from tui_trader.sim.control_port import execute, serve_control

from .helpers import connect, eventually, sync


async def test_drop_sessions_when_one_client_then_only_it_disconnects(ib: ib_async.IB, sim: SimGateway) -> None:
    other = await connect(sim, client_id=8)
    sim.control.drop_sessions(client_id=8)
    await eventually(lambda: not other.isConnected())
    assert ib.isConnected()
    sim.control.drop_sessions()
    await eventually(lambda: not ib.isConnected())
    again = await connect(sim)
    assert again.isConnected()
    again.disconnect()


@pytest.mark.allow_ib_async_faults
async def test_refuse_connections_when_window_passes_then_connects(sim: SimGateway) -> None:
    sim.control.refuse_connections(30)
    with pytest.raises((TimeoutError, ConnectionError)):
        await connect(sim, wait=0.3)
    sim.control.step(30)
    ib = await connect(sim)
    assert ib.isConnected()
    ib.disconnect()


@pytest.mark.parametrize("code", [1100, 1101, 1102, 2103, 2105, 2157, 2158])
async def test_send_error_when_connectivity_code_then_client_receives_it(
    ib: ib_async.IB, sim: SimGateway, code: int
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    sim.control.send_error(code)
    await eventually(lambda: code in errors)


@pytest.mark.parametrize("lost", [1100, 2110])
async def test_ib_link_lost_then_each_client_that_connects_is_told_until_it_is_back(
    ib: ib_async.IB, sim: SimGateway, lost: int
) -> None:
    # TWS keeps saying 1100 to a client that connects while IB is unreachable; the simulator told only the sessions
    # of the moment, so a client that reconnected at once read the link as back.
    sim.control.send_error(lost)
    told_while_lost = await _errors_at_connect(sim, client_id=8)
    sim.control.connectivity_restored()
    told_after = await _errors_at_connect(sim, client_id=9)
    assert lost in told_while_lost
    assert lost not in told_after


async def _errors_at_connect(sim: SimGateway, client_id: int) -> list[int]:
    client = ib_async.IB()
    errors: list[int] = []
    client.errorEvent += lambda req_id, code, *_: errors.append(code)
    await client.connectAsync(sim.host, sim.port, clientId=client_id, timeout=2.0)
    await sync(client)  # the connect's own messages are in
    client.disconnect()
    return errors


async def test_server_link_broken_then_the_client_hears_ibs_2110_and_the_control_port_sends_it(
    ib: ib_async.IB, sim: SimGateway
) -> None:
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, c, text, *_: errors.append((c, text))
    sim.control.server_link_broken()
    await eventually(lambda: errors)
    assert errors == [(2110, "Connectivity between Trader Workstation and server is broken. "
                              "It will be restored automatically.")]
    assert execute(sim.control, "server_link_broken") == "ok"
    await eventually(lambda: len(errors) == 2)


async def test_pacing_when_rate_exceeded_then_error_162(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    sim.control.set_pacing(2, per_seconds=60)
    for _ in range(2):
        assert await ib.reqHistoricalDataAsync(aapl, "", "600 S", "1 min", "TRADES", True)
    assert not await ib.reqHistoricalDataAsync(aapl, "", "600 S", "1 min", "TRADES", True)
    assert errors == [162]
    sim.control.step(60)
    assert await ib.reqHistoricalDataAsync(aapl, "", "600 S", "1 min", "TRADES", True)


async def test_reject_next_when_set_then_next_order_rejected_with_code(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    sim.control.reject_next(201, "Order rejected - reason:Simulated margin check")
    first = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.00))
    second = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.00))
    await eventually(lambda: first.orderStatus.status == "Cancelled" and second.orderStatus.status == "Submitted")
    assert errors == [201]


async def test_reject_next_with_a_count_on_the_control_port_then_that_many_orders_rejected(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    # The count was Control's only: on the port, "reject_next 201 2 …" rejected one order, its reason "2 …".
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, c, text, *_: errors.append((c, text))
    async with _control_port(sim) as command:
        assert await command("reject_next 201 2 Order rejected - reason:Simulated margin") == "ok"
        trades = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.00)) for _ in range(3)]
        await eventually(lambda: [t.orderStatus.status for t in trades] == ["Cancelled", "Cancelled", "Submitted"])
        assert errors == [(201, "Order rejected - reason:Simulated margin")] * 2
        assert await command("reject_next 201 0") == "error count must be at least 1"
        # Without a count (a reason's first word is not one), one order, as before the count.
        assert await command("reject_next 201 Order rejected - reason:No count") == "ok"
        more = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.00)) for _ in range(2)]
        await eventually(lambda: [t.orderStatus.status for t in more] == ["Cancelled", "Submitted"])
        assert errors[2:] == [(201, "Order rejected - reason:No count")]


@asynccontextmanager
async def _control_port(sim: SimGateway) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """The simulator's real control port, connected: send one command line, get its reply line."""
    server = await serve_control(sim.control, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])

    async def command(line: str) -> str:
        writer.write(f"{line}\n".encode())
        return (await reader.readline()).decode().rstrip("\n")

    try:
        yield command
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def test_refuse_next_modify_with_a_count_on_the_control_port_then_that_many_refused(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    # The count was Control's only: on the port, "refuse_next_modify 2102 2 mine" was an error ("2" read as the ref,
    # "mine" as a permanent id), and no command refused more than one modification.
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    order = LimitOrder("BUY", 1, 50.00, orderRef="mine")
    trade = ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    (held,) = sim.orders()
    async with _control_port(sim) as command:
        assert await command("refuse_next_modify 2102 2 mine") == "ok"
        for price in (51.00, 52.00, 53.00):
            order.lmtPrice = price
            ib.placeOrder(aapl, order)
            await sync(ib)
            trade.orderStatus.status = "Submitted"  # ib_async took the error for the order's end
        assert (errors, held.lmt_price) == ([2102, 2102], 53.00)
        # Without a count (the ref's first word is not one), one modification, as before the count.
        assert await command("refuse_next_modify 201 mine") == "ok"
        for price in (54.00, 55.00):
            order.lmtPrice = price
            ib.placeOrder(aapl, order)
            await sync(ib)
            trade.orderStatus.status = "Submitted"
        assert (errors, held.lmt_price) == ([2102, 2102, 201], 55.00)
        assert await command("refuse_next_modify 201 0") == "error count must be at least 1"


@pytest.mark.parametrize("command_name", ["ignore_cancels", "ignore_global_cancel"])
async def test_ignore_cancels_on_the_control_port_when_on_then_a_cancel_is_left_unanswered_until_off(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract, command_name: str
) -> None:
    # Control's ignore_cancels and ignore_global_cancel had no command on the port: a standalone simulator could not
    # play a lost cancel, nor a kill whose global cancel the broker never acts on.
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.00))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    (held,) = sim.orders()

    def cancel() -> None:
        if command_name == "ignore_cancels":
            ib.cancelOrder(trade.order)
        else:
            ib.reqGlobalCancel()

    async with _control_port(sim) as command:
        assert await command(command_name) == "ok"
        cancel()
        await sync(ib)
        assert held.status == "Submitted"
        assert await command(f"{command_name} off") == "ok"
        cancel()
        await eventually(lambda: trade.orderStatus.status == "Cancelled")


async def test_refuse_next_modify_when_set_then_that_modify_refused_and_the_order_works_on_as_it_was(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    order = LimitOrder("BUY", 1, 50.00, orderRef="mine")
    trade = ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.refuse_next_modify(201, "Order rejected - reason:Simulated", order_ref="mine")
    order.lmtPrice = 51.00
    ib.placeOrder(aapl, order)
    await eventually(lambda: errors == [(order.orderId, 201)])
    (held,) = sim.orders()
    assert (held.status, held.lmt_price) == ("Submitted", 50.00)
    trade.orderStatus.status = "Submitted"  # ib_async took the error for the order's end
    ib.placeOrder(aapl, order)  # the fault was for one modification
    await eventually(lambda: held.lmt_price == 51.00)
    assert errors == [(order.orderId, 201)]


async def test_refuse_next_modify_of_a_permanent_id_when_two_orders_share_the_ref_then_only_that_one_refused(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    first, second = LimitOrder("BUY", 1, 50.00, orderRef="mine"), LimitOrder("BUY", 2, 49.00, orderRef="mine")
    trades = [ib.placeOrder(aapl, order) for order in (first, second)]
    await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    sim.control.refuse_next_modify(201, "Order rejected - reason:Simulated", order_ref="mine",
                                   perm_id=second.permId)
    first.lmtPrice, second.lmtPrice = 51.00, 48.00
    ib.placeOrder(aapl, first)
    ib.placeOrder(aapl, second)
    await eventually(lambda: errors == [(second.orderId, 201)])
    held = {o.perm_id: o.lmt_price for o in sim.orders()}
    assert held == {first.permId: 51.00, second.permId: 49.00}


async def test_drop_messages_when_commission_dropped_then_fill_lacks_report(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.drop_messages("commission", 1)
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    first = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    second = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await eventually(lambda: second.fills and second.fills[0].commissionReport.execId)
    assert first.isDone()
    assert first.fills[0].commissionReport.execId == ""


async def test_delay_messages_when_order_status_late_then_arrives_after_step(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    sim.control.delay_messages("order_status", 3)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await eventually(lambda: bool(trade.fills))
    await sync(ib)
    assert trade.orderStatus.status != "Filled"
    sim.control.step(3)
    await eventually(lambda: trade.orderStatus.status == "Filled")


async def test_fill_sequence_when_commission_first_then_client_drops_early_report(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.fill_sequence("commission", "execution", "order_status")
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await eventually(trade.isDone)
    # ib_async 2.1.0 ignores a commission report for an execution it has not seen yet
    assert trade.fills[0].commissionReport.execId == ""
    assert sim.executions()[0].commission > 0


async def test_stall_market_data_when_on_then_no_ticks_until_resumed(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await eventually(lambda: not math.isnan(ticker.last))
    sim.control.stall_market_data(True)
    sim.control.set_price("AAPL", 150.00)
    sim.control.step(2)
    await sync(ib)
    assert ticker.last != 150.0
    assert ib.isConnected()
    sim.control.stall_market_data(False)
    sim.control.set_price("AAPL", 151.00)
    await eventually(lambda: ticker.last == 151.0)


async def test_halt_when_set_then_subscribers_see_halted_tick(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await sync(ib)
    sim.control.halt("AAPL")
    await eventually(lambda: ticker.halted == 1.0)
    sim.control.resume("AAPL")
    await eventually(lambda: ticker.halted == 0.0)


async def test_subscribe_then_the_halted_tick_follows_the_prices_and_a_held_one_comes_late(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    # Arrange
    (msft,) = await ib.qualifyContractsAsync(ib_async.Stock("MSFT", "SMART", "USD"))
    sim.control.halt("AAPL")
    sim.control.delay_messages("halted", 10)

    # Act
    halted = ib.reqMktData(aapl)
    await eventually(lambda: halted.bid > 0)
    await sync(ib)

    # Assert: the prices without the halted tick, which comes as it is let go; a symbol not halted gets 0.
    assert math.isnan(halted.halted)
    sim.control.step(10)
    await eventually(lambda: halted.halted == 1.0)
    sim.control.delay_messages("halted", 0)
    trading = ib.reqMktData(msft)
    await eventually(lambda: trading.halted == 0.0)


async def test_clear_faults_when_called_then_healthy(ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract) -> None:
    sim.control.stall_market_data(True)
    sim.control.deny_market_data("AAPL")
    sim.control.clear_faults()
    (ticker,) = await ib.reqTickersAsync(aapl)
    assert ticker.bid > 0
