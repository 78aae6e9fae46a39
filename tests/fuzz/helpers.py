"""Raw-socket clients for fuzzing the simulator, a check that a real client's session is intact, and an
engine wired to the simulator for the gateway-garbage tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ib_async
import pytest

from tui_trader.config.sections import SizingSettings
from tui_trader.domain import Mode, OrderTicket, OrderType, Side
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.risk.limits import RiskLimits
from tui_trader.sim import SimGateway

HANDSHAKE = b"API\0" + struct.pack(">I", 9) + b"v157..178"
GLOBAL_CANCEL = "58"
"""reqGlobalCancel cancels every order of the account, from any client, as at IB: never fuzzed, since a
legitimate global cancel would cancel the victim's orders too."""


def frame(fields: list[str]) -> bytes:
    """A length-prefixed TWS frame of NUL-terminated text fields."""
    payload = "".join(f + "\0" for f in fields).encode("utf-8", errors="surrogatepass")
    return struct.pack(">I", len(payload)) + payload


def start_api(client_id: int) -> bytes:
    """The startApi request (message 71, version 2)."""
    return frame(["71", "2", str(client_id), ""])


async def raw_session(gw: SimGateway, data: bytes, client_id: int | None, read_s: float = 0.05) -> None:
    """Connect, optionally handshake as ``client_id``, send ``data``, read briefly, close."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    try:
        if client_id is not None:
            writer.write(HANDSHAKE + start_api(client_id))
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(reader.read(1 << 16), read_s)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def mutate(fields: list[str], rng: random.Random) -> list[str]:
    """One random mutation of a real request: replace, drop, duplicate, truncate or extend fields."""
    out = list(fields)
    op = rng.randrange(6)
    junk = rng.choice(["", "-1", "0", "1e309", "nan", "x" * rng.randint(1, 300), "\u00ff\u2603", "99999999999999999999",
                       str(rng.randint(-10**6, 10**6)), "1.5", "|", " "])
    if op == 0 and out:
        out[rng.randrange(len(out))] = junk
    elif op == 1 and len(out) > 1:
        del out[rng.randrange(1, len(out))]
    elif op == 2 and out:
        i = rng.randrange(len(out))
        out.insert(i, out[i])
    elif op == 3:
        out = out[: rng.randint(1, max(1, len(out)))]
    elif op == 4:
        out += [junk] * rng.randint(1, 5)
    else:
        for _ in range(rng.randint(2, 6)):
            if out:
                out[rng.randrange(len(out))] = junk
    if out and out[0] == GLOBAL_CANCEL:
        out[0] = "9999"
    return out


@dataclass
class LoopErrors:
    """Exceptions that reached the event loop's exception handler (a handler or task that crashed)."""

    contexts: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    def messages(self) -> list[str]:
        """One line per error."""
        return [f"{c.get('message')}: {c.get('exception')!r}" for c in self.contexts]


class _SimErrors(logging.Handler):
    def __init__(self, errors: LoopErrors) -> None:
        super().__init__(level=logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.contexts.append({"message": f"simulator logged: {record.getMessage()}",
                                     "exception": record.exc_info[1] if record.exc_info else None})


@contextlib.contextmanager
def loop_errors() -> Iterator[LoopErrors]:
    """Record what reaches the running loop's exception handler, and the simulator's error logs
    (a session that crashed in a request handler)."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    errors = LoopErrors()
    handler = _SimErrors(errors)
    sim_log = logging.getLogger("tui_trader.sim")
    loop.set_exception_handler(errors)
    sim_log.addHandler(handler)
    try:
        yield errors
    finally:
        loop.set_exception_handler(previous)
        sim_log.removeHandler(handler)


async def victim_still_works(gw: SimGateway, ib: ib_async.IB, contract: ib_async.Contract,
                             ticker: ib_async.Ticker) -> None:
    """The real client's session answers requests, streams quotes and keeps its orders."""
    before = {(o.client_id, o.order_id): (o.status, o.filled) for o in gw.orders() if o.client_id == ib.client.clientId}
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    seen = ticker.time
    gw.control.step(1.0)
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    assert ticker.time != seen, "quotes stopped flowing to the real client"
    trade = ib.placeOrder(contract, ib_async.LimitOrder("BUY", 1, round(gw.quote("AAPL").bid - 5, 2),
                                                        orderRef=f"victim-{len(before)}"))
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    deadline = asyncio.get_running_loop().time() + 5
    while trade.orderStatus.status != "Submitted":
        assert asyncio.get_running_loop().time() < deadline, f"victim order not acknowledged: {trade.orderStatus}"
        await asyncio.sleep(0.01)
    after = {(o.client_id, o.order_id): (o.status, o.filled) for o in gw.orders() if o.client_id == ib.client.clientId}
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    assert not changed, f"the victim's orders were changed by another session: {changed}"


# -- the engine side ------------------------------------------------------------------------------


async def eventually(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:  # noqa: ASYNC109
    """Wait until ``predicate()`` is truthy, yielding to the loop; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.005)


def make_engine(gw: SimGateway, journal_dir: Path) -> Engine:
    """An engine on AAPL and MSFT (no strategies, no approvals) through the real ib_async adapter."""
    limits = RiskLimits(max_order_quantity=1000, max_order_notional=500_000, max_open_positions=10,
                        max_gross_exposure=2.0, max_leverage=2.0, require_quote=True,
                        unknown_order_timeout_s=None, disconnect_halt_after_s=None)
    config = EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=journal_dir / "journal.sqlite",
                          symbols=("AAPL", "MSFT"), ack_timeout_s=2.0, limits=limits, reconnect_initial_s=0.05,
                          reconnect_max_s=0.2, market_data_stale_s=3600, warmup_bars=20, tick_interval_s=0.05,
                          sizing=SizingSettings(method="fixed_quantity"))
    return Engine(config, make_broker(gw.host, gw.port, 11, timeout=3.0))


def buy(qty: float, symbol: str = "AAPL") -> OrderTicket:
    """A market buy."""
    return OrderTicket(symbol, Side.BUY, qty, OrderType.MKT)
