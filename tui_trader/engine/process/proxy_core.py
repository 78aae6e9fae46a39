"""ProxyCore: the state the parts of :class:`~tui_trader.engine.process.proxy.EngineProxy` share.

The proxy is built in layers, each a class on the one before, so that no layer calls a method
only a later one defines:

- :class:`ProxyCore` (here): the child process, its channels, the latest snapshot, the timeouts;
- :class:`~tui_trader.engine.process.out_of_band.OutOfBandKill`: the clock of a kill sent to the
  engine process and not yet taken, and the out-of-band kill that stands in for it;
- :class:`~tui_trader.engine.process.feed.ProxyFeed`: the feed (snapshots, events, answers,
  faults) and the process's failure;
- :class:`~tui_trader.engine.process.proxy.EngineProxy`: spawn, start, stop and close, the
  handle's own methods, and the calls forwarded over the command channel.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

from tui_trader.domain.enums import Mode
from tui_trader.engine.process import views
from tui_trader.engine.process.delta import DeltaDecoder
from tui_trader.engine.process.launch import Launched
from tui_trader.engine.process.subscription import RemoteSubscription
from tui_trader.engine.process.wire import EngineRecipe, FrameReceiver, Reply
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.errors import EngineProcessDied

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.engine.process.out_of_band import SentKill


class ProxyCore:
    """State shared by the parts of :class:`~tui_trader.engine.process.proxy.EngineProxy`, and its timeouts.

    Args: see :class:`~tui_trader.engine.process.proxy.EngineProxy`.
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
        self.gateway_seen: tuple[str, int] | None = None
        """The host and port the engine was last connected to: the out-of-band kill cancels there (a --sim
        engine's simulator may not be on the configured port)."""
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

    def _keep_stderr(self) -> None:
        """What the child wrote before it opened its own stderr log (an import failure) goes to that log."""
        if self._launched is not None:
            self._launched.keep_stderr(self.settings.state_dir / "logs" / "engine.stderr.log")

    def _placeholder(self) -> EngineSnapshot:
        s = self.settings
        host, port = (s.sim.host, s.sim.port) if s.mode is Mode.SIM else (s.broker.host, s.broker_port)
        return views.starting(s.mode, s.dry_run, host, port, s.broker.client_id)
