"""The Broker protocol: what the engine needs from a broker connection, in domain values only.

The engine talks to IB through this protocol; :mod:`tui_trader.broker.ib` implements it on
``ib_async``. Broker callbacks arrive through a :class:`BrokerListener`; listeners must not
await or issue requests inline (they schedule follow-ups), because they run inside the
broker client's message dispatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tui_trader.domain.enums import Mode, OrderStatus, OrderType, Side, TimeInForce
from tui_trader.domain.market import Bar, Instrument, Quote
from tui_trader.domain.orders import Fill, Order, WhatIf


@dataclass(frozen=True, slots=True)
class BrokerOrderReport:
    """The broker's view of one order (from an ack, a status change or a re-fetch).

    ``status`` is ``None`` when the broker's status carries no lifecycle information for the
    engine (a pending cancel, a validation warning on a live order). ``order_type`` and ``tif`` are ``OTHER``
    when the broker's are none the domain names (``raw_order_type``, ``raw_tif``: the broker's words); ``tif``
    is ``None`` when not reported. A trailing stop's ``stop_price`` is where its stop stands now (IB's
    ``trailStopPrice``), its trail the ``trail_amount`` or ``trail_percent``; ``good_till``: a GTD order's
    date and time, as the broker wrote it.
    ``why_held`` says why the broker holds a live order unworked (IB's ``whyHeld``: ``locate`` while it
    looks for shares to borrow for a short sale; the order can still fill), ``""`` when it does not.
    ``error_code``: the broker's error code behind a ``REJECTED`` status (its words are the ``note``), 0 when none.
    """

    order_ref: str
    broker_id: int
    perm_id: int
    client_id: int
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    status: OrderStatus | None
    filled: float = 0.0
    remaining: float = 0.0
    avg_fill_price: float = 0.0
    limit_price: float | None = None
    stop_price: float | None = None
    parent_id: int = 0
    oca_group: str = ""
    raw_status: str = ""
    note: str = ""
    tif: TimeInForce | None = None
    why_held: str = ""
    trail_amount: float | None = None
    trail_percent: float | None = None
    outside_rth: bool = False
    raw_order_type: str = ""
    raw_tif: str = ""
    good_till: str = ""
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """A position as the broker reports it."""

    symbol: str
    quantity: float
    avg_cost: float
    account: str = ""


@dataclass(frozen=True, slots=True)
class BrokerError:
    """An error or informational message from the broker.

    ``order_ref`` is set when the message concerns one of the orders the adapter knows.
    """

    code: int
    message: str
    req_id: int = -1
    order_ref: str = ""
    broker_id: int | None = None
    symbol: str = ""
    stream: str = ""
    """Which subscription of ``symbol`` the error ended: 'quotes', 'bars' or '' (none)."""


MALFORMED_MESSAGE = -2
"""The adapter's code for a message from the gateway it could not decode (its text says what it was, never the raw
bytes): the session is dropped and rebuilt."""
CLIENT_ID_IN_USE = 326
"""IB's error code for a connect whose client id another API client holds."""
STILL_PROCESSING = 2102
"""IB's "unable to modify this order as it is still being processed": the one refusal of a modification among its
21xx notices, and one for the moment only (the same modification sent again a little later can pass)."""
_ORDER_NOTICES = frozenset({399, 404})
"""IB's notices on an order it works (399 "order message", 404 shares to short being located)."""


ORDER_CANCELLED = 202
"""IB's "order cancelled": the order's end, heard as such (its status says Cancelled too)."""
MODIFY_OF_FILLED = 104
"""IB's "can't modify a filled order": the answer to a modification that reached IB after the order filled. It refuses
the modification; the order filled at the figures it had, and its fill comes by its own status and execution."""
ORDER_NOT_FOUND = 135
"""IB's "can't find order with ID": the answer to a modification (or, from older gateways, a cancel) of an order IB
does not know, or of a bracket child naming a parent IB does not know. It refuses the modification; what the broker
holds of the order, if anything, only a reconciliation reads."""
CANCEL_ANSWERS = frozenset({161, 10147, 10148})
"""IB's answers to a cancel of an order that has ended or that it does not know: 161 "cancel attempted when order is
not in a cancellable state", 10147 "order that needs to be cancelled is not found", 10148 "... cannot be cancelled,
state: ...". They answer a cancel, never a modification (one of the order unanswered stays so)."""
ORDER_ENDED_OR_UNKNOWN = CANCEL_ANSWERS | {MODIFY_OF_FILLED, ORDER_NOT_FOUND}
"""IB's answers to a request about an order that has ended or that it does not know. ib_async marks the order
Cancelled at each; none says how the order ended (it may have filled): a reconciliation reads that, unless the error
answered a modification (:func:`refuses_modify`), which says what it means itself."""


def is_order_notice(code: int) -> bool:
    """An error IB sends on an order it works that refuses nothing (399, 404, the 21xx notices but
    :data:`STILL_PROCESSING`): no answer to a modification."""
    return code in _ORDER_NOTICES or 2100 <= code < 2200 and code != STILL_PROCESSING


def refuses_modify(code: int) -> bool:
    """Whether an error IB sends for an order with a modification unanswered is the broker refusing it (IB answers the
    oldest first): any error but the order's cancellation (:data:`ORDER_CANCELLED`), an answer to a cancel
    (:data:`CANCEL_ANSWERS`) and a notice (:func:`is_order_notice`). So 104 and 135 refuse it, 2102 and 201 too.

    The one definition the adapter (which keeps ib_async's trade of a refused order working) and the engine (which
    puts the order back to the figures the broker holds) both follow."""
    return code != ORDER_CANCELLED and code not in CANCEL_ANSWERS and not is_order_notice(code)


class ClientIdInUse(ConnectionError):
    """The gateway refused the connection: another API client holds this client id (error 326).

    Often this program's own earlier session, still held by the gateway after a crash until its
    socket times out; a retry later may succeed.
    """

    def __init__(self, client_id: int) -> None:
        super().__init__(f"client id {client_id} is in use at the gateway (another tui-trader or API client "
                         f"connected with it, or a session the gateway has not dropped yet; --client-id picks another)")
        self.client_id = client_id


class SyncFailed(ConnectionError):
    """The connection was made (the API handshake done) but the sync after it failed: the positions, orders,
    executions or account values it reads did not come, or the gateway dropped the connection meanwhile.

    Not "could not connect": the gateway answered. ``str()`` says why, in the operator's words.
    """


HISTORICAL_DATA = 162
"""IB's "Historical Market Data Service error message": a pacing violation ("Historical data request pacing
violation", "API historical data query cancelled: pacing violation"), which passes with time, or a refusal no retry
changes ("No market data permissions for ARCA STK", "HMDS query returned no data: SPY@SMART Trades", an invalid
request): :func:`is_pacing` tells them apart."""
HISTORICAL_DATA_PREFIX = "Historical Market Data Service error message:"


def is_pacing(message: str) -> bool:
    """Whether a 162's text says pacing (only then does waiting help)."""
    return "pacing" in message.lower()


def historical_reason(message: str) -> str:
    """A 162's text without IB's "Historical Market Data Service error message:" in front."""
    return message.removeprefix(HISTORICAL_DATA_PREFIX).strip() or message


class OrdersRefused(RuntimeError):
    """An order, modification or cancel asked of a broker connection that refuses them (:meth:`Broker.refuse_orders`):
    nothing was written. The engine refuses them itself first; this is the last guard at the wire."""


class BrokerPacingError(RuntimeError):
    """Historical data stayed paced (error 162) through every bounded, backed-off retry."""


class HistoryRefused(RuntimeError):
    """A historical data request refused for a reason waiting does not change (a 162 that is not pacing: no
    permission for the exchange, no data). ``str()`` is IB's reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class BrokerRequestError(RuntimeError):
    """The broker refused a request with an error message (``code``: IB's error code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class BrokerListener(Protocol):
    """Receives broker callbacks as domain values (never awaits, never requests inline)."""

    def on_account(self, account: str, managed: list[str]) -> None:
        """A connect's handshake named the account in use (``account``, '' when none; ``managed``: the gateway's
        accounts), before the sync after it brings any order, execution or position: every callback of that
        connection comes after this one."""

    def on_quote(self, quote: Quote) -> None:
        """A quote changed."""

    def on_bar(self, bar: Bar) -> None:
        """A 5-second real-time bar closed."""

    def on_order(self, report: BrokerOrderReport) -> None:
        """An order was acknowledged or changed status."""

    def on_fill(self, fill: Fill) -> None:
        """An execution arrived (may repeat; the engine deduplicates by exec id)."""

    def on_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        """The commission of an execution arrived."""

    def on_position(self, position: BrokerPosition) -> None:
        """The broker's position in a symbol changed."""

    def on_account_value(self, tag: str, value: float, currency: str) -> None:
        """An account value (NetLiquidation, TotalCashValue, ...) changed."""

    def on_account_currency(self, currency: str) -> None:
        """The account reports its values in ``currency``, not dollars (said once)."""

    def on_unmanaged_position(self, description: str, quantity: float) -> None:
        """The account holds something that is not a US stock (an option, a future, a foreign stock):
        not reported as a position; said once per contract and quantity."""

    def on_error(self, error: BrokerError) -> None:
        """An error or informational code arrived."""

    def on_disconnected(self) -> None:
        """The connection dropped."""


class Broker(Protocol):
    """A connection to a broker, expressed in domain values."""

    @property
    def account_id(self) -> str:
        """The account in use: the configured one when the gateway manages it, else the gateway's first; never one
        the gateway did not report ('' before connecting)."""
        ...

    @property
    def is_connected(self) -> bool:
        """True while the API connection is up."""
        ...

    def set_listener(self, listener: BrokerListener) -> None:
        """Route callbacks to ``listener``."""

    async def connect(self) -> None:
        """Connect and synchronise (raises ``ConnectionError`` or ``TimeoutError``)."""

    def disconnect(self) -> None:
        """Close the connection (working orders stay at the broker)."""

    def managed_accounts(self) -> list[str]:
        """Accounts the login manages."""
        ...

    async def qualify(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """Qualify stock symbols; unknown symbols are left out.

        Raises:
            TimeoutError: The broker did not answer within its request timeout (the text says so).
            ConnectionError: The connection closed meanwhile.
        """
        ...

    def subscribe_quotes(self, symbol: str) -> None:
        """Stream quotes for ``symbol`` (resubscribed after a reconnect by the caller)."""

    def subscribe_bars(self, symbol: str) -> None:
        """Stream 5-second real-time bars for ``symbol``."""

    def resubscribe_quotes(self, symbol: str) -> None:
        """Request ``symbol``'s quotes again (after a permission error, in the new data type)."""

    def set_market_data_type(self, data_type: int) -> None:
        """1 live, 3 delayed."""

    async def historical_bars(self, symbol: str, duration_s: int, bar_size_s: int) -> list[Bar]:
        """Historical bars ending now (pacing violations are retried with a bounded backoff;
        :class:`BrokerPacingError` when they persist; :class:`HistoryRefused` at once for a refusal that
        waiting does not change)."""
        ...

    def next_order_id(self) -> int:
        """Reserve a broker order id."""
        ...

    def place(self, order: Order, broker_id: int, *, parent_id: int = 0, oca_group: str = "",
              transmit: bool = True) -> None:
        """Send ``order`` (non-blocking) under ``broker_id``."""

    async def what_if(self, order: Order, timeout_s: float) -> WhatIf:
        """The broker's margin and commission estimate for ``order``, asked without placing it.

        Raises:
            BrokerRequestError: the broker refused it (its message says why).
            TimeoutError: no answer within ``timeout_s``.
        """
        ...

    def cancel(self, broker_id: int) -> None:
        """Request cancellation of an order by broker id (non-blocking)."""

    def global_cancel(self) -> None:
        """Cancel every order on the account, whichever client placed it."""

    def refuse_orders(self, reason: str) -> None:
        """From now on write no order, modification or cancel: :meth:`place`, :meth:`cancel` and
        :meth:`global_cancel` raise :class:`OrdersRefused` (``reason`` says why), for the rest of the run (reconnects
        included)."""

    async def open_orders(self, all_clients: bool = False) -> list[BrokerOrderReport]:
        """Working orders at the broker."""
        ...

    async def completed_orders(self) -> list[BrokerOrderReport]:
        """Orders that reached a final state today."""
        ...

    async def executions(self, since: datetime | None = None) -> list[Fill]:
        """Executions (with commissions where known) since ``since``."""
        ...

    def positions(self) -> list[BrokerPosition]:
        """The broker's positions as last streamed."""
        ...

    async def current_time(self) -> datetime:
        """The gateway's clock: one request/response round trip (the health monitor times it)."""
        ...

    def account_values(self) -> dict[str, float]:
        """The broker's account values (base currency) as last streamed."""
        ...


def account_problem(connected: str, managed: Iterable[str], configured: str, mode: Mode) -> str:
    """Why trading must be refused on the ``connected`` account ('' when it need not): the gateway reported none, it is
    not the ``configured`` one (the gateway does not manage that one: its accounts are ``managed``), or the mode is
    ``--paper`` and it is not a paper account (IB's paper account ids start with DU). The engine's guard at each
    connect, and the kill command's before its global cancel."""
    accounts = ", ".join(managed) or "none"
    if not connected:
        return "the gateway reported no account"
    if configured and connected != configured:
        return f"connected account {connected} is not the configured account {configured} (the gateway's: {accounts})"
    if mode is Mode.PAPER and not connected.startswith("DU"):
        return f"--paper but account {connected} is not a paper account (paper ids start with DU)"
    return ""
