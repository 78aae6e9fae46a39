"""A small HTTP/1.1 JSON POST over asyncio streams (TLS for https), with no dependency.

Enough for the Telegram Bot API and webhooks: one request per connection, a bounded response,
and errors that never carry the URL (Telegram's carries the bot token, webhooks often one too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

MAX_RESPONSE = 1_000_000


class DeliveryError(Exception):
    """A delivery failed; the message names the failure, never a secret.

    Args:
        message: What failed.
        retry_after_s: How long the server asked to wait before the next attempt (a 429's
            ``retry_after``, a ``Retry-After`` header), or ``None``.
        retryable: ``False`` when sending again could deliver the message twice (the server may
            already have it): the channel gives up on it instead of retrying.
    """

    def __init__(self, message: str, retry_after_s: float | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status code, body and headers (names in lower case) of a response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def retry_after_s(self, now: datetime | None = None) -> float | None:
        """The wait a ``Retry-After`` header asks for (delay-seconds or an HTTP-date), or ``None``.

        Args:
            now: The wall clock an HTTP-date is measured from (default: the current time).
        """
        value = self.headers.get("retry-after", "").strip()
        if value.isdigit():
            wait = float(value)
        else:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:  # an HTTP-date is GMT; an obsolete form may not say so
                when = when.replace(tzinfo=UTC)
            wait = (when - (now or datetime.now(UTC))).total_seconds()
        return wait if wait > 0 else None

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def post_json(url: str, payload: Any, timeout_s: float, ssl_context: ssl.SSLContext | None = None,
                    ) -> HttpResponse:
    """POST ``payload`` as JSON to ``url`` and return the response.

    Raises:
        DeliveryError: on a bad URL, a network failure or a timeout (never naming the URL).
    """
    try:
        parts = urlsplit(url)
        explicit_port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise DeliveryError("bad URL host or port") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("bad URL scheme or host")
    secure = parts.scheme == "https"
    port = explicit_port or (443 if secure else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(payload).encode()
    try:
        async with asyncio.timeout(timeout_s):
            return await _exchange(parts.hostname, port, secure, ssl_context, _request(parts, path, body))
    except TimeoutError as exc:
        raise DeliveryError(f"no response within {timeout_s:g}s") from exc
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {_safe(exc)}") from exc


def _request(parts: SplitResult, path: str, body: bytes) -> bytes:
    # A URL's user:password@ is HTTP basic auth, never part of the Host header.
    host = parts.netloc.rpartition("@")[2]
    auth = ""
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n"
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nUser-Agent: tui-trader\r\nConnection: close\r\n\r\n")
    return head.encode() + body


async def _exchange(host: str, port: int, secure: bool, context: ssl.SSLContext | None,
                    request: bytes) -> HttpResponse:
    ssl_arg: ssl.SSLContext | None = (context or ssl.create_default_context()) if secure else None
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl_arg)
    try:
        writer.write(request)
        await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> HttpResponse:
    status_line = await reader.readline()
    fields = status_line.decode("latin-1").split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/"):
        raise ValueError("not an HTTP response")
    headers = await _read_headers(reader)
    length = headers.get("content-length")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(min(int(length), MAX_RESPONSE))
    else:
        body = await reader.read(MAX_RESPONSE)
    return HttpResponse(int(fields[1]), body, headers)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (an HTTP/1.1 server may send one whatever the request asked); bounded."""
    chunks: list[bytes] = []
    received = 0
    while size := int((await reader.readline()).split(b";")[0].strip(), 16):
        received += size
        if received > MAX_RESPONSE:
            raise ValueError("response too large")
        chunks.append((await reader.readexactly(size + 2))[:size])  # the chunk, then its CRLF
    return b"".join(chunks)


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            return headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()


def _safe(exc: BaseException) -> str:
    # Socket errors name the host at most; cut anything that could echo a path with a token.
    return str(exc).split("/bot")[0][:200]
