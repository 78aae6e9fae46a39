"""Email against real SMTP servers on loopback (aiosmtpd): implicit TLS, the tls setting, and slow relays
that must never get a message twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tui_trader.config import load_settings
from tui_trader.config.notifications import EmailSettings
from tui_trader.domain.enums import AlertLevel
from tui_trader.errors import ConfigError
from tui_trader.ops.notify import Channel, ChannelStatus
from tui_trader.ops.notify.senders import EmailSender

from .conftest import SMTP_PASSWORD, SMTP_USER, eventually
from .servers import RecordingHandler, SlowHandler, self_signed, smtp_server, smtps_server
from .test_notify import notice, policy, running


def email_channel(port: int, ca_file: Path, tls: str | None = None, recipients: int = 1,
                  **changes: object) -> Channel:
    settings = EmailSettings.model_validate(
        dict(enabled=True, host="127.0.0.1", port=port, username=SMTP_USER, password=SecretStr(SMTP_PASSWORD),
             sender="bot@example.test", recipients=[f"ops{i}@example.test" for i in range(recipients)],
             **({"tls": tls} if tls else {})))
    return Channel(EmailSender(settings, ca_file=ca_file), policy(**changes))


@pytest.fixture
def smtps(certificate: tuple[Path, Path]) -> Iterator[tuple[int, RecordingHandler]]:
    """An SMTP server on 127.0.0.1 speaking TLS from the first byte: (port, recorded messages)."""
    controller, handler = smtps_server(*certificate, SMTP_USER, SMTP_PASSWORD)
    controller.start()
    yield controller.port, handler
    controller.stop()


@pytest.fixture
def slow_relay(request: pytest.FixtureRequest, certificate: tuple[Path, Path]) -> Iterator[tuple[int, SlowHandler]]:
    """A STARTTLS relay with the delays of ``request.param`` (SlowHandler's arguments)."""
    controller, handler = smtp_server(*certificate, SMTP_USER, SMTP_PASSWORD, SlowHandler(**request.param))
    controller.start()
    yield controller.port, handler  # type: ignore[misc]
    controller.stop()


async def test_email_over_implicit_tls_then_the_message_arrives(smtps: tuple[int, RecordingHandler],
                                                                 certificate: tuple[Path, Path]) -> None:
    port, handler = smtps
    channel = email_channel(port, certificate[0], tls="implicit")
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().sent == 1, within=10)
    (message,) = handler.messages
    assert "kill switch engaged" in message["Subject"]


async def test_email_implicit_tls_with_an_unknown_certificate_then_a_failure_and_no_login(
        smtps: tuple[int, RecordingHandler], tmp_path: Path) -> None:
    port, handler = smtps
    other_ca, _ = self_signed(tmp_path)
    channel = email_channel(port, other_ca, tls="implicit", retries=0)
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().failed == 1, within=10)
    assert "CERTIFICATE_VERIFY_FAILED" in channel.status().last_error
    assert SMTP_PASSWORD not in channel.status().last_error
    assert handler.messages == []


@pytest.mark.parametrize(("section", "mode"), [
    ({"port": 465}, "implicit"),
    ({}, "starttls"),
    ({"port": 25, "starttls": False}, "none"),
    ({"port": 465, "tls": "STARTTLS"}, "starttls"),
    ({"port": 2525, "tls": "implicit"}, "implicit"),
], ids=["465-implicit", "587-starttls", "old-starttls-false", "explicit-wins", "implicit-on-any-port"])
def test_email_tls_from_the_setting_or_the_port(section: dict[str, object], mode: str) -> None:
    assert EmailSettings.model_validate(section).tls_mode == mode


def test_email_tls_misspelt_then_a_config_error_naming_the_value_and_the_choices(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[notifications.email]\ntls = "ssl"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    text = str(raised.value)
    assert "notifications.email.tls" in text
    assert "ssl" in text
    assert all(choice in text for choice in ("starttls", "implicit", "none"))


async def one_kill_notice(channel: Channel) -> ChannelStatus:
    """Offer ``channel`` one CRITICAL kill notice and run it until the notice was sent or failed: its status."""
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().sent + channel.status().failed == 1, within=20)
    return channel.status()


# Each answer well within the 1 s timeout, the whole session well beyond it: before, the task gave up
# at 1 s while the thread went on and delivered, and the retry delivered again (three emails).
@pytest.mark.parametrize("slow_relay", [{"mail_s": 0.45, "rcpt_s": 0.45, "data_s": 0.45}], indirect=True)
async def test_slow_relay_answering_each_step_in_time_then_one_email_not_two(
        slow_relay: tuple[int, SlowHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = slow_relay
    status = await one_kill_notice(email_channel(port, certificate[0], timeout_s=1.0, retries=2))
    assert (status.sent, status.failed, status.retried) == (1, 0, 0)
    assert len(handler.messages) == 1


@pytest.mark.parametrize("slow_relay", [{"quit_s": 2.0}], indirect=True)
async def test_relay_slow_to_answer_quit_after_taking_the_message_then_delivered_once(
        slow_relay: tuple[int, SlowHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = slow_relay
    status = await one_kill_notice(email_channel(port, certificate[0], timeout_s=1.0, retries=2))
    assert (status.sent, status.retried) == (1, 0)
    assert len(handler.messages) == 1


@pytest.mark.parametrize("slow_relay", [{"data_s": 3.0}], indirect=True)
async def test_relay_keeps_the_message_but_answers_too_late_then_not_sent_again_and_said_so(
        slow_relay: tuple[int, SlowHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = slow_relay
    status = await one_kill_notice(email_channel(port, certificate[0], timeout_s=1.0, retries=2))
    assert (status.sent, status.failed, status.retried) == (0, 1, 0)
    assert "may have arrived" in status.last_error
    assert len(handler.messages) == 1


# Every answer in time, but four recipients make the session outlast three timeouts before DATA: it is
# cut off there, and the thread, still talking to the relay, never sends the message afterwards.
@pytest.mark.parametrize("slow_relay", [{"mail_s": 0.3, "rcpt_s": 0.3}], indirect=True)
async def test_session_cut_off_before_data_then_retried_and_the_abandoned_sessions_never_send(
        slow_relay: tuple[int, SlowHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = slow_relay
    channel = email_channel(port, certificate[0], recipients=4, timeout_s=0.5, retries=1, retry_initial_s=0.05)
    async with running(channel):
        channel.offer(notice("kill switch engaged", AlertLevel.CRITICAL, "kill_switch"))
        await eventually(lambda: channel.status().failed == 1, within=20)
        await eventually(lambda: handler.quits == 2, within=20, what="both abandoned sessions ended")
    assert (channel.status().retried, channel.status().sent) == (1, 0)
    assert handler.messages == []
