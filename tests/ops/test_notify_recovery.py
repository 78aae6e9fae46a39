"""The end of what a channel was told is going on: the link back after the link lost, a farm back, an entry block
lifted, a health figure back to normal, the schedule's ACTIVE again, the kill switch released. Sent where the
beginning was, whatever the channel's levels; nowhere else (no INFO flood). The rule is pure; the channel sends to a
real webhook on loopback, the engine talks to the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tui_trader.config import Settings, load_settings
from tui_trader.config.notifications import WebhookSettings
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, ConnectionState
from tui_trader.domain.events import AlertRaised, ConnectionChanged, Event
from tui_trader.engine.factory import create_engine
from tui_trader.ops.notify import Channel, Notice, Notifier, WebhookSender
from tui_trader.ops.notify.notice import notice_for
from tui_trader.sim import SimGateway

from .conftest import eventually
from .servers import Busy, Hold, HttpServer, closed_port
from .test_notify import NOW, notice, policy, running, webhook
from .test_notify_urgency import HELD_TIMEOUT_S, KILL, warning_held
from .test_operations_wiring import notified

WARNING_UP = frozenset({"WARNING", "ERROR", "CRITICAL"})
ERROR_UP = frozenset({"ERROR", "CRITICAL"})  # email's default


def alert(level: AlertLevel, source: str, text: str, kind: str) -> AlertRaised:
    return AlertRaised(NOW, Alert(level, source, text, NOW, kind=kind))


def link(state: ConnectionState, previous: ConnectionState, detail: str = "connection lost") -> ConnectionChanged:
    return ConnectionChanged(NOW, state, detail, previous)


LOST = link(ConnectionState.DISCONNECTED, ConnectionState.CONNECTED)
BACK = alert(AlertLevel.INFO, "broker", "reconnected and reconciled: new entries no longer blocked by the lost link",
             "reconnected")
LINK_MADE = link(ConnectionState.CONNECTED, ConnectionState.CONNECTING, "account DUSIM0001")
ENGAGED, ENGAGED_AGAIN = (alert(AlertLevel.CRITICAL, "kill_switch", f"kill switch engaged by {by}", "kill")
                          for by in ("operator", "daily_loss"))
RELEASED, RELEASED_AGAIN = (alert(AlertLevel.WARNING, "kill_switch", f"kill switch released by operator: {why}",
                                  "kill_reset") for why in ("checked", "checked again"))
CONNECT_FAILED = alert(AlertLevel.ERROR, "broker", "could not connect to 127.0.0.1:4002: connection refused",
                       "connect_failed")


def farm(code: int, state: str, name: str) -> AlertRaised:
    if state == "broken":
        return alert(AlertLevel.WARNING, "broker", f"market data degraded ({code}): Market data farm connection is "
                     f"broken:{name}", "farm_broken")
    return alert(AlertLevel.INFO, "broker", f"market data farm back ({code}): Market data farm connection is OK:{name}",
                 "farm_ok")


def blocked(why: str) -> AlertRaised:
    return alert(AlertLevel.ERROR, "engine", f"new entries blocked: {why}", "entries_blocked")


def lifted(why: str) -> AlertRaised:
    return alert(AlertLevel.INFO, "engine", f"entry block lifted: {why}", "entries_unblocked")


def channel(levels: frozenset[str] = WARNING_UP, **changes: object) -> Channel:
    """A channel that is never run: what it queues is what it would send."""
    sender = WebhookSender(WebhookSettings(enabled=True, url=SecretStr("http://127.0.0.1:9/hook")))
    return Channel(sender, policy(levels=levels, **changes))


def offered(ch: Channel, *events: Event) -> list[str]:
    """The titles of the notices ``events`` call for that ``ch`` queues."""
    notices = [n for n in map(notice_for, events) if n is not None]
    return [n.title for n in notices if ch.offer(n)]


# -- the rule -------------------------------------------------------------------------------------------------------


def test_notice_for_a_loss_and_its_end_then_one_condition_named_by_both() -> None:
    pairs = [(LOST, BACK), (CONNECT_FAILED, LINK_MADE), (farm(2103, "broken", "usfarm"), farm(2104, "ok", "usfarm")),
             (blocked("market data stalled"), lifted("market data stalled")),
             (alert(AlertLevel.WARNING, "health", "cpu 91.0% reached the warning limit 80%", "health_cpu"),
              alert(AlertLevel.INFO, "health", "cpu back to normal: 12.0%", "health_cpu")),
             (alert(AlertLevel.WARNING, "schedule", "REDUCING: IB Gateway restart at 23:45", "schedule_reduced"),
              alert(AlertLevel.INFO, "schedule", "ACTIVE again: IB Gateway restart over", "schedule_restored")),
             (alert(AlertLevel.CRITICAL, "kill_switch", "KILL SWITCH ENGAGED by alice", "kill"),
              alert(AlertLevel.WARNING, "kill_switch", "kill switch released by alice: checked", "kill_reset")),
             (alert(AlertLevel.WARNING, "broker", "the gateway lost its link to IB's servers (2110)", "ib_link_broken"),
              alert(AlertLevel.INFO, "broker", "the gateway's link to IB's servers is restored (1102)",
                    "ib_link_restored"))]
    for began, ended in pairs:
        start, end = notice_for(began), notice_for(ended)
        assert start is not None
        assert end is not None
        assert (start.topic, start.ends, end.topic, end.ends, end.kind) == (end.topic, False, start.topic, True,
                                                                            start.kind), began
        assert start.topic


def test_notice_for_two_farms_or_two_entry_blocks_then_each_its_own_condition() -> None:
    topics = {n.topic for n in map(notice_for, (farm(2103, "broken", "usfarm"), farm(2103, "broken", "eufarm"),
                                                 blocked("market data stalled"), blocked("account refused")))
              if n is not None}
    assert topics == {"farm: usfarm", "farm: eufarm", "entries: market data stalled", "entries: account refused"}


def test_notice_for_an_info_that_ends_nothing_then_no_condition() -> None:
    # Not every INFO: a watched symbol, a strategy's word, a 2xxx notice from IB end nothing a channel was told.
    for event in (alert(AlertLevel.INFO, "market_data", "watching MSFT for this session", "watch"),
                  alert(AlertLevel.INFO, "strategies", "strategy ema_cross paused", "general"),
                  alert(AlertLevel.INFO, "broker", "2158: Sec-def data farm connection is OK:secdefnj",
                        "broker_error")):
        found = notice_for(event)
        assert found is not None
        assert (found.topic, found.ends) == ("", False)


def test_schedule_alerts_then_the_risk_kind() -> None:
    # They went to "system" (health, journal, engine failures): a trader who chose the risk kind never heard why every
    # entry was denied from 15:45 on, nor that the book was not flat at the close.
    for kind in ("schedule_reduced", "schedule_restored", "schedule_state_kept", "schedule_not_flat_at_close"):
        found = notice_for(alert(AlertLevel.WARNING, "schedule", "…", kind))
        assert found is not None
        assert found.kind == "risk", kind


def test_channel_at_warning_told_the_link_lost_then_takes_its_return_at_info_once() -> None:
    ch = channel()
    assert offered(ch, BACK) == []  # no loss told: an INFO as any other
    assert offered(ch, LOST, BACK, BACK) == ["broker disconnected", "broker: " + BACK.alert.text]


def test_channel_told_one_farm_broken_then_takes_that_farms_return_only() -> None:
    ch = channel()
    assert offered(ch, farm(2103, "broken", "usfarm"), farm(2106, "ok", "ushmds"), farm(2104, "ok", "usfarm")) == [
        "broker: market data degraded (2103): Market data farm connection is broken:usfarm",
        "broker: market data farm back (2104): Market data farm connection is OK:usfarm"]


def test_channel_that_did_not_take_the_loss_then_not_its_end_either() -> None:
    # Email (ERROR and CRITICAL) never heard the WARNING of a broken farm: its return would be news of nothing.
    assert offered(channel(ERROR_UP), farm(2103, "broken", "usfarm"), farm(2104, "ok", "usfarm")) == []
    # Nor a channel without the kind: its filter is the operator's choice.
    risk_only = channel(kinds=frozenset({"risk"}))
    assert offered(risk_only, LOST, BACK) == []


def test_channel_told_entries_blocked_then_takes_the_lift_of_that_block_only() -> None:
    ch = channel(ERROR_UP)
    assert offered(ch, blocked("market data stalled"), lifted("an order's state is unknown"),
                   lifted("market data stalled")) == [
        "engine: new entries blocked: market data stalled", "engine: entry block lifted: market data stalled"]


def test_link_made_then_sent_only_where_a_failed_connect_was_told() -> None:
    # The start's connect that failed (ERROR) had no end: the phone's last word was "could not connect".
    assert offered(channel(), CONNECT_FAILED, LINK_MADE) == [
        "broker: " + CONNECT_FAILED.alert.text, "broker connected"]
    # Every start makes a link, and a reconnection's end is its `reconnected` alert: no second word, not even at INFO.
    everything = channel(frozenset({"INFO", "WARNING", "ERROR", "CRITICAL"}))
    assert offered(everything, LINK_MADE, LOST, BACK, LINK_MADE) == [
        "broker disconnected", "broker: " + BACK.alert.text]


def test_channel_told_a_kill_then_takes_its_release_below_its_levels() -> None:
    ch = channel(ERROR_UP)
    assert offered(ch, alert(AlertLevel.WARNING, "kill_switch", "kill switch released by bob: x", "kill_reset")) == []
    assert offered(ch, alert(AlertLevel.CRITICAL, "kill_switch", "KILL SWITCH ENGAGED by bob", "kill"),
                   alert(AlertLevel.WARNING, "kill_switch", "kill switch released by bob: x", "kill_reset")) == [
        "kill_switch: KILL SWITCH ENGAGED by bob", "kill_switch: kill switch released by bob: x"]


# -- a real channel, a real webhook ---------------------------------------------------------------------------------


async def test_webhook_at_warning_when_the_link_is_lost_and_back_then_both_delivered(http: HttpServer) -> None:
    ch = Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=0))
    async with running(ch):
        for event in (LOST, farm(2104, "ok", "usfarm"), BACK):
            notice = notice_for(event)
            assert isinstance(notice, Notice)
            ch.offer(notice)
        await eventually(lambda: any("reconnected" in line for line in notified(http)), what="the return delivered")
    lines = notified(http)  # the farm's return is not one: its loss was never told here
    assert len(lines) == 2, lines
    assert lines[0].endswith("[ERROR] broker disconnected: connection lost; new entries blocked until reconciled")
    assert lines[1].endswith("[INFO] broker: reconnected and reconciled: new entries no longer blocked by the lost "
                             "link")


def fill(n: int) -> Notice:
    return notice(f"filled BUY 1 AAPL @ {100 + n}", AlertLevel.INFO, "fills")


def said(http: HttpServer) -> list[str]:
    """The lines the webhook received, without their time and level."""
    return [line.partition("] ")[2] or line for line in notified(http)]


async def test_webhook_when_a_full_queue_dropped_the_link_lost_then_its_return_is_not_sent(http: HttpServer) -> None:
    # The queue was told the loss, so its return went too: the phone heard "reconnected" after a loss it never got.
    async with warning_held(http, levels=WARNING_UP, queue_size=2) as (ch, released):
        assert offered(ch, LOST) == ["broker disconnected"]
        ch.offer(fill(1))
        ch.offer(fill(2))  # the loss dropped: the oldest below CRITICAL
        assert offered(ch, BACK) == []
        released.set()
        await eventually(lambda: ch.status().sent == 2 and ch.status().queued == 0)
    assert ch.status().dropped == 1
    assert said(http) == ["risk warning", "filled BUY 1 AAPL @ 101", "filled BUY 1 AAPL @ 102",
                          "(1 notices dropped: queue full)"]


async def test_webhook_when_a_full_queue_drops_a_failed_connect_after_its_link_made_then_neither_is_sent(
        http: HttpServer) -> None:
    # The link made was queued behind the connect that failed; that was dropped, and "broker connected" went alone.
    async with warning_held(http, levels=WARNING_UP, queue_size=2) as (ch, released):
        assert offered(ch, CONNECT_FAILED, LINK_MADE) == ["broker: " + CONNECT_FAILED.alert.text, "broker connected"]
        ch.offer(fill(1))  # the connect that failed dropped
        released.set()
        await eventually(lambda: ch.status().sent == 2 and ch.status().queued == 0)
    assert said(http) == ["risk warning", "filled BUY 1 AAPL @ 101", "(1 notices dropped: queue full)"]


async def test_webhook_when_the_link_lost_is_given_up_then_its_return_queued_meanwhile_is_not_sent(
        http: HttpServer) -> None:
    # The loss failed three times and was given up; its return, queued while the loss was still being tried, went out.
    released = asyncio.Event()
    http.plan = [Hold(released, 500), 500, 500]
    ch = Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=0, timeout_s=HELD_TIMEOUT_S))
    async with running(ch):
        assert offered(ch, LOST) == ["broker disconnected"]
        await eventually(lambda: len(http.requests) == 1, what="the loss's first attempt held")
        assert offered(ch, BACK) == ["broker: " + BACK.alert.text]  # the loss may still get through
        released.set()
        await eventually(lambda: ch.status().failed == 1, what="the loss given up")
        await ch.wait_idle()
        assert offered(ch, BACK) == []
    assert len(http.requests) == 3
    assert all("broker disconnected" in r.json()["text"] for r in http.requests)


@contextlib.asynccontextmanager
async def _second_send_held(http: HttpServer, begun: Event, held: Notice, queue_size: int, answer: int = 200,
                            levels: frozenset[str] = WARNING_UP, **changes: object,
                            ) -> AsyncIterator[tuple[Channel, asyncio.Event]]:
    """A webhook channel running (``levels``, no batch window, ``queue_size``, its policy with ``changes``) that
    delivered ``begun``'s notice, then sends ``held``, whose request the server holds until the event yielded is set
    (then answers ``answer``)."""
    released = asyncio.Event()
    http.plan = [200, Hold(released, answer)]
    ch = Channel(webhook(http.url), policy(levels=levels, batch_window_s=0, timeout_s=HELD_TIMEOUT_S,
                                           queue_size=queue_size, **changes))
    async with running(ch):
        offered(ch, begun)
        await eventually(lambda: ch.status().sent == 1, what="the beginning delivered")
        ch.offer(held)
        await eventually(lambda: len(http.requests) == 2, what="the next send held")
        yield ch, released


async def test_webhook_when_a_second_farm_loss_is_dropped_then_its_return_is_sent_as_the_first_was(
        http: HttpServer) -> None:
    # The phone heard the farm's first loss: it is owed the return, whatever became of a repeat of that loss.
    loss = farm(2103, "broken", "usfarm")
    async with _second_send_held(http, loss, notice("risk warning"), queue_size=1) as (ch, released):
        assert offered(ch, farm(2103, "broken", "usfarm")) == [
            "broker: market data degraded (2103): Market data farm connection is broken:usfarm"]
        ch.offer(fill(1))  # the second loss dropped
        assert offered(ch, farm(2104, "ok", "usfarm")) == [
            "broker: market data farm back (2104): Market data farm connection is OK:usfarm"]
        released.set()
        await eventually(lambda: ch.status().sent == 3 and ch.status().queued == 0)
    assert said(http)[-2:] == ["broker: market data farm back (2104): Market data farm connection is OK:usfarm",
                               "(2 notices dropped: queue full)"]


async def test_webhook_when_a_full_queue_needs_room_after_the_link_lost_was_sent_then_its_return_is_kept(
        http: HttpServer) -> None:
    # The return was the oldest notice below CRITICAL, so a fill pushed it out: the phone told "broker disconnected"
    # never heard the link was back.
    async with _second_send_held(http, LOST, notice("risk warning"), queue_size=2) as (ch, released):
        assert offered(ch, BACK) == ["broker: " + BACK.alert.text]
        for n in range(1, 4):
            ch.offer(fill(n))  # the fills dropped, not the return
        released.set()
        await eventually(lambda: ch.status().sent == 3 and ch.status().queued == 0)
    assert ch.status().dropped == 2
    assert said(http)[-3:] == ["broker: " + BACK.alert.text, "filled BUY 1 AAPL @ 103",
                               "(2 notices dropped: queue full)"]


async def test_webhook_when_the_link_is_lost_again_behind_its_return_in_a_full_queue_then_the_return_drops(
        http: HttpServer) -> None:
    # The return was kept as owed and the new loss dropped: the phone's last word was "reconnected" while the link was
    # lost.
    async with _second_send_held(http, LOST, notice("risk warning"), queue_size=2) as (ch, released):
        offered(ch, BACK, LOST)
        ch.offer(fill(1))
        released.set()
        await eventually(lambda: ch.status().sent == 3 and ch.status().queued == 0)
    assert said(http)[-3:] == ["broker disconnected: connection lost; new entries blocked until reconciled",
                               "filled BUY 1 AAPL @ 101", "(1 notices dropped: queue full)"]


async def test_webhook_when_a_queue_full_of_kill_notices_needs_room_for_an_owed_return_then_a_kill_notice_goes(
        http: HttpServer) -> None:
    # Nothing below CRITICAL but the return: the oldest kill notice goes (as when all are critical), not the return.
    first_kill = notice("kill 0", AlertLevel.CRITICAL, "kill_switch")  # held: critical, nothing overtakes it
    async with _second_send_held(http, LOST, first_kill, queue_size=2) as (ch, released):
        for title in ("kill 1", "kill 2"):
            ch.offer(notice(title, AlertLevel.CRITICAL, "kill_switch"))
        assert offered(ch, BACK) == ["broker: " + BACK.alert.text]
        released.set()
        await eventually(lambda: ch.status().sent == 3 and ch.status().queued == 0)
    assert said(http)[-3:] == ["kill 2", "broker: " + BACK.alert.text, "(1 notices dropped: queue full)"]


async def test_webhook_when_the_kill_switch_is_engaged_again_behind_its_release_then_the_release_goes_with_it(
        http: HttpServer) -> None:
    # The new kill overtook the slow message alone, and the release queued before it went after it: the phone's last
    # word was "kill switch released" while trading was halted.
    async with _second_send_held(http, ENGAGED, notice("risk warning"), queue_size=10) as (ch, answer):
        ch.offer(fill(1))  # news of nothing the kill is: it waits for the slow message
        assert offered(ch, RELEASED, ENGAGED_AGAIN) == ["kill_switch: " + RELEASED.alert.text,
                                                       "kill_switch: " + ENGAGED_AGAIN.alert.text]
        await eventually(lambda: len(http.requests) == 3, what="the new kill sent ahead of the slow message")
        answer.set()
        await ch.wait_idle()
    carried = [tuple(text in r.json()["text"] for text in (RELEASED.alert.text, ENGAGED_AGAIN.alert.text, "@ 101"))
               for r in http.requests[2:]]
    assert carried == [(True, True, False), (False, False, True)]


@pytest.mark.parametrize("retries", [2, 0], ids=["then-not-retried", "then-not-held"])
async def test_webhook_when_the_kill_switch_engaged_again_overtakes_a_failing_release_then_it_is_not_sent_again(
        http: HttpServer, retries: int) -> None:
    # The release failed after the new kill overtook it, and was retried (or given up, held and sent alone): the
    # phone's last word was "kill switch released" while trading was halted.
    release = notice_for(RELEASED)
    assert release is not None
    async with _second_send_held(http, ENGAGED, release, queue_size=10, answer=500, retries=retries) as (ch, answer):
        offered(ch, ENGAGED_AGAIN)
        await eventually(lambda: ch.status().sent == 2, what="the new kill delivered ahead of the slow release")
        answer.set()
        await ch.wait_idle()
    carried = [tuple(e.alert.text in r.json()["text"] for e in (ENGAGED, RELEASED, ENGAGED_AGAIN))
               for r in http.requests]
    assert carried == [(True, False, False), (False, True, False), (False, False, True)]  # the last word told: engaged
    assert (ch.status().sent, ch.status().failed, ch.status().retried) == (2, 0, 0)  # nothing lost, nothing retried


async def test_webhook_at_error_when_a_release_is_delivered_after_the_kill_switch_engaged_again_then_the_next_goes(
        http: HttpServer) -> None:
    # The slow release, answered after the new kill that overtook it, was told last: the channel took the kill switch
    # as released while it was engaged again, and refused the next release below its levels: the phone never heard
    # that trading was released.
    release = notice_for(RELEASED)
    assert release is not None
    async with _second_send_held(http, ENGAGED, release, queue_size=10, levels=ERROR_UP) as (ch, answer):
        offered(ch, ENGAGED_AGAIN)
        await eventually(lambda: ch.status().sent == 2, what="the new kill delivered ahead of the slow release")
        answer.set()
        await eventually(lambda: ch.status().sent == 3, what="the slow release delivered")
        assert offered(ch, RELEASED_AGAIN) == ["kill_switch: " + RELEASED_AGAIN.alert.text]
        await ch.wait_idle()
    assert said(http)[-1] == "kill_switch: " + RELEASED_AGAIN.alert.text


async def test_webhook_when_a_message_telling_drops_is_left_with_a_superseded_release_only_then_the_next_tells_them(
        http: HttpServer) -> None:
    # Done without a retry, the message's count of the drops is not told: the next message tells it.
    failing = asyncio.Event()
    async with _second_send_held(http, ENGAGED, notice("risk warning"), queue_size=1) as (ch, answer):
        http.plan.append(Hold(failing, 500))
        ch.offer(fill(1))
        offered(ch, RELEASED)  # the fill dropped for room: the release is owed
        answer.set()
        await eventually(lambda: len(http.requests) == 3, what="the release's send held, telling the drop")
        offered(ch, ENGAGED_AGAIN)
        await eventually(lambda: ch.status().sent == 3, what="the new kill delivered ahead of the release")
        failing.set()
        await ch.wait_idle()
        ch.offer(fill(2))
        await eventually(lambda: ch.status().sent == 4, what="the next message delivered")
    assert said(http)[-2:] == ["filled BUY 1 AAPL @ 102", "(1 notices dropped: queue full)"]


def lost_then_back_given_up(http: HttpServer, *plan: int, retry_initial_s: float) -> Channel:
    """A webhook channel (WARNING and up, no batch window, no retries, backoff ``retry_initial_s``) that delivered the
    link lost, given the link back to send; the webhook answers ``plan`` after the loss (then 200)."""
    http.plan = [200, *plan]
    return Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=0, retries=0,
                                             retry_initial_s=retry_initial_s))


async def offered_lost_then_back(ch: Channel) -> None:
    offered(ch, LOST)
    await eventually(lambda: ch.status().sent == 1, what="the loss delivered")
    offered(ch, BACK)


async def test_webhook_when_the_return_is_given_up_after_the_link_lost_was_sent_then_it_goes_with_the_next_message(
        http: HttpServer) -> None:
    # The return failed its attempts and was gone: the phone's last word was "broker disconnected".
    ch = lost_then_back_given_up(http, 500, retry_initial_s=60)  # its own wake-up far off: the next message takes it
    async with running(ch):
        await offered_lost_then_back(ch)
        await eventually(lambda: ch.status().failed == 1, what="the return given up")
        assert ch.status().queued == 1  # held: not lost
        ch.offer(notice("risk warning"))
        await eventually(lambda: ch.status().sent == 2 and ch.status().queued == 0)
    assert len(http.requests) == 3
    assert said(http)[-2:] == ["broker: " + BACK.alert.text, "risk warning"]


async def test_webhook_when_the_return_is_given_up_and_no_other_notice_comes_then_it_goes_alone_after_a_backoff(
        http: HttpServer) -> None:
    # Held for a next message that never came: the phone never heard the link was back.
    ch = lost_then_back_given_up(http, 500, 500, retry_initial_s=0.05)
    async with running(ch):
        await offered_lost_then_back(ch)
        await eventually(lambda: ch.status().sent == 2 and ch.status().queued == 0, what="the return delivered")
    assert said(http) == ["broker disconnected: connection lost; new entries blocked until reconciled",
                          *["broker: " + BACK.alert.text] * 3]
    first, second, third = http.times[1:]
    assert second - first >= 0.05  # the retry delay, then doubling
    assert third - second >= 0.1


async def test_webhook_with_a_batch_window_when_the_return_is_given_up_then_it_goes_after_its_backoff_not_the_window(
        http: HttpServer) -> None:
    # Woken by its backoff alone, the return then waited the batch window, as news does: a minute more of silence.
    http.plan = [200, 500]
    ch = Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=60, retries=0, retry_initial_s=0.05))
    async with running(ch):
        offered(ch, LOST)
        ch.flush()  # no window for the loss and the first try of its return: the test is of the retry
        await eventually(lambda: ch.status().sent == 1, what="the loss delivered")
        offered(ch, BACK)
        ch.flush()
        await eventually(lambda: ch.status().failed == 1, what="the return given up")
        await eventually(lambda: ch.status().sent == 2, what="the return delivered after its backoff")
    assert said(http)[-2:] == ["broker: " + BACK.alert.text] * 2


async def test_webhook_when_a_dead_channel_gives_up_the_return_then_it_goes_in_at_most_three_messages(
        http: HttpServer) -> None:
    ch = lost_then_back_given_up(http, 500, 500, 500, retry_initial_s=60)  # the next messages take it
    async with running(ch):
        await offered_lost_then_back(ch)
        for n in range(1, 4):
            await eventually(lambda n=n: ch.status().failed == n, what=f"message {n} given up")
            ch.offer(notice(f"risk warning {n}"))
        await eventually(lambda: ch.status().sent == 2 and ch.status().queued == 0)
    carried = [BACK.alert.text in r.json()["text"] for r in http.requests]
    assert carried == [False, True, True, True, False]


async def test_webhook_when_a_dead_channel_gives_up_the_return_alone_then_it_stops_after_three_messages(
        http: HttpServer) -> None:
    ch = lost_then_back_given_up(http, 500, 500, 500, retry_initial_s=0.05)
    async with running(ch):
        await offered_lost_then_back(ch)
        await ch.wait_idle()  # given up for good
        assert ch.status().queued == 0
    assert [BACK.alert.text in r.json()["text"] for r in http.requests] == [False, True, True, True]
    assert ch.status().failed == 3


async def test_webhook_when_a_kill_cuts_short_a_message_carrying_the_held_return_then_it_still_goes_in_three_messages(
        http: HttpServer) -> None:
    # Sent back to the queue with the kill, the return lost its count: given up again, it was held as if new, and a
    # dead channel carried it in a fourth message (a cut at every message would carry it forever).
    http.plan = [200, 500, 500, Busy(429, 1, hold=False), 500, 500, 500, 500, 500, 500]
    ch = Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=0, retries=1, retry_initial_s=0.05))
    async with running(ch):
        await offered_lost_then_back(ch)
        await eventually(lambda: len(http.requests) == 4, what="the second message asked to wait")
        ch.offer(notice(KILL, AlertLevel.CRITICAL, "kill_switch"))  # cuts that wait short: the kill leaves with it
        await ch.wait_idle()  # the return given up for good
    carried = [(BACK.alert.text in r.json()["text"], KILL in r.json()["text"]) for r in http.requests]
    assert carried == [(False, False), *[(True, False)] * 3, *[(True, True)] * 2, *[(True, False)] * 2]
    assert ch.status().failed == 3


async def _given_up_after_the_kill(http: HttpServer, *batch: Event) -> None:
    """The kill switch engaged, delivered; then the notices of ``batch`` offered as one message, which the webhook fails
    (no retry)."""
    http.plan = [200, 500]
    ch = Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=0, retries=0, retry_initial_s=0.05))
    async with running(ch):
        offered(ch, ENGAGED)
        await eventually(lambda: ch.status().sent == 1, what="the kill delivered")
        offered(ch, *batch)
        await ch.wait_idle()


async def test_webhook_when_the_kill_switch_released_and_engaged_again_are_given_up_then_no_release_follows(
        http: HttpServer) -> None:
    # The release was held as owed, the new kill was not: the release went alone after its backoff, and the phone's last
    # word was "kill switch released" while trading was halted.
    await _given_up_after_the_kill(http, RELEASED, ENGAGED_AGAIN)
    carried = [tuple(e.alert.text in r.json()["text"] for e in (ENGAGED, RELEASED, ENGAGED_AGAIN))
               for r in http.requests]
    assert carried == [(True, False, False), (False, True, True)]  # the last word told: engaged


async def test_webhook_when_a_message_released_engaged_again_and_released_again_is_given_up_then_the_last_release_goes(
        http: HttpServer) -> None:
    # The first release is superseded by the new kill; the second is the end the phone is owed.
    await _given_up_after_the_kill(http, RELEASED, ENGAGED_AGAIN, RELEASED_AGAIN)
    assert said(http)[-1] == "kill_switch: " + RELEASED_AGAIN.alert.text
    assert len(http.requests) == 3


@pytest.mark.parametrize("retries", [0, 2], ids=["then-not-held", "then-not-retried"])
async def test_webhook_when_the_link_is_lost_again_while_its_return_fails_then_the_return_is_not_sent_again(
        http: HttpServer, retries: int) -> None:
    # The return was held as owed (or retried), and went ahead of the new loss: news of nothing that holds.
    answer = asyncio.Event()
    http.plan = [200, Hold(answer, 500)]
    ch = Channel(webhook(http.url), policy(levels=WARNING_UP, batch_window_s=0, retries=retries,
                                           timeout_s=HELD_TIMEOUT_S))
    async with running(ch):
        await offered_lost_then_back(ch)
        await eventually(lambda: len(http.requests) == 2, what="the return's send held")
        offered(ch, LOST)  # news, below CRITICAL: it waits for the return's answer
        answer.set()
        await ch.wait_idle()
    assert [BACK.alert.text in r.json()["text"] for r in http.requests] == [False, True, False]
    assert said(http)[-1].startswith("broker disconnected")


async def test_stop_with_a_given_up_return_held_then_the_flush_sends_it(
        http: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    # A flush sent only a queue: a channel holding only the return logged it as lost at stop.
    ch = lost_then_back_given_up(http, 500, retry_initial_s=60)
    notifier = Notifier([ch])
    notifier.start()
    await offered_lost_then_back(ch)
    await eventually(lambda: ch.status().failed == 1, what="the return given up")
    await notifier.stop(grace_s=5)
    assert said(http)[-1] == "broker: " + BACK.alert.text
    assert ch.status().queued == 0
    assert "not delivered at stop" not in caplog.text


def paper_notifying(tmp_path: Path, http: HttpServer, port: int) -> Settings:
    """A paper engine at ``port`` reconnecting at once, its webhook at WARNING and up (the default levels)."""
    return load_settings(None, {
        "mode": "paper", "state_dir": str(tmp_path / "state"), "strategies": [],
        "broker": {"port": port, "connect_timeout": 2.0, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.2},
        "notifications": {"batch_window_s": 0, "webhook": {"enabled": True, "url": http.url + "/hook"}},
    })


async def test_engine_when_its_link_is_lost_and_made_again_then_the_webhook_hears_both(
        tmp_path: Path, http: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The phone heard "broker disconnected … new entries blocked until reconciled", and never that it came back.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    async with SimGateway(port=0, seed=7, always_open=True) as sim:
        engine = create_engine(paper_notifying(tmp_path, http, sim.port))
        await engine.start()
        try:
            await eventually(lambda: engine.is_connected, what="connected")
            sim.control.disconnect()
            await eventually(lambda: any("reconnected and reconciled" in line for line in notified(http)),
                             what="the return notified")
        finally:
            await engine.stop()
    about = [line for line in notified(http) if "connect" in line]
    assert len(about) == 2, about
    assert "[ERROR] broker disconnected: connection lost" in about[0]
    assert "[INFO] broker: reconnected and reconciled: new entries no longer blocked by the lost link" in about[1]


async def test_engine_when_its_start_could_not_connect_and_then_does_then_the_webhook_hears_it_connected(
        tmp_path: Path, http: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The phone's last word was "could not connect to H:P": the start's link made has no alert of its own.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    port = closed_port()
    engine = create_engine(paper_notifying(tmp_path, http, port))
    await engine.start()
    try:
        await eventually(lambda: any("could not connect" in line for line in notified(http)), what="the failure")
        async with SimGateway(port=port, seed=7, always_open=True):
            await eventually(lambda: any("broker connected" in line for line in notified(http)),
                             what="the link made notified")
            await engine.stop()
    finally:
        await engine.stop()
    about = [line for line in notified(http) if f"127.0.0.1:{port}" in line or "broker connected" in line]
    assert len(about) == 2, about
    assert "[INFO] broker connected: account DUSIM" in about[1]
