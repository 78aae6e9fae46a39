"""A small typed event bus: one bounded queue per subscriber; ``publish`` never blocks.

A lossy subscriber (the console) drops its oldest event on overflow and counts the drop, so
the console can raise a warning; a lossless subscriber (the journal) never drops: when its
queue is full the bus calls its ``on_overflow`` hook, and the engine treats that as a journal
failure and halts trading. A subscriber may take only some events (its ``keep``), decided as each is published.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tui_trader.domain.events import Event


class Subscription:
    """One subscriber's queue of events."""

    def __init__(
        self,
        name: str,
        maxsize: int,
        lossless: bool,
        on_overflow: Callable[[Subscription], None] | None = None,
    ) -> None:
        self.name = name
        self.lossless = lossless
        self.dropped = 0
        self.maxsize = maxsize
        # A lossless queue is unbounded (it never drops); ``maxsize`` is then only the backlog
        # beyond which ``on_overflow`` tells the engine its consumer is falling behind.
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=0 if lossless else maxsize)
        self._on_overflow = on_overflow
        self.keep: Callable[[Event], bool] | None = None
        """The events the subscriber takes from now on, when not all (set by its owner): asked as each is published,
        so what it leaves out depends on the moment the event happened, not when it is read."""

    def offer(self, event: Event) -> None:
        """Enqueue ``event`` without blocking (unless :attr:`keep` leaves it out); drop the oldest on overflow (lossy
        subscribers)."""
        if self.keep is not None and not self.keep(event):
            return
        if self.lossless:
            self._queue.put_nowait(event)
            if self._queue.qsize() > self.maxsize and self._on_overflow is not None:
                self._on_overflow(self)
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        """Wait for the next event."""
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        """The next event if one is queued, else ``None``."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def drain(self, limit: int = 10_000) -> list[Event]:
        """Up to ``limit`` queued events, oldest first, without waiting."""
        out: list[Event] = []
        while len(out) < limit and not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    @property
    def backlog(self) -> int:
        """How many events wait in the queue."""
        return self._queue.qsize()


class EventBus:
    """Fan-out of engine events to bounded per-subscriber queues."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []

    def subscribe(
        self,
        name: str,
        *,
        maxsize: int = 10_000,
        lossless: bool = False,
        on_overflow: Callable[[Subscription], None] | None = None,
    ) -> Subscription:
        """Register a subscriber and return its queue (taking every event until its :attr:`Subscription.keep` is
        set)."""
        sub = Subscription(name, maxsize, lossless, on_overflow)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering events to ``sub``."""
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; never blocks, never awaits."""
        for sub in self._subscribers:
            sub.offer(event)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The current subscribers (for health: backlog and drops per queue)."""
        return tuple(self._subscribers)
