"""A line-based control port (loopback) driving :class:`Control` in the standalone simulator.

One command per line, words separated by spaces; the reply is one line, ``ok [result]`` or
``error <reason>``. Commands (arguments in brackets are optional)::

    set_price SYMBOL PRICE              set_quote SYMBOL BID ASK [BID_SIZE ASK_SIZE]
    step SECONDS                        set_slippage TICKS
    drop_sessions [CLIENT_ID]           refuse_connections SECONDS
    send_error CODE [TEXT…]             connectivity_lost      connectivity_restored [data_lost]
    server_link_broken
    set_pacing MAX [PER_SECONDS] | set_pacing off
    deny_market_data SYMBOL…            allow_market_data [SYMBOL…]
    stall_market_data on|off            halt SYMBOL            resume SYMBOL
    reject_next CODE [COUNT] [REASON…]  drop_messages KIND [COUNT]
    refuse_next_modify CODE [COUNT] [ORDER_REF [PERM_ID]]
    ignore_cancels [on|off]             (cancelOrder left unanswered; the order works on)
    ignore_global_cancel [on|off]       (reqGlobalCancel left unanswered; every order works on)
    locate_shorts [on|off]              locate_shares [ORDER_REF]      deactivate ORDER_REF
    send_malformed [fields|unknown|binary|stream] [CLIENT_ID]
    delay_messages KIND SECONDS         fill_sequence KIND KIND KIND
    clear_faults                        status

Example: ``printf 'halt AAPL\\n' | nc 127.0.0.1 4013``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tui_trader.sim.control import Control

log = logging.getLogger("tui_trader.sim")


def _int_or_none(words: list[str]) -> int | None:
    return int(words[0]) if words else None


def _counted(words: list[str]) -> tuple[int, list[str]]:
    """An optional count first (a whole number) and the words after it: ``(1, words)`` without one, as before counts
    (a reason is words, and the engine's orderRefs are ``<prefix>-<n>``, never a number)."""
    if words and words[0].lstrip("-").isdigit():
        return int(words[0]), words[1:]
    return 1, words


def _reject_next(c: Control, words: list[str]) -> None:
    """``reject_next CODE [COUNT] [REASON…]``."""
    count, reason = _counted(words[1:])
    c.reject_next(int(words[0]), " ".join(reason) or "Order rejected - reason:Simulated", count)


def _refuse_next_modify(c: Control, words: list[str]) -> None:
    """``refuse_next_modify CODE [COUNT] [ORDER_REF [PERM_ID]]``."""
    count, which = _counted(words[1:])
    c.refuse_next_modify(int(words[0]), order_ref=which[0] if which else "", count=count,
                         perm_id=int(which[1]) if len(which) > 1 else 0)


def _commands(c: Control) -> dict[str, Callable[[list[str]], object]]:
    return {
        "set_price": lambda w: c.set_price(w[0], float(w[1])),
        "set_quote": lambda w: c.set_quote(w[0], float(w[1]), float(w[2]), *(int(x) for x in w[3:5])),
        "step": lambda w: c.step(float(w[0])),
        "set_slippage": lambda w: c.set_slippage(int(w[0])),
        "drop_sessions": lambda w: c.drop_sessions(_int_or_none(w)),
        "refuse_connections": lambda w: c.refuse_connections(float(w[0])),
        "send_error": lambda w: c.send_error(int(w[0]), " ".join(w[1:]) or None),
        "connectivity_lost": lambda w: c.connectivity_lost(),
        "connectivity_restored": lambda w: c.connectivity_restored(bool(w and w[0] == "data_lost")),
        "server_link_broken": lambda w: c.server_link_broken(),
        "set_pacing": lambda w: c.set_pacing(None if w[0] == "off" else int(w[0]), *(float(x) for x in w[1:2])),
        "deny_market_data": lambda w: c.deny_market_data(*w),
        "allow_market_data": lambda w: c.allow_market_data(*w),
        "stall_market_data": lambda w: c.stall_market_data(w[0] == "on"),
        "halt": lambda w: c.halt(w[0]),
        "resume": lambda w: c.resume(w[0]),
        "reject_next": lambda w: _reject_next(c, w),
        "refuse_next_modify": lambda w: _refuse_next_modify(c, w),
        "ignore_cancels": lambda w: c.ignore_cancels(not w or w[0] == "on"),
        "ignore_global_cancel": lambda w: c.ignore_global_cancel(not w or w[0] == "on"),
        "locate_shorts": lambda w: c.locate_shorts(not w or w[0] == "on"),
        "locate_shares": lambda w: c.locate_shares(w[0] if w else ""),
        "deactivate": lambda w: c.deactivate(w[0]),
        "drop_messages": lambda w: c.drop_messages(w[0], int(w[1]) if len(w) > 1 else 1),
        "delay_messages": lambda w: c.delay_messages(w[0], float(w[1])),
        "fill_sequence": lambda w: c.fill_sequence(*w),
        "send_malformed": lambda w: c.send_malformed(w[0] if w else "fields", *(int(x) for x in w[1:2])),
        "clear_faults": lambda w: c.clear_faults(),
        "status": lambda w: _status(c),
    }


def _status(c: Control) -> str:
    gw = c.gw
    return (f"clients={sorted(gw.sessions)} orders={len(gw.orders())} executions={len(gw.executions())} "
            f"cash={gw.cash:.2f} positions={gw.positions()}")


def execute(control: Control, line: str) -> str:
    """Run one command line and return the reply line."""
    words = line.split()
    if not words:
        return "error empty command"
    command = _commands(control).get(words[0])
    if command is None:
        return f"error unknown command {words[0]!r}"
    try:
        result = command(words[1:])
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        return f"error {exc}"
    log.info("control: %s", line.strip())
    return "ok" if result is None else f"ok {result}"


async def serve_control(control: Control, host: str, port: int) -> asyncio.Server:
    """Listen for control connections; each line gets one reply line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((execute(control, line.decode(errors="replace")) + "\n").encode())
                await writer.drain()
        except ConnectionError as exc:
            log.debug("control connection ended: %s", exc)
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
