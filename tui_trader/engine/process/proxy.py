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
  :attr:`EngineProxy.stall_s`), the proxy kills it, latches the kill switch out of band (the latch
  only: the orders at the broker stay as they were), fails pending calls and the subscriptions
  with :class:`EngineProcessDied`, whose message says all that in the operator's words (the
  console's bridge worker fails, so its crash handling runs: a critical alert, the error modal)
  and serves a snapshot that says DISCONNECTED with the reason, never the last numbers as live.

The parts are layers of one class (see :mod:`~tui_trader.engine.process.proxy_core`):
:mod:`~tui_trader.engine.process.out_of_band` (a kill the engine process did not run) and
:mod:`~tui_trader.engine.process.feed` (the feed and the failure) under :class:`EngineProxy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui_trader.engine.bus import Subscription
from tui_trader.engine.handle import EngineHandle
from tui_trader.engine.process import views
from tui_trader.engine.process.feed import ProxyFeed
from tui_trader.engine.process.launch import Launched, launch
from tui_trader.engine.process.out_of_band import SentKill
from tui_trader.engine.process.subscription import RemoteSubscription
from tui_trader.engine.process.wire import Bootstrap, Call, CallMode, EngineRecipe, Reply, Subscribe, encode
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.errors import EngineDiedInFlight, EngineNotAnswering, EngineProcessDied
from tui_trader.ops.logs import private_log_dir

if TYPE_CHECKING:
    from tui_trader.config import Settings

log = logging.getLogger(__name__)


class EngineProxy(ProxyFeed):
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
            await self._declare_down(f"the engine process did not come up within {self.hello_timeout_s:g}s, so the "
                                     "console killed it", hung=True)
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

    # -- the handle ----------------------------------------------------------------------------

    def kill(self, reason: str, by: str = "operator", *, operator: bool = True) -> None:
        """Engage the kill switch: one message to the engine; HALTED in :meth:`snapshot` at once.

        With the engine process gone, the out-of-band kill runs instead: the latch in the journal,
        then, when an ``operator`` engaged it, a global cancel with the kill's own client id. The
        process's death latches by itself (:meth:`_declare_down`), and only latches: with the engine
        gone, the protective stops held at the broker are what guard the positions, and a global
        cancel would remove them along with every other client's orders. A kill the console engages
        by itself after that (``operator=False``: its crash handling) adds nothing; Ctrl+K still cancels.
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
