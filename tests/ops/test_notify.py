"""Notification channels against real servers on loopback: Telegram Bot API, webhook, SMTP with STARTTLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from tui_trader.config import load_settings
from tui_trader.config.notifications import EmailSettings, NotificationSettings, TelegramSettings, WebhookSettings
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, ConnectionState, Side
from tui_trader.domain.events import AlertRaised, ConnectionChanged, OrderFilled
from tui_trader.domain.orders import Fill
from tui_trader.engine.bus import EventBus
from tui_trader.errors import ConfigError
from tui_trader.ops.notify import Channel, ChannelPolicy, Notice, Notifier, TelegramSender, WebhookSender, notice_for
from tui_trader.ops.notify.senders import EmailSender, Message

from .conftest import SMTP_PASSWORD, SMTP_USER, eventually
from .servers import HttpServer, RecordingHandler, closed_port

TOKEN = "123456:SECRET-BOT-TOKEN"
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
ALL_LEVELS = frozenset({"INFO", "WARNING", "ERROR", "CRITICAL"})
ALL_KINDS = frozenset({"fills", "rejections", "risk", "kill_switch", "disconnects", "daily_summary", "system"})


def policy(**changes: object) -> ChannelPolicy:
    base: dict[str, object] = dict(levels=ALL_LEVELS, kinds=ALL_KINDS, batch_window_s=0.05, max_per_minute=100,
                                   timeout_s=2.0, retries=2, retry_initial_s=0.05, queue_size=100)
    base.update(changes)
    return ChannelPolicy(**base)  # type: ignore[arg-type]


def telegram(url: str) -> TelegramSender:
    return TelegramSender(TelegramSettings(enabled=True, token=SecretStr(TOKEN), chat_id="42", base_url=url))


def webhook(url: str, payload: str = "json") -> WebhookSender:
    return WebhookSender(WebhookSettings(enabled=True, url=SecretStr(url + "/hook/T0K"), payload=payload))  # type: ignore[arg-type]


def notice(title: str, level: AlertLevel = AlertLevel.WARNING, kind: str = "risk") -> Notice:
    return Notice(NOW, level, kind, title)


@contextlib.asynccontextmanager
async def running(channel: Channel) -> AsyncIterator[Channel]:
    """The channel with its delivery task running."""
    task = asyncio.create_task(channel.run())
    try:
        yield channel
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_telegram_alert_then_one_send_message_with_chat_and_text(http: HttpServer) -> None:
    channel = Channel(telegram(http.url), policy())
    async with running(channel):
        channel.offer(notice("daily loss 80% used"))
        await eventually(lambda: channel.status().sent == 1)
    (request,) = http.requests
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json()["chat_id"] == "42"
    assert "daily loss 80% used" in request.json()["text"]
    assert channel.status().last_success is not None


async def test_storm_of_alerts_then_one_message_carrying_all(http: HttpServer) -> None:
    channel = Channel(telegram(http.url), policy(batch_window_s=0.2))
    async with running(channel):
        for i in range(30):
            channel.offer(notice(f"alert {i}"))
        await eventually(lambda: channel.status().sent == 1 and channel.status().queued == 0)
    (request,) = http.requests
    text = request.json()["text"]
    assert all(f"alert {i}" in text for i in range(30))
    assert "(+29 more)" in text


async def test_rate_limit_then_alerts_while_waiting_join_one_message(http: HttpServer) -> None:
    channel = Channel(telegram(http.url), policy(batch_window_s=0, max_per_minute=1, rate_period_s=0.5))
    async with running(channel):
        channel.offer(notice("first"))
        await eventually(lambda: channel.status().sent == 1)
        for name in ("second", "third", "fourth"):
            channel.offer(notice(name))
        await eventually(lambda: channel.status().sent == 2)
    assert len(http.requests) == 2
    assert all(name in http.requests[1].json()["text"] for name in ("second", "third", "fourth"))


async def test_server_error_then_retried_and_delivered_once(http: HttpServer) -> None:
    http.plan = [500]
    channel = Channel(telegram(http.url), policy())
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().sent == 1)
    status = channel.status()
    assert (status.retried, status.failed) == (1, 0)
    assert len(http.requests) == 2
    assert http.requests[0].body == http.requests[1].body


async def test_dead_channel_then_gives_up_counts_failure_and_never_logs_the_token(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    channel = Channel(telegram(f"http://127.0.0.1:{closed_port()}"), policy(retries=1))
    async with running(channel):
        channel.offer(notice("journal failure", AlertLevel.CRITICAL, "system"))
        await eventually(lambda: channel.status().failed == 1)
    status = channel.status()
    assert status.sent == 0
    assert status.last_error
    assert TOKEN not in status.last_error
    assert TOKEN not in caplog.text


async def test_hanging_channel_then_offers_return_at_once_queue_bounded_and_others_deliver(http: HttpServer) -> None:
    hanging = await HttpServer(plan=["hang"] * 10).start()
    stuck = Channel(webhook(hanging.url), policy(timeout_s=30, queue_size=50))
    healthy = Channel(webhook(http.url), policy())
    notifier = Notifier([stuck, healthy])
    notifier.start()
    notifier.notify(notice("first"))
    await eventually(lambda: len(hanging.requests) == 1, what="the stuck channel is mid-delivery")
    for i in range(1000):  # every offer returns without awaiting: the stuck channel only queues
        notifier.notify(notice(f"storm {i}"))
    assert stuck.status().queued == 50 + 1
    assert stuck.status().dropped == 1000 - 50
    await eventually(lambda: healthy.status().sent >= 2 and healthy.status().queued == 0)
    assert stuck.status().sent == 0
    await notifier.stop()
    await hanging.stop()


async def test_level_and_kind_filters_then_only_matching_notices_sent(http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(levels=frozenset({"CRITICAL"}), kinds=frozenset({"kill_switch",
                                                                                                  "fills"})))
    assert not channel.offer(notice("risk warning", AlertLevel.WARNING, "risk"))
    assert not channel.offer(notice("critical but unwanted kind", AlertLevel.CRITICAL, "system"))
    assert channel.offer(notice("killed", AlertLevel.CRITICAL, "kill_switch"))
    assert channel.offer(notice("filled", AlertLevel.INFO, "fills"))  # fills pass on their kind alone


@pytest.mark.parametrize(("shape", "key"), [("slack", "text"), ("discord", "content"), ("json", "notices")])
async def test_webhook_payload_shapes(http: HttpServer, shape: str, key: str) -> None:
    channel = Channel(webhook(http.url, shape), policy())
    async with running(channel):
        channel.offer(notice("disconnected", AlertLevel.ERROR, "disconnects"))
        await eventually(lambda: channel.status().sent == 1)
    (request,) = http.requests
    assert request.path == "/hook/T0K"
    assert key in request.json()
    assert "disconnected" in str(request.json()[key])


async def test_webhook_json_when_a_notice_is_of_two_kinds_then_it_lists_both_and_keeps_its_kind(
        http: HttpServer) -> None:
    # The payload gave each notice's kind only: a receiver that routes on it never saw that the kill switch's alert
    # of a trip is the trigger's kind too (risk), as the channels' own filters do.
    tripped = Alert(AlertLevel.CRITICAL, "kill_switch", "kill switch engaged by risk:position_mismatch "
                    "(position_mismatch): …", NOW, kind="kill", trip="position_mismatch")
    trip = notice_for(AlertRaised(NOW, tripped))
    assert trip is not None
    channel = Channel(webhook(http.url), policy())
    async with running(channel):
        channel.offer(trip)
        channel.offer(notice("disconnected", AlertLevel.ERROR, "disconnects"))
        await eventually(lambda: sum(len(r.json()["notices"]) for r in http.requests) == 2)

    said = {n["title"].partition(":")[0]: (n["kind"], n["kinds"]) for r in http.requests for n in r.json()["notices"]}
    assert said == {"kill_switch": ("kill_switch", ["kill_switch", "risk"]),
                    "disconnected": ("disconnects", ["disconnects"])}


async def test_email_over_starttls_with_login_then_message_arrives(smtp: tuple[int, RecordingHandler],
                                                                   certificate: tuple[Path, Path]) -> None:
    port, handler = smtp
    settings = EmailSettings(enabled=True, host="127.0.0.1", port=port, username=SMTP_USER,
                             password=SecretStr(SMTP_PASSWORD), sender="bot@example.test",
                             recipients=["ops@example.test"])
    channel = Channel(EmailSender(settings, ca_file=certificate[0]), policy())
    async with running(channel):
        channel.offer(notice("position mismatch AAPL", AlertLevel.ERROR, "risk"))
        await eventually(lambda: channel.status().sent == 1, within=10)
    (message,) = handler.messages
    assert "position mismatch AAPL" in message["Subject"]
    assert "position mismatch AAPL" in message.get_payload()
    assert handler.rcpts == [["ops@example.test"]]
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"].endswith("@example.test>")


async def test_email_wrong_password_then_failure_without_the_password(smtp: tuple[int, RecordingHandler],
                                                                      certificate: tuple[Path, Path]) -> None:
    port, handler = smtp
    settings = EmailSettings(enabled=True, host="127.0.0.1", port=port, username=SMTP_USER,
                             password=SecretStr("wrong-pw-xyz"), sender="bot@example.test",
                             recipients=["ops@example.test"])
    channel = Channel(EmailSender(settings, ca_file=certificate[0]), policy(retries=0))
    async with running(channel):
        channel.offer(notice("x", AlertLevel.ERROR, "risk"))
        await eventually(lambda: channel.status().failed == 1, within=10)
    assert handler.messages == []
    assert "wrong-pw-xyz" not in channel.status().last_error


async def test_notifier_on_the_engine_bus_then_events_routed_and_test_message_sent(http: HttpServer) -> None:
    settings = NotificationSettings(
        webhook=WebhookSettings(enabled=True, url=SecretStr(http.url + "/hook"), levels=["ERROR", "CRITICAL"]),
        batch_window_s=0.05)
    notifier = Notifier.from_settings(settings)
    bus = EventBus()
    notifier.start(bus.subscribe("notifier", maxsize=1000))
    fill = Fill("e1", "ref-1", "AAPL", Side.BUY, 10, 190.5, NOW)
    bus.publish(OrderFilled(NOW, fill))
    bus.publish(AlertRaised(NOW, Alert(AlertLevel.INFO, "engine", "entry block lifted", NOW)))  # level filtered
    # The link made: sent only where a connect that failed was told (test_notify_recovery), so not here.
    bus.publish(ConnectionChanged(NOW, ConnectionState.CONNECTED, "account DU1", ConnectionState.CONNECTING))
    bus.publish(ConnectionChanged(NOW, ConnectionState.DISCONNECTED, "socket closed",  # a lost link: notified
                                  ConnectionState.CONNECTED))
    await eventually(lambda: notifier.routed == 4 and notifier.statuses()[0].sent >= 1)
    await notifier.wait_idle()
    text = "\n".join(r.json()["text"] for r in http.requests)
    assert "filled BUY 10 AAPL" in text
    assert "broker disconnected" in text
    assert "entry block lifted" not in text
    assert "broker connected" not in text
    assert await notifier.send_test() == {"webhook": "ok"}
    assert "test notification" in http.requests[-1].json()["text"]
    await notifier.stop()


def email_channel(port: int, ca_file: Path, **changes: object) -> Channel:
    settings = EmailSettings(enabled=True, host="127.0.0.1", port=port, username=SMTP_USER,
                             password=SecretStr(SMTP_PASSWORD), sender="bot@example.test",
                             recipients=["ops@example.test"])
    return Channel(EmailSender(settings, ca_file=ca_file), policy(**changes))


async def test_email_title_with_newlines_then_one_line_subject_and_the_channel_keeps_delivering(
        smtp: tuple[int, RecordingHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = smtp
    channel = email_channel(port, certificate[0], retries=0)
    async with running(channel):
        channel.offer(notice("broker: error 201\r\nBcc: someone@example.test", AlertLevel.ERROR, "risk"))
        await eventually(lambda: channel.status().sent == 1, within=10)
        channel.offer(notice("second", AlertLevel.ERROR, "risk"))
        await eventually(lambda: channel.status().sent == 2, within=10)
    first = handler.messages[0]
    assert first["Subject"] == "tui-trader ERROR: broker: error 201 Bcc: someone@example.test"
    assert first["Bcc"] is None
    assert handler.rcpts == [["ops@example.test"]] * 2


async def test_queue_full_of_fills_then_the_kill_notice_is_not_the_one_dropped() -> None:
    hanging = await HttpServer(plan=["hang"]).start()
    channel = Channel(webhook(hanging.url), policy(timeout_s=30, queue_size=50))
    async with running(channel):
        channel.offer(notice("first"))
        await eventually(lambda: len(hanging.requests) == 1, what="the channel is mid-delivery")
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        for i in range(200):
            channel.offer(notice(f"filled {i}", AlertLevel.INFO, "fills"))
        queued = [n.title for n in channel._queue]
    await hanging.stop()
    assert "kill switch engaged" in queued
    assert len(queued) == 50
    assert channel.status().dropped == 151


async def test_batch_of_many_fills_then_the_kill_line_and_the_drops_are_in_the_message(http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(batch_window_s=0.3, queue_size=80))
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        for i in range(100):
            channel.offer(notice(f"filled {i}", AlertLevel.INFO, "fills"))
        await eventually(lambda: channel.status().sent == 1)
    text = http.requests[0].json()["text"]
    assert "[CRITICAL] kill switch engaged" in text
    assert "(21 notices dropped: queue full)" in text
    assert "filled 99" in text


async def test_stop_with_a_daily_summary_in_the_batch_window_then_it_is_delivered(http: HttpServer) -> None:
    channel = Channel(webhook(http.url), policy(batch_window_s=60))
    notifier = Notifier([channel])
    notifier.start()
    notifier.notify(notice("daily summary 2026-03-03", AlertLevel.INFO, "daily_summary"))
    await notifier.stop(grace_s=5)
    assert len(http.requests) == 1
    assert "daily summary 2026-03-03" in http.requests[0].json()["text"]


async def test_stop_while_the_channel_hangs_then_the_undelivered_notices_are_logged_as_lost(
        caplog: pytest.LogCaptureFixture) -> None:
    hanging = await HttpServer(plan=["hang"]).start()
    channel = Channel(webhook(hanging.url), policy(timeout_s=30))
    notifier = Notifier([channel])
    notifier.start()
    notifier.notify(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
    await eventually(lambda: len(hanging.requests) == 1, what="the channel is mid-delivery")
    notifier.notify(notice("daily summary", AlertLevel.INFO, "daily_summary"))
    await notifier.stop(grace_s=0.2)
    await hanging.stop()
    assert channel.status().queued == 2
    assert "webhook: 2 notices not delivered at stop (lost)" in caplog.text


async def test_telegram_flood_control_then_waits_the_retry_after_and_delivers(http: HttpServer) -> None:
    http.plan = ["flood"]
    channel = Channel(telegram(http.url), policy(retries=2, retry_initial_s=0.05))
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().sent + channel.status().failed == 1, within=10)
    status = channel.status()
    assert (status.sent, status.failed, status.retried) == (1, 0, 1)
    assert len(http.requests) == 2


async def test_webhook_over_https_then_delivered_and_an_unknown_certificate_fails_without_the_url(
        certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = await HttpServer(tls=context).start()
    url = server.url + "/hook/T0K"
    trusted = Channel(WebhookSender(WebhookSettings(enabled=True, url=SecretStr(url)), certificate[0]), policy())
    untrusted = Channel(WebhookSender(WebhookSettings(enabled=True, url=SecretStr(url))), policy(retries=0))
    async with running(trusted), running(untrusted):
        for expected in (1, 2):  # the second send reuses the context built for the first
            trusted.offer(notice("disconnected", AlertLevel.ERROR, "disconnects"))
            await eventually(lambda n=expected: trusted.status().sent == n)
        untrusted.offer(notice("disconnected", AlertLevel.ERROR, "disconnects"))
        await eventually(lambda: untrusted.status().failed == 1)
    await server.stop()
    assert trusted.status().sent == 2
    assert untrusted.status().failed == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.status().last_error
    assert "T0K" not in untrusted.status().last_error


async def test_webhook_url_with_a_bad_port_then_a_failure_and_the_channel_keeps_running(http: HttpServer) -> None:
    broken = Channel(WebhookSender(WebhookSettings(enabled=True, url=SecretStr("http://127.0.0.1:80x/hook/T0K"))),
                     policy(retries=0))
    async with running(broken):
        broken.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: broken.status().failed == 1)
        broken.offer(notice("second", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: broken.status().failed == 2)
    assert broken.status().last_error == "bad URL host or port"


@pytest.mark.parametrize("section", [
    {"kinds": ["kill-switch"]},
    {"telegram": {"levels": ["CRITCAL"]}},
    {"webhook": {"kinds": ["fill"]}},
])
def test_misspelt_kind_or_level_then_the_settings_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NotificationSettings.model_validate(section)


def test_levels_in_lower_case_then_accepted() -> None:
    assert NotificationSettings.model_validate({"email": {"levels": ["critical"]}}).email.levels == ["CRITICAL"]


async def test_telegram_answers_with_a_chunked_body_then_one_delivery_not_retried(http: HttpServer) -> None:
    http.plan = ["chunked"]
    channel = Channel(telegram(http.url), policy())
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().sent + channel.status().failed == 1)
    assert (channel.status().sent, channel.status().retried) == (1, 0)
    assert len(http.requests) == 1


async def test_webhook_url_with_user_and_password_then_basic_auth_and_a_clean_host_header(http: HttpServer) -> None:
    url = f"http://hook%20user:p%40ss@127.0.0.1:{http.port}/hook"
    channel = Channel(WebhookSender(WebhookSettings(enabled=True, url=SecretStr(url))), policy())
    async with running(channel):
        channel.offer(notice("disconnected", AlertLevel.ERROR, "disconnects"))
        await eventually(lambda: channel.status().sent == 1)
    (request,) = http.requests
    assert request.headers["host"] == f"127.0.0.1:{http.port}"
    assert base64.b64decode(request.headers["authorization"].removeprefix("Basic ")) == b"hook user:p@ss"


@pytest.mark.parametrize(("section", "missing"), [
    (f'[notifications.telegram]\nenabled = true\ntoken = "{TOKEN}"\n', "token or chat_id"),
    ('[notifications.telegram]\nenabled = true\nchat_id = "42"\n', "token or chat_id"),
    ('[notifications.email]\nenabled = true\npassword = "s3cret-smtp-pw"\n', "recipients"),
    ('[notifications.webhook]\nenabled = true\n', "url"),
], ids=["telegram-no-chat", "telegram-no-token", "email-no-recipients", "webhook-no-url"])
def test_channel_enabled_without_its_essentials_then_refused_naming_what_is_missing_and_no_secret(
        tmp_path: Path, section: str, missing: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(section, encoding="utf-8")
    with pytest.raises(ConfigError, match=missing) as raised:
        load_settings(config)
    assert TOKEN not in str(raised.value)
    assert SMTP_PASSWORD not in str(raised.value)


def test_route_when_the_link_up_was_never_seen_then_its_loss_is_notified_from_the_state_it_left() -> None:
    # The notifier is a lossy subscriber: with the CONNECTED dropped (or not yet routed), it took the lost link for a
    # connect that failed, and sent nothing. The event says the state it left.
    notifier = Notifier([])
    notifier.route(ConnectionChanged(NOW, ConnectionState.DISCONNECTED, "connection lost", ConnectionState.CONNECTED))
    notifier.route(ConnectionChanged(NOW, ConnectionState.DISCONNECTED, "could not connect to …",
                                     ConnectionState.CONNECTING))  # said by its connect_failed alert instead
    assert notifier.routed == 1


async def test_stop_right_after_an_event_is_published_then_its_notice_is_still_delivered(http: HttpServer) -> None:
    notifier = Notifier([Channel(webhook(http.url), policy(batch_window_s=60))])
    bus = EventBus()
    notifier.start(bus.subscribe("notifier", maxsize=1000))
    await asyncio.sleep(0)  # the pump is waiting on its queue
    bus.publish(ConnectionChanged(NOW, ConnectionState.CONNECTED, "account DU1", ConnectionState.CONNECTING))
    bus.publish(ConnectionChanged(NOW, ConnectionState.DISCONNECTED, "socket closed at stop",
                                  ConnectionState.CONNECTED))
    await notifier.stop(grace_s=5)  # no chance for the pump to run before stop flushes the channels
    assert len(http.requests) == 1
    assert "socket closed at stop" in http.requests[0].json()["text"]


@pytest.mark.parametrize(("shape", "key", "expected"), [
    ("slack", "text", "price &lt; stop &amp; &lt;!channel&gt; *1*"),
    ("discord", "content", "price < stop & <!channel> *1*"),
], ids=["slack", "discord"])
async def test_webhook_text_with_markup_characters_then_sent_as_text_without_pings(
        http: HttpServer, shape: str, key: str, expected: str) -> None:
    channel = Channel(webhook(http.url, shape), policy())
    async with running(channel):
        channel.offer(notice("price < stop & <!channel> *1*", AlertLevel.ERROR, "risk"))
        await eventually(lambda: channel.status().sent == 1)
    payload = http.requests[0].json()
    assert expected in payload[key]
    if shape == "discord":
        assert payload["allowed_mentions"] == {"parse": []}


async def test_telegram_batch_of_emoji_lines_then_text_within_telegrams_utf16_limit(http: HttpServer) -> None:
    channel = Channel(telegram(http.url), policy(batch_window_s=0.3))
    async with running(channel):
        for i in range(40):
            channel.offer(notice(f"{i} " + "\N{POLICE CARS REVOLVING LIGHT}" * 40))
        await eventually(lambda: channel.status().sent == 1)
    text = http.requests[0].json()["text"]
    assert len(text.encode("utf-16-le")) // 2 <= 4096
    assert text.startswith("tui-trader WARNING: 0 ")


async def test_https_webhook_with_a_missing_ca_file_then_a_failure_and_the_channel_keeps_running(
        tmp_path: Path) -> None:
    settings = WebhookSettings(enabled=True, url=SecretStr("https://127.0.0.1:1/hook/T0K"))
    channel = Channel(WebhookSender(settings, ca_file=tmp_path / "missing.pem"), policy(retries=0))
    async with running(channel):
        for expected in (1, 2):
            channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
            await eventually(lambda n=expected: channel.status().failed == n)
    assert channel.status().last_error.startswith("CA file not usable: FileNotFoundError")


class BrokenSender:
    """A sender with a bug: its exception carries a secret and is no DeliveryError."""

    name = "broken"

    async def send(self, message: Message, timeout_s: float) -> None:
        raise KeyError(f"https://api.telegram.org/bot{TOKEN}/sendMessage")


async def test_sender_raising_an_unexpected_exception_then_a_failure_without_its_text_and_the_channel_runs_on(
        caplog: pytest.LogCaptureFixture) -> None:
    channel = Channel(BrokenSender(), policy(retries=0))
    async with running(channel):
        for expected in (1, 2):
            channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
            await eventually(lambda n=expected: channel.status().failed == n)
    assert channel.status().last_error == "unexpected KeyError"
    assert TOKEN not in caplog.text
    assert await Notifier([channel]).send_test() == {"broken": "unexpected KeyError"}
