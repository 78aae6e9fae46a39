"""The simulator survives garbage from clients without crashing or corrupting other sessions.

A real ib_async client (the victim) stays connected with a quote subscription and a working order
while raw-socket clients on other connections send random bytes, broken handshakes, random frames
(hypothesis) and mutations of the victim's own real requests. After each batch the victim still gets
answers, quotes and acknowledgements, its orders are untouched, nothing reached the event loop's
exception handler, and the gateway still accepts new clients.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator

import ib_async
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_trader.sim import ManualClock, SimGateway

from .helpers import HANDSHAKE, frame, loop_errors, mutate, raw_session, start_api, victim_still_works

VICTIM_ID = 1


@pytest.fixture
async def gw() -> AsyncIterator[SimGateway]:
    """A simulator on a manual clock."""
    async with SimGateway(port=0, clock=ManualClock(), seed=3, always_open=True) as sim:
        yield sim


@pytest.fixture
async def victim(gw: SimGateway) -> AsyncIterator[tuple[ib_async.IB, ib_async.Contract, ib_async.Ticker]]:
    """A real client with a quote stream and a resting order."""
    ib = ib_async.IB()
    await ib.connectAsync(gw.host, gw.port, clientId=VICTIM_ID, timeout=5, raiseSyncErrors=True)
    (contract,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktData(contract)
    gw.control.step(1.0)
    await ib.reqPositionsAsync()
    await ib.reqExecutionsAsync()
    ib.placeOrder(contract, ib_async.LimitOrder("BUY", 5, round(gw.quote("AAPL").bid - 10, 2), orderRef="victim-0"))
    await ib.reqCurrentTimeAsync()
    yield ib, contract, ticker
    ib.disconnect()


async def new_client_connects(gw: SimGateway) -> None:
    """The gateway still accepts and serves a fresh client."""
    ib = ib_async.IB()
    await ib.connectAsync(gw.host, gw.port, clientId=99, timeout=5)
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    ib.disconnect()


async def test_raw_bytes_when_sent_before_or_instead_of_a_handshake_then_other_sessions_survive(
        gw: SimGateway, victim: tuple[ib_async.IB, ib_async.Contract, ib_async.Ticker]) -> None:
    rng = random.Random(20260301)
    attacks = [
        b"", b"\0" * 64, b"API\0", b"API\0" + struct.pack(">I", 2**31) + b"v1", b"GET / HTTP/1.1\r\n\r\n",
        HANDSHAKE[:-3], b"API\0" + struct.pack(">I", 9) + b"v999..999", b"API\0" + struct.pack(">I", 5) + b"vx..y",
        HANDSHAKE + struct.pack(">I", 2**30),  # a frame announcing a gigabyte
        HANDSHAKE + frame(["71"]), HANDSHAKE + frame(["x", "y", "z"]), HANDSHAKE + frame([]),
        HANDSHAKE + b"\xff\xfe" * 40, HANDSHAKE + struct.pack(">I", 4) + b"\xff\xfe\xfd\xfc",
    ] + [bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))) for _ in range(40)]
    with loop_errors() as errors:
        for data in attacks:
            await raw_session(gw, data, client_id=None)
        await victim_still_works(gw, *victim)
        await new_client_connects(gw)
    assert not errors.contexts, errors.messages()


async def test_mutated_real_requests_when_sent_by_other_clients_then_victim_is_untouched(
        gw: SimGateway, victim: tuple[ib_async.IB, ib_async.Contract, ib_async.Ticker]) -> None:
    corpus = [fields for cid, fields in gw.received_frames if cid == VICTIM_ID and fields]
    assert len(corpus) >= 5, "the victim's requests are the seed corpus"
    rng = random.Random(20260302)
    with loop_errors() as errors:
        for batch in range(20):
            data = b"".join(frame(mutate(rng.choice(corpus), rng)) for _ in range(100))
            await raw_session(gw, data, client_id=100 + batch)
        await raw_session(gw, frame(["4", "1", "1", ""]), client_id=VICTIM_ID)  # the victim's id: refused (326)
        await victim_still_works(gw, *victim)
        await new_client_connects(gw)
    assert not errors.contexts, errors.messages()


field_text = st.one_of(st.integers(-(2**40), 2**40).map(str), st.floats(allow_nan=True).map(str),
                       st.text(max_size=40), st.sampled_from(["", "0", "-1", "1.7976931348623157E308"]))
message_id = st.one_of(st.integers(0, 110).filter(lambda n: n != 58).map(str), st.text(max_size=5))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.tuples(message_id, st.lists(field_text, max_size=30)), min_size=1, max_size=20))
def test_random_frames_when_sent_after_a_handshake_then_gateway_and_victim_survive(
        frames: list[tuple[str, list[str]]]) -> None:
    async def scenario() -> None:
        async with SimGateway(port=0, clock=ManualClock(), seed=3, always_open=True) as sim:
            ib = ib_async.IB()
            await ib.connectAsync(sim.host, sim.port, clientId=VICTIM_ID, timeout=5)
            (contract,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
            ticker = ib.reqMktData(contract)
            with loop_errors() as errors:
                data = b"".join(frame([mid, *rest]) for mid, rest in frames)
                await raw_session(sim, data, client_id=7)
                await raw_session(sim, start_api(8)[4:], client_id=None)  # a frame where the handshake belongs
                await victim_still_works(sim, ib, contract, ticker)
            ib.disconnect()
            assert not errors.contexts, errors.messages()

    asyncio.run(scenario())
