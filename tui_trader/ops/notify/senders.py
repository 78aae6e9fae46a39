"""The three delivery mechanisms: Telegram Bot API, SMTP (STARTTLS or implicit TLS), and a JSON webhook.

A sender delivers one message (a subject, a body and the notices behind them) or raises
:class:`~tui_trader.ops.notify.http.DeliveryError`. Secrets come from ``SecretStr`` settings and
appear in no exception, log line or repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

from tui_trader.config.notifications import EmailSettings, TelegramSettings, WebhookSettings
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
    A json notice names every kind it is of (``kinds``: the kill switch's alert of a trip is the trigger's too,
    :attr:`~tui_trader.ops.notify.notice.Notice.kinds`), and its own ``kind`` as before.
    """
    if shape == "slack":
        return {"text": _slack_escape(f"*{message.subject}*\n{message.body}")}
    text = f"{message.subject}\n{message.body}"
    if shape == "discord":
        return {"content": utf16_prefix(text, DISCORD_LIMIT), "allowed_mentions": {"parse": []}}
    notices = [{"time": n.time.isoformat(), "level": n.level.value, "kind": n.kind, "kinds": sorted(n.kinds),
                "title": n.title, "text": n.text} for n in message.notices]
    return {"source": "tui-trader", "subject": message.subject, "text": message.body, "notices": notices}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


SESSION_TIMEOUTS = 3  # an SMTP session may take this many timeouts in all (each answer gets one)


class _CutOff(Exception):
    """The waiting task gave up on the session before it handed the message over."""


class _Progress:
    """How far one SMTP session got, shared by its thread and the task awaiting it.

    The lock makes "the task gives up" and "the thread begins DATA" exclusive: either the session
    is cut off before the message leaves (and a retry cannot deliver it twice), or the message
    left and the task knows it may have arrived.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cut_off = False
        self.data_begun = False

    def begin_data(self) -> None:
        """Called by the thread before DATA; raises :class:`_CutOff` when the task gave up."""
        with self._lock:
            if self._cut_off:
                raise _CutOff
            self.data_begun = True

    def cut_off(self) -> bool:
        """Give up on the session; ``True`` when the message never left (it will not)."""
        with self._lock:
            self._cut_off = True
            return not self.data_begun


class _SMTP(smtplib.SMTP):
    """smtplib's client, telling ``progress`` before the message goes out."""

    progress: _Progress  # set per session, right after the connection

    def data(self, msg: Any) -> tuple[int, bytes]:
        """DATA, once ``progress`` agrees (see :class:`_Progress`)."""
        self.progress.begin_data()
        return super().data(msg)


class _SMTPS(_SMTP, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""


class EmailSender:
    """SMTP (STARTTLS, implicit TLS or plain, as ``tls`` says) through :mod:`smtplib` in a worker thread.

    A message is sent at most once from the moment its DATA began: a session that fails or is cut
    off before is retried by the channel; one that loses the server after (no answer to the
    message, a dropped connection) is not, as the server may have kept it. A slow server's late
    answer to QUIT changes nothing: the message was accepted or refused before it.

    Args:
        settings: Server, credentials (password secret), sender and recipients.
        ca_file: CA bundle to verify the server's certificate (unset: system store).
    """

    name = "email"

    def __init__(self, settings: EmailSettings, ca_file: Path | None = None) -> None:
        self._settings = settings
        self._ca_file = ca_file

    async def send(self, message: Message, timeout_s: float) -> None:
        """Deliver by SMTP: each answer of the server within ``timeout_s``, the whole session within
        :data:`SESSION_TIMEOUTS` of them (a slow server that keeps answering is waited for, not
        abandoned and sent the message again)."""
        progress, limit = _Progress(), timeout_s * SESSION_TIMEOUTS
        session = asyncio.ensure_future(asyncio.to_thread(self._send_blocking, message, timeout_s, progress))
        session.add_done_callback(_retrieve)  # a session given up on still ends, unawaited
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(session)
        except TimeoutError as exc:
            if session.done():  # the socket's own timeout, inside the session
                raise _failure(exc, progress) from exc
            if progress.cut_off():
                raise DeliveryError(f"smtp session not done within {limit:g}s") from exc
            raise _maybe_delivered(f"no answer within {limit:g}s") from exc
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            # ValueError: a header the email package refuses (a newline in an address); a failure of
            # this message, not of the channel's task.
            raise _failure(exc, progress) from exc

    def _send_blocking(self, message: Message, timeout_s: float, progress: _Progress) -> None:
        s, email = self._settings, self.compose(message)
        tls = s.tls_mode
        if tls == "implicit":
            smtp: _SMTP = _SMTPS(s.host, s.port, timeout=timeout_s, context=tls_context(self._ca_file))
        else:
            smtp = _SMTP(s.host, s.port, timeout=timeout_s)
        smtp.progress = progress
        try:
            if tls == "starttls":
                smtp.starttls(context=tls_context(self._ca_file))
            if s.username:
                smtp.login(s.username, s.password.get_secret_value())
            smtp.send_message(email)
        finally:
            # QUIT's answer changes nothing (the message is accepted or refused by now): a slow or
            # odd one must not turn a delivered message into a failure, and so into a second email.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

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


def _retrieve(session: asyncio.Future[None]) -> None:
    if not session.cancelled():
        session.exception()


def _failure(exc: BaseException, progress: _Progress) -> DeliveryError:
    """The failure of a session that ended with ``exc``: retried, unless the message may have arrived
    (the connection failed after DATA began, without the server's refusal)."""
    reason = f"{type(exc).__name__} {_smtp_reason(exc)}"
    if progress.data_begun and not isinstance(exc, smtplib.SMTPResponseException):
        return _maybe_delivered(reason)
    return DeliveryError(f"smtp failed: {reason}")


def _maybe_delivered(reason: str) -> DeliveryError:
    return DeliveryError(f"smtp lost the server after sending the message ({reason}); not sent again: "
                         f"it may have arrived", retryable=False)


def _smtp_reason(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    return f"{code}" if code is not None else str(exc)[:200]
