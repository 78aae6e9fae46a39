"""How fresh the engine's data is: the console's honesty rules, as pure functions.

The console never shows old numbers as live. The engine heartbeat, the broker connection and
each symbol's last tick are compared with the configured thresholds; panes dim (``-stale``)
and the status bar says STALLED, DISCONNECTED or DEGRADED.

Nor does it call a closed market live or broken: a symbol whose market is closed (by the broker's hours, the
snapshot's :attr:`~tui_trader.engine.snapshots.EngineSnapshot.market_phases`) has quotes that stand still, so
their age is no staleness; its feed says CLOSED, and with every market closed the status bar says so. Nor is a
symbol whose trading is halted at its exchange (its quote says so): its feed says HALTED, its quote stands still.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from tui_trader.domain.enums import LINK_UP, ConnectionState
from tui_trader.domain.market import MarketPhase
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
    """Quoted symbols whose quote is older than the limit while their market is open (or its hours unknown)."""
    phases: dict[str, MarketPhase] = field(default_factory=dict)
    """Each symbol's market phase (absent: its hours are not known)."""
    closed_symbols: frozenset[str] = frozenset()
    """Quoted symbols whose market is closed."""
    halted_symbols: frozenset[str] = frozenset()
    """Quoted symbols whose trading is halted at the exchange."""

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
        """True when no quote is live (all stale but those of closed markets and halted symbols, the engine stalled
        or the link down)."""
        if self.account_stale:
            return True
        still = len(self.closed_symbols | self.halted_symbols)
        return bool(self.stale_symbols) and len(self.stale_symbols) == len(self.quote_ages) - still

    @property
    def markets_closed(self) -> bool:
        """True when every quoted symbol's market is closed (not with no quotes, nor with a market of unknown
        hours among them)."""
        return bool(self.quote_ages) and len(self.closed_symbols) == len(self.quote_ages)

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
    phases = snapshot.market_phases
    closed = frozenset(sym for sym in ages if phases.get(sym) is MarketPhase.CLOSED)
    halted = frozenset(sym for sym, q in snapshot.quotes.items() if q.halted)
    still = closed | halted
    stale = frozenset(sym for sym, a in ages.items() if a > options.market_data_stale_s and sym not in still)
    return Freshness(
        heartbeat_age=heartbeat_age,
        engine_stalled=heartbeat_age > options.heartbeat_stale_s,
        connection=snapshot.connection.state,
        market_data_degraded=snapshot.connection.market_data_degraded,
        quote_ages=ages,
        stale_symbols=stale,
        phases=phases,
        closed_symbols=closed,
        halted_symbols=halted,
    )


def feed_word(fresh: Freshness, symbol: str, delayed: bool) -> str:
    """The word ``symbol``'s feed badge shows, the first that holds of:

    - ``STALE``: nothing is live (the engine stalled, the link down);
    - ``HALTED``: its trading is halted at the exchange (nothing of it trades, its orders are denied);
    - ``CLOSED``: its market is closed (its quote is the last before the close, standing still);
    - ``STALE``: its quote is old while its market trades (or its hours are not known);
    - ``DELAY``: delayed data (``delayed``);
    - ``PRE`` / ``POST``: it trades outside regular hours, before or after them;
    - ``LIVE``.
    """
    if fresh.account_stale:
        return "STALE"
    if symbol in fresh.halted_symbols:
        return "HALTED"
    phase = fresh.phases.get(symbol)
    if phase is MarketPhase.CLOSED:
        return "CLOSED"
    if symbol in fresh.stale_symbols:
        return "STALE"
    if delayed:
        return "DELAY"
    return phase.value if phase is MarketPhase.PRE or phase is MarketPhase.POST else "LIVE"


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
