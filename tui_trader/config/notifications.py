"""The notification sections of the settings: the Telegram, email and webhook channels and what they send."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator

from tui_trader.config.sections import Section

# Checked, not free strings: a misspelt kind or level ("kill-switch", "CRITCAL") would filter out
# every notice of it, silently.
NotificationKind = Literal["fills", "rejections", "risk", "kill_switch", "disconnects", "daily_summary", "system"]
LevelName = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
NotificationLevel = Annotated[LevelName, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]


def _levels(*names: LevelName) -> list[LevelName]:
    """A default list of levels (typed for mypy: a bare list literal is a ``list[str]``)."""
    return list(names)


def _levels_sent(*names: LevelName) -> Any:
    """A notification channel's ``levels`` field, defaulting to ``names``."""
    return Field(default_factory=lambda: _levels(*names),
                 description="Levels sent; the end of something this channel said began is sent at any level "
                             "(the link back, INFO, after the link lost).")


ChannelKinds = Annotated[list[NotificationKind] | None,
                         Field(description="Event kinds sent on this channel (unset: notifications.kinds).")]
"""A notification channel's ``kinds`` field (``None``: the section's ``kinds``)."""


class TelegramSettings(Section):
    """Telegram Bot API channel."""

    enabled: bool = Field(False, description="Send to Telegram.")
    token: SecretStr = Field(SecretStr(""), description="Bot token (secret).")
    chat_id: str = Field("", description="Chat to send to.", validate_default=True)
    base_url: str = Field("https://api.telegram.org", description="Bot API base URL.")
    levels: list[NotificationLevel] = _levels_sent("WARNING", "ERROR", "CRITICAL")
    kinds: ChannelKinds = None

    # The checks that an enabled channel can send sit on a field, not the model: an error on the
    # model would echo the whole section, secrets included, in the config error message.
    @field_validator("chat_id")
    @classmethod
    def _complete_when_enabled(cls, chat_id: str, info: ValidationInfo) -> str:
        token = info.data.get("token")
        if info.data.get("enabled") and not (chat_id and token is not None and token.get_secret_value()):
            raise ValueError("telegram is enabled but token or chat_id is not set")
        return chat_id


SmtpTls = Annotated[Literal["starttls", "implicit", "none"],
                   BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]
SMTPS_PORT = 465  # the submission port that speaks TLS from the first byte (RFC 8314)


class EmailSettings(Section):
    """SMTP channel: STARTTLS, implicit TLS (port 465) or plain."""

    enabled: bool = Field(False, description="Send email.")
    host: str = Field("localhost", description="SMTP host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    tls: SmtpTls | None = Field(
        None, description='TLS: "starttls", "implicit" (TLS from the first byte) or "none"; unset: implicit on '
                          'port 465, else as starttls says.')
    starttls: bool = Field(True, description='Upgrade with STARTTLS when tls is unset (false: as tls = "none").')
    username: str = Field("", description="SMTP user.")
    password: SecretStr = Field(SecretStr(""), description="SMTP password (secret).")
    sender: str = Field("", description="From address.")
    recipients: list[str] = Field(default_factory=list, description="To addresses.", validate_default=True)
    levels: list[NotificationLevel] = _levels_sent("ERROR", "CRITICAL")
    kinds: ChannelKinds = None

    @field_validator("recipients")
    @classmethod
    def _complete_when_enabled(cls, recipients: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("enabled") and not recipients:
            raise ValueError("email is enabled but recipients is empty")
        return recipients

    @property
    def tls_mode(self) -> Literal["starttls", "implicit", "none"]:
        """The TLS the channel speaks: ``tls`` when set, else implicit on port 465, else ``starttls``'s choice.

        ``starttls`` is the older switch, kept so that configurations written before ``tls`` existed
        (``starttls = true`` was in the example file) still load and mean what they meant.
        """
        if self.tls is not None:
            return self.tls
        if self.port == SMTPS_PORT:
            return "implicit"
        return "starttls" if self.starttls else "none"


class WebhookSettings(Section):
    """Generic JSON webhook (Slack/Discord compatible payload optional)."""

    enabled: bool = Field(False, description="POST to a webhook.")
    url: SecretStr = Field(SecretStr(""), description="Webhook URL (secret: it often embeds a token).",
                           validate_default=True)
    payload: Literal["json", "slack", "discord"] = Field("json", description="Payload shape.")
    levels: list[NotificationLevel] = _levels_sent("WARNING", "ERROR", "CRITICAL")
    kinds: ChannelKinds = None

    @field_validator("url")
    @classmethod
    def _complete_when_enabled(cls, url: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("enabled") and not url.get_secret_value():
            raise ValueError("webhook is enabled but url is not set")
        return url


class NotificationSettings(Section):
    """Out-of-console notifications."""

    telegram: TelegramSettings = Field(default_factory=TelegramSettings, description="Telegram.")
    email: EmailSettings = Field(default_factory=EmailSettings, description="Email.")
    webhook: WebhookSettings = Field(default_factory=WebhookSettings, description="Webhook.")
    kinds: list[NotificationKind] = Field(
        default_factory=lambda: list(get_args(NotificationKind)),
        description="Event kinds sent: fills; rejections (orders denied or rejected); risk (risk triggers, "
                    "reconciliation mismatches, the schedule's REDUCING before the gateway restart or the close, its "
                    "end, positions held past the close); kill_switch; disconnects (the link to the gateway, data "
                    "farms, IB's servers); daily_summary; system (health, journal, entry blocks, engine failures, "
                    "notification channels). A trigger that halts trading is said by the kill switch's alert, which "
                    "is of both kinds (kill_switch and risk; system for a journal failure), sent once.",
    )
    batch_window_s: float = Field(5.0, ge=0, le=600, description="Alerts within this window go as one message.")
    max_per_minute: int = Field(20, ge=1, description="Messages per channel per minute at most.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Longest wait for one delivery attempt.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed delivery (with exponential backoff).")
    retry_initial_s: float = Field(2.0, gt=0, le=300, description="Wait before the first retry; doubles each time.")
    retry_max_s: float = Field(
        60.0, gt=0, le=3600,
        description="Longest wait before a retry, also when a server asks for longer (Retry-After, retry_after).")
    queue_size: int = Field(500, ge=1, le=100_000, description="Messages queued per channel; the oldest drop beyond.")
    ca_file: Path | None = Field(None, description="CA bundle to verify the channels' TLS (unset: system store).")
