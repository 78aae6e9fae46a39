"""What the console and the engine process say to each other, and how it is framed.

Every message is a frozen dataclass, pickled, behind a 4-byte big-endian length. The two
processes are the same program from the same install, on a private socket pair, so pickle is
the honest codec: every value that crosses :class:`~tui_trader.engine.handle.EngineHandle`
(tickets, orders, verdicts, snapshots, events, exceptions) crosses unchanged.

Two channels:

- **commands** (console → engine): :class:`Call` and :class:`Subscribe`. The engine answers a
  synchronous call on this channel (:class:`Reply`), so the console can block on the answer.
- **feed** (engine → console): :class:`Hello`, :class:`SnapshotPushed`, :class:`EventsForwarded`,
  the :class:`Reply` of every awaited call and :class:`Fault` for calls nobody waits on.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tui_trader.domain.events import Event
from tui_trader.engine.process.delta import SnapshotDelta
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.errors import TraderError

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.engine.engine import Engine

HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024
"""A frame longer than this is corruption, not a message."""


class CallMode(StrEnum):
    """How the console waits for a call's outcome."""

    SYNC = "sync"
    """The console blocks until the :class:`Reply` arrives on the command channel."""
    AWAIT = "await"
    """The console awaits the :class:`Reply`, which arrives on the feed."""
    POST = "post"
    """Nobody waits (``kill``): only a failure comes back, as a :class:`Fault` on the feed."""


@dataclass(frozen=True, slots=True)
class Call:
    """Call ``engine.<name>(*args, **kwargs)`` in the engine process."""

    id: int
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    mode: CallMode


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Open a bus subscription in the engine process and forward its events."""

    name: str
    maxsize: int
    lossless: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of a :class:`Call`: its return value, or the exception it raised."""

    id: int
    ok: bool
    value: Any
    snapshot: SnapshotDelta | None = None
    """The state right after the call, so the console redraws the truth at once (a delta, see ``delta``)."""
    applied: int = 0
    """The id of the last :class:`Call` the engine had dispatched when it took ``snapshot``."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A posted call (``kill``) raised in the engine process."""

    id: int
    name: str
    error: BaseException


@dataclass(frozen=True, slots=True)
class Hello:
    """The engine process is up and its engine built (not started yet)."""

    pid: int
    methods: dict[str, bool]
    """Public methods of the engine: name → whether it is a coroutine function."""
    snapshot: EngineSnapshot


@dataclass(frozen=True, slots=True)
class SnapshotPushed:
    """The latest snapshot, pushed at the console's refresh rate, as a delta against the previous push.

    See :mod:`~tui_trader.engine.process.delta`: the proxy assembles the complete snapshot.
    """

    applied: int
    """The id of the last :class:`Call` the engine had dispatched when it took the snapshot."""
    delta: SnapshotDelta


@dataclass(frozen=True, slots=True)
class EventsForwarded:
    """A batch from one bus subscription, oldest first, with its drop count so far."""

    name: str
    events: tuple[Event, ...]
    dropped: int


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """The first frame on the command channel: how the engine process sets itself up.

    Only builtins at the top level: ``recipe`` (a pickled :class:`EngineRecipe`) is loaded after
    ``sys_path`` is in place, so factories from the console's import path resolve.
    """

    sys_path: list[str]
    log_dir: str
    log_level: str
    snapshot_hz: float
    recipe: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class EngineRecipe:
    """How the engine process builds its engine: ``factory(settings)``.

    The console uses :func:`~tui_trader.engine.factory.create_engine` (the embedded simulator
    for ``--sim`` included); tests and benchmarks pass their own module-level factory.
    """

    settings: Settings
    factory: Callable[[Settings], Engine] | None = None

    def build(self) -> Engine:
        """The engine, not started."""
        if self.factory is not None:
            return self.factory(self.settings)
        from tui_trader.engine.factory import create_engine

        return create_engine(self.settings)


class RemoteError(TraderError):
    """An exception from the engine process that could not be sent as itself (not picklable)."""

    title = "Engine error"


def encode(message: object) -> bytes:
    """One frame: the length, then the pickle."""
    body = pickle.dumps(message, protocol=5)
    return HEADER.pack(len(body)) + body


def portable(error: BaseException) -> BaseException:
    """``error`` itself when it survives a pickle round trip, else a :class:`RemoteError` naming it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to pickle means: send a description instead
        return RemoteError(f"{type(error).__name__}: {error}")
    return error


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message; ``asyncio.IncompleteReadError`` at end of stream."""
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes: the stream is corrupt")
    return pickle.loads(await reader.readexactly(size))


class FrameReceiver:
    """Reads frames from a blocking socket; a frame cut by a timeout is completed by the next call."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def receive(self, sock: socket.socket, deadline: float) -> Any:
        """The next message, waiting until ``deadline`` (``time.monotonic``).

        Raises:
            TimeoutError: Nothing complete by the deadline (what arrived is kept).
            EOFError: The other end closed the channel.
        """
        while (message := self._pop()) is None:
            sock.settimeout(max(deadline - time.monotonic(), 0.0005))
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise EOFError("the engine process closed the command channel")
            self._buffer += chunk
        return message

    def _pop(self) -> Any:
        if len(self._buffer) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self._buffer)
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes: the stream is corrupt")
        end = HEADER.size + size
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[HEADER.size:end])
        del self._buffer[:end]
        return pickle.loads(body)
