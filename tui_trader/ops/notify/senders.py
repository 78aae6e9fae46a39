"""The three delivery mechanisms: Telegram Bot API, SMTP with STARTTLS, and a JSON webhook.

A sender delivers one message (a subject, a body and the notices behind them) or raises
:class:`~tui_trader.ops.notify.http.DeliveryError`. Secrets come from ``SecretStr`` settings and
appear in no exception, log line or repr.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

from tui_trader.config.sections import EmailSettings, TelegramSettings, WebhookSettings
from tui_trader.ops.notify.http import DeliveryError, post_json
from tui_trader.ops.notify.notice import Notice

TELEGRAM_LIMIT = 4000  # UTF-16 code units, as Telegram counts its 4096 (an emoji is two)
DISCORD_LIMIT = 1900  # of 2000, counted conservatively in UTF-16 code units too


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing message."""

    subject: str
    body: str
    notices: tuple[Notice, ...] = ()


class Sender(Protocol):
    """Delivers one message or raises DeliveryError."""

    name: str

    async def send(self, message: Message, timeout_s: float) -> None:
        """Deliver ``message`` within ``timeout_s`` seconds."""
        ...


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying TLS context (system store, or ``ca_file`` when given)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class _HttpsContext:
    """The TLS context of an HTTP sender, built once and in a worker thread: loading a CA store
    takes tens of milliseconds, which on the event loop would stall the engine at every send."""

    def __init__(self, ca_file: Path | None) -> None:
        self._ca_file = ca_file
        self._context: ssl.SSLContext | None = None

    async def for_url(self, url: str) -> ssl.SSLContext | None:
        """The context for ``url`` (``None`` for plain http)."""
        if not url.startswith("https"):
            return None
        if self._context is None:
            try:
                self._context = await asyncio.to_thread(tls_context, self._ca_file)
            except (OSError, ssl.SSLError) as exc:  # a missing or bad ca_file fails the send, not the channel
                raise DeliveryError(f"CA file not usable: {type(exc).__name__} {exc.strerror or exc}") from exc
        return self._context


class TelegramSender:
    """Telegram Bot API ``sendMessage``.

    Args:
        settings: Token (secret), chat id and the API's base URL.
        ca_file: CA bundle for https (unset: system store).
    """

    name = "telegram"

    def __init__(self, settings: TelegramSettings, ca_file: Path | None = None) -> None:
        self._settings = settings
        self._tls = _HttpsContext(ca_file)

    async def send(self, message: Message, timeout_s: float) -> None:
        """POST ``sendMessage``; Telegram's ``ok: false`` counts as a failure."""
        s = self._settings
        url = f"{s.base_url.rstrip('/')}/bot{s.token.get_secret_value()}/sendMessage"
        text = utf16_prefix(f"{message.subject}\n\n{message.body}", TELEGRAM_LIMIT)
        payload = {"chat_id": s.chat_id, "text": text, "disable_web_page_preview": True}
        response = await post_json(url, payload, timeout_s, await self._tls.for_url(url))
        data = response.json()
        if response.status >= 300 or not (isinstance(data, dict) and data.get("ok")):
            detail = data.get("description", "") if isinstance(data, dict) else ""
            raise DeliveryError(f"telegram answered {response.status} {detail}".strip(),
                                _retry_after(data) or response.retry_after_s())


def _retry_after(data: object) -> float | None:
    """Telegram's flood-control wait (``parameters.retry_after`` of a 429), in seconds."""
    parameters = data.get("parameters") if isinstance(data, dict) else None
    wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(wait) if isinstance(wait, int | float) and wait > 0 else None


def utf16_prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 code units (never half a character)."""
    encoded = text.encode("utf-16-le")
    return text if len(encoded) <= 2 * limit else encoded[:2 * limit].decode("utf-16-le", errors="ignore")


class WebhookSender:
    """A JSON POST; ``payload`` shapes it for Slack (``text``) or Discord (``content``).

    Args:
        settings: URL (secret) and payload shape.
        ca_file: CA bundle for https (unset: system store).
    """

    name = "webhook"

    def __init__(self, settings: WebhookSettings, ca_file: Path | None = None) -> None:
        self._settings = settings
        self._tls = _HttpsContext(ca_file)

    async def send(self, message: Message, timeout_s: float) -> None:
        """POST the payload; any status of 300 or more is a failure (with the wait its ``Retry-After`` asks)."""
        url = self._settings.url.get_secret_value()
        payload = webhook_payload(self._settings.payload, message)
        response = await post_json(url, payload, timeout_s, await self._tls.for_url(url))
        if response.status >= 300:  # a 429 or 503 may say when to come back
            raise DeliveryError(f"webhook answered {response.status}", response.retry_after_s())


def webhook_payload(shape: str, message: Message) -> dict[str, Any]:
    """The JSON body for ``shape`` (json, slack or discord).

    Notice text is data, not markup: for Slack ``&``, ``<`` and ``>`` are escaped (``<!channel>``
    or ``<url|label>`` in an alert would otherwise ping or link), for Discord no mention pings.
    """
    if shape == "slack":
        return {"text": _slack_escape(f"*{message.subject}*\n{message.body}")}
    text = f"{message.subject}\n{message.body}"
    if shape == "discord":
        return {"content": utf16_prefix(text, DISCORD_LIMIT), "allowed_mentions": {"parse": []}}
    notices = [{"time": n.time.isoformat(), "level": n.level.value, "kind": n.kind, "title": n.title,
                "text": n.text} for n in message.notices]
    return {"source": "tui-trader", "subject": message.subject, "text": message.body, "notices": notices}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class EmailSender:
    """SMTP (STARTTLS when configured) through :mod:`smtplib` in a worker thread.

    Args:
        settings: Server, credentials (password secret), sender and recipients.
        ca_file: CA bundle to verify the server's certificate (unset: system store).
    """

    name = "email"

    def __init__(self, settings: EmailSettings, ca_file: Path | None = None) -> None:
        self._settings = settings
        self._ca_file = ca_file

    async def send(self, message: Message, timeout_s: float) -> None:
        """Deliver by SMTP; a thread that outlives ``timeout_s`` is abandoned, not awaited."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send_blocking, message, timeout_s), timeout_s)
        except TimeoutError as exc:
            raise DeliveryError(f"smtp gave no answer within {timeout_s:g}s") from exc
        except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as exc:
            # ValueError: a header the email package refuses (a newline in an address); a failure of
            # this message, not of the channel's task.
            raise DeliveryError(f"smtp failed: {type(exc).__name__} {_smtp_reason(exc)}") from exc

    def _send_blocking(self, message: Message, timeout_s: float) -> None:
        s = self._settings
        with smtplib.SMTP(s.host, s.port, timeout=timeout_s) as smtp:
            if s.starttls:
                smtp.starttls(context=tls_context(self._ca_file))
            if s.username:
                smtp.login(s.username, s.password.get_secret_value())
            smtp.send_message(self.compose(message))

    def compose(self, message: Message) -> EmailMessage:
        """The email for ``message``."""
        email = EmailMessage()
        sender = self._settings.sender or "tui-trader@localhost"
        email["Subject"] = message.subject
        email["From"] = sender
        email["To"] = ", ".join(self._settings.recipients)
        # Required by RFC 5322 (Date) and expected by spam filters (Message-ID): without them an
        # alert may land in the spam folder. The domain is the sender's: no DNS lookup for it.
        email["Date"] = formatdate(localtime=True)
        email["Message-ID"] = make_msgid("tui-trader", domain=sender.rpartition("@")[2] or "localhost")
        email.set_content(message.body)
        return email


def _smtp_reason(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    return f"{code}" if code is not None else str(exc)[:200]
