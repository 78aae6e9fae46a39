"""Watch ib_async's decoder for malformed messages from the gateway.

ib_async swallows a message it cannot decode and only logs it on ``ib_async.Decoder``; the
stream then carries on as if nothing happened, and the account state may silently diverge.
Each adapter gives its own decoder a child logger of that name (so records still reach every
handler of ``ib_async.Decoder``) and reacts to an error there: the connection is dropped and
rebuilt, which blocks entries, reconnects and reconciles.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

_SEQUENCE = itertools.count(1)


class _DecodeFaultHandler(logging.Handler):
    def __init__(self, on_fault: Callable[[str], None]) -> None:
        super().__init__(level=logging.ERROR)
        self._on_fault = on_fault

    def emit(self, record: logging.LogRecord) -> None:
        self._on_fault(record.getMessage().splitlines()[0][:300])


class DecodeWatch:
    """Calls ``on_fault`` once per connection, from the event loop, after a decode error.

    Args:
        decoder: The ``ib_async`` client's decoder (``ib.client.decoder``).
        on_fault: Called with the first line of the decoder's error message.
    """

    def __init__(self, decoder: Any, on_fault: Callable[[str], None]) -> None:
        self.logger = logging.getLogger(f"ib_async.Decoder.adapter{next(_SEQUENCE)}")
        self.logger.addHandler(_DecodeFaultHandler(self._fault))
        decoder.logger = self.logger
        self._on_fault = on_fault
        self._tripped = False

    def rearm(self) -> None:
        """A new connection: report the next fault again."""
        self._tripped = False

    def _fault(self, text: str) -> None:
        # Called inside ib_async's data callback: never act inline, schedule on the loop.
        if self._tripped:
            return
        self._tripped = True
        asyncio.get_running_loop().call_soon(self._on_fault, text)
