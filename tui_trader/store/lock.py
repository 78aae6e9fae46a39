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
            holder = _holder_pid(fd)
            os.close(fd)
            raise _in_use(journal, holder) from None
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # only for the message of the one turned away
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(journal, fd)

    @classmethod
    def check(cls, journal: Path) -> None:
        """Fail now if another tui-trader holds the lock (taken and let go at once); creates no file.

        Raises:
            JournalInUse: when it is held.
        """
        held, holder = probe(journal)
        if held:
            raise _in_use(journal, holder)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Let go of the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def probe(journal: Path) -> tuple[bool, int | None]:
    """Whether a tui-trader holds the lock of ``journal`` now, and its process id if it wrote it.

    Looking creates nothing: a journal no engine ever ran with has no lock file, so nobody holds it (checking
    the other modes' journals left an empty ``.lock`` for each in a new user's state directory).

    Raises:
        OSError: the lock file is there but cannot be opened (no permission, say): not known.
    """
    try:
        fd = os.open(lock_path(journal), os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # let go at the close below
    except BlockingIOError:
        return True, _holder_pid(fd)
    finally:
        os.close(fd)
    return False, None


def _in_use(journal: Path, holder: int | None) -> JournalInUse:
    by = f" (process {holder})" if holder is not None else ""
    return JournalInUse(f"the journal {journal} is in use by another tui-trader{by}: one engine writes a journal "
                        f"at a time. Quit the other one, or use another mode or --config (state_dir).")


def _holder_pid(fd: int) -> int | None:
    """The process id the holder wrote in the lock file, if it did."""
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
