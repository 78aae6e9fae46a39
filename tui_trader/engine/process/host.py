"""The engine process: runs the real engine and serves the console's proxy over two sockets.

Started by :class:`~tui_trader.engine.process.proxy.EngineProxy` as
``python -m tui_trader.engine.process.host CMD_FD FEED_FD`` with both sockets inherited, stdin
and stdout on ``/dev/null`` and stderr in a file: this process never writes to the terminal
(Textual owns it); it logs to ``<state_dir>/logs/engine.log``.

Commands are handled in the order they arrive, each as soon as it is read: ``kill`` runs
``engine.kill`` on receipt, before anything else is awaited. At end of the command stream (the
console quit or died) or on SIGTERM the engine stops gracefully: working orders stay at the
broker, as when the console quits with the engine in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import importlib
import inspect
import logging
import os
import pickle
import signal
import socket
import stat
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.engine.process.delta import DeltaEncoder, SnapshotDelta
from tui_trader.engine.process.wire import (
    Bootstrap,
    Call,
    CallMode,
    EngineRecipe,
    EventsForwarded,
    Fault,
    Hello,
    Reply,
    SnapshotPushed,
    Subscribe,
    encode,
    portable,
    read_frame,
)
from tui_trader.engine.runner import freeze_startup_heap  # as the headless runner: frozen heap, loop collector
from tui_trader.ops.logs import private_log_dir, private_opener

log = logging.getLogger(__name__)
EVENT_BATCH = 100
"""Events per forwarded frame: a burst (a kill cancels hundreds of orders) arrives in slices the
console unpickles between key presses, not as one long frame."""
FIRST_QUOTE_POLL_S = 0.01
"""How often, until the first quote arrives, the host looks for it (so it is on the console's screen
at its next refresh, not a push interval later)."""


def public_methods(engine: object) -> dict[str, bool]:
    """Name → is-coroutine-function for every public method of ``engine``'s class."""
    out: dict[str, bool] = {}
    for name, attr in inspect.getmembers(type(engine)):
        if not name.startswith("_") and inspect.isfunction(attr):
            out[name] = inspect.iscoroutinefunction(attr)
    return out


class EngineHost:
    """Serves one engine to one console.

    Args:
        engine: The engine (built, not started: the console's ``start`` call starts it).
        commands: Where :class:`Reply` to synchronous calls go.
        feed: Where everything else goes.
        snapshot_hz: How often a snapshot is pushed.
    """

    def __init__(self, engine: Engine, commands: asyncio.StreamWriter, feed: asyncio.StreamWriter,
                 snapshot_hz: float) -> None:
        self.engine = engine
        self.commands = commands
        self.feed = feed
        self.interval = 1.0 / snapshot_hz
        self.applied = 0
        self.deltas = DeltaEncoder()
        """Snapshots on the feed (pushes and awaited calls' replies), each against the one before."""
        self.replies = DeltaEncoder()
        """Snapshots in synchronous calls' replies on the command channel, each against the one before."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._quoted = False
        """A quote has been pushed (until then pushes also go out the moment the first one lands)."""

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Say hello, push snapshots, handle commands until the console goes away; then stop."""
        self.feed.write(encode(Hello(os.getpid(), public_methods(self.engine), self.engine.snapshot())))
        self._spawn(self._push_snapshots())
        try:
            while True:
                try:
                    message = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    log.info("the console closed the command channel: stopping the engine")
                    return
                self.handle(message)
        finally:
            for task in self._tasks:
                task.cancel()
            await self.engine.stop()

    def handle(self, message: Call | Subscribe) -> None:
        """Act on one command at once (nothing is awaited before the engine method runs)."""
        if isinstance(message, Subscribe):
            sub = self.engine.subscribe(message.name, maxsize=message.maxsize, lossless=message.lossless)
            self._spawn(self._forward(sub))
            return
        self.applied = message.id
        try:
            result = getattr(self.engine, message.name)(*message.args, **message.kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, as itself
            self._fail(message, exc)
            return
        if inspect.isawaitable(result):
            if message.mode is CallMode.SYNC:
                if inspect.iscoroutine(result):
                    result.close()
                self._fail(message, TypeError(f"engine.{message.name} is a coroutine; it was called as synchronous"))
                return
            self._spawn(self._finish(message, result))
        else:
            self._succeed(message, result)

    def _succeed(self, call: Call, value: Any) -> None:
        if call.mode is CallMode.SYNC:
            self._send_reply(Reply(call.id, True, value, self.replies.encode(self.engine.snapshot()), self.applied))
        elif call.mode is CallMode.AWAIT:
            self._send_feed(Reply(call.id, True, value, self._snapshot_unless_stopped(), self.applied))

    def _snapshot_unless_stopped(self) -> SnapshotDelta | None:
        return None if self.engine.stopping else self.deltas.encode(self.engine.snapshot())

    def _send_reply(self, message: Reply) -> None:
        """A synchronous call's answer on the command channel (its snapshot a delta against the previous answer's)."""
        self.commands.write(_frame(message, self.replies))

    def _fail(self, call: Call, error: BaseException) -> None:
        log.info("engine.%s raised %r", call.name, error)
        error = portable(error)
        if call.mode is CallMode.SYNC:
            self._send_reply(Reply(call.id, False, error, self.replies.encode(self.engine.snapshot()), self.applied))
        elif call.mode is CallMode.AWAIT:
            self._send_feed(Reply(call.id, False, error))
        else:
            self._send_feed(Fault(call.id, call.name, error))

    def _send_feed(self, message: Reply | Fault) -> None:
        self.feed.write(_frame(message, self.deltas))

    async def _finish(self, call: Call, awaitable: Awaitable[Any]) -> None:
        try:
            value = await awaitable
        except Exception as exc:  # noqa: BLE001 - returned to the caller
            self._fail(call, exc)
            return
        if call.name == "start":
            freeze_startup_heap()
        self._succeed(call, value)

    async def _push_snapshots(self) -> None:
        # Each push carries only what changed since the previous one (``delta``): pickling the
        # whole snapshot held this loop for 2–5 ms, ten times a second.
        while True:
            await self._next_push()
            self.feed.write(await self._push_frame())
            await self.feed.drain()  # a console that reads slowly slows the pushes, nothing queues

    async def _push_frame(self) -> bytes:
        """The next push, in two loop steps: the snapshot, then (after the sockets had their turn) its delta frame.

        Together they held the loop ≈ 1.2–1.8 ms at 10,000 ticks/s, ten times a second: a tick or an
        order arriving meanwhile waited that long. The snapshot is one frozen value taken in one step,
        so the push is as consistent as before, only up to one loop turn older. If an awaited call's
        reply carried a newer snapshot on the feed in between, that one is taken again instead: a
        push never shows the console a state older than what it already drew with the same ``applied``.
        """
        snap, applied, sent = self.engine.snapshot(), self.applied, self.deltas.encoded
        await after_io()
        if self.deltas.encoded != sent:
            snap, applied = self.engine.snapshot(), self.applied
        return encode(SnapshotPushed(applied, self.deltas.encode(snap)))

    async def _next_push(self) -> None:
        """Wait one interval; until the first quote, return as soon as it lands (it is pushed at once)."""
        if self._quoted:
            await asyncio.sleep(self.interval)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval
        while loop.time() < deadline:
            await asyncio.sleep(min(FIRST_QUOTE_POLL_S, max(0.0, deadline - loop.time())))
            if self.engine.market.quotes:
                self._quoted = True
                return

    async def _forward(self, sub: Subscription) -> None:
        while True:
            first = await sub.get()
            batch = (first, *sub.drain(EVENT_BATCH - 1))
            try:
                frame = encode(EventsForwarded(sub.name, batch, sub.dropped))
            except Exception:  # noqa: BLE001 - an unpicklable event is a bug: logged, counted as dropped
                log.exception("events of %s could not be forwarded", sub.name)
                sub.dropped += len(batch)
                continue
            self.feed.write(frame)
            await self.feed.drain()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine host task failed", exc_info=task.exception())


async def run(commands_fd: int, feed_fd: int) -> int:
    """Read the bootstrap, build the engine, serve until the console goes away."""
    cmd_sock, feed_sock = socket.socket(fileno=commands_fd), socket.socket(fileno=feed_fd)
    reader, commands = await asyncio.open_connection(sock=cmd_sock)
    _, feed = await asyncio.open_connection(sock=feed_sock)
    try:
        boot: Bootstrap = await read_frame(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        log.info("no bootstrap: the console did not need this engine process")  # launched early, then not used
        return 0
    redirect_stderr(Path(boot.log_dir) / "logs" / "engine.stderr.log")
    sys.path[:0] = [p for p in boot.sys_path if p not in sys.path]
    from tui_trader.ops.logs import configure_logging

    configure_logging(Path(boot.log_dir), boot.log_level, name="engine.log")
    recipe: EngineRecipe = pickle.loads(boot.recipe)
    host = EngineHost(recipe.build(), commands, feed, boot.snapshot_hz)
    serving = asyncio.ensure_future(host.serve(reader))
    with contextlib.suppress(NotImplementedError):
        # SIGTERM: stop as at end of stream (cancel the read, the finally stops the engine).
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    with contextlib.suppress(ConnectionError):
        await feed.drain()
    feed.close()
    return 0


async def after_io() -> None:
    """Return once the loop's next iteration has run its I/O callbacks (the sockets read first).

    ``asyncio.sleep(0)`` would resume this task at the front of the next iteration, ahead of what
    that iteration reads; a zero-delay timer's callback runs after it (timers are queued behind
    the I/O events of their iteration).
    """
    loop = asyncio.get_running_loop()
    turned = loop.create_future()
    loop.call_later(0, _resolve, turned)
    await turned


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled with its task (the console went away)
        future.set_result(None)


def redirect_stderr(path: Path) -> None:
    """Point stderr (fd 2, where faulthandler writes) at ``path``, moving there what it holds so far.

    The console launches this process before it knows the state directory, with stderr on an
    unlinked temporary file; only such a file is moved (and emptied), never a named one.
    """
    private_log_dir(path.parent.parent)
    sys.stderr.flush()
    fd = private_opener(str(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # the owner's only, as every log
    try:
        info = os.fstat(2)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 0:
            os.lseek(2, 0, os.SEEK_SET)
            while chunk := os.read(2, 65536):
                os.write(fd, chunk)
            os.ftruncate(2, 0)
        os.dup2(fd, 2)
    except OSError:
        log.exception("stderr could not be moved to %s", path)
    finally:
        os.close(fd)


PRELOAD = ("tui_trader.config", "tui_trader.engine.factory", "tui_trader.engine.operations", "tui_trader.broker.ib",
           "tui_trader.sim")
"""Imported before the bootstrap is read: the console launches this process first thing and sends
the bootstrap once it has loaded its settings, so these imports overlap that (and Textual's)."""


def preload() -> None:
    """Import what building and starting the engine will need (:data:`PRELOAD`; the adapter by name)."""
    for module in PRELOAD:
        importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m tui_trader.engine.process.host CMD_FD FEED_FD``."""
    args = sys.argv[1:] if argv is None else argv
    faulthandler.enable()  # to stderr: a temporary file, then engine.stderr.log (see redirect_stderr)
    preload()
    return asyncio.run(run(int(args[0]), int(args[1])))


def _frame(message: Reply | Fault, deltas: DeltaEncoder) -> bytes:
    """``message`` encoded; an unpicklable return value still answers its call (with a TypeError).

    ``deltas`` is the encoder whose delta that message carried: it never left, so the next message
    on that channel carries whole collections.
    """
    try:
        return encode(message)
    except Exception as exc:  # noqa: BLE001 - an unpicklable return value must still answer the call
        deltas.reset()
        return encode(Reply(message.id, False, portable(TypeError(f"result not picklable: {exc}"))))


if __name__ == "__main__":
    raise SystemExit(main())

