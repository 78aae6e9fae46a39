"""The log files: in the state directory, rotated, and readable by their owner only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import cast

import pytest

from tui_trader.ops.logs import configure_logging


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers (pytest's own among them): put them back."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("root_handlers")
def test_logs_when_written_and_rotated_then_every_file_and_their_directory_are_the_owners_only(
        tmp_path: Path) -> None:
    # They were created with the umask's modes (0644, 0755): every user of a shared VPS could read the
    # account's orders, fills and alerts that the 0600 journal beside them keeps from them.
    path = configure_logging(tmp_path / "state", "INFO", name="tui-trader.log")
    handler = cast(RotatingFileHandler, logging.getLogger().handlers[0])
    handler.maxBytes = 300
    for n in range(20):
        logging.getLogger("tui_trader.test").info("order tt-%d filled: BUY 10 AAPL @ 198.63", n)

    logs = tmp_path / "state" / "logs"
    modes = {p.name: p.stat().st_mode & 0o777 for p in logs.iterdir()}
    assert path == logs / "tui-trader.log"
    assert {"tui-trader.log", "tui-trader.log.1", "tui-trader.log.5"} <= set(modes)  # rotated, five kept
    assert set(modes.values()) == {0o600}
    assert logs.stat().st_mode & 0o777 == 0o700


@pytest.mark.usefixtures("root_handlers")
def test_logs_left_readable_by_an_earlier_version_then_made_the_owners_only(tmp_path: Path) -> None:
    # An install from before logs were private keeps its 0755 directory and 0644 log: only new ones were 0600.
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True, mode=0o755)
    logs.chmod(0o755)
    old = logs / "tui-trader.log"
    old.write_text("order tt-1 filled: BUY 10 AAPL @ 198.63\n")
    old.chmod(0o644)

    configure_logging(tmp_path / "state", "INFO", name="tui-trader.log")

    assert old.stat().st_mode & 0o777 == 0o600
    assert logs.stat().st_mode & 0o777 == 0o700
