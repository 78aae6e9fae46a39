"""The journal's writer lock: one engine writes a journal at a time.

Two engines on one journal undo each other: the second one's start lapses the first one's pending
approvals, its reconciliation marks the first one's orders, both rotate the sending log. The engine
takes an exclusive advisory lock (``flock``) on ``<journal>.lock`` before it opens the journal and
holds it until the journal closes; the operating system lets go of it when the process ends, however
it ends. Readers (``tui-trader report``) and the out-of-band ``tui-trader kill``, whose latch must get
through while the engine runs, take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from tui_trader.errors import TraderError

LOCK_SUFFIX = ".lock"


class JournalInUse(TraderError):
    """Another tui-trader writes the journal; exit code 2."""

    title = "Journal in use"


def lock_path(journal: Path) -> Path:
    """The lock file of the journal at ``journal`` (``journal.sqlite.lock``)."""
    return journal.with_name(journal.name + LOCK_SUFFIX)


class JournalLock:
    """The exclusive lock on one journal, held from :meth:`acquire` until :meth:`release`."""

    def __init__(self, journal: Path, fd: int) -> None:
        self.journal = journal
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, journal: Path) -> JournalLock:
        """Take the lock of ``journal`` now, without waiting.

        Raises:
            JournalInUse: when another process (or another engine in this one) holds it.
        """
        path = lock_path(journal)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise JournalInUse(
                f"the journal {journal} is in use by another tui-trader{holder}: one engine writes a journal "
                f"at a time. Quit the other one, or use another mode or --config (state_dir).") from None
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # only for the message of the one turned away
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(journal, fd)

    @classmethod
    def check(cls, journal: Path) -> None:
        """Fail now if another tui-trader holds the lock (taken and let go at once).

        Raises:
            JournalInUse: when it is held.
        """
        cls.acquire(journal).release()

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Let go of the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def _holder(fd: int) -> str:
    """`` (process N)`` from the lock file, if the holder wrote its process id there."""
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""
