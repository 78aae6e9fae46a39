"""Orders and executions as the simulator's ledger keeps them."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

WORKING = frozenset({"PreSubmitted", "Submitted"})
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
SUPPORTED_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})
PERM_IDS_APART = 100_000
"""How far apart the permanent ids of two ledgers in one process start (:func:`first_perm_id`)."""
_ledgers = itertools.count()


def first_perm_id() -> int:
    """The first permanent id of a new ledger: each one's :data:`PERM_IDS_APART` from the others' in the process.

    IB's permanent ids never repeat; every gateway started at the same one, so two gateways in one test (a paper and
    a live account, a broker that lost its orders) handed out the same ids, and an engine that met both took one's
    order for the other's. Within a Java int, as IB's are: the starts wrap around after 6,000 ledgers, the first by
    then long gone (a test's gateways start together).
    """
    return 1_500_000_001 + next(_ledgers) % 6_000 * PERM_IDS_APART


@dataclass(slots=True)
class SimOrder:
    """One order of one client, with its state at the simulated exchange."""

    client_id: int
    order_id: int
    perm_id: int
    con_id: int
    symbol: str
    exchange: str
    action: str
    total_qty: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    order_ref: str = ""
    parent_id: int = 0
    outside_rth: bool = False
    trailing_percent: float | None = None
    trail_stop_price: float | None = None
    trail_extreme: float | None = None
    """A trailing stop's most favourable price seen (a sell's highest bid, a buy's lowest ask): its stop moves
    only on a price past it, so a stop a modify set (looser or not) stays there until then, as IB's does."""
    display_size: int = 0
    good_till_date: str = ""
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    fill_value: float = 0.0
    commission: float = 0.0
    triggered: bool = False
    rested: bool = False
    transmitted: bool = True
    created: float = 0.0
    expires: float | None = None
    completed_time: str = ""
    completed_status: str = ""
    parent_perm_id: int = 0
    why_held: str = ""
    """Why IB holds the order unworked: ``"locate"`` while it looks for shares to borrow for a short sale. Its
    status then reads ``Inactive``, yet it is not done: it works once released (:meth:`OrderEngine.locate`)."""

    @property
    def key(self) -> tuple[int, int]:
        """``(clientId, orderId)``, the key ib_async uses."""
        return self.client_id, self.order_id

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self.action == "BUY" else -1

    @property
    def remaining(self) -> float:
        """Quantity still to fill."""
        return max(0.0, self.total_qty - self.filled)

    @property
    def working(self) -> bool:
        """Whether the order is live at the exchange (or held as a bracket child)."""
        return self.status in WORKING

    @property
    def held(self) -> bool:
        """Held by IB, not worked yet still alive (``Inactive`` with a :attr:`why_held`)."""
        return self.status == "Inactive" and bool(self.why_held)

    @property
    def open(self) -> bool:
        """Alive at IB: worked (:attr:`working`) or :attr:`held`; what an open-orders answer reports and a
        session's end expires (a bracket child not transmitted yet is neither, nor :attr:`done`)."""
        return self.working or self.held

    @property
    def done(self) -> bool:
        """Whether the order reached a final state (one held for a locate has not)."""
        return self.status in DONE and not self.why_held

    def complete(self, status: str, moment: datetime, reason: str = "") -> None:
        """Move to a final state, stamping the completion time IB shows in completed orders."""
        self.status, self.why_held = status, ""
        self.completed_time = moment.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self.completed_status = reason or status

    def to_state(self) -> dict[str, object]:
        """JSON-ready snapshot (every field is a scalar: a shallow copy, not ``asdict``'s deep one, which
        cost ≈35 µs an order, 20 ms a save with a day's orders)."""
        return {name: getattr(self, name) for name in _ORDER_FIELDS}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> SimOrder:
        """Rebuild from :meth:`to_state`."""
        return cls(**state)  # type: ignore[arg-type]


@dataclass(slots=True)
class SimExecution:
    """One fill, as ``execDetails`` and ``commissionReport`` report it."""

    exec_id: str
    client_id: int
    order_id: int
    perm_id: int
    con_id: int
    symbol: str
    exchange: str
    side: str
    shares: float
    price: float
    time: float
    cum_qty: float
    avg_price: float
    order_ref: str
    account: str
    commission: float = 0.0
    realized_pnl: float = 0.0

    @property
    def time_text(self) -> str:
        """IB execution time, tz-aware text."""
        return datetime.fromtimestamp(self.time, UTC).strftime("%Y%m%d %H:%M:%S UTC")

    def to_state(self) -> dict[str, object]:
        """JSON-ready snapshot (scalars only, as :meth:`SimOrder.to_state`)."""
        return {name: getattr(self, name) for name in _EXECUTION_FIELDS}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> SimExecution:
        """Rebuild from :meth:`to_state`."""
        return cls(**state)  # type: ignore[arg-type]


_ORDER_FIELDS = tuple(f.name for f in fields(SimOrder))
_EXECUTION_FIELDS = tuple(f.name for f in fields(SimExecution))


@dataclass(frozen=True, slots=True)
class ReceivedOrder:
    """A ``placeOrder`` as received (new orders and modifications), for the orderRef ledger."""

    client_id: int
    order_id: int
    order_ref: str
    symbol: str
    action: str
    qty: float
    order_type: str
    modification: bool
    what_if: bool
    parent_id: int = 0
    oca_group: str = ""


@dataclass(slots=True)
class Ledger:
    """Everything the simulated broker remembers: orders, executions, ids, received requests."""

    orders: dict[tuple[int, int], SimOrder] = field(default_factory=dict)
    executions: list[SimExecution] = field(default_factory=list)
    received: list[ReceivedOrder] = field(default_factory=list)
    used_ids: set[tuple[int, int]] = field(default_factory=set)
    forgotten_ids: dict[int, int] = field(default_factory=dict)
    """Each client's highest order id when orders were last forgotten (:meth:`forget_before`): every id up to it may
    have been used, so none is taken for a new order again (:meth:`id_used`)."""
    next_perm_id: int = field(default_factory=first_perm_id)
    next_exec_seq: int = 1
    _live: dict[int, dict[tuple[int, int], SimOrder]] = field(default_factory=dict, repr=False)
    """Orders not done yet, by conId: a quote re-checks these, not every order of the day."""
    _indexed: int = field(default=0, repr=False)
    _done_json: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)
    """Each done order's JSON, made once: a done order does not change (see :meth:`to_json`)."""
    _executions_json: list[str] = field(default_factory=list, repr=False)
    """The JSON of ``executions[:len(_executions_json)]`` (executions are only appended)."""

    def add(self, order: SimOrder) -> None:
        """Remember a new order."""
        self.orders[order.key] = order
        if self._indexed == len(self.orders) - 1:
            self._live.setdefault(order.con_id, {})[order.key] = order
            self._indexed += 1

    def live(self, con_id: int | None = None) -> list[SimOrder]:
        """Orders not done yet (of one instrument, or all), oldest first; the done ones leave the index."""
        if self._indexed != len(self.orders):  # orders put in the dict directly: index them all again
            self._live = {}
            for o in self.orders.values():
                if not o.done:
                    self._live.setdefault(o.con_id, {})[o.key] = o
            self._indexed = len(self.orders)
        if con_id is not None:  # every quote asks for its instrument's: no list of groups
            group = self._live.get(con_id)
            if not group:
                return []
            for key in [k for k, o in group.items() if o.done]:
                del group[key]
            return list(group.values())
        out: list[SimOrder] = []
        for group in self._live.values():
            for key in [k for k, o in group.items() if o.done]:
                del group[key]
            out.extend(group.values())
        return out

    def new_perm_id(self) -> int:
        """A fresh permId."""
        self.next_perm_id += 1
        return self.next_perm_id - 1

    def new_exec_id(self, perm_id: int) -> str:
        """A fresh execId in IB's dotted style."""
        self.next_exec_seq += 1
        return f"0000{perm_id % 0xFFFF:04x}.{self.next_exec_seq - 1:08x}.01.01"

    def id_used(self, client_id: int, order_id: int) -> bool:
        """Whether ``client_id`` has used ``order_id`` (IB refuses a new order under it: 103), also for an order
        forgotten since (:meth:`forget_before` keeps only each client's highest id)."""
        return (client_id, order_id) in self.used_ids or order_id <= self.forgotten_ids.get(client_id, 0)

    def max_order_id(self) -> int:
        """The highest order id any client used."""
        return max((oid for _, oid in self.used_ids), default=0)

    def forget_before(self, t: float) -> None:
        """Drop what a broker no longer reports after a day: executions before ``t`` (epoch seconds) and
        orders done before it. A simulator whose state is kept from run to run would otherwise save (five
        times a second while trading) and load every order and execution of every run before. Each
        client's highest order id is kept, so no id is handed out twice, and no id up to it is taken for a new
        order again (:meth:`id_used`)."""
        recent = {e.perm_id for e in self.executions if e.time >= t}
        self.executions = [e for e in self.executions if e.time >= t]
        highest = dict(self.forgotten_ids)
        for client, oid in self.used_ids:
            highest[client] = max(highest.get(client, 0), oid)
        self.forgotten_ids = highest
        self.orders = {k: o for k, o in self.orders.items() if not o.done or o.created >= t or o.perm_id in recent}
        self.used_ids = {o.key for o in self.orders.values()} | set(highest.items())
        self._indexed = -1  # index again on first use
        self._forget_encoded()

    def to_json(self) -> str:
        """The JSON of orders, executions and counters, as ``json.dumps`` of a dict of them.

        Saved on every fill and a few times a second while trading, in the loop of the engine that
        embeds the simulator (``--sim``): encoding the whole day's orders each time took 40 ms at 2,400
        orders. Done orders and executions do not change, so each is encoded once; only the live orders
        are encoded again.
        """
        done, orders = self._done_json, []
        for key, order in self.orders.items():
            text = done.get(key)
            if text is None:
                text = json.dumps(order.to_state())
                if order.done:
                    done[key] = text
            orders.append(text)
        encoded = self._executions_json
        encoded.extend(json.dumps(e.to_state()) for e in self.executions[len(encoded):])
        counters = json.dumps({"used_ids": sorted(self.used_ids), "forgotten_ids": sorted(self.forgotten_ids.items()),
                               "next_perm_id": self.next_perm_id,
                               "next_exec_seq": self.next_exec_seq})
        return f'{{"orders":[{",".join(orders)}],"executions":[{",".join(encoded)}],{counters[1:]}'

    def _forget_encoded(self) -> None:
        self._done_json = {}
        self._executions_json = []

    def load_state(self, state: dict[str, object]) -> None:
        """Restore a snapshot made by :meth:`to_state`."""
        orders = [SimOrder.from_state(o) for o in state["orders"]]  # type: ignore[attr-defined]
        self.orders = {o.key: o for o in orders}
        self._indexed = -1  # index again on first use
        self.executions = [SimExecution.from_state(e) for e in state["executions"]]  # type: ignore[attr-defined]
        self.used_ids = {(int(c), int(i)) for c, i in state["used_ids"]}  # type: ignore[attr-defined]
        self.forgotten_ids = {int(c): int(i) for c, i in state.get("forgotten_ids", ())}  # type: ignore[attr-defined]
        self.next_perm_id = int(state["next_perm_id"])  # type: ignore[call-overload]
        self.next_exec_seq = int(state["next_exec_seq"])  # type: ignore[call-overload]
        self._forget_encoded()
