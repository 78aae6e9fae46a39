"""Launching the engine process before the settings are known.

``tui-trader`` launches the child first thing, so the child's interpreter starts and imports
the engine (ib_async, numpy, pydantic, the simulator) while the console loads its settings and
imports Textual; the settings follow in the bootstrap frame (see
:meth:`~tui_trader.engine.process.proxy.EngineProxy.spawn`). Until the child has read them it
does not know where its logs go, so its stderr is an anonymous temporary file meanwhile: the
child moves what is in it to ``engine.stderr.log`` when it opens that file, and the console
does so if the child never got that far (an import failure).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tui_trader.ops.logs import private_log_dir, private_opener

HOST_MODULE = "tui_trader.engine.process.host"
ABANDON_WAIT_S = 5.0
"""How long an abandoned child (the console runs the engine in-process after all) may take to exit."""


@dataclass
class Launched:
    """An engine process that has not been told its settings yet."""

    process: subprocess.Popen[bytes]
    commands: socket.socket
    """The console's end of the command channel (the bootstrap frame goes first)."""
    feed: socket.socket
    """The console's end of the feed."""
    stderr: IO[bytes]
    """The child's stderr until it opens its own log (an unlinked temporary file)."""

    def keep_stderr(self, path: Path) -> None:
        """Append what the child wrote to its temporary stderr and did not move itself to ``path``."""
        with contextlib.suppress(OSError, ValueError):
            self.stderr.seek(0)
            if self.stderr.read(1):
                self.stderr.seek(0)
                private_log_dir(path.parent.parent)
                with open(path, "ab", opener=private_opener) as out:
                    shutil.copyfileobj(self.stderr, out)
        with contextlib.suppress(OSError):
            self.stderr.close()

    def abandon(self) -> None:
        """Not needed after all: close the channels (the child exits at end of stream) and reap it."""
        for sock in (self.commands, self.feed):
            with contextlib.suppress(OSError):
                sock.close()
        try:
            self.process.wait(ABANDON_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self.stderr.close()


def launch() -> Launched:
    """Start ``python -m tui_trader.engine.process.host CMD_FD FEED_FD``; it imports, then waits for its bootstrap."""
    ours, theirs = socket.socketpair()
    feed_ours, feed_theirs = socket.socketpair()
    fds = (theirs.fileno(), feed_theirs.fileno())
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the Launched, closed by it
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", HOST_MODULE, *map(str, fds)], pass_fds=fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    except BaseException:
        for sock in (ours, theirs, feed_ours, feed_theirs):
            sock.close()
        stderr.close()
        raise
    theirs.close()
    feed_theirs.close()
    return Launched(process, ours, feed_ours, stderr)
