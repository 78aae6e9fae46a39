"""Helpers shared by the simulator tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import ib_async
import pytest

from tui_trader.sim import SimGateway

CLIENT_ID = 7


async def eventually(predicate: Callable[[], object], within: float = 3.0, what: str = "") -> None:
    """Wait until ``predicate()`` is truthy, polling the loop; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within}s: {what or predicate}")
        await asyncio.sleep(0.005)


async def connect(gw: SimGateway, client_id: int = CLIENT_ID, wait: float = 2.0) -> ib_async.IB:
    """A real ib_async client connected to the simulator."""
    ib = ib_async.IB()
    await ib.connectAsync(gw.host, gw.port, clientId=client_id, timeout=wait, raiseSyncErrors=True)
    return ib


async def sync(ib: ib_async.IB) -> None:
    """A round trip: when it returns, the simulator has processed every earlier request of ``ib``."""
    await ib.reqCurrentTimeAsync()
