"""How fresh the engine's data is: the console's honesty rules, as pure functions.

The console never shows old numbers as live. The engine heartbeat, the broker connection and
each symbol's last tick are compared with the configured thresholds; panes dim (``-stale``)
and the status bar says STALLED, DISCONNECTED or DEGRADED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from tui_trader.domain.enums import LINK_UP, ConnectionState
from tui_trader.engine.snapshots import ConnectionInfo, EngineSnapshot
from tui_trader.ui.options import ConsoleOptions


@dataclass(frozen=True, slots=True)
class Freshness:
    """The age of each kind of data and what is stale."""

    heartbeat_age: float
    engine_stalled: bool
    connection: ConnectionState
    market_data_degraded: bool
    quote_ages: dict[str, float] = field(default_factory=dict)
    stale_symbols: frozenset[str] = frozenset()

    @property
    def broker_down(self) -> bool:
        """True when the broker link is not up: positions and orders may be out of date."""
        return self.connection in (ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)

    @property
    def account_stale(self) -> bool:
        """True when positions, orders and P&L cannot be trusted as live."""
        return self.engine_stalled or self.broker_down

    @property
    def market_stale(self) -> bool:
        """True when no quote is live (all stale, the engine stalled or the link down)."""
        if self.account_stale:
            return True
        return bool(self.quote_ages) and len(self.stale_symbols) == len(self.quote_ages)

    @property
    def newest_quote_age(self) -> float | None:
        """Age of the most recent tick over every symbol."""
        return min(self.quote_ages.values()) if self.quote_ages else None

    @property
    def verdict(self) -> str:
        """``STALLED``, ``DISCONNECTED``, ``DEGRADED`` or ``LIVE``: the word the status bar shows."""
        if self.engine_stalled:
            return "STALLED"
        if self.broker_down:
            return "DISCONNECTED"
        if self.market_data_degraded or self.connection is ConnectionState.DEGRADED or self.stale_symbols:
            return "DEGRADED"
        return "LIVE"


def assess(snapshot: EngineSnapshot, now: datetime, options: ConsoleOptions) -> Freshness:
    """Compare the snapshot's timestamps with ``now`` and the configured thresholds."""
    heartbeat_age = max((now - snapshot.heartbeat_at).total_seconds(), 0.0)
    ages = {sym: max((now - q.time).total_seconds(), 0.0) for sym, q in snapshot.quotes.items()}
    stale = frozenset(sym for sym, a in ages.items() if a > options.market_data_stale_s)
    return Freshness(
        heartbeat_age=heartbeat_age,
        engine_stalled=heartbeat_age > options.heartbeat_stale_s,
        connection=snapshot.connection.state,
        market_data_degraded=snapshot.connection.market_data_degraded,
        quote_ages=ages,
        stale_symbols=stale,
    )


def waiting_to_retry(conn: ConnectionInfo) -> bool:
    """True while the engine waits to try the connect again (after a failed connect or a lost link)."""
    return conn.retry_at is not None and conn.state not in LINK_UP


def link_state(conn: ConnectionInfo, now: datetime) -> str:
    """The broker link's state in the console's words: the engine's, but DISCONNECTED and the wait while the
    engine waits to try again (``DISCONNECTED · retry in 3 s``).

    Between the tries of its reconnect loop the engine keeps the state CONNECTING (a retry is no news), and
    the status bar said CONNECTING through a gateway that was not even running, under panes saying
    DISCONNECTED.
    """
    if conn.retry_at is None or not waiting_to_retry(conn):
        return conn.state.value
    wait = math.ceil((conn.retry_at - now).total_seconds())
    return f"DISCONNECTED · retry in {wait} s" if wait >= 1 else "DISCONNECTED · retrying"
