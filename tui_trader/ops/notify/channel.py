"""One notification channel: filters, a bounded queue, batching, rate limiting and retries.

:meth:`Channel.offer` never blocks and never awaits: it filters, appends to a bounded queue
(dropping the oldest non-critical notice when full, counted) and wakes the channel's own task.
That task waits a batch window, respects ``max_per_minute`` — notices arriving meanwhile join the
waiting batch, so a storm becomes one message — and delivers with a per-attempt timeout and
exponential backoff (longer when the server asks for it, never longer than ``retry_max_s``).

A CRITICAL notice (and a flush at stop) waits for none of this: it cuts the batch window short,
goes without a rate-limit slot (the message is still counted) and cuts a retry's backoff short
(the failed batch goes back to the head of the queue and leaves with it), so a kill or a dead
engine is told at once, ahead of the notices it found waiting. Only a wait the server asked for
is kept: earlier would only meet another refusal. A dead or hanging channel costs the engine
nothing, and the alert is still in the console and the journal, which do not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tui_trader.domain.enums import AlertLevel
from tui_trader.engine.snapshots import ChannelStatus
from tui_trader.ops.notify.http import DeliveryError
from tui_trader.ops.notify.notice import Notice, body_of, subject_of
from tui_trader.ops.notify.senders import Message, Sender

log = logging.getLogger(__name__)
LEVEL_EXEMPT = frozenset({"fills", "daily_summary"})


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """How a channel filters, batches, paces and retries."""

    levels: frozenset[str]
    kinds: frozenset[str]
    batch_window_s: float = 5.0
    max_per_minute: int = 20
    timeout_s: float = 10.0
    retries: int = 3
    retry_initial_s: float = 2.0
    queue_size: int = 500
    retry_max_s: float = 60.0
    rate_period_s: float = 60.0


class Channel:
    """A sender behind a queue; run :meth:`run` as a task.

    Args:
        sender: Delivers one message.
        policy: Filters, batching, pacing and retries.
        clock: Timezone-aware wall clock (for the status timestamps).
    """

    def __init__(self, sender: Sender, policy: ChannelPolicy, clock: Callable[[], datetime] | None = None) -> None:
        self.sender = sender
        self.policy = policy
        self._now = clock or (lambda: datetime.now(UTC))
        self._queue: deque[Notice] = deque()
        self._wakeup = asyncio.Event()
        self._urgent = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sent_at: deque[float] = deque()
        self._in_flight = 0
        self._retry_after = 0.0
        self._retryable = True
        self._dropped_told = 0  # drops already mentioned in a message
        self.sent = self.failed = self.dropped = self.retried = 0
        self.last_success: datetime | None = None
        self.last_failure: datetime | None = None
        self.last_error = ""

    @property
    def name(self) -> str:
        """The sender's name (telegram, email, webhook)."""
        return self.sender.name

    def accepts(self, notice: Notice) -> bool:
        """True when the channel's filters let ``notice`` through.

        The kind must be listed; so must the level, except for fills and daily summaries (facts
        at INFO level that a channel asks for by kind). Test notices always pass.
        """
        if notice.kind == "test":
            return True
        if notice.kind not in self.policy.kinds:
            return False
        return notice.kind in LEVEL_EXEMPT or notice.level.value in self.policy.levels

    def offer(self, notice: Notice) -> bool:
        """Queue ``notice`` if the filters accept it; never blocks. Returns whether it was queued."""
        if not self.accepts(notice):
            return False
        self._queue.append(notice)
        self._bound_queue()
        self._idle.clear()
        self._wakeup.set()
        if notice.level is AlertLevel.CRITICAL or notice.kind == "test":
            self._urgent.set()
        return True

    def _bound_queue(self) -> None:
        """Drop the oldest notices below CRITICAL beyond ``queue_size``: a burst of fills never pushes
        out a kill notice."""
        while len(self._queue) > self.policy.queue_size:
            victim = next((n for n in self._queue if n.level is not AlertLevel.CRITICAL), self._queue[0])
            self._queue.remove(victim)
            self.dropped += 1

    def status(self) -> ChannelStatus:
        """Counters and timestamps for the console."""
        return ChannelStatus(self.name, len(self._queue) + self._in_flight, self.sent, self.failed, self.dropped,
                             self.retried, self.last_success, self.last_failure, self.last_error)

    def flush(self) -> None:
        """Deliver what is queued now: no batch window, no rate-limit slot, no backoff (at stop)."""
        if self._queue or self._in_flight:  # in flight: a batch waiting out a retry's backoff
            self._urgent.set()

    async def wait_idle(self) -> None:
        """Wait until every queued notice was delivered or given up."""
        await self._idle.wait()

    async def run(self) -> None:
        """Deliver batches until cancelled."""
        while True:
            await self._wakeup.wait()
            if self.policy.batch_window_s > 0:
                await self._until_urgent(self.policy.batch_window_s)
            await self._pace()
            batch = self._take()
            if batch:
                await self._deliver(batch)
            if not self._queue:
                self._urgent.clear()  # a flush that met an empty queue must not rush the next notice
                self._idle.set()

    def _take(self) -> list[Notice]:
        batch = list(self._queue)
        self._queue.clear()
        self._wakeup.clear()
        self._urgent.clear()
        return batch

    async def _until_urgent(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for something urgent; returns whether it came.

        ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a cancel that
        arrives as the event is set, and the stop that sent it would then wait for this task forever.
        """
        if self._urgent.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._urgent.wait()
        return self._urgent.is_set()

    async def _pace(self) -> None:
        """Wait for a slot under ``max_per_minute`` (notices arriving meanwhile join the batch),
        unless something urgent is queued: it goes now, and its message still takes a slot."""
        loop, period = asyncio.get_running_loop(), self.policy.rate_period_s
        while not self._urgent.is_set():
            now = loop.time()
            while self._sent_at and now - self._sent_at[0] >= period:
                self._sent_at.popleft()
            if len(self._sent_at) < self.policy.max_per_minute:
                return
            await self._until_urgent(period - (now - self._sent_at[0]))

    async def _deliver(self, batch: list[Notice]) -> None:
        dropped, self._dropped_told = self.dropped - self._dropped_told, self.dropped
        message = Message(subject_of(batch), body_of(batch, dropped), tuple(batch))
        self._in_flight = len(batch)
        interrupted = await self._attempts(message)
        self._in_flight = 0  # not on cancellation: a batch cut off at stop still counts as undelivered
        if interrupted:  # back to the head of the queue, to leave at once with what cut it short
            self._dropped_told -= dropped
            self._queue.extendleft(reversed(batch))
            self._bound_queue()
            self._wakeup.set()

    async def _attempts(self, message: Message) -> bool:
        """Deliver ``message``, retrying; returns ``True`` when something urgent cut a backoff short
        (the message was not delivered and is to be sent again with it)."""
        delay = self.policy.retry_initial_s
        for attempt in range(self.policy.retries + 1):
            if attempt:
                if await self._back_off(delay):
                    return True
                self.retried += 1
                delay *= 2
            if await self.try_send(message):
                return False
            if not self._retryable:
                break
        self.failed += 1
        log.warning("%s: gave up on a message after %d attempts: %s", self.name, attempt + 1, self.last_error)
        return False

    async def _back_off(self, delay: float) -> bool:
        """Wait before a retry; returns ``True`` when something urgent came first.

        A wait the server asked for is kept whole (earlier only meets another refusal), but no wait
        is longer than ``retry_max_s``: a server asking for an hour would silence the channel.
        """
        wait = min(max(delay, self._retry_after), self.policy.retry_max_s)
        if self._retry_after:
            await asyncio.sleep(wait)
            return False
        return await self._until_urgent(wait)

    async def try_send(self, message: Message) -> bool:
        """One delivery attempt; records success or failure. Returns whether it was delivered."""
        try:
            await self.sender.send(message, self.policy.timeout_s)
        except DeliveryError as exc:
            self._retry_after, self._retryable = exc.retry_after_s or 0.0, exc.retryable
            self.last_failure, self.last_error = self._now(), str(exc)
            log.info("%s: delivery failed: %s", self.name, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a sender's bug must fail this message, not end the channel
            # Only the type: an unexpected exception's text may carry a URL with its token.
            self._retry_after, self._retryable = 0.0, True
            self.last_failure, self.last_error = self._now(), f"unexpected {type(exc).__name__}"
            log.error("%s: sender raised %s", self.name, type(exc).__name__)
            return False
        self._sent_at.append(asyncio.get_running_loop().time())
        self.sent += 1
        self.last_success, self.last_error = self._now(), ""
        return True


def frozen_upper(values: Iterable[str]) -> frozenset[str]:
    """Level names normalised to upper case."""
    return frozenset(v.upper() for v in values)
