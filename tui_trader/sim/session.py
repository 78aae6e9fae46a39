"""One client connection: handshake, startApi, request dispatch and its subscriptions."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui_trader.sim import messages as msg
from tui_trader.sim.protocol.framing import ProtocolError, negotiate, read_frame, read_handshake
from tui_trader.sim.protocol.ids import Out

if TYPE_CHECKING:
    from tui_trader.sim.gateway import SimGateway

log = logging.getLogger("tui_trader.sim")

MAX_BACKLOG = 32 * 1024 * 1024
"""Bytes queued to a client beyond which market data for it is skipped."""


@dataclass(slots=True)
class HistSub:
    """A ``keepUpToDate`` historical subscription and the bar it is building."""

    req_id: int
    con_id: int
    size: int
    format_date: int
    use_rth: bool
    key: int = -1
    bar: list[float] = field(default_factory=list)


class Session:
    """A connected API client."""

    def __init__(self, gw: SimGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an accepted connection."""
        self.gw = gw
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.closed = False
        self.mkt: dict[int, int] = {}
        self.delayed: set[int] = set()
        self.rt_bars: dict[int, int] = {}
        self.hist: dict[int, HistSub] = {}
        self.positions_sub = False
        self.account_sub = False
        self.account_multi: set[int] = set()
        self.md_type = 1
        self.requests: deque[float] = deque()
        self.warned_backlog = False
        self._held: list[bytes] | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    @property
    def master(self) -> bool:
        """Client id 0 also sees the orders of every other client."""
        return self.client_id == 0

    def send(self, data: bytes) -> None:
        """Queue bytes to the client (dropped once the session or its socket closed)."""
        if self._held is not None:
            self._held.append(data)
        elif not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def hold(self) -> None:
        """Keep what is sent from now on until :meth:`release` (see ``SimGateway.batched``)."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Write what was kept since :meth:`hold` in one go, in the order it was sent."""
        held, self._held = self._held, None
        if held:
            self.send(b"".join(held))

    def backlogged(self) -> bool:
        """Whether the client reads too slowly: market data is then skipped, as IB throttles it."""
        if self.writer.transport.get_write_buffer_size() <= MAX_BACKLOG:
            return False
        if not self.warned_backlog:
            self.warned_backlog = True
            log.warning("client %s reads too slowly; skipping market data", self.client_id)
        return True

    def send_kind(self, kind: str, data: bytes) -> None:
        """Send an order/account message (or a halted tick) through the fault filter (drop, delay)."""
        self.gw.faults.route(self, kind, data)

    async def run(self) -> None:
        """Serve the connection until either side closes it."""
        try:
            if await self._handshake():
                await self._serve()
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError) as exc:
            log.debug("session %s ended: %s", self.peer, exc)
        except Exception:
            # A bug in one request handler ends that client's session, never the gateway or the others.
            log.exception("session %s (client %s) crashed; closing it", self.peer, self.client_id)
        finally:
            self.close()

    async def _handshake(self) -> bool:
        low, high, _ = await read_handshake(self.reader)
        version = negotiate(low, high)
        if version is None:
            log.warning("refused client %s with versions v%d..%d", self.peer, low, high)
            return False
        self.send(msg.frame_handshake(version, self.gw.clock.now()))
        fields = await read_frame(self.reader)
        try:
            if int(fields[0]) != Out.START_API:
                raise ProtocolError(f"expected startApi, got message {fields[0]!r}")
            client_id = int(fields[2])
        except (IndexError, ValueError) as exc:
            raise ProtocolError(f"malformed startApi {fields[:3]!r}") from exc
        return self._start_api(client_id)

    def _start_api(self, client_id: int) -> bool:
        if client_id in self.gw.sessions:
            self.send(msg.error(-1, 326, "Unable to connect as the client id is already in use. "
                                         "Retry with a unique client id."))
            log.warning("client id %d already in use (%s)", client_id, self.peer)
            return False
        self.client_id = client_id
        self.gw.sessions[client_id] = self
        log.info("session client_id=%d from %s", client_id, self.peer)
        self.send(msg.managed_accounts(self.gw.account_id))
        self.send(msg.next_valid_id(self.gw.ledger.max_order_id() + 1))
        for code, text in self.gw.faults.connect_messages():
            self.send(msg.error(-1, code, text))
        return True

    async def _serve(self) -> None:
        from tui_trader.sim.handlers import dispatch

        while not self.closed:
            fields = await read_frame(self.reader)
            if fields:
                self.gw.received_frames.append((self.client_id or 0, fields))
                dispatch(self, fields)

    def close(self) -> None:
        """Close the connection and forget the session."""
        if self.closed:
            return
        self.release()  # what was sent before the close goes out before it, as without a batch
        self.closed = True
        if self.client_id is not None and self.gw.sessions.get(self.client_id) is self:
            del self.gw.sessions[self.client_id]
            log.info("session client_id=%d closed", self.client_id)
        self.gw.unsubscribe_all(self)
        self.writer.close()
