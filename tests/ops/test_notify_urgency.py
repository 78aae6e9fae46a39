"""A critical notice against a channel's pacing: the rate limit, a retry's backoff, a server's Retry-After,
a slow send in progress, the cut Telegram and Discord make in a long message, and the stop. Real HTTP and
SMTP servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tui_trader.domain.enums import AlertLevel
from tui_trader.ops.notify import Channel, Notice, Notifier

from .conftest import SMTP_PASSWORD, SMTP_USER, eventually
from .servers import Busy, GatedHandler, Hold, HttpServer, smtp_server
from .test_notify import NOW, notice, policy, running, telegram, webhook
from .test_notify_email import email_channel

KILL = "kill switch engaged"
JOURNAL = "journal write failed"
HELD_TIMEOUT_S = 10.0  # a held send outlasts eventually(): a kill waiting for its answer (or timeout) fails the test


def kill() -> Notice:
    return notice(KILL, AlertLevel.CRITICAL, "kill_switch")


def journal_failure() -> Notice:
    return notice(JOURNAL, AlertLevel.CRITICAL, "system")


def before(text: str, first: str, second: str) -> bool:
    """True when ``first`` appears in ``text`` ahead of ``second``."""
    return -1 < text.find(first) < text.find(second)


async def test_rate_limit_spent_then_a_kill_notice_goes_at_once_ahead_of_the_waiting_notice(http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(batch_window_s=0, max_per_minute=1, rate_period_s=60))
    async with running(channel):
        channel.offer(notice("first"))
        await eventually(lambda: channel.status().sent == 1)
        channel.offer(notice("risk warning waiting for a slot"))
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 2, what="the kill delivered without a rate-limit slot")
    text = http.requests[1].json()["text"]
    assert before(text, KILL, "risk warning waiting for a slot")


async def test_kill_sent_then_it_took_a_rate_limit_slot_and_the_next_notice_waits_for_one(http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(batch_window_s=0, max_per_minute=1, rate_period_s=0.5))
    async with running(channel):
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 1)
        channel.offer(notice("after the kill"))
        await eventually(lambda: channel.status().sent == 2)
    assert http.times[1] - http.times[0] >= 0.45


async def test_retry_backing_off_then_a_kill_notice_cuts_it_short_and_leads_the_message(http: HttpServer) -> None:
    http.plan = [500]
    channel = Channel(webhook(http.url), policy(batch_window_s=0, retry_initial_s=60, retries=2))
    async with running(channel):
        channel.offer(notice("risk warning"))
        await eventually(lambda: channel.status().last_failure is not None, what="the first attempt failed")
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 1, what="the kill delivered without waiting the backoff")
    assert len(http.requests) == 2
    text = http.requests[1].json()["text"]
    assert before(text, KILL, "risk warning")
    assert channel.status().queued == 0


@pytest.mark.parametrize("busy", [Busy(429, 1), Busy(503, 2, as_date=True)], ids=["429-seconds", "503-http-date"])
async def test_webhook_busy_with_retry_after_then_waits_as_asked_and_delivers(http: HttpServer, busy: Busy) -> None:
    http.plan = [busy]
    channel = Channel(webhook(http.url), policy(retries=2, retry_initial_s=0.05))
    async with running(channel):
        channel.offer(kill())
        await eventually(lambda: channel.status().sent + channel.status().failed == 1, within=10)
    status = channel.status()
    assert (status.sent, status.failed, status.retried) == (1, 0, 1)
    assert len(http.requests) == 2


async def test_webhook_asking_to_wait_an_hour_then_retried_after_retry_max_s(http: HttpServer) -> None:
    http.plan = [Busy(429, 3600, hold=False)]
    channel = Channel(webhook(http.url), policy(retries=1, retry_max_s=0.2))
    async with running(channel):
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 1)
    assert len(http.requests) == 2


@pytest.mark.parametrize(("shape", "key"), [("telegram", "text"), ("discord", "content")])
async def test_kill_after_many_fills_then_its_line_survives_the_length_cut(http: HttpServer, shape: str,
                                                                           key: str) -> None:
    sender = telegram(http.url) if shape == "telegram" else webhook(http.url, "discord")
    channel = Channel(sender, policy(batch_window_s=60))
    async with running(channel):
        for i in range(49):
            channel.offer(Notice(NOW, AlertLevel.INFO, "fills", f"filled BUY 100 AAPL @ 190.5 (ema_cross) #{i}",
                                 f"ref-ema_cross-AAPL-20260303-{i:04d}"))
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 1)
    text = http.requests[0].json()[key]
    assert f"[CRITICAL] {KILL}" in text  # the line, with its time (the subject names it too)
    assert "#48" not in text  # the message was cut: the fills at its end


async def test_stop_while_the_rate_limit_is_spent_then_the_queued_notice_is_delivered(http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(batch_window_s=0, max_per_minute=1, rate_period_s=60))
    notifier = Notifier([channel])
    notifier.start()
    notifier.notify(notice("first"))
    await eventually(lambda: channel.status().sent == 1)
    notifier.notify(notice("daily summary 2026-03-03", AlertLevel.INFO, "daily_summary"))
    await notifier.stop(grace_s=5)
    assert len(http.requests) == 2
    assert "daily summary 2026-03-03" in http.requests[1].json()["text"]


async def test_stop_while_a_retry_backs_off_then_the_message_is_sent_again_at_once(http: HttpServer) -> None:
    http.plan = [500]
    channel = Channel(webhook(http.url), policy(batch_window_s=0, retry_initial_s=60))
    notifier = Notifier([channel])
    notifier.start()
    notifier.notify(notice("daily summary 2026-03-03", AlertLevel.INFO, "daily_summary"))
    await eventually(lambda: channel.status().last_failure is not None, what="the first attempt failed")
    await notifier.stop(grace_s=5)
    assert channel.status().sent == 1
    assert "daily summary 2026-03-03" in http.requests[1].json()["text"]


@asynccontextmanager
async def warning_held(http: HttpServer, answer: int = 200, **changes: object
                       ) -> AsyncIterator[tuple[Channel, asyncio.Event]]:
    """A webhook channel running (its policy with ``changes``), its WARNING's request held by the server until the event
    yielded is set (then answered ``answer``)."""
    released = asyncio.Event()
    http.plan = [Hold(released, answer)]
    channel = Channel(webhook(http.url), policy(batch_window_s=0, timeout_s=HELD_TIMEOUT_S, **changes))
    async with running(channel):
        channel.offer(notice("risk warning"))
        await eventually(lambda: len(http.requests) == 1, what="the warning's send in progress")
        yield channel, released


@pytest.mark.parametrize("answer", [200, 500], ids=["then-delivered", "then-failed-and-retried"])
async def test_slow_webhook_holding_a_warning_then_a_kill_notice_overtakes_it_and_the_warning_still_arrives_once(
        http: HttpServer, answer: int) -> None:
    async with warning_held(http, answer) as (channel, released):
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 1, what="the kill delivered while the warning is held")
        released.set()
        await eventually(lambda: channel.status().sent == 2 and channel.status().queued == 0)
    carried = [("risk warning" in r.json()["text"], KILL in r.json()["text"]) for r in http.requests]
    retry = [(True, False)] if answer == 500 else []  # the warning's own retry, after the kill
    assert carried == [(True, False), (False, True), *retry]
    assert (channel.status().failed, channel.status().retried) == (0, len(retry))


async def test_slow_webhook_holding_a_warning_then_kill_and_journal_failure_at_once_overtake_it_in_order(
        http: HttpServer) -> None:
    async with warning_held(http) as (channel, released):
        channel.offer(kill())
        channel.offer(journal_failure())
        await eventually(lambda: channel.status().sent == 1, what="the criticals delivered while the warning is held")
        released.set()
        await eventually(lambda: channel.status().sent == 2)
    text = http.requests[1].json()["text"]
    assert before(text, KILL, JOURNAL)
    assert "risk warning" not in text


async def test_slow_webhook_holding_a_warning_then_each_later_critical_overtakes_it_in_turn(http: HttpServer) -> None:
    async with warning_held(http) as (channel, released):
        channel.offer(kill())
        await eventually(lambda: channel.status().sent == 1, what="the kill delivered while the warning is held")
        channel.offer(journal_failure())
        await eventually(lambda: channel.status().sent == 2, what="the journal failure delivered after it")
        released.set()
        await eventually(lambda: channel.status().sent == 3)
    texts = [r.json()["text"] for r in http.requests]
    assert [KILL in t for t in texts] == [False, True, False]
    assert [JOURNAL in t for t in texts] == [False, False, True]


async def test_stop_while_a_slow_send_holds_a_warning_then_the_kill_notified_at_stop_overtakes_it(
        http: HttpServer) -> None:
    released = asyncio.Event()
    http.plan = [Hold(released)]
    channel = Channel(webhook(http.url), policy(batch_window_s=0, timeout_s=HELD_TIMEOUT_S))
    notifier = Notifier([channel])
    notifier.start()
    notifier.notify(notice("risk warning"))
    await eventually(lambda: len(http.requests) == 1, what="the warning's send in progress")
    notifier.notify(kill())
    stopping = asyncio.create_task(notifier.stop(grace_s=HELD_TIMEOUT_S))
    await eventually(lambda: channel.status().sent == 1, what="the kill delivered within the grace, ahead")
    released.set()
    await stopping
    assert (channel.status().sent, channel.status().queued) == (2, 0)
    assert KILL in http.requests[1].json()["text"]


async def test_idle_channel_then_kill_and_journal_failure_at_once_go_in_one_message_in_order(
        http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(batch_window_s=0))
    async with running(channel):
        channel.offer(kill())
        channel.offer(journal_failure())
        await eventually(lambda: channel.status().sent == 1 and channel.status().queued == 0)
    (request,) = http.requests
    assert before(request.json()["text"], KILL, JOURNAL)


async def test_warning_waiting_out_a_retry_after_then_a_kill_notice_leaves_with_it_when_the_wait_ends(
        http: HttpServer) -> None:
    http.plan = [Busy(503, 1, hold=False)]
    channel = Channel(webhook(http.url), policy(batch_window_s=0, retries=2))
    async with running(channel):
        channel.offer(notice("risk warning"))
        await eventually(lambda: channel.status().last_failure is not None, what="the 503 with Retry-After")
        channel.offer(kill())
        await eventually(lambda: channel.status().sent >= 1 and channel.status().queued == 0, within=10)
    assert len(http.requests) == 2  # the kill was not sent into the wait the server asked for, nor after it
    assert before(http.requests[1].json()["text"], KILL, "risk warning")


@pytest.fixture
def gated_relay(certificate: tuple[Path, Path]) -> Iterator[tuple[int, GatedHandler]]:
    """A STARTTLS relay holding its first session at MAIL until the test opens its gate."""
    controller, handler = smtp_server(*certificate, SMTP_USER, SMTP_PASSWORD, GatedHandler())
    controller.start()
    yield controller.port, handler  # type: ignore[misc]
    handler.gate.set()
    controller.stop()


async def test_slow_relay_holding_a_warning_then_a_kill_email_arrives_first(
        gated_relay: tuple[int, GatedHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = gated_relay
    channel = email_channel(port, certificate[0], batch_window_s=0, timeout_s=HELD_TIMEOUT_S)
    async with running(channel):
        channel.offer(notice("risk warning"))
        await eventually(lambda: handler.held == 1, what="the warning's session held at MAIL")
        channel.offer(kill())
        await eventually(lambda: len(handler.messages) == 1, what="the kill email while the warning is held")
        handler.gate.set()
        await eventually(lambda: channel.status().sent == 2, within=10)
    subjects = [m["Subject"] for m in handler.messages]
    assert KILL in subjects[0]
    assert "risk warning" not in subjects[0]
    assert "risk warning" in subjects[1]
    assert len(subjects) == 2
