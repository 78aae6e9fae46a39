"""Watch ib_async's decoder for malformed messages from the gateway.

ib_async swallows a message it cannot decode and only logs it on ``ib_async.Decoder``; the
stream then carries on as if nothing happened, and the account state may silently diverge.
Each adapter gives its own decoder a child logger of that name (so records still reach every
handler of ``ib_async.Decoder``) and reacts to an error there: the connection is dropped and
rebuilt, which blocks entries, reconnects and reconciles.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import logging
import re
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_SEQUENCE = itertools.count(1)
RAW_LOGGED = 200
"""How much of an undecodable message the log keeps (its text as ib_async has it: the raw bytes, escaped)."""
_FIELDS = "Error handling fields: "
_METHOD = re.compile(r"Error for (\w+)\(")


def fault_words(text: str) -> str:
    """What a decoder error of ib_async was, in the operator's words, without the message's content: ``a malformed
    message from the gateway (5 fields, not decodable)`` for one it could not read at all (its fields are in
    ``text``, escaped bytes), ``a malformed tickPrice message from the gateway (its fields not decodable)`` for one
    whose fields do not fit its kind."""
    if (method := _METHOD.match(text)) is not None:
        return f"a malformed {method.group(1)} message from the gateway (its fields not decodable)"
    if text.startswith(_FIELDS):
        try:
            fields = ast.literal_eval(text.removeprefix(_FIELDS))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            fields = None
        if isinstance(fields, list):
            count = {0: "no fields", 1: "1 field"}.get(len(fields), f"{len(fields)} fields")
            return f"a malformed message from the gateway ({count}, not decodable)"
    return "a malformed message from the gateway (not decodable)"


class _DecodeFaultHandler(logging.Handler):
    def __init__(self, on_fault: Callable[[str], None]) -> None:
        super().__init__(level=logging.ERROR)
        self._on_fault = on_fault

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().splitlines()[0]
        words = fault_words(text)
        log.warning("%s: %s", words, text[:RAW_LOGGED])
        self._on_fault(words)


class DecodeWatch:
    """Calls ``on_fault`` once per connection, from the event loop, after a decode error.

    Args:
        decoder: The ``ib_async`` client's decoder (``ib.client.decoder``).
        on_fault: Called with what the message was (:func:`fault_words`); its content goes to the log only.
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
