"""The control surface of the simulator: prices, time and faults, for tests and the control port."""

from __future__ import annotations

import logging
import random
import struct
from typing import TYPE_CHECKING

from tui_trader.sim import messages as msg
from tui_trader.sim.faults import DEFAULT_FILL_SEQUENCE, FARM_TEXTS, LINK_TEXTS, MESSAGE_KINDS

if TYPE_CHECKING:
    from tui_trader.sim.account import OtherHolding
    from tui_trader.sim.gateway import SimGateway
    from tui_trader.sim.market import Quote
    from tui_trader.sim.orders import SimOrder

log = logging.getLogger("tui_trader.sim")

ERROR_TEXTS = {**LINK_TEXTS, **FARM_TEXTS}


class Control:
    """Drive the simulator: set prices, step time, inject faults.

    Every method is synchronous and takes effect before it returns (messages are queued on the
    sessions' sockets); await the client's view with a bounded ``eventually()``.
    """

    def __init__(self, gw: SimGateway) -> None:
        """Bind to a gateway."""
        self.gw = gw

    # ---- prices and time -----------------------------------------------------------------
    def _publish(self, quote: Quote, range_changed: bool) -> None:
        gw = self.gw
        gw.publish(quote, range_changed)
        gw.engine.new_step()
        gw.engine.on_quote(quote.inst.con_id)

    def set_price(self, symbol: str, price: float) -> None:
        """Print a trade at ``price`` with bid one tick below and ask one tick above; fill what crosses.

        The day's high and low go out only when the print moved them, as IB sends them (they
        were two of the seven messages of every print).
        """
        quote = self.gw.quote(symbol)
        high, low = quote.high, quote.low
        self.gw.market.set_price(quote.inst.con_id, price, int(self.gw.clock.now().timestamp()))
        self._publish(quote, not (high == quote.high and low == quote.low))  # NaN before the first print

    def hold(self, held: OtherHolding) -> None:
        """The account holds ``held`` (an option, say) from now on; position subscribers are told at once."""
        gw = self.gw
        gw.account.other_holdings[held.con_id] = held
        for session in list(gw.sessions.values()):
            if session.positions_sub:
                session.send(msg.other_position(gw.account_id, held))

    def set_quote(self, symbol: str, bid: float, ask: float, bid_size: int = 100, ask_size: int = 100) -> None:
        """Force the touch and displayed sizes (no trade prints); fill what crosses."""
        quote = self.gw.quote(symbol)
        self.gw.market.set_quote(quote.inst.con_id, bid, ask, bid_size, ask_size)
        quote.traded = False
        self._publish(quote, False)

    def step(self, seconds: float) -> None:
        """Advance simulated time by ``seconds``, running the market and matching step by step."""
        self.gw.advance(seconds)

    def set_slippage(self, ticks: int) -> None:
        """Market orders pay this many ticks beyond the touch."""
        self.gw.engine.slippage_ticks = ticks

    # ---- sessions and connectivity ---------------------------------------------------------
    def drop_sessions(self, client_id: int | None = None) -> None:
        """Close one client's connection, or every connection."""
        for cid, session in list(self.gw.sessions.items()):
            if client_id is None or cid == client_id:
                log.info("fault: dropping session %d", cid)
                session.close()

    def disconnect(self, client_id: int | None = None) -> None:
        """Alias of :meth:`drop_sessions` (the name DESIGN.md uses)."""
        self.drop_sessions(client_id)

    def refuse_connections(self, seconds: float) -> None:
        """Close new connections immediately for ``seconds`` of simulated time."""
        self.gw.faults.refuse_until = self.gw.clock.now().timestamp() + seconds

    def send_error(self, code: int, text: str | None = None, req_id: int = -1, client_id: int | None = None) -> None:
        """Send an error/info message (1100, 1101, 1102, 2103, 2105, 2157, 2158, …) to one or all clients.

        A data farm's status sent to all clients is the farm's status for clients that connect later too.
        """
        data = msg.error(req_id, code, text or ERROR_TEXTS.get(code, f"Simulated error {code}"))
        if client_id is None:
            self.gw.faults.report_status(code)
        for cid, session in list(self.gw.sessions.items()):
            if client_id is None or cid == client_id:
                session.send(data)

    def inject_error(self, code: int, text: str | None = None, req_id: int = -1,
                     client_id: int | None = None) -> None:
        """Alias of :meth:`send_error` (the name DESIGN.md uses)."""
        self.send_error(code, text, req_id, client_id)

    def connectivity_lost(self) -> None:
        """Error 1100 to every client, and to each that connects until :meth:`connectivity_restored` (as TWS keeps
        saying it while IB is unreachable: a client that reconnects at once is not back in touch)."""
        self.send_error(1100)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Error 1101 (data lost) or 1102 (data maintained) to every client."""
        self.send_error(1101 if data_lost else 1102)

    def server_link_broken(self) -> None:
        """Notice 2110 to every client: the gateway lost its own link to IB's servers while the API
        sessions stay up (orders and data stop at the gateway). Said to each session that connects meanwhile too.
        IB says it is back with 1101/1102: :meth:`connectivity_restored`."""
        self.send_error(2110)

    def send_malformed(self, kind: str = "fields", client_id: int | None = None, seed: int = 0) -> None:
        """Send a malformed message to one or all clients (a gateway gone wrong).

        Kinds: ``fields`` (a tick price whose fields are not numbers), ``unknown`` (a message id no
        client knows), ``binary`` (a frame of random bytes, not UTF-8), ``stream`` (random bytes
        outside any framing; the stream cannot be resynchronised, so the session is then closed).
        """
        rng = random.Random(seed)
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(8, 64)))
        payloads = {
            "fields": b"1\x006\x00x\x00one\x00NaN?\x00\xff\x00",
            "unknown": b"9999\x001\x00surprise\x00",
            "binary": junk,
        }
        if kind not in (*payloads, "stream"):
            raise ValueError(f"unknown malformed kind {kind!r}; one of {sorted((*payloads, 'stream'))}")
        for cid, session in list(self.gw.sessions.items()):
            if client_id is not None and cid != client_id:
                continue
            log.info("fault: malformed %s message to client %d", kind, cid)
            if kind == "stream":
                session.send(junk)
                session.close()
            else:
                payload = payloads[kind]
                session.send(struct.pack(">I", len(payload)) + payload)

    # ---- market data faults ------------------------------------------------------------------
    def set_pacing(self, max_requests: int | None, per_seconds: float = 1.0) -> None:
        """Historical requests beyond ``max_requests`` per ``per_seconds`` get error 162 (None: off)."""
        self.gw.faults.pacing = None if max_requests is None else (max_requests, per_seconds)

    def deny_market_data(self, *symbols: str) -> None:
        """Requests for these symbols get error 354 (or delayed data when type 3/4 was requested)."""
        self.gw.faults.denied.update(s.upper() for s in symbols)

    def allow_market_data(self, *symbols: str) -> None:
        """Undo :meth:`deny_market_data` (all symbols when none given)."""
        if symbols:
            self.gw.faults.denied.difference_update(s.upper() for s in symbols)
        else:
            self.gw.faults.denied.clear()

    def stall_market_data(self, on: bool = True) -> None:
        """Stop (or resume) sending market data while connections stay up."""
        self.gw.faults.stalled = on

    def halt(self, symbol: str, halted: bool = True) -> None:
        """Halt (or resume) trading in a symbol: no moves, no fills, new orders rejected."""
        quote = self.gw.quote(symbol)
        quote.halted = halted
        self.gw.publish_halt(quote)

    def resume(self, symbol: str) -> None:
        """Resume trading in a halted symbol."""
        self.halt(symbol, False)

    # ---- order faults --------------------------------------------------------------------
    def reject_next(self, code: int = 201, reason: str = "Order rejected - reason:Simulated rejection",
                    count: int = 1) -> None:
        """Reject the next ``count`` new orders (a what-if is not one) with this error code and text."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self.gw.engine.reject_next = (code, reason, count)

    def refuse_next_modify(self, code: int = 201, text: str = "Order rejected - reason:Simulated refusal of a "
                           "modification", order_ref: str = "", count: int = 1, perm_id: int = 0) -> None:
        """Refuse the next ``count`` modifications (of ``order_ref``, and of the order with the permanent id
        ``perm_id`` when given: several may share an orderRef; ``""`` and 0: of any order) with this error code and
        text.

        IB answers such a modify with the error alone: the order works on at the figures it had (IB refuses
        one while the last is still processed, 2102; one racing a fill or a cancel, 103/104/201).
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        self.gw.engine.refuse_modify = (order_ref, perm_id, code, text, count)

    def cancel(self, order_ref: str, reason: str = "cancelled in TWS", perm_id: int = 0) -> None:
        """Cancel a working order at the broker's side, as TWS's operator (or IB itself) would: no client
        asked for it (``perm_id``: the one with that permanent id, of several under one orderRef). Raises
        ``KeyError`` when no working order has that orderRef (and permanent id)."""
        order = self._live(order_ref, perm_id)
        self.gw.engine.cancel_order(order, reason)

    def _live(self, order_ref: str, perm_id: int = 0) -> SimOrder:
        """The working order with that orderRef (and ``perm_id``, when given; ``KeyError`` when none has it)."""
        order = next((o for o in self.gw.ledger.live()
                      if o.order_ref == order_ref and perm_id in (0, o.perm_id)), None)
        if order is None:
            raise KeyError(order_ref)
        return order

    def locate_shorts(self, on: bool = True) -> None:
        """Hold each new order that sells short while IB "locates" shares to borrow: error 404, then status
        ``Inactive`` with whyHeld ``locate``; it is not worked (nor done) until :meth:`locate_shares`."""
        self.gw.engine.locate_shorts = on

    def locate_shares(self, order_ref: str = "") -> None:
        """The shares were found: the orders held for a locate (of ``order_ref``; ``""``: all) go ``Submitted``
        and fill as usual."""
        self.gw.engine.locate(order_ref)

    def deactivate(self, order_ref: str) -> None:
        """IB ends a working order without an error (it will not work it, and says no more):
        status ``Inactive``, no whyHeld. Raises ``KeyError`` when no working order has that orderRef."""
        order = self._live(order_ref)
        self.gw.engine.deactivate(order)

    def drop_messages(self, kind: str, count: int = 1) -> None:
        """Drop the next ``count`` messages of a kind (-1: all until cleared)."""
        self._check_kind(kind)
        self.gw.faults.drops[kind] = count

    def delay_messages(self, kind: str, seconds: float) -> None:
        """Deliver messages of a kind ``seconds`` of simulated time late (0: no delay)."""
        self._check_kind(kind)
        self.gw.faults.delays[kind] = seconds

    def fill_sequence(self, *kinds: str) -> None:
        """Order of the per-fill messages, e.g. ``("commission", "execution", "order_status")``."""
        if sorted(kinds) != sorted(DEFAULT_FILL_SEQUENCE):
            raise ValueError(f"a permutation of {DEFAULT_FILL_SEQUENCE} is required")
        self.gw.faults.fill_sequence = tuple(kinds)

    def ignore_global_cancel(self, on: bool = True) -> None:
        """Ignore ``reqGlobalCancel`` requests: every order stays working (a kill that cannot cancel)."""
        self.gw.engine.ignore_global_cancel = on

    def ignore_cancels(self, on: bool = True) -> None:
        """Ignore ``cancelOrder`` requests, unanswered: the order stays working (a cancel the broker never acts on)."""
        self.gw.engine.ignore_cancels = on

    def clear_faults(self) -> None:
        """Remove every fault (market data, pacing, drops, delays, ordering, refusals)."""
        self.gw.faults.clear()
        self.gw.engine.reject_next = None
        self.gw.engine.refuse_modify = None
        self.gw.engine.ignore_global_cancel = False
        self.gw.engine.ignore_cancels = False
        self.gw.engine.locate_shorts = False

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in MESSAGE_KINDS:
            raise ValueError(f"unknown message kind {kind!r}; one of {sorted(MESSAGE_KINDS)}")
