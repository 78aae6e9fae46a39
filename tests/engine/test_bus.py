"""The event bus: a lossy subscriber drops its oldest event and counts it; a lossless one never drops; a subscriber
may take only some events."""

from __future__ import annotations

from datetime import UTC, datetime

from tui_trader.domain import Alert, AlertLevel
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.bus import EventBus, Subscription

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def alert(i: int) -> AlertRaised:
    return AlertRaised(T0, Alert(AlertLevel.INFO, "test", str(i), T0))


async def test_publish_when_lossy_queue_full_then_oldest_dropped_and_counted() -> None:
    bus = EventBus()
    sub = bus.subscribe("console", maxsize=3)
    for i in range(5):
        bus.publish(alert(i))
    assert [e.alert.text for e in sub.drain()] == ["2", "3", "4"]  # type: ignore[attr-defined]
    assert sub.dropped == 2


async def test_publish_when_lossless_backlog_passes_bound_then_nothing_dropped_and_overflow_reported() -> None:
    bus = EventBus()
    overflows: list[Subscription] = []
    sub = bus.subscribe("journal", maxsize=3, lossless=True, on_overflow=overflows.append)
    for i in range(5):
        bus.publish(alert(i))
    assert [e.alert.text for e in sub.drain()] == ["0", "1", "2", "3", "4"]  # type: ignore[attr-defined]
    assert sub.dropped == 0
    assert len(overflows) == 2


async def test_publish_when_a_subscriber_keeps_some_then_its_choice_is_made_as_each_is_published() -> None:
    bus = EventBus()
    sub = bus.subscribe("journal", lossless=True)
    everything = bus.subscribe("console")
    bus.publish(alert(0))
    sub.keep = lambda event: False  # from here on: the earlier event, still queued, stays
    bus.publish(alert(1))
    assert [e.alert.text for e in sub.drain()] == ["0"]  # type: ignore[attr-defined]
    assert [e.alert.text for e in everything.drain()] == ["0", "1"]  # type: ignore[attr-defined]
