"""The :class:`~tui_trader.broker.base.Broker` implementation on ib_async.

Only ib_async's ``*Async`` requests and its non-blocking ``placeOrder`` / ``cancelOrder`` /
``reqGlobalCancel`` / ``reqMktData`` / ``reqRealTimeBars`` are used: the engine shares the
event loop with the console, where ib_async's blocking helpers break. This module holds the
connection, subscriptions, order placement and requests; ib_async's event handlers are in
:mod:`tui_trader.broker.ib.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from ib_async import IB, Contract, ExecutionFilter, OrderState
from ib_async import Order as IbOrder
from ib_async.objects import RealTimeBarList
from ib_async.ticker import Ticker
from ib_async.util import UNSET_DOUBLE

from tui_trader.broker.base import (
    CLIENT_ID_IN_USE,
    HISTORICAL_DATA,
    BrokerListener,
    BrokerOrderReport,
    BrokerPacingError,
    BrokerPosition,
    BrokerRequestError,
    ClientIdInUse,
    HistoryRefused,
    OrdersRefused,
    SyncFailed,
    historical_reason,
    is_pacing,
)
from tui_trader.broker.ib import mapping as m
from tui_trader.broker.ib.decode_watch import DecodeWatch
from tui_trader.broker.ib.events import FINISHED_TRADES_KEPT, WORKING_AT_BROKER, IbEvents
from tui_trader.domain.market import Bar, Instrument
from tui_trader.domain.orders import Fill, Order, WhatIf

log = logging.getLogger(__name__)
T = TypeVar("T")

OCA_REDUCE_WITH_BLOCK = 2
"""How a bracket's stop and target are linked (IB's ``ocaType``): each fill of one reduces the other by its size,
so a target that fills in part leaves a stop for the rest; a whole fill reduces it to nothing. Type 1 ("cancel all
remaining with block") cancelled the stop at the target's first partial fill, the rest of the position unprotected."""


_let_the_gateway_run = getattr(os, "sched_yield", lambda: None)
"""Offers this CPU to another runnable process once, right after an order that transmits is written
(:meth:`IbBroker.place`); returns at once when none is waiting for it (or without ``sched_yield``)."""


def ib_sync_failure(exc: ConnectionError) -> str:
    """Why ib_async's sync after the handshake failed, in the operator's words: the requests it names as timed out
    (``ConnectionError(["open orders request timed out"])``), else the connection closed under it ("Socket
    connection broken while connecting", "Not connected")."""
    named = exc.args[0] if exc.args else None
    if isinstance(named, list) and named:
        return "; ".join(str(n) for n in named)
    return "the gateway closed the connection"


def connected_account(configured: str, managed: Sequence[str]) -> str:
    """The account a connection trades: the ``configured`` one when the gateway manages it, else the gateway's first.

    Never the configured id itself when the gateway did not report it: taken as the connected account, the engine's
    account checks compared it with itself, the console showed it as the broker's, and ``--paper --account DU…``
    traded a gateway's only account, a live one (the engine refuses a connected account that is not the configured
    one, and ``--paper`` one that is not a paper account).
    """
    return configured if configured in managed else (managed[0] if managed else "")


def backoff_delays(initial: float, maximum: float, attempts: int) -> list[float]:
    """Exponential delays, doubling from ``initial`` and capped at ``maximum`` (``attempts`` of them)."""
    return [min(initial * 2**i, maximum) for i in range(attempts)]


class _NullListener:
    """Drops every callback (before the engine attaches)."""

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None


class IbBroker(IbEvents):
    """A broker connection through ib_async.

    Args:
        host: Gateway host.
        port: Gateway port.
        client_id: API client id (keep it stable so orders survive restarts).
        account: The configured account; '' takes the gateway's (first) managed account. The account in use is
            always one the gateway reports (:func:`connected_account`).
        timeout: Connect and sync-request timeout in seconds.
        readonly: Connect read-only (no order requests at connect).
    """

    def __init__(self, host: str, port: int, client_id: int, account: str = "",
                 timeout: float = 8.0, readonly: bool = False, yield_after_send: bool = True) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self._configured = account
        self._account = ""
        """The account in use, as the gateway reported it at the last connect (:func:`connected_account`)."""
        self._refused = ""
        """Why no order, modification or cancel may be written (:meth:`refuse_orders`); '' while they may."""
        self._timeout = timeout
        self._readonly = readonly
        self.ib = IB()
        self._listener: BrokerListener = _NullListener()  # type: ignore[assignment]
        self._contracts: dict[str, Contract] = {}
        self._tickers: dict[str, Ticker] = {}
        self._bars: dict[str, RealTimeBarList] = {}
        self._account_values: dict[str, float] = {}
        self._unmanaged_seen: set[tuple[int, float]] = set()
        """Holdings that are not US stocks already reported (conId, quantity)."""
        self._qualifying = 0
        """Qualifications under way: their 200 (no such contract) is the caller's to say."""
        self._currency_said = False
        """An account based in another currency was reported (once)."""
        self._request_errors: dict[int, tuple[int, str]] = {}
        """The last error (code, message) of each request id the broker named that is not an order of ours."""
        self._answered_here: set[int] = set()
        """Requests whose errors answer the awaiting call (a what-if): not passed on to the listener."""
        self._request_locks: dict[str, asyncio.Lock] = {}
        self.finished_trades_kept = FINISHED_TRADES_KEPT
        self.completed_requests = 0
        """How often the day's completed orders were asked for (each answer is the whole day's: a diagnostic)."""
        self.pacing_backoff = (2.0, 60.0, 6)
        """Historical pacing retries: (first delay s, maximum delay s, retries)."""
        self.yield_after_send = yield_after_send
        """Offer the CPU after an order that transmits (:meth:`place`); off when the gateway runs in
        this process (the embedded simulator of ``--sim``), which reads the order in this loop."""
        self._blank: IbOrder | None = IbOrder()
        """A default ib_async order for the next :meth:`place` to fill (see :func:`mapping.order_to_ib`)."""
        self._modifying: dict[int, list[float | None]] = {}
        """Our order ids with modifications sent and not yet answered, each with the trailing stop it sets (``None``:
        none), oldest first: an error on one of them is the broker refusing the oldest of an order that works on
        (:meth:`_keep_refused_working`, :meth:`_refused_as_warning`); its echo takes it (:meth:`_answered`)."""
        self._decode_watch = DecodeWatch(self.ib.client.decoder, self._on_decode_fault)
        self._wire_handlers()

    # -- connection -------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        """The account in use: one the gateway reported (:func:`connected_account`); '' before connecting."""
        return self._account

    @property
    def is_connected(self) -> bool:
        """True while the API connection is up."""
        return self.ib.isConnected()

    def set_listener(self, listener: BrokerListener) -> None:
        """Route callbacks to ``listener``."""
        self._listener = listener

    async def connect(self) -> None:
        """Connect, then let ib_async sync positions, orders, executions and account values. The listener hears the
        account in use at the handshake, before the sync's answers (:meth:`BrokerListener.on_account`).

        Raises:
            ClientIdInUse: The gateway refused this client id.
            SyncFailed: The handshake was done, the sync after it failed.
            ConnectionError, TimeoutError, OSError: No connection was made.
        """
        self._tickers.clear()
        self._bars.clear()
        self._decode_watch.rearm()
        self._account = ""
        # No account named: ib_async then asks for the values of the gateway's accounts (its one account's, or each
        # one's), never for an account the gateway does not manage (whose updates never end: a sync that failed).
        connecting = asyncio.ensure_future(self.ib.connectAsync(
            self.host, self.port, clientId=self.client_id, timeout=self._timeout, readonly=self._readonly,
            raiseSyncErrors=True))
        refused = asyncio.get_running_loop().create_future()
        handshake: list[bool] = []

        def on_api_start() -> None:  # the accounts are known: before the sync's answers, which are filtered by it
            handshake.append(True)
            managed = list(self.ib.client.getAccounts())
            self._account = connected_account(self._configured, managed)
            self._listener.on_account(self._account, managed)

        def on_error(req_id: int, code: int, message: str, contract: Contract | None) -> None:
            if code == CLIENT_ID_IN_USE and not refused.done():
                refused.set_result(None)

        # ib_async waits out its whole timeout after a 326 (the gateway closes the socket): say why at once.
        self.ib.errorEvent += on_error
        self.ib.client.apiStart += on_api_start
        try:
            await asyncio.wait((connecting, refused), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # given up (the engine stops): no connection may open after this
            connecting.cancel()
            await asyncio.wait((connecting,))
            raise
        finally:
            self.ib.errorEvent -= on_error
            self.ib.client.apiStart -= on_api_start
            refused.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, TimeoutError):
                await connecting
            self.ib.disconnect()
            raise ClientIdInUse(self.client_id)
        try:
            connecting.result()
        except ConnectionError as exc:
            if not handshake:
                raise
            raise SyncFailed(ib_sync_failure(exc)) from exc
        self._account = connected_account(self._configured, self.ib.managedAccounts())
        self.prune_finished()  # the startup sync brings back the day's completed orders and executions

    def disconnect(self) -> None:
        """Close the connection."""
        self.ib.disconnect()

    def managed_accounts(self) -> list[str]:
        """Accounts the login manages."""
        return list(self.ib.managedAccounts())

    def refuse_orders(self, reason: str) -> None:
        """Write no order, modification or cancel from now on (see :meth:`Broker.refuse_orders`)."""
        self._refused = reason

    def _write_allowed(self) -> None:
        """Raises :class:`OrdersRefused` when orders are refused (:meth:`refuse_orders`): nothing is written."""
        if self._refused:
            raise OrdersRefused(f"not sent: {self._refused}")

    # -- market data ------------------------------------------------------------------------

    async def qualify(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """Qualify stock symbols and read their contract details (hours, tick, time zone).

        Unknown symbols are left out. A symbol whose details do not arrive keeps a minimal
        instrument without hours, so the risk gate denies its entries rather than guessing.

        Raises:
            TimeoutError: The qualification was not answered within the timeout ("no answer within N s").
            ConnectionError: The connection closed meanwhile.
        """
        wanted = [m.stock_contract(s) for s in symbols]
        self._qualifying += 1
        try:  # ib_async's qualification has no timeout: a gateway that never ends the details held it for good
            qualified = await self._answer(self.ib.qualifyContractsAsync(*wanted))
        finally:
            self._qualifying -= 1
        contracts = [c for c in qualified if isinstance(c, Contract) and c.conId]
        for contract in contracts:
            self._contracts[contract.symbol] = contract
        found = await asyncio.gather(*(self._instrument(c) for c in contracts))
        return {i.symbol: i for i in found}

    async def _instrument(self, contract: Contract) -> Instrument:
        try:
            details = await self._answer(self.ib.reqContractDetailsAsync(contract))
        except TimeoutError:
            log.warning("no contract details for %s: trading hours unknown", contract.symbol)
            details = []
        if not details:
            return m.instrument_from_contract(contract)
        instrument = m.instrument_from_details(details[0])
        if not instrument.liquid_sessions:
            log.warning("unreadable hours for %s: %r %r", contract.symbol, details[0].liquidHours,
                        details[0].timeZoneId)
        return instrument

    def _contract(self, symbol: str) -> Contract:
        return self._contracts.get(symbol) or m.stock_contract(symbol)

    def subscribe_quotes(self, symbol: str) -> None:
        """Stream quotes for ``symbol``."""
        if symbol not in self._tickers:
            self._tickers[symbol] = self.ib.reqMktData(self._contract(symbol))

    def subscribe_bars(self, symbol: str) -> None:
        """Stream 5-second real-time bars for ``symbol``."""
        if symbol not in self._bars:
            self._bars[symbol] = self.ib.reqRealTimeBars(self._contract(symbol), 5, "TRADES", False)

    def set_market_data_type(self, data_type: int) -> None:
        """1 live, 3 delayed."""
        self.ib.reqMarketDataType(data_type)

    def resubscribe_quotes(self, symbol: str) -> None:
        """Request ``symbol``'s quotes again (the failed request is dead at the gateway)."""
        self._tickers[symbol] = self.ib.reqMktData(self._contract(symbol))

    async def historical_bars(self, symbol: str, duration_s: int, bar_size_s: int) -> list[Bar]:
        """Historical trade bars ending now; a pacing violation (162) is retried after a backoff.

        Raises:
            BrokerPacingError: Still paced after the last retry.
            HistoryRefused: A 162 that is not pacing (no permission, no data): asking again would not change it.
        """
        for delay in [*backoff_delays(*self.pacing_backoff), None]:
            bars = await self.ib.reqHistoricalDataAsync(
                self._contract(symbol), "", m.duration_setting(duration_s), m.bar_size_setting(bar_size_s),
                "TRADES", False, formatDate=2, timeout=self._timeout * 4)
            code, message = self._request_errors.pop(getattr(bars, "reqId", -1), (0, ""))
            if code != HISTORICAL_DATA:
                return [m.bar_from_history(symbol, b) for b in bars or []]
            if not is_pacing(message):
                raise HistoryRefused(code, historical_reason(message))
            if delay is None:
                break
            log.warning("historical data for %s paced (162): retrying in %.1fs", symbol, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto
        raise BrokerPacingError(f"historical data for {symbol} still paced (162) after "
                                f"{self.pacing_backoff[2]} retries")

    # -- orders -----------------------------------------------------------------------------

    def next_order_id(self) -> int:
        """Reserve an order id from ib_async's shared request/order id sequence."""
        return int(self.ib.client.getReqId())

    def place(self, order: Order, broker_id: int, *, parent_id: int = 0, oca_group: str = "",
              transmit: bool = True) -> None:
        """Send ``order`` under ``broker_id`` (non-blocking).

        After an order that transmits (a single order, a bracket's last child) is written, the
        CPU is offered to whoever waits for it: a gateway on the same machine (IB Gateway on the
        VPS, the simulator) that the write woke may have been queued behind this process, which
        would otherwise go on with its work after the wire (publishing, the ack timer) before the
        gateway reads the order. With a CPU free it costs a system call (≈1 µs). In
        ``bench_tick_to_order`` at 1,000 background ticks/s it took the engine's "written → read by
        the simulator" from 0.52–0.59 to 0.32–0.39 ms at p90 (seven alternating runs each,
        ``benchmarks/README.md``).
        """
        self._write_allowed()
        trade = self.ib.wrapper.trades.get((self.client_id, broker_id))
        # A modify sends a trailing stop's stop only when it moves it on purpose (m.order_to_ib).
        trail_stop = trade is None or m.trail_stop_changed(order, trade.order)
        # The blank is taken first: one whose send failed half-way is never filled again.
        blank, self._blank = self._blank or IbOrder(), None
        ib_order = m.order_to_ib(order, broker_id, self._account, blank, trail_stop=trail_stop)
        ib_order.parentId = parent_id
        ib_order.transmit = transmit
        if oca_group:  # 2: reduce the others by each fill, with block (1 cancelled them at a partial fill)
            ib_order.ocaGroup, ib_order.ocaType = oca_group, OCA_REDUCE_WITH_BLOCK
            if trade is not None and trade.order.ocaGroup == oca_group and trade.order.ocaType:
                # A modify keeps the type the broker holds (IB refuses one that changes it: 10327), also of a stop
                # and target linked in TWS and adopted (ib_async's order is the one placed, or the broker reported).
                ib_order.ocaType = trade.order.ocaType
        if trade is not None:  # a modification of an order sent before; the stop it sets is recorded at its echo
            stop = float(ib_order.trailStopPrice) if trail_stop and ib_order.trailStopPrice != UNSET_DOUBLE else None
            self._modifying.setdefault(broker_id, []).append(stop)
        if trade is not None and m.held_for_locate(trade.orderStatus):
            # ib_async counts Inactive as done and asserts a modified order is not: the request alone
            self.ib.client.placeOrder(broker_id, self._contract(order.symbol), ib_order)
        else:
            self.ib.placeOrder(self._contract(order.symbol), ib_order)
        if transmit and self.yield_after_send:
            _let_the_gateway_run()
        self._blank = IbOrder()  # the next order's, made after this one is on the wire

    async def what_if(self, order: Order, timeout_s: float) -> WhatIf:
        """IB's what-if for ``order``: the order as :meth:`place` would send it, flagged ``whatIf``
        (IB checks it and answers with margin and commission figures; it is never transmitted).

        Sent as ``IB.whatIfOrderAsync`` sends it, under a request id known here, so that an error
        the broker gives about it answers this call instead of reaching the listener as a stray
        message. Without an orderRef: nothing about it can be taken for the order itself.

        Raises:
            BrokerRequestError: the broker refused it.
            TimeoutError: no answer within ``timeout_s``.
        """
        contract = self._contract(order.symbol)
        req_id = self.next_order_id()
        ib_order = m.order_to_ib(order, req_id, self._account, IbOrder())
        ib_order.whatIf, ib_order.orderRef, ib_order.transmit = True, "", True
        self._answered_here.add(req_id)
        future = self.ib.wrapper.startReq(req_id, contract)
        try:
            self.ib.client.placeOrder(req_id, contract, ib_order)
            state = await asyncio.wait_for(future, timeout_s)
        finally:
            self._answered_here.discard(req_id)
        error = self._request_errors.pop(req_id, None)
        if isinstance(state, OrderState):
            return m.what_if_from_state(state)
        # ib_async ends a refused request, at the broker's error, with no result
        raise BrokerRequestError(*(error or (0, "the broker answered without figures")))

    def cancel(self, broker_id: int) -> None:
        """Request cancellation of one of this client's orders (non-blocking)."""
        self._write_allowed()
        trade = self.ib.wrapper.trades.get((self.client_id, broker_id))
        if trade is not None and trade.orderStatus.status not in WORKING_AT_BROKER:
            self.ib.cancelOrder(trade.order)  # it may end locally (never transmitted, inactive)
        else:
            # The request alone: for a working order ib.cancelOrder adds only a local PendingCancel
            # (which the engine ignores) and formats the whole Trade for a log line, ≈0.2 ms an
            # order — most of a 100-order kill. The broker's answer updates the trade as usual.
            self.ib.client.cancelOrder(broker_id, "")

    def global_cancel(self) -> None:
        """Cancel every order on the account."""
        self._write_allowed()
        self.ib.reqGlobalCancel()

    async def _answer(self, request: Awaitable[T]) -> T:
        """The answer to ``request``, awaited for the broker timeout at most.

        Raises:
            TimeoutError: No answer within the timeout; its text says so ("no answer within 8 s").
        """
        try:
            return await asyncio.wait_for(request, self._timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {self._timeout:g} s") from exc

    def _request_lock(self, key: str) -> asyncio.Lock:
        """One lock per ib_async request key (``wrapper.startReq(key)``).

        ib_async files keyless requests under a fixed key and a second request replaces the
        first one's future, so concurrent requests of the same key leave all but the last one
        waiting for an answer that never comes: they go one at a time.
        """
        lock = self._request_locks.get(key)
        if lock is None:
            lock = self._request_locks[key] = asyncio.Lock()
        return lock

    async def open_orders(self, all_clients: bool = False) -> list[BrokerOrderReport]:
        """Working orders (this client's, or every client's)."""
        request = self.ib.reqAllOpenOrdersAsync if all_clients else self.ib.reqOpenOrdersAsync
        async with self._request_lock("openOrders"):  # both requests share ib_async's key
            trades = await self._answer(request())
        return [m.report_from_trade(t) for t in trades]

    async def completed_orders(self) -> list[BrokerOrderReport]:
        """Orders that reached a final state (this session's day)."""
        async with self._request_lock("completedOrders"):
            self.completed_requests += 1
            trades = await self._answer(self.ib.reqCompletedOrdersAsync(False))
        reports = [m.report_from_trade(t) for t in trades]
        self.prune_finished()  # ib_async files every completed order it did not know as a new trade
        return reports

    async def executions(self, since: datetime | None = None) -> list[Fill]:
        """This account's executions since ``since`` (deduplication is the caller's)."""
        stamp = since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S") if since else ""
        flt = ExecutionFilter(acctCode=self._account, time=stamp)
        fills = await self._answer(self.ib.reqExecutionsAsync(flt))
        return [m.fill_from_ib(f) for f in fills
                if (since is None or f.execution.time >= since) and m.is_managed(f.contract)]

    async def current_time(self) -> datetime:
        """The gateway's clock (reqCurrentTime): one round trip."""
        async with self._request_lock("currentTime"):
            stamp: datetime = await self._answer(self.ib.reqCurrentTimeAsync())
        return stamp

    def positions(self) -> list[BrokerPosition]:
        """Positions as last streamed by the gateway."""
        held = self.ib.positions(self._account)
        for position in held:
            if not m.is_managed(position.contract):
                self._unmanaged(position)
        return [m.position_from_ib(p) for p in held if m.is_managed(p.contract)]

    def account_values(self) -> dict[str, float]:
        """Base-currency account values as last streamed."""
        return dict(self._account_values)
