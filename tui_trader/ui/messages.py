"""Messages the bridge posts into the console: small dataclasses (after Toolong)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui_trader.domain.events import Event
from tui_trader.engine.snapshots import EngineSnapshot


@dataclass
class SnapshotPulled(Message):
    """A fresh engine snapshot; a backlog of them collapses to the newest."""

    snapshot: EngineSnapshot
    taken: float
    """``time.monotonic()`` just before the snapshot was taken: one taken before a snapshot the
    screen drew since (after a command, after Ctrl+K) is older than what is on screen."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotPulled)


@dataclass
class EngineEvents(Message):
    """A batch of discrete engine facts (orders, fills, alerts, state changes), oldest first."""

    events: tuple[Event, ...]


@dataclass
class EventsDropped(Message):
    """The console's event queue overflowed; ``total`` events were dropped so far."""

    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsDropped)
