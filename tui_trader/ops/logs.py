"""Logging to a rotating file in the state directory, never to the terminal the console owns."""

from __future__ import annotations

import contextlib
import logging
import os
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import cast

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: the file is readable by its owner only (0600), whether created
    now or left by an earlier version with the umask's modes (0644 by default)."""
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def private_log_dir(state_dir: Path) -> Path:
    """``<state_dir>/logs``, made the owner's only (0700), new or left by an earlier version.

    The logs name the account, its orders, fills and alerts, as the journal beside them (0600) does;
    created with the umask's modes (0755 / 0644 by default) every user of the machine could read them.
    """
    return _private_dir(state_dir / "logs")


def _private_dir(directory: Path) -> Path:
    """``directory`` (its parents made as needed), the owner's only (0700)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    directory.chmod(0o700)
    return directory


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log whose files (the current one and each after a rotation) are created 0600, in a directory
    made the owner's only (0700) as the file is opened (with ``delay=True``, at the first line)."""

    def _open(self) -> TextIOWrapper:
        _private_dir(Path(self.baseFilename).parent)
        stream = open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,  # noqa: SIM115
                      opener=private_opener)
        return cast(TextIOWrapper, stream)


MAX_BYTES, BACKUPS = 5_000_000, 5
"""Every log's rotation: 5 × 5 MB."""


def private_log_file(state_dir: Path, name: str, *, delay: bool = False,
                     kind: type[PrivateRotatingFileHandler] = PrivateRotatingFileHandler) -> PrivateRotatingFileHandler:
    """A handler writing ``<state_dir>/logs/<name>`` (rotated, the owner's only); ``delay``: the directory and
    the file are made at the first line, so a run with nothing to log leaves none."""
    return kind(state_dir / "logs" / name, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=delay)


def configure_logging(state_dir: Path, level: str = "INFO", name: str = "tui-trader.log") -> Path:
    """Send every log record to ``<state_dir>/logs/<name>`` (5 × 5 MB rotation; the owner's only).

    Any handler already on the root logger (a StreamHandler to the terminal, say) is removed,
    so nothing is printed over the console.

    Returns:
        The path of the log file (absolute).
    """
    handler = private_log_file(state_dir, name)  # opened now, in its directory made the owner's only (0700)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    cancels_are_no_errors()
    logging.captureWarnings(True)
    return Path(handler.baseFilename)


def cancels_are_no_errors() -> None:
    """ib_async's "Error 202" (a cancel) logged at INFO from now on, in every log (:class:`CancelIsNoError`)."""
    wrapper = logging.getLogger("ib_async.wrapper")
    if not any(isinstance(f, CancelIsNoError) for f in wrapper.filters):
        wrapper.addFilter(CancelIsNoError(wrapper))


class CancelIsNoError(logging.Filter):
    """ib_async logs IB's code 202 ("Order Canceled") as an ERROR: every cancel we asked for, and every OCA sibling
    cancelled when its partner filled, read ``ERROR ib_async.wrapper: Error 202 …`` (14 in a 12-minute run). This
    writes them at INFO (dropped when the logger's level is above it); every other error stays an ERROR."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower a 202's record to INFO; keep every other record as it is."""
        if record.levelno != logging.ERROR or not record.getMessage().startswith(CANCELLED):
            return True
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return self._logger.isEnabledFor(logging.INFO)


CANCELLED = "Error 202,"
"""How ib_async's record of IB's code 202 begins (``Error 202, reqId 7: Order Canceled - reason:``)."""
