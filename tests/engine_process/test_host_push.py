"""The engine process's snapshot push: spread over two loop steps, never older than what the feed already carried."""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from engine.helpers import make_config

from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.engine.process.delta import DeltaDecoder
from tui_trader.engine.process.host import EngineHost, after_io
from tui_trader.engine.process.wire import Call, CallMode, Reply, SnapshotPushed, read_frame


async def test_after_io_when_a_socket_has_data_then_its_read_runs_before_the_caller_resumes() -> None:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    seen: list[str] = []
    loop.add_reader(b, lambda: seen.append(f"read {b.recv(16)!r}"))
    try:
        a.send(b"tick")  # readable from the loop's next iteration on
        await after_io()
        seen.append("resumed")
        assert seen == ["read b'tick'", "resumed"]  # asyncio.sleep(0) resumes ahead of the read
    finally:
        loop.remove_reader(b)
        a.close()
        b.close()


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[tuple[EngineHost, asyncio.StreamReader]]:
    """A host around an engine that is built, not started, over real socket pairs; the console's end of the feed."""
    engine = Engine(make_config(tmp_path), make_broker("127.0.0.1", 9, 1, timeout=1.0))
    cmd_here, cmd_there = socket.socketpair()
    feed_here, feed_there = socket.socketpair()
    _, commands = await asyncio.open_connection(sock=cmd_here)
    _, feed = await asyncio.open_connection(sock=feed_here)
    console, _ = await asyncio.open_connection(sock=feed_there)
    yield EngineHost(engine, commands, feed, snapshot_hz=10), console
    for writer in (commands, feed):
        writer.close()
    cmd_there.close()


async def test_push_when_an_awaited_reply_overtakes_it_then_it_is_retaken_not_older(
    host: tuple[EngineHost, asyncio.StreamReader],
) -> None:
    engine_host, console = host
    engine = engine_host.engine
    push = asyncio.create_task(engine_host._push_frame())  # noqa: SLF001 - one push, as _push_snapshots sends it
    await asyncio.sleep(0)  # its first step: the snapshot is taken
    later = datetime(2030, 1, 2, tzinfo=UTC)
    engine.heartbeat_at = later  # the engine moves on ...
    engine_host._succeed(Call(1, "tick", (), {}, CallMode.AWAIT), None)  # noqa: SLF001 - ... an awaited reply says so
    frame = await push
    decoder = DeltaDecoder()
    reply: Reply = await read_frame(console)
    assert reply.snapshot is not None
    assert decoder.decode(reply.snapshot).heartbeat_at == later
    pushed: SnapshotPushed = pickle.loads(frame[4:])
    assert decoder.decode(pushed.delta).heartbeat_at == later  # not the snapshot taken before the reply


async def test_push_when_nothing_overtakes_it_then_it_carries_the_snapshot_of_its_first_step(
    host: tuple[EngineHost, asyncio.StreamReader],
) -> None:
    engine_host, _ = host
    engine = engine_host.engine
    push = asyncio.create_task(engine_host._push_frame())  # noqa: SLF001
    await asyncio.sleep(0)
    taken = engine.heartbeat_at
    engine.heartbeat_at = datetime(2030, 1, 2, tzinfo=UTC)  # after the snapshot: not in this push
    pushed: SnapshotPushed = pickle.loads((await push)[4:])
    assert DeltaDecoder().decode(pushed.delta).heartbeat_at == taken
