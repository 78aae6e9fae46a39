"""Framing of the TWS API socket protocol: length-prefixed, NUL-separated text fields.

Every message in both directions (after the client's initial ``API\\0`` prefix) is a 4-byte
big-endian payload length followed by the payload, a sequence of fields each terminated by NUL.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Iterable

SERVER_VERSION = 178
"""The server version the simulator negotiates (ib_async 2.1.0's maximum)."""

API_PREFIX = b"API\0"
MAX_FRAME = 16 * 1024 * 1024
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1

_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent bytes that do not follow the TWS API framing."""


def fmt(value: object) -> str:
    """Format one field as TWS sends it.

    Args:
        value: ``None``, a bool, an int, a float or anything with a ``str``.

    Returns:
        The wire text: ``""`` for None and unset numbers, ``"1"``/``"0"`` for bools.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return fmt_float(value)
    return str(value)


def fmt_float(value: float) -> str:
    """Format a float without exponent noise; unset and NaN become empty."""
    if math.isnan(value) or value >= UNSET_DOUBLE:
        return ""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value)}.0" if value else "0.0"
    return repr(round(value, 8))


def frame(fields: Iterable[object]) -> bytes:
    """Encode one message from already ordered fields."""
    payload = ("\0".join([fmt(f) for f in fields]) + "\0").encode()
    return _LEN.pack(len(payload)) + payload


def frame_text(fields: list[str]) -> bytes:
    """Encode one message whose fields are already wire text (the fast path for ticks)."""
    payload = ("\0".join(fields) + "\0").encode()
    return _LEN.pack(len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Split a frame payload into its text fields (the trailing NUL produces no field)."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_frame(reader: asyncio.StreamReader) -> list[str]:
    """Read one framed message.

    Raises:
        asyncio.IncompleteReadError: the peer closed the connection.
        ProtocolError: the length prefix is absurd.
    """
    header = await reader.readexactly(4)
    (size,) = _LEN.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes")
    return split_payload(await reader.readexactly(size))


async def read_handshake(reader: asyncio.StreamReader) -> tuple[int, int, str]:
    """Read the client's ``API\\0`` prefix and its version range.

    Returns:
        ``(min_version, max_version, connect_options)``.

    Raises:
        ProtocolError: the bytes are not a TWS API handshake.
    """
    prefix = await reader.readexactly(4)
    if prefix != API_PREFIX:
        raise ProtocolError(f"bad prefix {prefix!r}")
    (size,) = _LEN.unpack(await reader.readexactly(4))
    if size > 1024:
        raise ProtocolError("handshake too long")
    text = (await reader.readexactly(size)).decode(errors="replace").strip("\0")
    return parse_version_range(text)


def parse_version_range(text: str) -> tuple[int, int, str]:
    """Parse ``v157..178 +OPTIONS`` (or a bare ``v178``) into min, max and options."""
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise ProtocolError(f"bad version string {text!r}")
    low, _, high = head[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if high else lo
    except ValueError as exc:
        raise ProtocolError(f"bad version string {text!r}") from exc
    return lo, hi, options


def negotiate(min_version: int, max_version: int) -> int | None:
    """Pick the server version for a client range, or ``None`` to refuse the client.

    The simulator speaks exactly one layout (178), so a client whose range does not include it
    (its minimum is above 178, or its maximum below) is refused.
    """
    if min_version > SERVER_VERSION or max_version < SERVER_VERSION:
        return None
    return SERVER_VERSION
