"""RemoteSubscription: the console's event queue, fed from a bus subscription in the engine process."""

from __future__ import annotations

import asyncio
from typing import Any

from tui_trader.engine.bus import Subscription
from tui_trader.engine.process.wire import EventsForwarded


class RemoteSubscription(Subscription):
    """A local event queue fed from the engine process; ``get`` raises once the process is gone."""

    def __init__(self, name: str, maxsize: int, lossless: bool) -> None:
        super().__init__(name, maxsize, lossless)
        self.failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._remote_dropped = 0

    def deliver(self, batch: EventsForwarded) -> None:
        """Queue a forwarded batch; drops in the engine process count as drops here."""
        self.dropped += batch.dropped - self._remote_dropped
        self._remote_dropped = batch.dropped
        for event in batch.events:
            self.offer(event)

    def fail(self, error: BaseException) -> None:
        """From now on ``get`` raises ``error`` (queued events are still drained first)."""
        self.failure = error
        self._failed.set()

    async def get(self) -> Any:
        """The next event; raises the failure when the queue is empty and the process is gone."""
        event = self.get_nowait()
        if event is not None:
            return event
        getter = asyncio.ensure_future(super().get())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait((getter, failed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        assert self.failure is not None
        raise self.failure
