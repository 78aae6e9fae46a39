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
is kept (earlier would only meet another refusal); when it ends, the critical notice leaves with
the batch that was waiting, not after that batch's remaining retries.

Nor does a CRITICAL notice wait for the answer to a lesser message already sent (a slow relay, a
webhook holding the request): it overtakes it in a message of its own, while that answer is still
awaited, taking along what is queued before it of the conditions it is news of (the kill switch released before it is
engaged again: the phone is not told last that it is released); if the message it overtook then fails, the ends of
those conditions are left out of it, neither sent again nor held (the beginning is the news); if it is delivered, it was
still sent first, and what overtook it stays the last word here of those conditions (the release answered late does not
end the new kill, nor make the next release news of nothing). A send is never cut off to make room (the server may
already have the message, and sending it again would duplicate it). Critical notices keep their order: one critical
message is in flight at a time, and what is queued behind it waits for it (or joins it, when it is sent again).
A dead or hanging channel costs the engine nothing, and the alert is still in the console and the
journal, which do not depend on it.

The end of a condition whose beginning was sent (the link back after "broker disconnected") is not lost to a full
queue or a failing server, unless the condition began again after it (the beginning is then the news, and the end
alone would be the phone's last word while it holds): the queue drops something else for room, and an end given up
after its retries is held for the next message, which it does not wait for: after a backoff of its own (the retry
delay, doubling with each message it went in) it goes alone, as it does in a flush at stop, without a batch window (it
is owed, not news); in at most :data:`END_MESSAGES` messages (a dead channel does not carry it forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tui_trader.domain.enums import AlertLevel
from tui_trader.engine.snapshots import ChannelStatus
from tui_trader.ops.notify.http import DeliveryError
from tui_trader.ops.notify.notice import Notice, body_of, subject_of
from tui_trader.ops.notify.senders import Message, Sender

log = logging.getLogger(__name__)
LEVEL_EXEMPT = frozenset({"fills", "daily_summary"})
END_MESSAGES = 3  # the messages an owed end goes in before it is given up for good
Outcome = Literal["delivered", "cut", "given up", "superseded"]


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
        self._urgent = asyncio.Event()  # something urgent is queued (or a flush): no waiting
        self._overtake = asyncio.Event()  # a critical notice came while a lesser message is in flight
        self._flushing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._sent_at: deque[float] = deque()
        # The batches being delivered: a lesser one and a critical one overtaking it; each leaves out, from its next
        # attempts, the ends whose condition began again after them (_leave_out_superseded).
        self._in_flight: list[list[Notice]] = []
        self._dropped_told = 0  # drops already mentioned in a message
        self._told: set[str] = set()  # the conditions (Notice.topic) whose beginning was sent here, and not yet the end
        self._held: dict[Notice, int] = {}  # owed ends given up, for the next message: how many messages each went in
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

        One of its kinds must be listed (:attr:`Notice.kinds`: the kill switch's alert of a risk trip is both
        ``kill_switch`` and ``risk``); so must the level, except for fills and daily summaries (facts at INFO level
        that a channel asks for by kind). The end of a condition whose beginning this channel sent or is sending
        (:attr:`Notice.topic`: the link back after the link lost, at INFO) passes whatever its level and kind (the
        kill switch released, where only its risk trip was told); a notice sent only there (:attr:`Notice.owed_only`)
        goes nowhere else. Test notices always pass.
        """
        if notice.kind == "test":
            return True
        if notice.ends and notice.topic in self._begun(*self._in_flight, self._held, self._queue):
            return True
        return bool(notice.kinds & self.policy.kinds) and self._wanted(notice)

    def _wanted(self, notice: Notice) -> bool:
        """True when the levels let ``notice`` through on its own, not only as the end of what was told here."""
        return not notice.owed_only and (notice.kind in LEVEL_EXEMPT or notice.level.value in self.policy.levels)

    def _begun(self, *ahead: Iterable[Notice]) -> set[str]:
        """The conditions told begun here once the notices ``ahead`` are sent: sent, or ahead, and not ended since.

        A beginning dropped from a full queue, or given up, is not: the phone never heard the link was lost, and
        "broker connected" would be news of nothing (unless an earlier beginning of that condition was sent).
        """
        begun = set(self._told)
        for notices in ahead:
            for notice in notices:
                _tell(begun, notice)
        return begun

    def _owed(self, batch: Iterable[Notice]) -> list[Notice]:
        """``batch`` without the ends nobody is owed: queued while their beginning was, which was then dropped or
        given up (a notice the levels let through on its own stays)."""
        begun, kept = self._begun(*self._in_flight), []
        for notice in batch:
            if not notice.ends or notice.topic in begun or self._wanted(notice):
                _tell(begun, notice)
                kept.append(notice)
        return kept

    def _ends_owed(self, notices: Sequence[Notice]) -> list[int]:
        """The positions in ``notices`` of the ends of conditions whose beginning was sent here or is in flight (and
        whose end is not held): the first end of each; a later one is news of a beginning after it, or of nothing.

        Not an end that a beginning of its condition follows in ``notices``: that beginning is the news (the kill switch
        released, then engaged again), and the end kept without it would be the phone's last word while the condition
        holds again.
        """
        told, owed, superseded = self._begun(*self._in_flight, self._held), [], _superseded(notices)
        for i, notice in enumerate(notices):
            if notice.ends and notice.topic in told and i not in superseded:
                told.discard(notice.topic)
                owed.append(i)
        return owed

    def offer(self, notice: Notice) -> bool:
        """Queue ``notice`` if the filters accept it; never blocks. Returns whether it was queued."""
        if not self.accepts(notice):
            return False
        self._queue.append(notice)
        self._bound_queue()
        self._idle.clear()
        self._wakeup.set()
        if _urgent(notice):
            self._urgent.set()
        if notice.level is AlertLevel.CRITICAL:
            self._overtake.set()
        return True

    def _bound_queue(self) -> None:
        """Drop the oldest notices below CRITICAL beyond ``queue_size``: a burst of fills never pushes out a kill
        notice, nor the end of a condition whose beginning was sent (the phone told "broker disconnected" would never
        hear it is back), unless the condition began again behind it: then it goes first, and the news stays (kept,
        "reconnected" would be the last word while the link is lost again). Those ends are one per condition: the
        queue holds at most that many more."""
        while len(self._queue) > self.policy.queue_size:
            owed = self._ends_owed(self._queue)
            droppable = [i for i in range(len(self._queue)) if i not in owed]
            if not droppable:
                return
            del self._queue[next((i for i in droppable if self._queue[i].level is not AlertLevel.CRITICAL),
                                 droppable[0])]
            self.dropped += 1

    def status(self) -> ChannelStatus:
        """Counters and timestamps for the console."""
        queued = len(self._queue) + sum(map(len, self._in_flight)) + len(self._held)
        return ChannelStatus(self.name, queued, self.sent, self.failed, self.dropped, self.retried, self.last_success,
                             self.last_failure, self.last_error)

    def flush(self) -> None:
        """Deliver what is queued now, and the owed ends held: no batch window, no rate-limit slot, no backoff (at
        stop)."""
        if self._queue or self._in_flight or self._held:  # in flight: a batch waiting out a retry's backoff
            self._flushing = True
            self._urgent.set()
            self._overtake.set()  # cuts the backoff of a critical message overtaking a slow one
        if self._held:
            self._wakeup.set()  # cuts their backoff short

    async def wait_idle(self) -> None:
        """Wait until every queued notice was delivered or given up (an owed end held: given up for good)."""
        await self._idle.wait()

    async def run(self) -> None:
        """Deliver batches until cancelled."""
        self._in_flight.clear()  # a batch cut off by an earlier stop was not delivered, and is gone
        while True:
            window = await self._until_woken()
            if window > 0:
                await self._until_urgent(window)
            await self._pace()
            held, self._held = self._held, {}
            batch = self._take(held)
            if batch:
                await self._deliver(batch, held=held)
            if not self._queue:
                self._flushing = False  # a flush that met an empty queue must not rush the next notice
                self._urgent.clear()
                if not self._held:
                    self._idle.set()

    async def _until_woken(self) -> float:
        """Wait for a notice (or a flush); with owed ends held, no longer than their backoff: the phone told "broker
        disconnected" is not left waiting for some other news to hear that the link is back. Returns the batch window
        to wait now: none once the backoff is over (the ends are owed, not news that a window gathers), and never
        past it.

        The backoff is the retry delay doubled for each message they went in (the most any went in), at most
        ``retry_max_s``.
        """
        if not self._held:
            await self._wakeup.wait()
            return self.policy.batch_window_s
        loop, messages = asyncio.get_running_loop(), max(self._held.values())
        due = loop.time() + min(self.policy.retry_initial_s * 2 ** (messages - 1), self.policy.retry_max_s)
        await _until(self._wakeup, due - loop.time())
        return min(self.policy.batch_window_s, due - loop.time())

    def _take(self, held: Iterable[Notice]) -> list[Notice]:
        """The batch to send: the ``held`` ends, then the queue (without the ends nobody is owed any more)."""
        batch = self._owed([*held, *self._queue])
        self._queue.clear()
        self._wakeup.clear()
        self._urgent.clear()
        self._overtake.clear()
        self._flushing = False
        return batch

    def _take_critical(self) -> list[Notice]:
        """The critical notices queued, with those queued ahead of them of the conditions they are news of (in their
        order), leaving the others for the batch after the one in flight; that batch keeps its window, pace and
        backoff unless something urgent stays queued."""
        self._overtake.clear()
        ahead = _overtaking(self._queue)
        batch = self._owed(n for i, n in enumerate(self._queue) if i in ahead)
        if batch:
            self._queue = deque(n for i, n in enumerate(self._queue) if i not in ahead)
            if not self._flushing and not any(_urgent(n) for n in self._queue):
                self._urgent.clear()
        return batch

    async def _until_urgent(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for something urgent; returns whether it came."""
        return await _until(self._urgent, seconds)

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

    async def _deliver(self, batch: list[Notice], cut: asyncio.Event | None = None,
                       held: Mapping[Notice, int] | None = None) -> Outcome:
        """Deliver ``batch`` as one message; a backoff ends early when ``cut`` (default: urgency) is set. ``held``:
        the owed ends it carries that were given up before, and in how many messages. Returns how it ended."""
        dropped, self._dropped_told = self.dropped - self._dropped_told, self.dropped
        self._in_flight.append(batch)
        outcome = await self._attempts(batch, dropped, cut or self._urgent)
        # The last in flight: batches nest (one overtaking this one is done before it). Not on cancellation: a batch
        # cut off at stop still counts as undelivered.
        self._in_flight.pop()
        held = held or {}
        if outcome in ("cut", "superseded"):
            self._dropped_told -= dropped  # not told: the next message tells them
        if outcome == "given up":
            self._hold(batch, held)
        elif outcome == "cut":  # back to the head of the queue, to leave at once with what cut it short
            # The held ends stay held, and leave ahead of the queue as they came: the message goes on, and is not
            # one more that they went in (counted anew, a cut at every message would carry them forever).
            self._held.update((n, held[n]) for n in batch if n in held)
            self._queue.extendleft(reversed([n for n in batch if n not in held]))
            self._bound_queue()
            if any(_urgent(n) for n in batch):
                self._urgent.set()
            self._wakeup.set()
        return outcome

    def _hold(self, batch: list[Notice], held: Mapping[Notice, int]) -> None:
        """Keep the owed ends of ``batch``, given up, for the next message: the phone told "broker disconnected" is
        told it is back once the channel delivers again. Not one that went in :data:`END_MESSAGES` messages (those whose
        condition began again after them are already left out of ``batch``: the beginning is the news)."""
        for i in self._ends_owed(batch):
            messages = held.get(batch[i], 0) + 1
            if messages < END_MESSAGES:
                self._held[batch[i]] = messages
            else:
                log.warning("%s: gave up on %r after %d messages", self.name, batch[i].title, messages)

    async def _attempts(self, batch: list[Notice], dropped: int, cut: asyncio.Event) -> Outcome:
        """Deliver ``batch`` as one message (with the count of the ``dropped`` notices), retrying; ``cut`` when ``cut``
        cut a backoff short (the message was not delivered and is to be sent again with what cut it).

        After a failed attempt, ``batch`` leaves out the ends whose condition began again after them: in it, in the
        queue, or in a critical message that overtook it (:meth:`_overtake_with`). Sent again, or held, "kill switch
        released" would arrive after the new kill, the phone's last word while trading is halted. A beginning queued
        during the backoff follows the retry (or cuts the backoff short and joins it): in order. ``superseded`` when
        nothing is left: the message is done, neither delivered nor failed (nothing in it is owed any more).
        """
        delay, asked_s = self.policy.retry_initial_s, None
        for attempt in range(self.policy.retries + 1):
            if attempt:
                if await self._back_off(delay, asked_s, cut):
                    return "cut"
                self.retried += 1
                delay *= 2
            error = await self._attempt(Message(subject_of(batch), body_of(batch, dropped), tuple(batch)))
            if error is None:
                return "delivered"
            _leave_out_superseded(batch, self._queue)
            if not batch:
                return "superseded"
            if not error.retryable:
                break
            asked_s = error.retry_after_s
        self.failed += 1
        log.warning("%s: gave up on a message after %d attempts: %s", self.name, attempt + 1, self.last_error)
        return "given up"

    async def _attempt(self, message: Message) -> DeliveryError | None:
        """One attempt at ``message``: its failure, or ``None`` once delivered.

        A message without a critical notice can be overtaken: while its answer is awaited, critical
        notices offered meanwhile go in messages of their own (:meth:`_overtake_with`). One with a
        critical notice cannot: the critical notices behind it keep their order by waiting for it.

        Delivered after them, it is still told before them (it was sent first): "kill switch released" answered after
        the new kill that overtook it does not end the kill, or the next release would be news of nothing here.
        """
        if any(n.level is AlertLevel.CRITICAL for n in message.notices):
            return await self._send(message)
        attempt = asyncio.ensure_future(self._send(message))
        overtaking: list[Notice] = []  # delivered while the answer was awaited
        try:
            while not await _first_done(attempt, self._overtake):
                overtaking += await self._overtake_with()
        finally:
            if not attempt.done():  # cancelled (at stop): the attempt ends with the channel
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
        error = attempt.result()
        if error is None:
            for notice in overtaking:  # told again, after the message they overtook
                _tell(self._told, notice)
        return error

    async def _overtake_with(self) -> list[Notice]:
        """Deliver the critical notices queued now, as one message, ahead of the answer awaited; returns them once
        delivered (none otherwise).

        It retries as any message; a backoff is cut short only by another critical notice (or a flush),
        which then leaves with it: the urgency that the lesser batch's backoff listens to is not spent here.
        """
        batch = self._take_critical()
        if batch:
            for overtaken in self._in_flight:  # not to be sent again, nor held, behind the beginning that is the news
                _leave_out_superseded(overtaken, batch)
            if await self._deliver(batch, self._overtake) == "delivered":
                return batch
        return []

    async def _back_off(self, delay: float, asked_s: float | None, cut: asyncio.Event) -> bool:
        """Wait before a retry; returns ``True`` when ``cut`` came first, or during a wait the server
        asked for (``asked_s``): that wait is kept whole (earlier only meets another refusal), then the
        message leaves with what came meanwhile instead of ahead of it.

        No wait is longer than ``retry_max_s``: a server asking for an hour would silence the channel.
        """
        wait = min(max(delay, asked_s or 0.0), self.policy.retry_max_s)
        if asked_s:
            await asyncio.sleep(wait)
            return cut.is_set()
        return await _until(cut, wait)

    async def try_send(self, message: Message) -> bool:
        """One delivery attempt; records success or failure. Returns whether it was delivered."""
        return await self._send(message) is None

    async def _send(self, message: Message) -> DeliveryError | None:
        """One delivery attempt, recorded in the counters: its failure, or ``None`` once delivered."""
        try:
            await self.sender.send(message, self.policy.timeout_s)
        except DeliveryError as exc:
            self.last_failure, self.last_error = self._now(), str(exc)
            log.info("%s: delivery failed: %s", self.name, exc)
            return exc
        except Exception as exc:  # noqa: BLE001 - a sender's bug must fail this message, not end the channel
            # Only the type: an unexpected exception's text may carry a URL with its token.
            self.last_failure, self.last_error = self._now(), f"unexpected {type(exc).__name__}"
            log.error("%s: sender raised %s", self.name, type(exc).__name__)
            return DeliveryError(self.last_error)
        self._sent_at.append(asyncio.get_running_loop().time())
        self.sent += 1
        for notice in message.notices:
            _tell(self._told, notice)
        self.last_success, self.last_error = self._now(), ""
        return None


def _tell(begun: set[str], notice: Notice) -> None:
    """Mark in ``begun`` the condition ``notice`` says began, or that it ended."""
    if notice.ends:
        begun.discard(notice.topic)
    elif notice.topic:
        begun.add(notice.topic)


def _overtaking(queue: Iterable[Notice]) -> set[int]:
    """The positions in ``queue`` of the notices that go ahead of the others: the critical ones, and those before them
    of the conditions they are news of. Left behind, "kill switch released" would follow the new "kill switch engaged"
    and be the phone's last word while trading is halted (as the end of a condition would precede its beginning)."""
    ahead: set[int] = set()
    topics: set[str] = set()
    for i, notice in reversed(list(enumerate(queue))):
        if notice.level is AlertLevel.CRITICAL or notice.topic in topics:
            ahead.add(i)
            if notice.topic:
                topics.add(notice.topic)
    return ahead


def _superseded(notices: Iterable[Notice]) -> set[int]:
    """The positions in ``notices`` of the ends of conditions that a later notice says began again."""
    superseded: set[int] = set()
    beginning: set[str] = set()
    for i, notice in reversed(list(enumerate(notices))):
        if notice.ends and notice.topic in beginning:
            superseded.add(i)
        elif notice.topic and not notice.ends:
            beginning.add(notice.topic)
    return superseded


def _leave_out_superseded(batch: list[Notice], later: Iterable[Notice]) -> None:
    """Leave out of ``batch`` the ends of conditions that a notice after them, in it or in ``later``, says began
    again."""
    superseded = _superseded([*batch, *later])
    batch[:] = [n for i, n in enumerate(batch) if i not in superseded]


def _urgent(notice: Notice) -> bool:
    """A notice that waits for no batch window, rate-limit slot or backoff."""
    return notice.level is AlertLevel.CRITICAL or notice.kind == "test"


async def _until(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; returns whether it is set.

    ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a cancel that
    arrives as the event is set, and the stop that sent it would then wait for this task forever.
    """
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def _first_done(task: asyncio.Future[DeliveryError | None], event: asyncio.Event) -> bool:
    """Wait until ``task`` is done or ``event`` is set; returns whether ``task`` is done."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return task.done()


def frozen_upper(values: Iterable[str]) -> frozenset[str]:
    """Level names normalised to upper case."""
    return frozenset(v.upper() for v in values)
