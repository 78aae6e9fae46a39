"""What each event writes: its line in the log plus the rows of the tables derived from it.

Each deriver gets the event and its encoded log payload: an order update's order is encoded once,
for the log line, and the ``orders`` row takes its JSON from there (pydantic is most of a row's cost).
"""

from __future__ import annotations

import json
from datetime import datetime
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
_INSERT_EVENT = "INSERT INTO events(time, kind, order_ref, payload) VALUES (?,?,?,?)"
_INSERT_STATE = "INSERT INTO order_states(order_ref, status, time, note) VALUES (?,?,?,?)"
_INSERT_FILL = (
    "INSERT OR IGNORE INTO fills(exec_id, order_ref, symbol, side, quantity, price, time, broker_id, commission, "
    "realized_pnl, perm_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
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
    payload = codec.dump(event)
    when = event.time.isoformat()
    log_row: Row = (_INSERT_EVENT, (when, event.kind, order_ref_of(event), payload))
    derive = _DERIVERS.get(type(event))
    return [log_row, *derive(event, payload, when)] if derive else [log_row]


def _iso(value: datetime, event: ev.Event, when: str) -> str:
    """``value.isoformat()``; ``when`` when it is the event's own time object (often: one ``now`` for both)."""
    return when if value is event.time else value.isoformat()


def order_row(order: Order) -> Row:
    """The ``orders`` table's upsert for ``order`` as it is now."""
    return _order_row(order, codec.dump(order), order.created_at.isoformat(), order.updated_at.isoformat())


def _order_row(order: Order, payload: str, created_at: str, updated_at: str) -> Row:
    # Enum members go in as str(member): the domain's enums are StrEnums, and str() is a third of
    # the cost of .value (four per order update).
    t = order.ticket
    return (_UPSERT_ORDER, (
        order.order_ref, t.symbol, str(t.side), t.quantity, str(t.order_type), str(order.status), t.strategy,
        order.broker_id, order.parent_ref, order.filled_quantity, order.avg_fill_price, created_at, updated_at,
        payload,
    ))


def _order_rows(event: Any, payload: str, when: str) -> list[Row]:
    order = event.order
    step = order.history[-1] if order.history else None
    order_json = codec.order_of_update(payload) if type(event) is ev.OrderUpdated else None
    return [
        _order_row(order, order_json or codec.dump(order), _iso(order.created_at, event, when),
                   _iso(order.updated_at, event, when)),
        (_INSERT_STATE, (order.order_ref, str(order.status), _iso(step.time if step else order.updated_at, event, when),
                         step.note if step else "")),
    ]


def _fill_rows(event: Any, payload: str, when: str) -> list[Row]:
    f = event.fill
    return [(_INSERT_FILL, (f.exec_id, f.order_ref, f.symbol, str(f.side), f.quantity, f.price,
                            _iso(f.time, event, when), f.broker_id, f.commission, f.realized_pnl, f.perm_id))]


def _commission_rows(event: Any, payload: str, when: str) -> list[Row]:
    return [("UPDATE fills SET commission = ?, realized_pnl = COALESCE(?, realized_pnl) WHERE exec_id = ?",
             (event.commission, event.realized_pnl, event.exec_id))]


def _operator_rows(event: Any, payload: str, when: str) -> list[Row]:
    return [("INSERT INTO operator_actions(time, who, action, why, before, after) VALUES (?,?,?,?,?,?)",
             (when, event.who, event.action, event.why, event.before, event.after))]


def _alert_rows(event: Any, payload: str, when: str) -> list[Row]:
    a = event.alert
    return [("INSERT INTO alerts(time, level, source, kind, text) VALUES (?,?,?,?,?)",
             (_iso(a.time, event, when), str(a.level), a.source, a.kind, a.text))]


UPSERT_KILL = (
    "INSERT INTO kill_state(id, engaged, updated_at, payload) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
    "SET engaged=excluded.engaged, updated_at=excluded.updated_at, payload=excluded.payload"
)
"""The one row of the latched kill state, written whole."""
OUT_OF_BAND_LATCH = ("kill_state.engaged = 1 AND CASE WHEN json_valid(kill_state.payload) "
                     "THEN json_extract(kill_state.payload, '$.out_of_band') END IS 1")
"""The row holds a kill ``tui-trader kill`` latched (engaged, out of band): the engine's writes keep it until its
watcher has acted on it (:meth:`~tui_trader.store.journal.Journal.save_kill_state`). A damaged payload is none (it
is written over: ``json_extract`` of one failed the write)."""


def _kill_rows(event: Any, payload: str, when: str) -> list[Row]:
    """The engine's engagement or reset as the row's first word (its full state follows, saved by the engine); never
    over an out-of-band latch: a reset journaled as ``tui-trader kill`` latched erased the latch, the engine traded."""
    engaged = isinstance(event, ev.KillSwitchEngaged)
    state = {"engaged": engaged, "by": event.by, "reason": event.reason,
             ("engaged_at" if engaged else "reset_at"): event.time.isoformat()}
    return [(f"{UPSERT_KILL} WHERE NOT ({OUT_OF_BAND_LATCH})", (int(engaged), when, json.dumps(state, sort_keys=True)))]


_DERIVERS = {
    ev.KillSwitchEngaged: _kill_rows,
    ev.KillSwitchReset: _kill_rows,
    ev.OrderUpdated: _order_rows,
    ev.OrderFilled: _fill_rows,
    ev.CommissionReported: _commission_rows,
    ev.OperatorAction: _operator_rows,
    ev.AlertRaised: _alert_rows,
}
