"""The notifier: a lossy subscriber of the engine's event bus that routes events to channels.

Usage::

    notifier = Notifier.from_settings(settings.notifications)
    notifier.start(engine.subscribe("notifier", maxsize=1000))   # lossy: never slows the engine
    ...
    notifier.statuses()           # per channel: queued, sent, failed, last success
    await notifier.send_test()    # "send test notification"
    await notifier.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from tui_trader.config.notifications import NotificationSettings
from tui_trader.domain.enums import AlertLevel
from tui_trader.domain.events import Event
from tui_trader.engine.snapshots import ChannelStatus, TestNotificationResult
from tui_trader.ops.notify.channel import Channel, ChannelPolicy, frozen_upper
from tui_trader.ops.notify.notice import Notice, app_name, notice_for
from tui_trader.ops.notify.senders import EmailSender, Message, Sender, TelegramSender, WebhookSender

log = logging.getLogger(__name__)
TEST_TEXT = "test notification from tui-trader"


class EventSource(Protocol):
    """A bus subscription (``tui_trader.engine.bus.Subscription``)."""

    async def get(self) -> Event: ...

    def get_nowait(self) -> Event | None: ...


class Notifier:
    """Routes notices to channels, each running as its own task.

    Args:
        channels: The enabled channels.
        clock: Timezone-aware clock.
        zone: The zone every notice's time is read in (the console's, with its abbreviation); unset: as given.
        origin: Says where a notice comes from when it is routed (mode and account, :func:`origin_label`): the
            account is known only once the broker answered.
    """

    def __init__(self, channels: list[Channel], clock: Callable[[], datetime] | None = None,
                 zone: tzinfo | None = None, origin: Callable[[], str] | None = None) -> None:
        self.channels = channels
        self._now = clock or (lambda: datetime.now(UTC))
        self.zone = zone
        self._origin = origin or str
        self._tasks: list[asyncio.Task[None]] = []
        self._source: EventSource | None = None
        self.routed = 0

    @classmethod
    def from_settings(cls, settings: NotificationSettings, zone: tzinfo | None = None,
                      origin: Callable[[], str] | None = None) -> Notifier:
        """A notifier with one channel per enabled section of ``[notifications]`` (``zone`` and ``origin``: as
        :class:`Notifier` takes them)."""
        return cls([Channel(sender, policy_for(settings, levels, kinds))
                    for sender, levels, kinds in _enabled(settings)], zone=zone, origin=origin)

    def start(self, source: EventSource | None = None) -> None:
        """Start the channel tasks, and the pump from ``source`` when given."""
        self._tasks = [asyncio.create_task(c.run(), name=f"notify-{c.name}") for c in self.channels]
        if source is not None and self.channels:
            self._source = source
            self._tasks.append(asyncio.create_task(self._pump(source), name="notify-pump"))

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop every task (after up to ``grace_s`` seconds to deliver what is queued).

        The events the pump has not routed yet (a kill published right before the stop, the
        engine's own stop alerts) are routed first; the grace period skips the batch window (a
        daily summary or a kill notice queued at stop goes out now), and what is still
        undelivered when it ends is logged as lost.
        """
        while self._source is not None and (event := self._source.get_nowait()) is not None:
            self.route(event)
        if grace_s > 0:
            for channel in self.channels:
                channel.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_idle(), grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for status in self.statuses():
            if status.queued:
                log.warning("%s: %d notices not delivered at stop (lost)", status.name, status.queued)

    async def wait_idle(self) -> None:
        """Wait until every channel has delivered (or given up on) what it holds."""
        await asyncio.gather(*(c.wait_idle() for c in self.channels))

    def route(self, event: Event) -> None:
        """Offer the notice ``event`` calls for to every channel; never blocks."""
        notice = notice_for(event)
        if notice is not None:
            self.notify(notice)

    def notify(self, notice: Notice) -> None:
        """Offer ``notice`` (its time in :attr:`zone`, its origin said) to every channel whose filters accept it;
        never blocks."""
        self.routed += 1
        notice = notice.routed(self.zone, self._origin())
        for channel in self.channels:
            channel.offer(notice)

    def statuses(self) -> tuple[ChannelStatus, ...]:
        """One status per channel, for the console."""
        return tuple(c.status() for c in self.channels)

    async def send_test(self, text: str = TEST_TEXT) -> dict[str, str]:
        """Send a test message on every channel now (bypassing batching); ``{name: "ok" | error}``."""
        return {r.channel: "ok" if r.ok else r.detail for r in await self.send_test_results(text)}

    async def send_test_results(self, text: str = TEST_TEXT) -> tuple[TestNotificationResult, ...]:
        """Send a test message on every channel at once (one attempt each, no batching, no retry).

        Returns one result per channel, in channel order; the channels' statuses count the attempt.
        """
        notice = Notice(self._now(), AlertLevel.INFO, "test", text).routed(self.zone, self._origin())
        message = Message(f"{app_name(notice.origin)}: {text}", notice.line, (notice,))
        results = await asyncio.gather(*(c.try_send(message) for c in self.channels))
        return tuple(TestNotificationResult(c.name, ok, "" if ok else c.last_error)
                     for c, ok in zip(self.channels, results, strict=True))

    async def _pump(self, source: EventSource) -> None:
        while True:
            self.route(await source.get())


def policy_for(settings: NotificationSettings, levels: Sequence[str], kinds: Sequence[str] | None,
               ) -> ChannelPolicy:
    """The channel policy from the shared settings and the channel's own filters."""
    s = settings
    return ChannelPolicy(frozen_upper(levels), frozenset(kinds if kinds is not None else s.kinds),
                         s.batch_window_s, s.max_per_minute, s.timeout_s, s.retries, s.retry_initial_s,
                         s.queue_size, retry_max_s=s.retry_max_s)


def _enabled(settings: NotificationSettings) -> list[tuple[Sender, Sequence[str], Sequence[str] | None]]:
    out: list[tuple[Sender, Sequence[str], Sequence[str] | None]] = []
    t, e, w = settings.telegram, settings.email, settings.webhook
    if t.enabled:
        out.append((TelegramSender(t, settings.ca_file), t.levels, t.kinds))
    if e.enabled:
        out.append((EmailSender(e, settings.ca_file), e.levels, e.kinds))
    if w.enabled:
        out.append((WebhookSender(w, settings.ca_file), w.levels, w.kinds))
    return out
