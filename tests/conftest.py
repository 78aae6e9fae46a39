"""Fixtures shared by every test layer.

``_fail_on_ib_async_errors`` is autouse: any test during which ib_async's decoder logs an
error (it swallows decode failures and only logs them) or a sync request times out fails,
naming the log line. ``isolated`` is a user with nothing configured, for the tests of the
configuration and the command line (a module asks for it with
``pytestmark = pytest.mark.usefixtures("isolated")``). Fixtures of a layer live in that layer's
own conftest.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest


class _IbAsyncFaultCollector(logging.Handler):
    """Collects ib_async log records that mean the wire protocol went wrong."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.faults: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        decoder_error = record.name.startswith("ib_async.Decoder") and record.levelno >= logging.ERROR
        timeout = record.name.startswith("ib_async") and "timed out" in text
        if decoder_error or timeout:
            self.faults.append(f"{record.name}: {text}")


@pytest.fixture(autouse=True)
def _fail_on_ib_async_errors(request: pytest.FixtureRequest) -> Iterator[_IbAsyncFaultCollector]:
    """Fail the test if ib_async logged a decoder error or a request timeout during it.

    A test that provokes such a fault on purpose marks itself ``allow_ib_async_faults``.
    """
    collector = _IbAsyncFaultCollector()
    loggers = [logging.getLogger("ib_async.Decoder"), logging.getLogger("ib_async")]
    for lg in loggers:
        lg.addHandler(collector)
    yield collector
    for lg in loggers:
        lg.removeHandler(collector)
    if collector.faults and not request.node.get_closest_marker("allow_ib_async_faults"):
        pytest.fail("ib_async reported protocol faults:\n" + "\n".join(dict.fromkeys(collector.faults)))


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user with nothing configured, in ``tmp_path`` (returned), which is also the working directory.

    No ``TUI_TRADER_*`` variable (in any case: the settings read them case-insensitively); the XDG
    configuration and state homes ``tmp_path/xdg-config`` and ``tmp_path/xdg-state``, both empty; a
    terminal 400 columns wide, so an error panel keeps each line of its message on one line.
    """
    for var in list(os.environ):
        if var.upper().startswith("TUI_TRADER_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    return tmp_path


_session_status: list[int] = []
_started_in: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()
"""The test during which each non-daemon thread still running after it was started (named at exit)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Note the non-daemon threads a test (its fixtures included) leaves running, with the test's id."""
    before = set(threading.enumerate())
    yield
    for thread in threading.enumerate():
        if thread not in before and not thread.daemon:
            _started_in.setdefault(thread, item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember the run's exit status for :func:`pytest_unconfigure`."""
    _session_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit with the run's status even when a failed test left a journal open.

    aiosqlite runs each connection on a non-daemon thread; a test that fails before closing its
    journal leaves that thread waiting, and the failure report keeps the connection alive, so the
    interpreter would wait for it forever at exit: CI would time out instead of reporting the
    failure. Seen twice on a loaded machine. The threads still alive are named, each with the test
    it was left running by, then the process ends with pytest's own status.
    """
    leaked = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    # One deadline for all of them, not a second each: an xdist worker still busy 5 s after it was told to stop
    # is sent SIGINT by execnet, which landed in hypothesis's gc callback (PytestUnraisableExceptionWarning).
    deadline = time.monotonic() + 1.0
    for thread in leaked:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    leaked = [t for t in leaked if t.is_alive()]
    if leaked and _session_status:
        sys.stdout.flush()
        sys.stderr.write(f"\n{len(leaked)} non-daemon thread(s) left running by the tests (a journal a failed test "
                         f"did not close?): {', '.join(map(_named, leaked))}; exiting without them\n")
        sys.stderr.flush()
        os._exit(_session_status[-1])


def _named(thread: threading.Thread) -> str:
    return f"{thread.name} (left running by {_started_in.get(thread, 'no test: started outside them')})"
