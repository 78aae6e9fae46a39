"""Real servers on loopback standing in for the Telegram Bot API, a webhook endpoint and an SMTP relay."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

OK_BODY = b'{"ok": true, "result": {"message_id": 1}}'


@dataclass
class Request:
    """One request the HTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Busy:
    """A plan entry: ``status`` (429, 503) with a ``Retry-After`` of ``wait_s`` seconds, written as a number
    or (``as_date``) as an HTTP-date; with ``hold`` every request until then gets the same answer."""

    status: int
    wait_s: int
    as_date: bool = False
    hold: bool = True


@dataclass(frozen=True)
class Hold:
    """A plan entry: read the request, then answer ``status`` only once ``released`` is set (a slow server
    the test controls: no sleeping and hoping)."""

    released: asyncio.Event
    status: int = 200


@dataclass
class HttpServer:
    """An asyncio HTTP/1.1 server on 127.0.0.1 that records requests.

    ``plan`` holds the answers to give, in order: an int status (with a Telegram-style body),
    ``"hang"`` (read the request, never answer), ``"chunked"`` (200 with a chunked body) or
    ``"flood"`` (Telegram's flood control: 429 with ``retry_after`` = ``flood_wait_s``, and 429 to
    every request until that wait is over), a :class:`Busy` or a :class:`Hold`. When the plan is empty it answers 200.
    With ``tls`` (a server context) it speaks https. ``times`` holds each request's loop time.
    """

    plan: list[int | str | Busy | Hold] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    flood_wait_s: int = 1
    tls: ssl.SSLContext | None = None
    _flood_until: float = 0.0
    _busy: Busy | None = None
    _busy_until: float = 0.0
    _busy_wall_until: float = 0.0
    _server: asyncio.Server | None = None
    _hung: list[asyncio.StreamWriter] = field(default_factory=list)
    _holds: list[tuple[Hold, asyncio.Task[Any]]] = field(default_factory=list)

    async def start(self) -> HttpServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for hold, _ in self._holds:  # a test that failed before releasing must not leave a handler waiting
            hold.released.set()
        await asyncio.gather(*(handler for _, handler in self._holds), return_exceptions=True)
        for writer in self._hung:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        self.requests.append(request)
        now = asyncio.get_running_loop().time()
        self.times.append(now)
        if self._busy is not None and now < self._busy_until:
            await self._answer_busy(writer, self._busy, self._busy_wall_until)
            return
        answer = "flood" if now < self._flood_until else self.plan.pop(0) if self.plan else 200
        if isinstance(answer, Busy):
            await self._start_busy(writer, answer, now)
            return
        if isinstance(answer, Hold):
            handler = asyncio.current_task()
            assert handler is not None
            self._holds.append((answer, handler))
            await answer.released.wait()
            answer = answer.status
        if answer == "hang":
            self._hung.append(writer)
            return
        if answer == "chunked":
            half = len(OK_BODY) // 2
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (OK_BODY[:half], OK_BODY[half:]))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if answer == "flood":
            self._flood_until = max(self._flood_until, now + self.flood_wait_s)
            status, body = 429, json.dumps({"ok": False, "error_code": 429, "description": "Too Many Requests",
                                            "parameters": {"retry_after": self.flood_wait_s}}).encode()
        else:
            status = int(answer)
            body = OK_BODY if status < 300 else b'{"ok": false, "description": "Internal Server Error"}'
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    async def _start_busy(self, writer: asyncio.StreamWriter, busy: Busy, now: float) -> None:
        # An HTTP-date has whole seconds: the wait ends on the second it names.
        until = int(time.time() + busy.wait_s) + 1 if busy.as_date else time.time() + busy.wait_s
        if busy.hold:  # the client's clock may run a hair ahead of ours
            self._busy, self._busy_until = busy, now + (until - time.time()) - 0.05
            self._busy_wall_until = until
        await self._answer_busy(writer, busy, until)

    @staticmethod
    async def _answer_busy(writer: asyncio.StreamWriter, busy: Busy, until: float) -> None:
        value = formatdate(until, usegmt=True) if busy.as_date else str(busy.wait_s)
        writer.write(f"HTTP/1.1 {busy.status} Busy\r\nRetry-After: {value}\r\nContent-Length: 0\r\n"
                     f"Connection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request:
    method, path, _ = (await reader.readline()).decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode().strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class RecordingHandler:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.rcpts: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        self.rcpts.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SlowHandler(RecordingHandler):
    """A relay that takes its time: ``mail_s``, ``rcpt_s`` and ``data_s`` before answering MAIL, RCPT and
    the message (which it has already kept: it answers late, it does not refuse), ``quit_s`` before QUIT."""

    def __init__(self, mail_s: float = 0.0, rcpt_s: float = 0.0, data_s: float = 0.0, quit_s: float = 0.0) -> None:
        super().__init__()
        self.mail_s, self.rcpt_s, self.data_s, self.quit_s = mail_s, rcpt_s, data_s, quit_s
        self.quits = 0  # sessions that said QUIT: the client is done with them

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        await asyncio.sleep(self.mail_s)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        await asyncio.sleep(self.rcpt_s)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.data_s)
        return answer

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.quits += 1
        await asyncio.sleep(self.quit_s)
        return "221 Bye"


class GatedHandler(RecordingHandler):
    """A relay that holds the first ``sessions`` sessions at MAIL until ``gate`` is set (then goes on as usual).

    aiosmtpd runs its own loop in a thread: the gate is a :class:`threading.Event`, waited for in a worker
    thread (at most ``hold_s``, so a test that failed before releasing cannot hang the server's stop).
    """

    def __init__(self, sessions: int = 1, hold_s: float = 10.0) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.sessions, self.hold_s = sessions, hold_s
        self.held = 0  # sessions held at MAIL so far

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if self.held < self.sessions:
            self.held += 1
            await asyncio.to_thread(self.gate.wait, self.hold_s)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


def authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting one login."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok)

    return check


def smtp_server(cert: Path, key: Path, user: str, password: str, handler: RecordingHandler | None = None,
                ) -> tuple[Controller, RecordingHandler]:
    """An SMTP server on 127.0.0.1 requiring STARTTLS before AUTH LOGIN/PLAIN."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = handler or RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=closed_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticator(user, password),
                            auth_require_tls=True)
    return controller, handler


def smtps_server(cert: Path, key: Path, user: str, password: str) -> tuple[Controller, RecordingHandler]:
    """An SMTP server on 127.0.0.1 speaking TLS from the first byte (implicit TLS, as on port 465)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; here every byte is already encrypted.
    controller = Controller(handler, hostname="127.0.0.1", port=closed_port(), ssl_context=context,
                            authenticator=authenticator(user, password), auth_require_tls=False)
    return controller, handler
