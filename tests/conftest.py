"""Fixtures shared by every test layer.

``_fail_on_ib_async_errors`` is autouse: any test during which ib_async's decoder logs an
error (it swallows decode failures and only logs them) or a sync request times out fails,
naming the log line. Fixtures of a layer live in that layer's own conftest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

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
