"""What each event writes: its line in the log plus the rows of the tables derived from it."""

from __future__ import annotations

import json
from typing import Any

from tui_trader.domain import events as ev
from tui_trader.domain.orders import Order
from tui_trader.store import codec

Row = tuple[str, tuple[Any, ...]]

_UPSERT_ORDER = (
    "INSERT INTO orders(order_ref, symbol, side, quantity, order_type, status, strategy, broker_id, parent_ref, "
    "filled_quantity, avg_fill_price, created_at, updated_at, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(order_ref) DO UPDATE SET status=excluded.status, broker_id=excluded.broker_id, "
    "filled_quantity=excluded.filled_quantity, avg_fill_price=excluded.avg_fill_price, "
    "updated_at=excluded.updated_at, payload=excluded.payload"
)
_INSERT_FILL = (
    "INSERT OR IGNORE INTO fills(exec_id, order_ref, symbol, side, quantity, price, time, broker_id, commission, "
    "realized_pnl) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def order_ref_of(event: ev.Event) -> str | None:
    """The orderRef an event is about, if any (indexes the log for order traces)."""
    if isinstance(event, ev.OrderUpdated | ev.ApprovalRequested):
        return event.order.order_ref
    if isinstance(event, ev.OrderFilled):
        return event.fill.order_ref
    ref = getattr(event, "order_ref", None)
    return ref or None


def rows_for(event: ev.Event) -> list[Row]:
    """Every row ``event`` writes, the log line first."""
    log_row: Row = (
        "INSERT INTO events(time, kind, order_ref, payload) VALUES (?,?,?,?)",
        (event.time.isoformat(), event.kind, order_ref_of(event), codec.dump(event)),
    )
    derive = _DERIVERS.get(type(event))
    return [log_row, *(derive(event) if derive else ())]


def order_row(order: Order) -> Row:
    """The ``orders`` table's upsert for ``order`` as it is now."""
    t = order.ticket
    return (_UPSERT_ORDER, (
        order.order_ref, t.symbol, t.side.value, t.quantity, t.order_type.value, order.status.value, t.strategy,
        order.broker_id, order.parent_ref, order.filled_quantity, order.avg_fill_price,
        order.created_at.isoformat(), order.updated_at.isoformat(), codec.dump(order),
    ))


def _order_rows(event: Any) -> list[Row]:
    order = event.order
    step = order.history[-1] if order.history else None
    rows: list[Row] = [order_row(order)]
    rows.append(("INSERT INTO order_states(order_ref, status, time, note) VALUES (?,?,?,?)", (
        order.order_ref, order.status.value, (step.time if step else order.updated_at).isoformat(),
        step.note if step else "",
    )))
    return rows


def _fill_rows(event: Any) -> list[Row]:
    f = event.fill
    return [(_INSERT_FILL, (f.exec_id, f.order_ref, f.symbol, f.side.value, f.quantity, f.price,
                            f.time.isoformat(), f.broker_id, f.commission, f.realized_pnl))]


def _commission_rows(event: Any) -> list[Row]:
    return [("UPDATE fills SET commission = ?, realized_pnl = COALESCE(?, realized_pnl) WHERE exec_id = ?",
             (event.commission, event.realized_pnl, event.exec_id))]


def _operator_rows(event: Any) -> list[Row]:
    return [("INSERT INTO operator_actions(time, who, action, why, before, after) VALUES (?,?,?,?,?,?)",
             (event.time.isoformat(), event.who, event.action, event.why, event.before, event.after))]


def _alert_rows(event: Any) -> list[Row]:
    a = event.alert
    return [("INSERT INTO alerts(time, level, source, kind, text) VALUES (?,?,?,?,?)",
             (a.time.isoformat(), a.level.value, a.source, a.kind, a.text))]


_UPSERT_KILL = (
    "INSERT INTO kill_state(id, engaged, updated_at, payload) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
    "SET engaged=excluded.engaged, updated_at=excluded.updated_at, payload=excluded.payload"
)


def _kill_rows(event: Any) -> list[Row]:
    engaged = isinstance(event, ev.KillSwitchEngaged)
    state = {"engaged": engaged, "by": event.by, "reason": event.reason,
             ("engaged_at" if engaged else "reset_at"): event.time.isoformat()}
    return [(_UPSERT_KILL, (int(engaged), event.time.isoformat(), json.dumps(state, sort_keys=True)))]


_DERIVERS = {
    ev.KillSwitchEngaged: _kill_rows,
    ev.KillSwitchReset: _kill_rows,
    ev.OrderUpdated: _order_rows,
    ev.OrderFilled: _fill_rows,
    ev.CommissionReported: _commission_rows,
    ev.OperatorAction: _operator_rows,
    ev.AlertRaised: _alert_rows,
}
