"""Handshake, version negotiation and the connect-time synchronisation."""

from __future__ import annotations

import asyncio
import struct

import ib_async
import pytest

from tui_trader.sim import SimGateway

from .helpers import connect


async def test_connect_when_ib_async_connects_then_server_version_is_178(ib: ib_async.IB, sim: SimGateway) -> None:
    assert ib.isConnected()
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == [sim.account_id]
    assert sim.account_id.startswith("DUSIM")


async def test_connect_when_all_sync_requests_answered_then_no_sync_error(sim: SimGateway) -> None:
    # raiseSyncErrors=True turns any missing end marker (positions, open/completed orders, account
    # updates, account updates multi, executions) into a ConnectionError after the short timeout
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=9, timeout=0.5, raiseSyncErrors=True)
    assert ib.isConnected()
    assert ib.accountValues()
    ib.disconnect()


async def _raw_handshake(port: int, versions: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + struct.pack(">I", len(versions)) + versions)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(1024), 2.0)
    writer.close()
    return data


async def test_handshake_when_client_min_above_178_then_refused(sim: SimGateway) -> None:
    assert await _raw_handshake(sim.port, b"v179..200") == b""


async def test_handshake_when_range_includes_178_then_replies_two_fields(sim: SimGateway) -> None:
    data = await _raw_handshake(sim.port, b"v100..200")
    (size,) = struct.unpack(">I", data[:4])
    fields = data[4 : 4 + size].decode().split("\0")[:-1]
    assert fields[0] == "178"
    assert len(fields) == 2


@pytest.mark.allow_ib_async_faults
async def test_connect_when_client_id_in_use_then_326_and_closed(sim: SimGateway, ib: ib_async.IB) -> None:
    errors: list[int] = []
    second = ib_async.IB()
    second.errorEvent += lambda req_id, code, *_: errors.append(code)
    with pytest.raises((TimeoutError, ConnectionError)):
        await second.connectAsync(sim.host, sim.port, clientId=7, timeout=0.5)
    assert 326 in errors
    assert ib.isConnected()


async def test_connect_when_two_clients_then_both_served(sim: SimGateway, ib: ib_async.IB) -> None:
    other = await connect(sim, client_id=8)
    assert other.isConnected()
    assert ib.isConnected()
    assert set(sim.sessions) == {7, 8}
    other.disconnect()


async def test_connect_when_live_account_then_non_paper_id() -> None:
    async with SimGateway(port=0, live_account=True) as gw:
        ib = await connect(gw)
        assert ib.managedAccounts()[0].startswith("USIM")
        ib.disconnect()


async def test_current_time_when_requested_then_simulated_time(ib: ib_async.IB, sim: SimGateway) -> None:
    now = await ib.reqCurrentTimeAsync()
    assert now == sim.clock.now()
