"""The snapshots the proxy shows when the engine process cannot say for itself.

Before the engine process has said hello, right after Ctrl+K (before the engine has read the
kill) and once the process is gone, the proxy derives what it shows from the last snapshot it
has: never the last numbers as if they were live.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tui_trader.domain.enums import ConnectionState, Mode, OrderStatus, TradingState
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.engine.snapshots import ConnectionInfo, EngineSnapshot

STARTING = "engine process starting"


def starting(mode: Mode, dry_run: bool, host: str, port: int, client_id: int) -> EngineSnapshot:
    """What the console shows until the engine process sends its first snapshot."""
    now = datetime.now(UTC)
    connection = ConnectionInfo(host, port, client_id, state=ConnectionState.CONNECTING)
    return EngineSnapshot(time=now, heartbeat_at=now, mode=mode, dry_run=dry_run, account_id="",
                          trading_state=TradingState.ACTIVE, kill_engaged=False, kill_reason="",
                          connection=connection, account=AccountSnapshot(time=now, known=False),
                          entries_blocked_reason=STARTING)


def halted(snapshot: EngineSnapshot, reason: str, by: str) -> EngineSnapshot:
    """``snapshot`` with the operator's kill engaged (the engine's own snapshot will say the same shortly): it
    cancels everything in scope, the protective orders an automatic trip kept too."""
    if snapshot.kill_engaged:
        reason, by = snapshot.kill_reason, snapshot.kill_by
    return replace(snapshot, trading_state=TradingState.HALTED, kill_engaged=True, kill_reason=reason, kill_by=by,
                   kill_keeps_protection=False, pending_approvals=())


def down(snapshot: EngineSnapshot, why: str) -> EngineSnapshot:
    """``snapshot`` once the engine process is gone: disconnected, nothing pending, saying why.

    The heartbeat and the quote times stay those of the last snapshot received, so their ages
    keep growing and the panes go stale.
    """
    connection = replace(snapshot.connection, state=ConnectionState.DISCONNECTED, last_error=why,
                         last_error_at=datetime.now(UTC), last_error_reason="", retry_at=None,
                         market_data_degraded=True, connected_since=None, round_trip_ms=None)
    return replace(snapshot, connection=connection, pending_approvals=(), entries_blocked_reason=why)


def after_global_cancel(snapshot: EngineSnapshot, cancelled: set[str], remaining: set[str]) -> EngineSnapshot:
    """``snapshot``'s orders as the out-of-band global cancel found them at the broker.

    With the engine process gone nobody else updates them: an order it cancelled is CANCELLED, one
    still working stays so, and one working here that the broker no longer had (filled, or ended,
    before the cancel looked) is UNKNOWN, never shown as still working.
    """
    now = datetime.now(UTC)
    orders = tuple(
        o if not o.status.is_working or o.order_ref in remaining
        else o.with_status(OrderStatus.CANCELLED, now, "out-of-band kill: cancelled at the broker")
        if o.order_ref in cancelled
        else o.with_status(OrderStatus.UNKNOWN, now, "out-of-band kill: no longer working at the broker")
        for o in snapshot.orders)
    account = replace(snapshot.account, working_orders=tuple(o for o in orders if o.status.is_working))
    return replace(snapshot, orders=orders, account=account)
