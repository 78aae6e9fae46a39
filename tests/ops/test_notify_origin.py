"""A notification says which engine sent it (mode and account) and its times read as the console shows them.

QA read ``tui-trader ERROR: broker disconnected (+1 more)`` and ``08:10:34 [ERROR] …`` on a phone: paper and live
looked the same, and the time was UTC with no zone while the console said 03:10:34 (New York).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from tui_trader.config import load_settings
from tui_trader.config.notifications import EmailSettings
from tui_trader.domain import Alert, AlertLevel
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.factory import create_engine
from tui_trader.ops.notify import Channel, Notifier
from tui_trader.ops.notify.senders import EmailSender
from tui_trader.sim import SimGateway

from .conftest import SMTP_PASSWORD, SMTP_USER, eventually
from .servers import HttpServer, RecordingHandler
from .test_notify import policy

NY = ZoneInfo("America/New_York")
AT = datetime(2026, 11, 25, 8, 10, 34, tzinfo=UTC)  # 03:10:34 EST


def email_notifier(port: int, ca_file: Path, origin: str) -> Notifier:
    settings = EmailSettings(enabled=True, host="127.0.0.1", port=port, username=SMTP_USER,
                             password=SecretStr(SMTP_PASSWORD), sender="bot@example.test",
                             recipients=["ops@example.test"])
    channel = Channel(EmailSender(settings, ca_file=ca_file), policy())
    return Notifier([channel], clock=lambda: AT, zone=NY, origin=lambda: origin)


async def test_email_notice_when_routed_then_subject_names_mode_and_account_and_time_is_new_york_with_zone(
        smtp: tuple[int, RecordingHandler], certificate: tuple[Path, Path]) -> None:
    # Arrange
    port, handler = smtp
    notifier = email_notifier(port, certificate[0], "LIVE U1234567")
    alert = Alert(AlertLevel.ERROR, "risk", "daily loss limit reached", AT, kind="daily_loss")
    notifier.start()
    try:
        # Act
        notifier.route(AlertRaised(AT, alert))
        await eventually(lambda: len(handler.messages) == 1, within=10, what="the email")
    finally:
        await notifier.stop()
    # Assert
    (message,) = handler.messages
    assert message["Subject"] == "tui-trader LIVE U1234567 ERROR: risk: daily loss limit reached"
    assert message.get_payload().strip() == "03:10:34 EST [ERROR] risk: daily loss limit reached"


async def test_test_message_when_sent_then_subject_names_mode_and_account(
        smtp: tuple[int, RecordingHandler], certificate: tuple[Path, Path]) -> None:
    port, handler = smtp
    notifier = email_notifier(port, certificate[0], "PAPER DU7654321")
    (result,) = await notifier.send_test_results()
    assert result.ok, result.detail
    (message,) = handler.messages
    assert message["Subject"] == "tui-trader PAPER DU7654321: test notification from tui-trader"
    assert message.get_payload().strip() == "03:10:34 EST [INFO] test notification from tui-trader"


async def test_live_engine_when_its_link_is_lost_then_the_phone_reads_live_and_the_account_in_new_york_time(
        isolated: Path, http: HttpServer) -> None:
    async with SimGateway(port=0, seed=7, always_open=True, live_account=True) as sim:
        engine = create_engine(load_settings(None, {
            "mode": "live", "state_dir": str(isolated / "state"), "strategies": [],
            "broker": {"port": sim.port, "connect_timeout": 2.0},
            "notifications": {"batch_window_s": 0, "webhook": {"enabled": True, "url": http.url + "/hook",
                                                                "levels": ["ERROR", "CRITICAL"]}},
        }))
        await engine.start()
        try:
            await eventually(lambda: engine.is_connected, what="connected")
            sim.control.disconnect()
            await eventually(lambda: any(b"broker disconnected" in r.body for r in http.requests),
                             what="the lost link notified")
        finally:
            await engine.stop()
    body = next(r.json() for r in http.requests if b"broker disconnected" in r.body)
    assert body["subject"].startswith("tui-trader LIVE USIM0001 ERROR: broker disconnected")
    (notice,) = [n for n in body["notices"] if n["title"] == "broker disconnected"]
    at = datetime.fromisoformat(notice["time"])
    assert at.utcoffset() == at.astimezone(NY).utcoffset()  # sent in the console's zone
    line = next(line for line in body["text"].splitlines() if "broker disconnected" in line)
    assert line.startswith(f"{at.astimezone(NY):%H:%M:%S %Z} [ERROR] broker disconnected: connection lost")

