"""The only module that knows both sides: engine events and snapshots in, Textual messages out.

Discrete facts are drained from the console's bus subscription in batches and posted as one
:class:`EngineEvents` message per batch. Continuous state is pulled with ``handle.snapshot()``
on a fixed timer (4–10 Hz) and posted as :class:`SnapshotPulled`, which collapses when the
console falls behind; a tick storm therefore never drives rendering.

With the engine in a child process (the default), the handle is an ``EngineProxy``: the
snapshot is the latest the child pushed, and the subscription is fed from the child's. When the
child dies, that subscription's ``get`` raises ``EngineProcessDied``: the event pump fails and
the app's crash handling engages the kill switch (out of band), alerts and shows the error. What
the proxy still says in the engine's place after that (its out-of-band kill's check) is taken
with the snapshots.
"""

from __future__ import annotations

import asyncio
import time

from textual.message_pump import MessagePump

from tui_trader.engine.bus import Subscription
from tui_trader.engine.handle import EngineHandle
from tui_trader.ui.messages import EngineEvents, EventsDropped, SnapshotPulled

BATCH = 100
"""Events per :class:`EngineEvents`: the main screen handles one batch per message, so a burst is
handled in slices with the loop free in between (for Ctrl+K above all)."""
CONSOLE_QUEUE = 10_000


class Bridge:
    """Moves engine output to a target message pump (the main screen)."""

    def __init__(self, handle: EngineHandle, target: MessagePump) -> None:
        self.handle = handle
        self.target = target
        self.subscription: Subscription | None = None
        self.pulls = 0
        self._dropped_seen = 0
        self._pump_ended = False

    def subscribe(self) -> Subscription:
        """Open the console's (lossy) subscription; call before the engine starts."""
        if self.subscription is None:
            self.subscription = self.handle.subscribe("console", maxsize=CONSOLE_QUEUE, lossless=False)
        return self.subscription

    async def pump_events(self) -> None:
        """Forever: wait for an event, take whatever else is queued, post one batch."""
        sub = self.subscribe()
        try:
            while True:
                first = await sub.get()
                batch = (first, *sub.drain(BATCH - 1))
                self.target.post_message(EngineEvents(batch))
                self._report_drops(sub)
                # Let the console process the batch before draining the next one.
                await asyncio.sleep(0)
        finally:
            self._pump_ended = True

    def pull(self) -> None:
        """Take one snapshot and post it (the refresh timer calls this)."""
        self.pulls += 1
        taken = time.monotonic()
        self.target.post_message(SnapshotPulled(self.handle.snapshot(), taken))
        if self._pump_ended and self.subscription is not None and (late := self.subscription.drain(BATCH)):
            self.target.post_message(EngineEvents(tuple(late)))  # the pump failed: the engine process is gone

    def _report_drops(self, sub: Subscription) -> None:
        if sub.dropped != self._dropped_seen:
            self._dropped_seen = sub.dropped
            self.target.post_message(EventsDropped(sub.dropped))
