"""A critical notice against a channel's pacing: the rate limit, a retry's backoff, a server's Retry-After,
the cut Telegram and Discord make in a long message, and the stop. Real HTTP servers on loopback."""

from __future__ import annotations

import pytest

from tui_trader.domain.enums import AlertLevel
from tui_trader.ops.notify import Channel, Notice, Notifier

from .conftest import eventually
from .servers import Busy, HttpServer
from .test_notify import NOW, notice, policy, running, telegram, webhook

KILL = "kill switch engaged"


def kill() -> Notice:
    return notice(KILL, AlertLevel.CRITICAL, "kill_switch")


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
