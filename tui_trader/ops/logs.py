"""Logging to a rotating file in the state directory, never to the terminal the console owns."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(state_dir: Path, level: str = "INFO", name: str = "tui-trader.log") -> Path:
    """Send every log record to ``<state_dir>/logs/<name>`` (5 × 5 MB rotation).

    Any handler already on the root logger (a StreamHandler to the terminal, say) is removed,
    so nothing is printed over the console.

    Returns:
        The path of the log file.
    """
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / name
    handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return path
