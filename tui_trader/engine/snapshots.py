"""Frozen snapshots the engine hands to its front ends (console, headless runner, tests).

The console pulls one :class:`EngineSnapshot` per refresh tick (4–10 Hz) through
``EngineHandle.snapshot()``; discrete facts arrive separately as events on the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tui_trader.domain.enums import AlertLevel, ConnectionState, Mode, TradingState
from tui_trader.domain.market import MarketPhase, Quote
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.domain.verdicts import RiskVerdict


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What the connectivity pane shows."""

    host: str
    port: int
    client_id: int
    state: ConnectionState = ConnectionState.DISCONNECTED
    connected_since: datetime | None = None
    reconnects: int = 0
    farms: dict[str, str] = field(default_factory=dict)
    round_trip_ms: float | None = None
    pacing_budget: float | None = None
    market_data_degraded: bool = False
    server_link_broken: bool = False
    """IB's 2110: the gateway lost its own link to IB's servers (until 1101/1102 or a fresh connection);
    orders and market data stop at the gateway while the API link looks up."""
    last_error: str = ""
    last_error_at: datetime | None = None
    """When :attr:`last_error` happened: it stays after a reconnect, as the last thing that went wrong."""
    last_error_reason: str = ""
    """The reason alone of a failed connect's :attr:`last_error` (``connection refused (is the gateway
    running …)``), without the gateway's address or the wait before the next try, which the connectivity pane
    shows on rows of their own; "" when :attr:`last_error` is not a failed connect's."""
    retry_at: datetime | None = None
    """When the engine tries to connect again, while it waits to after a failed connect or a lost link (None
    while connected, and while a try is under way)."""


@dataclass(frozen=True, slots=True)
class HealthInfo:
    """System health figures (filled by ``tui_trader.ops``)."""

    time: datetime | None = None
    cpu_pct: float | None = None
    process_cpu_pct: float | None = None
    mem_pct: float | None = None
    process_rss_mb: float | None = None
    disk_pct: float | None = None
    loop_lag_ms: float | None = None
    journal_queue: int = 0
    broker_rtt_ms: float | None = None
    md_age_s: dict[str, float] = field(default_factory=dict)
    """Age of the latest quote per symbol."""
    levels: dict[str, AlertLevel] = field(default_factory=dict)
    """Level of each watched metric as the thresholds (with hysteresis) judge it."""


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An order waiting for the operator, with everything the approval modal shows."""

    order: Order
    verdict: RiskVerdict
    requested_at: datetime
    expires_at: datetime
    reference_price: float
    est_notional: float
    est_commission: float | None = None
    """The broker's commission estimate (its what-if); ``None`` until it answers."""
    margin_impact: float | None = None
    """The change in initial margin the broker's what-if gives; ``None`` until it answers."""
    what_if_note: str = ""
    """Where the what-if stands when there are no figures (asking, refused, not asked), or the
    broker's warning about the order."""


@dataclass(frozen=True, slots=True)
class PendingModification:
    """A modification of a working order sent (or about to be) that the broker has not confirmed.

    The order's ticket already carries the figures asked (the engine checks the next modify, and
    sizes protection, against them); a front end shows :attr:`held`, what the broker still works,
    until the broker's echo confirms :attr:`asked` (or its refusal puts the order back to :attr:`held`).
    The snapshot's account already has the figures held (:attr:`EngineSnapshot.account`); the risk checks of
    other orders count it at the larger of the two (:func:`~tui_trader.domain.orders.larger_of`).
    """

    held: OrderTicket
    """The figures the broker holds as last known."""
    asked: OrderTicket
    """The newest figures sent, not yet confirmed."""


@dataclass(frozen=True, slots=True)
class StrategyStatus:
    """One running strategy."""

    name: str
    symbols: tuple[str, ...]
    paused: bool = False
    disabled_reason: str = ""
    last_signal_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FlattenPreview:
    """The closing orders a flatten would send, with estimated prices."""

    tickets: tuple[OrderTicket, ...]
    est_prices: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """What makes an estimate unreliable, one line per symbol (its quote old, or none): the preview says it."""


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One notification channel as the console shows it: queue, counters, last success and error."""

    name: str
    queued: int
    sent: int
    failed: int
    dropped: int
    retried: int
    last_success: datetime | None
    last_failure: datetime | None
    last_error: str


@dataclass(frozen=True, slots=True)
class TestNotificationResult:
    """The outcome of a test message on one channel (``detail`` is the error when it failed)."""

    __test__ = False  # not a pytest test class despite its name

    channel: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One line of an order's timeline (``data`` holds plain JSON values only)."""

    time: datetime
    step: str
    detail: str
    order_ref: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderTrace:
    """An order's whole story from the journal, as one timeline.

    ``order_ref`` is the resolved orderRef (the query may have been a broker id);
    ``journal_path`` tells a front end where "next to the journal" is.
    """

    query: str
    order_ref: str
    symbol: str
    steps: tuple[TraceStep, ...]
    journal_path: str = ""


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The whole state a front end needs at one instant."""

    time: datetime
    heartbeat_at: datetime
    mode: Mode
    dry_run: bool
    account_id: str
    trading_state: TradingState
    kill_engaged: bool
    kill_reason: str
    connection: ConnectionInfo
    account: AccountSnapshot
    """The account as the broker holds it: a working order with a modification unconfirmed (:attr:`modifications`)
    is at the figures held, and so are the stop and target of the position it protects."""
    orders: tuple[Order, ...] = ()
    quotes: dict[str, Quote] = field(default_factory=dict)
    pending_approvals: tuple[PendingApproval, ...] = ()
    strategies: tuple[StrategyStatus, ...] = ()
    health: HealthInfo = field(default_factory=HealthInfo)
    entries_blocked_reason: str = ""
    time_zone: str = "America/New_York"
    armed: bool = True
    """False in live mode until the operator has typed the account id (no approval is accepted)."""
    read_only_api: bool | None = None
    """Whether the gateway connection is read-only (``None``: not known)."""
    notifications: tuple[ChannelStatus, ...] = ()
    """Per notification channel: queued, sent, failed, last success and last error."""
    kill_by: str = ""
    """Who engaged the kill switch (an operator, ``kill-cli:…``, or an automatic trigger ``risk:…``), also
    when it was latched before this run."""
    kill_keeps_protection: bool = False
    """The engaged kill keeps the positions' protective (reduce-only) orders working: an automatic trip's,
    until the operator's Ctrl+K cancels them too."""
    modifications: dict[str, PendingModification] = field(default_factory=dict)
    """The orders with a modification the broker has not confirmed, by ``order_ref`` (usually none). The
    engine replaces the dict when it changes, never changes it in place: the same dict is the same view."""
    market_phases: dict[str, MarketPhase] = field(default_factory=dict)
    """Each watched symbol's market phase (open, pre/post-market, closed) at :attr:`time`, by the broker's hours; a
    symbol whose hours are not known (no contract details yet) is absent, and so is every symbol when the engine
    follows no hours (``--sim``: its simulator trades around the clock). A new dict when a phase changes."""
