"""EngineProxy: the :class:`~tui_trader.engine.handle.EngineHandle` of an engine in a child process.

The console holds the proxy; the engine runs in ``python -m tui_trader.engine.process.host``
(see :mod:`tui_trader.engine.process`). Rendering then never delays the engine: they no longer
share a loop, nor a GIL.

- **Calls** are forwarded generically (method name and arguments), so every handle method
  works, including ones added later, provided its arguments and result pickle. Coroutine
  methods are awaited across the process boundary; synchronous ones (``preview``, ``arm``,
  ``reset_kill``, ``approve`` …) block the console on the answer for at most
  :attr:`EngineProxy.call_timeout_s` — the engine answers them as soon as it reads them, so
  that is the engine loop's lag, a few milliseconds. Exceptions re-raise with their own type.
- **Ctrl+K**: :meth:`EngineProxy.kill` writes one message and returns; the snapshot it serves
  says HALTED from that instant. With the engine process gone it falls back to the
  out-of-band kill (:mod:`tui_trader.ops.kill`): the latch in the journal, then a global cancel
  with the kill's own client id. So does a kill the engine process never took: it is declared
  hung after :attr:`EngineProxy.kill_timeout_s`, or it died first.
- **Snapshots** are pushed by the engine process at the console's refresh rate, each as a delta
  against the previous push (:mod:`~tui_trader.engine.process.delta`); the proxy assembles
  them, and :meth:`EngineProxy.snapshot` returns the latest complete one without waiting.
- **Events**: :meth:`EngineProxy.subscribe` returns a local queue fed from the engine's bus
  subscription of the same name (lossy, bounded, drops counted on both sides).
- **Failure**: when the process exits or stops answering (no frame for
  :attr:`EngineProxy.stall_s`), the proxy kills it, fails pending calls and the subscriptions
  with :class:`EngineProcessDied` (the console's bridge worker fails, so its crash handling
  runs: the kill switch, a critical alert, the error modal) and serves a snapshot that says
  DISCONNECTED with the reason, never the last numbers as live.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import itertools
import logging
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tui_trader.domain.enums import Mode
from tui_trader.domain.events import KillChecked
from tui_trader.engine.bus import Subscription
from tui_trader.engine.handle import EngineHandle
from tui_trader.engine.process import views
from tui_trader.engine.process.delta import DeltaDecoder
from tui_trader.engine.process.launch import Launched, launch
from tui_trader.engine.process.subscription import RemoteSubscription
from tui_trader.engine.process.wire import (
    Bootstrap,
    Call,
    CallMode,
    EngineRecipe,
    EventsForwarded,
    Fault,
    FrameReceiver,
    Hello,
    Reply,
    SnapshotPushed,
    Subscribe,
    encode,
    read_frame,
)
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.errors import EngineDiedInFlight, EngineNotAnswering, EngineProcessDied
from tui_trader.ops.logs import private_log_dir

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.ops.kill import CancelReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentKill:
    """A kill written to the engine process: until a snapshot's ``applied`` reaches ``id``, it may not have run."""

    id: int
    reason: str
    by: str
    cancel: bool
    """Whether its out-of-band stand-in cancels (an operator's kill) or only latches (see :meth:`EngineProxy.kill`)."""
    sent_at: float
    """``time.monotonic()`` when it was written."""


class EngineProxy:
    """The engine in a child process, behind the :class:`EngineHandle` surface.

    Build it with :meth:`spawn`. Every handle method not defined here is forwarded by
    :meth:`__getattr__` (see the module docstring).

    Args:
        recipe: How the child builds its engine (the settings also describe the gateway and
            journal for the out-of-band kill fallback).
        process: The child.
        commands: The console's end of the command channel.
        feed: The console's end of the feed.
    """

    call_timeout_s = 2.0
    """Longest wait for the answer to a synchronous call (the console is blocked meanwhile)."""
    hello_timeout_s = 60.0
    """Longest wait for the engine process to come up (imports on a loaded machine)."""
    stall_s = 15.0
    """No frame for this long (snapshots come several times a second) and the process is declared hung."""
    kill_timeout_s = 3.0
    """A kill the engine has not taken within this long (its next push says it has, a fraction of a second
    later) and the process is declared hung, so the kill runs out of band: Ctrl+K on a hung engine
    acts when the console says STALLED (a heartbeat 3 s old), not after the whole :attr:`stall_s`."""
    exit_timeout_s = 15.0
    """How long a stopping engine may take before its process is terminated."""
    fallback_exit_timeout_s = 30.0
    """Longest wait in :meth:`close` for an out-of-band kill the console's exit cut short (its connect and
    verification are bounded by the settings' timeouts, 5 and 10 s by default)."""

    def __init__(self, recipe: EngineRecipe, process: subprocess.Popen[bytes], commands: socket.socket,
                 feed: socket.socket) -> None:
        self.settings: Settings = recipe.settings
        self.process = process
        self.pid = process.pid
        self._commands = commands
        self._commands.settimeout(self.call_timeout_s)
        self._feed_sock: socket.socket | None = feed
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[tuple[Reply, EngineSnapshot | None]]] = {}
        """Awaited calls: the reply and its snapshot, assembled."""
        self._subs: dict[str, RemoteSubscription] = {}
        self._methods: dict[str, bool] = {}
        self._replies = FrameReceiver()
        self._hello = asyncio.Event()
        self._down = asyncio.Event()
        self._connected = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._latest = self._placeholder()
        self._deltas = DeltaDecoder()
        self._reply_deltas = DeltaDecoder()
        self._applied = 0
        self._kill: SentKill | None = None
        """The last kill sent to the engine process (applied once a snapshot's ``applied`` reaches its id)."""
        self._last_frame = time.monotonic()
        self._closing = False
        self._failing = False
        self.failure: EngineProcessDied | None = None
        self.fallback: asyncio.Task[str] | None = None
        self.fallback_outcome = ""
        self._fallback_asked: tuple[str, str, bool] | None = None
        """The reason, who and whether it cancels, of the out-of-band kill :attr:`fallback` runs."""
        self._early_subs: dict[str, RemoteSubscription] = {}
        """Subscriptions :meth:`spawn` opened, until :meth:`subscribe` hands them out."""
        self._early_start: int | None = None
        """The id of the start call :meth:`spawn` sent, until the feed is connected."""
        self._early_reply: asyncio.Future[tuple[Reply, EngineSnapshot | None]] | None = None
        """Where the answer to that start call lands once the feed is read (:meth:`start` awaits it)."""
        self._launched: Launched | None = None
        """How the process was launched (its stderr until it opened its log: kept when it ends)."""

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def spawn(cls, recipe: EngineRecipe, *, snapshot_hz: float | None = None, start: bool = False,
              subscriptions: tuple[tuple[str, int, bool], ...] = (), launched: Launched | None = None) -> EngineProxy:
        """Start the engine process (it builds its engine at once; :meth:`start` starts it).

        Args:
            recipe: How the child builds its engine.
            snapshot_hz: Snapshot pushes per second (the console's refresh rate by default).
            start: Ask the child to start its engine as soon as it is built, without waiting for
                :meth:`start` (which then waits for that start to finish). The console spawns
                this way before importing its UI, so the engine connects while the console loads.
            subscriptions: ``(name, maxsize, lossless)`` subscriptions opened before that start, so
                no event of the start is missed; :meth:`subscribe` with the same name returns it.
            launched: The process, if :func:`~tui_trader.engine.process.launch.launch` started it
                before the settings were known (it has been importing meanwhile).
        """
        settings = recipe.settings
        log_dir = private_log_dir(settings.state_dir)
        launched = launched or launch()
        process, ours, feed_ours = launched.process, launched.commands, launched.feed
        boot = Bootstrap(list(sys.path), str(settings.state_dir), settings.log_level,
                         snapshot_hz or settings.ui.refresh_hz, pickle.dumps(recipe))
        try:
            ours.sendall(encode(boot))
        except OSError:  # the child died while importing: its own words are in its stderr
            launched.keep_stderr(log_dir / "engine.stderr.log")
            raise
        log.info("engine process %d started", process.pid)
        proxy = cls(recipe, process, ours, feed_ours)
        proxy._launched = launched
        for name, maxsize, lossless in subscriptions:
            proxy._early_subs[name] = proxy._open(name, maxsize, lossless)
        if start:
            call = Call(next(proxy._ids), "start", (), {}, CallMode.AWAIT)
            proxy._send(call)  # read by the child right after its hello: it starts without waiting for us
            proxy._early_start = call.id
        return proxy

    async def start(self) -> None:
        """Wait for the engine process to come up, then start its engine (connect, restore, reconcile).

        If :meth:`spawn` already asked for the start, this waits for that one to finish.
        """
        self._connect_feed()
        early, self._early_reply = self._early_reply, None
        if not await first_of(self._hello, self._down, timeout=self.hello_timeout_s):
            await self._declare_down(f"the engine process did not come up within {self.hello_timeout_s:g}s",
                                     hung=True)
        self._raise_if_down()
        if early is None:
            await self._call_async("start", (), {}, lifecycle=True)
            return
        reply, snapshot = await early
        if snapshot is not None:
            self._take(reply.applied, snapshot)
        if not reply.ok:
            raise reply.value

    async def stop(self) -> None:
        """Stop the engine (working orders stay at the broker), then let its process exit.

        An out-of-band kill under way finishes first: quitting right after Ctrl+K must not cut
        it short (the console's loop ends with this, and its global cancel with it).
        """
        if self.failure is None and self._connected:
            await self._call_async("stop", (), {}, lifecycle=True)
        if self.fallback is not None:
            await asyncio.wait((self.fallback,))
        self._closing = True
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """End the engine process: close the channels (it stops its engine and exits), wait, then terminate.

        Safe to call more than once and outside any event loop (``run_console`` calls it last).
        An out-of-band kill the console's exit cut short is run to its end first.
        """
        self._closing = True
        self._finish_out_of_band()
        for task in self._tasks:
            with contextlib.suppress(RuntimeError):  # the loop may be gone already (after app.run)
                task.cancel()
        with contextlib.suppress(OSError):
            self._commands.close()
        if self._feed_sock is not None:
            with contextlib.suppress(OSError):
                self._feed_sock.close()
        try:
            self.process.wait(self.exit_timeout_s)
        except subprocess.TimeoutExpired:
            log.error("engine process %d did not exit within %ss: terminating it", self.pid, self.exit_timeout_s)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._keep_stderr()

    def _finish_out_of_band(self) -> None:
        """Run again the out-of-band kill that the end of the console's loop cancelled (bounded).

        The console exiting by another path than quit (Ctrl+Q, a signal, an exception) ends its
        loop without :meth:`stop`, and the loop's end cancels the kill under way: the latch or
        the global cancel the operator asked for would be lost. Both are safe to repeat.
        """
        task, asked = self.fallback, self._fallback_asked
        cut_short = task is not None and (task.cancelled() or (not task.done() and task.get_loop().is_closed()))
        if not cut_short or asked is None:
            return
        self._fallback_asked = None
        reason, by, cancel = asked
        log.warning("the console exited during the out-of-band kill: running it again before the console ends")
        try:
            outcome = asyncio.run(asyncio.wait_for(out_of_band(self.settings, reason, by, cancel=cancel),
                                                   self.fallback_exit_timeout_s))
        except Exception as exc:  # the console is ending: say it in the log, the only place left
            log.critical("out-of-band kill failed on exit: %r", exc)
            self.fallback_outcome = f"out-of-band kill failed: {exc!r}"
        else:
            self.fallback_outcome = f"out-of-band kill: {outcome}"

    def _keep_stderr(self) -> None:
        """What the child wrote before it opened its own stderr log (an import failure) goes to that log."""
        if self._launched is not None:
            self._launched.keep_stderr(self.settings.state_dir / "logs" / "engine.stderr.log")

    def _placeholder(self) -> EngineSnapshot:
        s = self.settings
        host, port = (s.sim.host, s.sim.port) if s.mode is Mode.SIM else (s.broker.host, s.broker_port)
        return views.starting(s.mode, s.dry_run, host, port, s.broker.client_id)

    # -- the handle ----------------------------------------------------------------------------

    def kill(self, reason: str, by: str = "operator", *, operator: bool = True) -> None:
        """Engage the kill switch: one message to the engine; HALTED in :meth:`snapshot` at once.

        With the engine process gone, the out-of-band kill runs instead: the latch in the journal,
        then, when an ``operator`` engaged it, a global cancel with the kill's own client id. A
        kill the console engages by itself (``operator=False``: its crash handling, when the engine
        process died) only latches: with the engine gone, the protective stops held at the
        broker are what guard the positions, and a global cancel would remove them along with
        every other client's orders. Ctrl+K after that still cancels.
        """
        if self.failure is None:
            call = Call(next(self._ids), "kill", (reason, by), {}, CallMode.POST)
            try:
                self._send(call)
            except EngineProcessDied as exc:
                log.error("kill could not be sent to the engine process: %r", exc)
            else:
                self._kill = SentKill(call.id, reason, by, operator, time.monotonic())
                self._latest = views.halted(self._latest, reason, by)
                return
        self._kill_out_of_band(reason, by, cancel=operator)

    def snapshot(self) -> EngineSnapshot:
        """The latest snapshot received (HALTED at once after :meth:`kill`; DISCONNECTED once the process is gone)."""
        return self._latest

    def subscribe(self, name: str, *, maxsize: int = 10_000, lossless: bool = False) -> Subscription:
        """A local queue fed by the engine's bus subscription ``name`` (opened in the engine process).

        The first call with the name of a subscription :meth:`spawn` opened returns that one (its
        size and kind as opened there), with every event since the engine began starting.
        """
        early = self._early_subs.pop(name, None)
        return early if early is not None else self._open(name, maxsize, lossless)

    def _open(self, name: str, maxsize: int, lossless: bool) -> RemoteSubscription:
        sub = RemoteSubscription(name, maxsize, lossless)
        self._subs[name] = sub
        if self.failure is not None:
            sub.fail(self.failure)
        else:
            self._send(Subscribe(name, maxsize, lossless))
        return sub

    def __getattr__(self, name: str) -> Any:
        """Every other handle method, forwarded by name (coroutine methods stay coroutines)."""
        if name.startswith("_"):
            raise AttributeError(name)
        is_async = self._is_coroutine(name)

        if is_async:
            async def forward_async(*args: Any, **kwargs: Any) -> Any:
                return await self._call_async(name, args, kwargs)
            forward_async.__name__ = name
            return forward_async

        def forward(*args: Any, **kwargs: Any) -> Any:
            return self._call_sync(name, args, kwargs)
        forward.__name__ = name
        return forward

    def _is_coroutine(self, name: str) -> bool:
        declared = getattr(EngineHandle, name, None)
        if declared is not None and callable(declared):
            return inspect.iscoroutinefunction(declared)
        if name in self._methods:
            return self._methods[name]
        raise AttributeError(f"the engine has no method {name!r}" if self._methods else
                             f"{name!r}: the engine process has not said which methods it has yet")

    # -- calls ---------------------------------------------------------------------------------

    def _call_sync(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._raise_if_down()
        call = Call(next(self._ids), name, args, kwargs, CallMode.SYNC)
        self._send(call)
        deadline = time.monotonic() + self.call_timeout_s
        while True:
            try:
                reply = self._replies.receive(self._commands, deadline)
            except TimeoutError as exc:
                raise EngineNotAnswering(f"engine.{name} got no answer within {self.call_timeout_s:g}s; it was sent, "
                                         "and the engine may still carry it out when it answers") from exc
            except (EOFError, OSError) as exc:  # after the send: the engine may have carried it out
                raise EngineDiedInFlight(f"engine.{name} was sent and the engine process died before answering: "
                                         f"whether it was carried out is unknown ({exc!r})") from exc
            # Every answer's snapshot is decoded, in order, late ones too: each is a delta on the one before.
            snapshot = None
            if isinstance(reply, Reply) and reply.snapshot is not None:
                snapshot = self._reply_deltas.decode(reply.snapshot)
            if isinstance(reply, Reply) and reply.id == call.id:
                break  # earlier ids: answers that came after their caller gave up
        if snapshot is not None:
            self._take(reply.applied, snapshot)
        if not reply.ok:
            raise reply.value
        return reply.value

    async def _call_async(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], *,
                          lifecycle: bool = False) -> Any:
        """Send ``name`` and await its answer; with the process dying meanwhile, :class:`EngineDiedInFlight`.

        ``lifecycle`` (``start``, ``stop``): the failure itself instead, as the console's event pump
        gets it, so its crash handling reports the one failure once.
        """
        self._raise_if_down()
        self._connect_feed()
        call = Call(next(self._ids), name, args, kwargs, CallMode.AWAIT)
        future: asyncio.Future[tuple[Reply, EngineSnapshot | None]] = asyncio.get_running_loop().create_future()
        self._pending[call.id] = future
        self._send(call)
        try:
            reply, snapshot = await future
        except EngineProcessDied as exc:
            if lifecycle:
                raise
            raise EngineDiedInFlight(f"engine.{name} was sent and the engine process died before answering: "
                                     f"whether it was carried out is unknown ({exc.message})") from exc
        if snapshot is not None:
            self._take(reply.applied, snapshot)
        if not reply.ok:
            raise reply.value
        return reply.value

    def _send(self, message: Call | Subscribe) -> None:
        try:
            self._commands.settimeout(self.call_timeout_s)
            self._commands.sendall(encode(message))
        except OSError as exc:
            raise EngineProcessDied(f"the engine process is gone ({exc!r})") from exc

    def _raise_if_down(self) -> None:
        if self.failure is not None:
            raise self.failure

    # -- the feed ------------------------------------------------------------------------------

    def _connect_feed(self) -> None:
        """Start reading the feed and watching the process (once, inside the console's loop)."""
        if self._connected:
            return
        self._connected = True
        if self._early_start is not None:  # registered before the reader first runs: its answer cannot be missed
            self._early_reply = asyncio.get_running_loop().create_future()
            self._pending[self._early_start] = self._early_reply
            self._early_start = None
        self._tasks = [asyncio.ensure_future(self._read_feed()), asyncio.ensure_future(self._watch())]

    async def _read_feed(self) -> None:
        assert self._feed_sock is not None
        reader, _ = await asyncio.open_connection(sock=self._feed_sock)
        self._feed_sock = None  # the stream owns it now
        while True:
            try:
                message = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError, pickle.UnpicklingError) as exc:
                if not self._closing:
                    await self._declare_down(f"the engine process closed its channel ({exc!r})")
                return
            self._last_frame = time.monotonic()
            self._dispatch(message)
            # Frames already buffered are read without the loop getting a turn: after a stall,
            # a backlog would be taken in one stretch, ahead of the operator's next key.
            await asyncio.sleep(0)

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, SnapshotPushed):
            self._take(message.applied, self._deltas.decode(message.delta))
        elif isinstance(message, EventsForwarded):
            if message.name in self._subs:
                self._subs[message.name].deliver(message)
        elif isinstance(message, Reply):
            snapshot = self._deltas.decode(message.snapshot) if message.snapshot is not None else None
            future = self._pending.pop(message.id, None)
            if future is not None and not future.done():
                future.set_result((message, snapshot))
        elif isinstance(message, Hello):
            self._methods = message.methods
            self._take(0, message.snapshot)
            self._hello.set()
            self._restart_kill_clock()  # a kill sent while the process was starting is read only now
        elif isinstance(message, Fault):
            self._on_fault(message)

    def _take(self, applied: int, snapshot: EngineSnapshot) -> None:
        """Keep ``snapshot`` unless a newer one is held; HALTED while a sent kill is not yet applied."""
        if self._failing or applied < self._applied:
            return  # the process is gone, or this was taken before a command whose answer already brought a newer one
        self._applied = applied
        if (kill := self._pending_kill()) is not None:
            snapshot = views.halted(snapshot, kill.reason, kill.by)
        self._latest = snapshot

    def _pending_kill(self) -> SentKill | None:
        """The kill sent to the engine process, unless a snapshot since says the engine has run it."""
        kill = self._kill
        return kill if kill is not None and self._applied < kill.id else None

    def _restart_kill_clock(self) -> None:
        """The engine process could not have read the sent kill until now: its :attr:`kill_timeout_s` starts again."""
        if self._kill is not None:
            self._kill = replace(self._kill, sent_at=time.monotonic())

    def _on_fault(self, fault: Fault) -> None:
        log.error("engine.%s raised in the engine process: %r", fault.name, fault.error)
        if fault.name == "kill":
            reason = self._kill.reason if self._kill else "kill failed in the engine process"
            self._kill_out_of_band(f"{reason} (engine kill failed: {fault.error})", "console", cancel=True)

    async def _watch(self) -> None:
        """Declare the process hung when no frame arrived for :attr:`stall_s` (the console's own stalls excused).

        Not before its hello: until then :meth:`start` gives it :attr:`hello_timeout_s` to come up.
        """
        tick = 1.0
        last_tick = time.monotonic()
        while not self._failing and not self._closing:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - last_tick > 3 * tick:
                self._last_frame = now  # the console itself was blocked: the feed had no chance
                self._restart_kill_clock()
            last_tick = now
            if not self._hello.is_set():
                self._last_frame = now
            elif now - self._last_frame > self.stall_s:
                await self._declare_down(f"the engine process stopped answering (nothing for {self.stall_s:g}s): "
                                         "the console killed it", hung=True)
            elif (kill := self._pending_kill()) is not None and now - kill.sent_at > self.kill_timeout_s:
                await self._declare_down(f"the engine process did not take the kill switch within "
                                         f"{self.kill_timeout_s:g}s: the console killed it", hung=True)

    def _exit_text(self, why: str, killed_here: bool) -> str:
        """What the operator reads: how the process ended (unless the console ended it) and where its logs are."""
        code = self.process.poll()
        if code is not None and not killed_here:
            why = f"the engine process {f'was killed by signal {-code}' if code < 0 else f'exited with code {code}'}"
        logs = self.settings.state_dir / "logs"
        return f"{why} (logs: {logs / 'engine.log'}, {logs / 'engine.stderr.log'})"

    async def _declare_down(self, why: str, *, hung: bool = False) -> None:
        """The process is gone, or ``hung`` (then it is killed). Fail everything that waits on it."""
        if self._failing:
            return
        self._failing = True
        self._latest = views.down(self._latest, why)  # not one more pull of the last numbers as live
        log.critical("engine process %d: %s", self.pid, why)
        if not hung:  # it closed its channel: give it a moment to finish exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.process.wait, 2.0)
        killed_here = self.process.poll() is None
        if killed_here:
            self.process.kill()  # a hung engine must not go on trading unsupervised
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.process.wait, 2.0)
        if self.process.poll() is not None:
            self._keep_stderr()
        self.failure = failure = EngineProcessDied(self._exit_text(why, killed_here))
        self._latest = views.down(self._latest, failure.message)
        if (kill := self._pending_kill()) is not None:  # the engine never ran it: it runs out of band
            self._kill_out_of_band(kill.reason, kill.by, cancel=kill.cancel)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        for sub in self._subs.values():
            sub.fail(failure)
        self._down.set()
        with contextlib.suppress(OSError):
            self._commands.close()

    # -- the out-of-band fallback --------------------------------------------------------------

    def _kill_out_of_band(self, reason: str, by: str, *, cancel: bool = True) -> None:
        why = self.failure.message if self.failure else "the engine process cannot be reached"
        self._latest = views.halted(views.down(self._latest, why), reason, by)
        running = self.fallback if self.fallback is not None and not self.fallback.done() else None
        if running is not None and (self._fallback_asked is None or self._fallback_asked[2] or not cancel):
            return  # the kill under way does as much
        # An operator's Ctrl+K during the console's own latch-only kill (a crash's) still cancels: after it.
        self.fallback = asyncio.get_running_loop().create_task(_after(running, out_of_band(
            self.settings, reason, by, cancel=cancel, on_report=self._cancelled_out_of_band)))
        self.fallback.add_done_callback(self._fallback_done)
        self._fallback_asked = (reason, by, cancel)

    def _cancelled_out_of_band(self, report: CancelReport) -> None:
        """The orders shown as the out-of-band global cancel left them, and its check said as the engine says
        its own kill's (a :class:`KillChecked` on the console's subscriptions): the engine can no longer say."""
        if report.reachable:
            self._latest = views.after_global_cancel(self._latest, {r.order_ref for r in report.cancelled},
                                                     {r.order_ref for r in report.remaining})
        check = KillChecked(datetime.now(UTC), report.as_kill_report())
        for sub in self._subs.values():
            sub.offer(check)  # after the failure too: queued events are read first

    def _fallback_done(self, task: asyncio.Task[str]) -> None:
        if task.cancelled():  # the console's loop ended under it: close() runs it again
            self.fallback_outcome = "out-of-band kill cut short by the console's exit"
            return
        error = task.exception()
        self.fallback_outcome = f"out-of-band kill failed: {error!r}" if error else f"out-of-band kill: {task.result()}"
        why = self.failure.message if self.failure else "the engine process cannot be reached"
        self._latest = views.down(self._latest, f"{why}; {self.fallback_outcome}")


async def _after(first: asyncio.Task[str] | None, then: Coroutine[Any, Any, str]) -> str:
    """``then`` once ``first`` (if any) has ended, however it ended."""
    if first is not None:
        await asyncio.wait((first,))
    return await then


async def out_of_band(settings: Settings, reason: str, by: str, *, cancel: bool = True,
                      on_report: Callable[[CancelReport], None] | None = None) -> str:
    """The out-of-band kill (:mod:`tui_trader.ops.kill`) with its report as one line of text."""
    from rich.console import Console

    from tui_trader.ops.kill import out_of_band_kill

    text = io.StringIO()
    code = await out_of_band_kill(settings, reason, by=by, cancel=cancel, console=Console(file=text, width=160),
                                  on_report=on_report)
    report = " ".join(text.getvalue().split())
    log.warning("out-of-band kill (exit %d): %s", code, report)
    return report


async def first_of(*events: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until one of ``events`` is set; False after ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


def spawn_engine(settings: Settings, factory: Callable[[Settings], Any] | None = None,
                 snapshot_hz: float | None = None, *, start: bool = False,
                 subscriptions: tuple[tuple[str, int, bool], ...] = (),
                 launched: Launched | None = None) -> EngineProxy:
    """The engine for ``settings`` in a child process (``factory``: tests and benchmarks).

    ``start``, ``subscriptions`` and ``launched``: see :meth:`EngineProxy.spawn`.
    """
    return EngineProxy.spawn(EngineRecipe(settings, factory), snapshot_hz=snapshot_hz, start=start,
                             subscriptions=subscriptions, launched=launched)


__all__ = ["EngineNotAnswering", "EngineProcessDied", "EngineProxy", "spawn_engine"]
