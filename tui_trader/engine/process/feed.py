"""ProxyFeed: the engine process's feed as the proxy takes it, and the process's failure.

The child pushes snapshots (deltas), forwarded events, the answers to awaited calls, its hello
and faults on one socket; :class:`ProxyFeed` reads them inside the console's loop, watches for a
process that stopped answering (or did not take a kill in time), and when the process is gone
fails everything that waits on it and serves a snapshot that says DISCONNECTED with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import subprocess
import time
from typing import Any

from tui_trader.domain.enums import LINK_UP
from tui_trader.engine.process import views
from tui_trader.engine.process.out_of_band import OutOfBandKill
from tui_trader.engine.process.wire import EventsForwarded, Fault, Hello, Reply, SnapshotPushed, read_frame
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.errors import EngineProcessDied

log = logging.getLogger(__name__)


class ProxyFeed(OutOfBandKill):
    """The proxy's part that reads the feed, watches the process and declares it down."""

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
                    await self._declare_down(f"the engine process closed its channel ({exc!r}), so the console "
                                             "killed it")
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
        if snapshot.connection.state in LINK_UP:  # a session that stays DEGRADED is connected too
            self.gateway_seen = (snapshot.connection.host, snapshot.connection.port)
        if (kill := self._pending_kill()) is not None:
            snapshot = views.halted(snapshot, kill.reason, kill.by)
        self._latest = snapshot

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
                await self._declare_down(f"the engine process stopped answering (nothing for {self.stall_s:g}s), "
                                         "so the console killed it", hung=True)
            elif (kill := self._pending_kill()) is not None and now - kill.sent_at > self.kill_timeout_s:
                await self._declare_down(f"the engine process did not take the kill switch within "
                                         f"{self.kill_timeout_s:g}s, so the console killed it", hung=True)

    def _ended(self, why: str, killed_here: bool) -> str:
        """How the process ended, in the operator's words: ``why`` it was declared down, unless it ended by itself
        (``the engine process died (killed by signal 9)``)."""
        code = self.process.poll()
        if code is None or killed_here:
            return why
        return f"the engine process died ({f'killed by signal {-code}' if code < 0 else f'exited with code {code}'})"

    def _exit_text(self, ended: str, cancels: bool) -> str:
        """What the operator reads: how the process ended, what the kill switch does about it (its global cancel
        when the operator's kill ``cancels``; otherwise a latch only), what to do, and where the logs are."""
        logs = self.settings.state_dir / "logs"
        # "latching", not "latched": the latch is on its way (out of band); whether it took, the connectivity
        # pane's reason says when it is done (_fallback_done), and a latch that failed says so there.
        then = ("latching the kill switch and sending its global cancel out of band (the banner says what it left)"
                if cancels else "latching the kill switch; orders at the broker are as they were")
        return (f"{ended}: {then} — restart tui-trader to reconnect and check them "
                f"(logs: {logs / 'engine.log'}, {logs / 'engine.stderr.log'})")

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
        ended = self._ended(why, killed_here)
        kill = self._pending_kill()
        self.failure = failure = EngineProcessDied(self._exit_text(ended, kill is not None and kill.cancel))
        self._latest = views.down(self._latest, failure.message)
        if kill is not None:  # the engine never ran it: it runs out of band
            self._kill_out_of_band(kill.reason, kill.by, cancel=kill.cancel)
        else:  # latched only: with the engine gone, the stops held at the broker guard the positions
            self._kill_out_of_band(f"latched when {ended}; orders at the broker were left as "
                                   "they were", "console", cancel=False)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        for sub in self._subs.values():
            sub.fail(failure)
        self._down.set()
        with contextlib.suppress(OSError):
            self._commands.close()
