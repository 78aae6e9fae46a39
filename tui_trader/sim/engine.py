"""The simulated exchange and broker: order validation, working orders, matching against the
quote, brackets, OCA groups, commissions and the account updates each fill causes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from tui_trader.sim.account import MARGIN_RATE, Account, CommissionSchedule
from tui_trader.sim.instruments import EXCHANGE_TZ, EXT_CLOSE, RTH_CLOSE, Instrument, InstrumentDb, in_session
from tui_trader.sim.market import MarketModel, Quote
from tui_trader.sim.messages import execution_exchange
from tui_trader.sim.orders import Ledger, ReceivedOrder, SimExecution, SimOrder
from tui_trader.sim.protocol.decode import PlaceOrderRequest
from tui_trader.sim.validation import Rejection, rejected, validate_new, validate_prices

MSG_DUPLICATE = "Duplicate order id"
ORDER_NOT_FOUND = 135
"""IB's answer to a ``placeOrder`` whose parentId names an order it does not know (a bracket entry done on an earlier
day, say): "Can't find order with id = <parentId>"; nothing changes."""
OCA_GROUP_REVISION = 10326
"""IB's answer to a modification naming another OCA group than the one it holds the order in (none included):
"OCA group revision is not allowed"; the order works on as it was (an order keeps its OCA group for life)."""
OCA_TYPE_REVISION = 10327
"""IB's answer to a modification naming the order's OCA group with another ``ocaType``: "OCA group type revision is not
allowed"; the order works on as it was."""
MSG_LOCATE = ("Shares for this order are not immediately available for short sale. The order will be held while "
              "we attempt to locate the shares.")
LOCATE_HELD = 404
"""IB's warning for a short sale held while it locates shares (the order lives on: ``Inactive``, whyHeld locate)."""


class OrderEvents(Protocol):
    """What the engine tells the sessions about (implemented by the gateway)."""

    def order_acked(self, order: SimOrder) -> None:
        """Send openOrder and orderStatus for a new or modified order."""

    def order_status(self, order: SimOrder) -> None:
        """Send orderStatus only."""

    def order_filled(self, order: SimOrder, execution: SimExecution) -> None:
        """Send the fill sequence and the position/account updates."""

    def order_error(self, client_id: int, order_id: int, code: int, text: str) -> None:
        """Send an error for an order id to its client."""

    def order_cancelled(self, order: SimOrder, reason: str) -> None:
        """Send orderStatus Cancelled and error 202."""

    def what_if(self, client_id: int, order: SimOrder, state: tuple[str, ...]) -> None:
        """Answer a what-if order."""


class OrderEngine:
    """Orders of every session against one account and one market."""

    def __init__(self, instruments: InstrumentDb, market: MarketModel, account: Account, ledger: Ledger,
                 events: OrderEvents, now: Callable[[], datetime], always_open: bool = False) -> None:
        """Wire the engine to the market, the account and the session fan-out."""
        self.instruments = instruments
        self.market = market
        self.account = account
        self.ledger = ledger
        self.events = events
        self.now = now
        self.always_open = always_open
        self.commissions = CommissionSchedule()
        self.slippage_ticks = 0
        self.reject_next: tuple[int, str, int] | None = None
        """The code and text to reject new orders with, and how many more (:meth:`Control.reject_next`)."""
        self.refuse_modify: tuple[str, int, int, str, int] | None = None
        """A fault: the next modifications (of this orderRef and permanent id; ``""`` and 0: of any order), as many as
        the count, are refused with this code and text, the order working on at the figures it had (see
        :meth:`Control.refuse_next_modify`)."""
        self.ignore_global_cancel = False
        """A fault: ``reqGlobalCancel`` is ignored (every order stays as it is)."""
        self.ignore_cancels = False
        """A fault: ``cancelOrder`` is ignored and never answered (the order works on, as after a cancel lost on its
        way or one the broker will not act on)."""
        self.locate_shorts = False
        """A fault: a new order that sells short is held while IB "locates" shares to borrow (error 404, status
        ``Inactive`` with whyHeld ``locate``) until :meth:`locate` releases it."""
        self._taken: dict[tuple[int, int], float] = {}

    # ---- placement -------------------------------------------------------------------------
    def place(self, client_id: int, req: PlaceOrderRequest) -> None:
        """Handle ``placeOrder``: new order, modification, what-if or rejection."""
        existing = self.ledger.orders.get((client_id, req.order_id))
        self.ledger.received.append(ReceivedOrder(client_id, req.order_id, req.order_ref, req.contract.symbol,
                                                  req.action, req.total_qty, req.order_type,
                                                  existing is not None, req.what_if, req.parent_id,
                                                  req.oca_group))
        try:
            if existing is not None and not req.what_if:
                self._modify(existing, req)
            else:
                self._place_new(client_id, req)
        except Rejection as rej:
            self.events.order_error(client_id, req.order_id, rej.code, rej.text)

    def _place_new(self, client_id: int, req: PlaceOrderRequest) -> None:
        if self.ledger.id_used(client_id, req.order_id) and not req.what_if:
            raise Rejection(103, MSG_DUPLICATE)
        c = req.contract
        inst = self.instruments.resolve(c.con_id, c.symbol, c.sec_type, c.currency)
        if inst is None:
            raise Rejection(200, "No security definition has been found for the request")
        if not req.what_if:
            self.ledger.used_ids.add((client_id, req.order_id))
        self._refuse_unknown_parent(client_id, req)
        self._validate(req, inst)
        order = self._new_order(client_id, req, inst)
        if req.what_if:
            self.events.what_if(client_id, order, self._what_if_state(order))
            return
        self._check_funds(order)
        self.ledger.add(order)
        if req.transmit:
            self._transmit(order)

    def _new_order(self, client_id: int, req: PlaceOrderRequest, inst: Instrument) -> SimOrder:
        order = SimOrder(client_id=client_id, order_id=req.order_id, perm_id=0, con_id=inst.con_id,
                         symbol=inst.symbol, exchange=req.contract.exchange or "SMART", action=req.action,
                         total_qty=req.total_qty, order_type=req.order_type, lmt_price=req.lmt_price,
                         aux_price=req.aux_price, tif=req.tif or "DAY", oca_group=req.oca_group,
                         oca_type=req.oca_type, account=self.account.account_id, order_ref=req.order_ref,
                         parent_id=req.parent_id, outside_rth=req.outside_rth,
                         trailing_percent=req.trailing_percent, trail_stop_price=req.trail_stop_price,
                         display_size=req.display_size, good_till_date=req.good_till_date,
                         transmitted=False, created=self.now().timestamp())
        if not req.what_if:
            order.perm_id = self.ledger.new_perm_id()
        return order

    def _validate(self, req: PlaceOrderRequest, inst: Instrument) -> None:
        if self.reject_next is not None and not req.what_if:  # a what-if asks about an order: it is not one
            code, text, left = self.reject_next
            self.reject_next = (code, text, left - 1) if left > 1 else None
            raise Rejection(code, text)
        validate_new(req, inst, self.market.quotes[inst.con_id].halted)

    def _refuse_unknown_parent(self, client_id: int, req: PlaceOrderRequest) -> None:
        """IB looks up a parentId on every ``placeOrder``, a modification's too: one naming an order it does not know
        (done on an earlier day, or never placed) is refused with 135, naming that id."""
        if req.parent_id and (client_id, req.parent_id) not in self.ledger.orders:
            raise Rejection(ORDER_NOT_FOUND, f"Can't find order with id = {req.parent_id}")

    def _reference_price(self, order: SimOrder) -> float:
        quote = self.market.quotes[order.con_id]
        touch = quote.ask if order.sign > 0 else quote.bid
        return order.lmt_price if order.lmt_price is not None else touch

    def _increases_exposure(self, order: SimOrder) -> bool:
        pos = self.account.positions.get(order.con_id)
        held = pos.qty if pos else 0.0
        return held * order.sign >= 0 or order.total_qty > abs(held)

    def _check_funds(self, order: SimOrder) -> None:
        if not self._increases_exposure(order):
            return
        needed = MARGIN_RATE * order.total_qty * self._reference_price(order)
        available = self.account.available_funds(self.marks())
        if needed > available:
            raise rejected(f"YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY "
                           f"WITH LOAN VALUE [{available:.2f} USD] MUST EXCEED THE INITIAL MARGIN "
                           f"[{needed:.2f} USD]")

    def _what_if_state(self, order: SimOrder) -> tuple[str, ...]:
        marks = self.marks()
        values = dict((k, v) for k, v, cur in self.account.values(marks) if cur == "USD")
        price = self._reference_price(order)
        change = MARGIN_RATE * order.total_qty * price * (1 if self._increases_exposure(order) else -1)
        commission = self.commissions.order_total(order.total_qty, order.total_qty * price, order.sign < 0)
        init, nlv = float(values["InitMarginReq"]), float(values["NetLiquidation"])
        nums = (init, init, nlv, change, change, -commission, init + change, init + change, nlv - commission)
        return (*(f"{n:.2f}" for n in nums), f"{commission:.4f}", f"{commission:.4f}", f"{commission:.4f}", "USD")

    def marks(self) -> dict[int, float]:
        """Mark prices (last trade) for every instrument."""
        return {cid: q.last for cid, q in self.market.quotes.items()}

    # ---- activation, modification, cancellation -------------------------------------------
    def _transmit(self, order: SimOrder) -> None:
        parent = self.ledger.orders.get((order.client_id, order.parent_id)) if order.parent_id else None
        if parent is not None and not parent.transmitted:
            self._activate(parent)
        if not order.transmitted:
            self._activate(order)
        head = parent or order
        for child in self.children(head):
            if not child.transmitted and child.status == "PendingSubmit":
                self._activate(child)

    def _activate(self, order: SimOrder) -> None:
        parent = self.ledger.orders.get((order.client_id, order.parent_id)) if order.parent_id else None
        if parent is not None:
            order.parent_perm_id = parent.perm_id
        order.transmitted = True
        order.status = "PreSubmitted" if parent is not None and parent.status != "Filled" else "Submitted"
        order.expires = self._expiry(order)
        if self.locate_shorts and parent is None and order.sign < 0 and self._increases_exposure(order):
            order.status, order.why_held = "Inactive", "locate"
            self.events.order_error(order.client_id, order.order_id, LOCATE_HELD, MSG_LOCATE)
        self.events.order_acked(order)
        self.check(order)

    def locate(self, order_ref: str = "") -> None:
        """The shares to borrow were found: each order held for a locate (of ``order_ref``; ``""``: every one)
        is ``Submitted`` and works as usual from now on."""
        for order in [o for o in self.ledger.live() if o.held and order_ref in ("", o.order_ref)]:
            order.status, order.why_held = "Submitted", ""
            self.events.order_acked(order)
            self.check(order)

    def deactivate(self, order: SimOrder) -> None:
        """IB ends an order without an error: status ``Inactive`` and no whyHeld (its children are cancelled)."""
        for child in self.children(order):
            self.cancel_order(child, "parent inactive")
        order.complete("Inactive", self.now())
        self.events.order_acked(order)

    def _expiry(self, order: SimOrder) -> float | None:
        if order.tif != "DAY" or self.always_open:
            return None
        local = self.now().astimezone(EXCHANGE_TZ)
        close = EXT_CLOSE if order.outside_rth else RTH_CLOSE
        end = local.replace(hour=close.hour, minute=close.minute, second=0, microsecond=0)
        while end <= local or end.weekday() >= 5:
            end += timedelta(days=1)
        return end.timestamp()

    def children(self, parent: SimOrder) -> list[SimOrder]:
        """Orders of the same client whose parentId is ``parent``'s order id."""
        return [o for o in self.ledger.orders.values()
                if o.parent_id == parent.order_id and o.client_id == parent.client_id and not o.done]

    def _modify(self, order: SimOrder, req: PlaceOrderRequest) -> None:
        self._refuse_modify_if_told(order)
        if order.done:
            if order.status == "Filled":
                raise Rejection(104, "Can't modify a filled order")
            raise Rejection(103, MSG_DUPLICATE)
        self._refuse_unknown_parent(order.client_id, req)
        if req.oca_group != order.oca_group:
            raise Rejection(OCA_GROUP_REVISION, "OCA group revision is not allowed")
        if order.oca_group and req.oca_type != order.oca_type:
            raise Rejection(OCA_TYPE_REVISION, "OCA group type revision is not allowed")
        inst = self.instruments.by_con_id(order.con_id)
        assert inst is not None
        validate_prices(req, inst)
        if req.total_qty <= 0 or req.total_qty < order.filled:
            raise rejected("The order quantity must be greater than the filled quantity")
        order.total_qty, order.lmt_price, order.aux_price = req.total_qty, req.lmt_price, req.aux_price
        order.tif, order.outside_rth, order.order_ref = req.tif or order.tif, req.outside_rth, req.order_ref
        order.trailing_percent = req.trailing_percent
        if req.trail_stop_price is not None:  # set: the stop moves there; unset: it stays where it trailed to
            order.trail_stop_price = req.trail_stop_price
            order.trail_extreme = self._trail_reference(order)
        if not order.transmitted:
            if req.transmit:
                self._transmit(order)
            return
        self.events.order_acked(order)
        self.check(order)

    def _trail_reference(self, order: SimOrder) -> float:
        """The price a trailing stop trails: a sell's bid, a buy's ask."""
        quote = self.market.quotes[order.con_id]
        return quote.bid if order.sign < 0 else quote.ask

    def _refuse_modify_if_told(self, order: SimOrder) -> None:
        """The modification fault: raise it as many times as it was set, for the order it names (or the orders
        modified first)."""
        if self.refuse_modify is None:
            return
        ref, perm_id, code, text, count = self.refuse_modify
        if ref not in ("", order.order_ref) or perm_id not in (0, order.perm_id):
            return
        self.refuse_modify = (ref, perm_id, code, text, count - 1) if count > 1 else None
        raise Rejection(code, text)

    def cancel(self, client_id: int, order_id: int, reason: str = "") -> None:
        """Handle ``cancelOrder`` from a client."""
        if self.ignore_cancels:
            return
        order = self.ledger.orders.get((client_id, order_id))
        if order is None:
            self.events.order_error(client_id, order_id, 10147,
                                    f"OrderId {order_id} that needs to be cancelled is not found.")
        elif order.done:
            self.events.order_error(client_id, order_id, 10148, f"OrderId {order_id} that needs to be "
                                    f"cancelled cannot be cancelled, state: {order.status}.")
        else:
            self.cancel_order(order, reason)

    def cancel_order(self, order: SimOrder, reason: str = "") -> None:
        """Cancel a working or staged order and its children."""
        for child in self.children(order):
            self.cancel_order(child, reason)
        order.complete("Cancelled", self.now())
        self.events.order_cancelled(order, reason)

    def global_cancel(self) -> None:
        """Cancel every working or staged order of every client (unless the fault ignores it)."""
        if self.ignore_global_cancel:
            return
        for order in [o for o in self.ledger.orders.values() if not o.done and o.parent_id == 0]:
            self.cancel_order(order, "Global Cancel")
        for order in [o for o in self.ledger.orders.values() if not o.done]:
            self.cancel_order(order, "Global Cancel")

    def active_orders(self) -> list[SimOrder]:
        """Orders live at the exchange (working)."""
        return [o for o in self.ledger.orders.values() if o.working]

    # ---- matching --------------------------------------------------------------------------
    def new_step(self) -> None:
        """A new quote was published everywhere: displayed sizes are available again."""
        self._taken.clear()

    def on_quote(self, con_id: int) -> None:
        """Re-check the working orders of one instrument after its quote moved."""
        for order in [o for o in self.ledger.live(con_id) if o.working]:
            self.check(order)

    def expire(self) -> None:
        """Cancel DAY orders whose session ended."""
        now = self.now().timestamp()
        for order in [o for o in self.ledger.live() if o.open and o.expires and o.expires <= now]:
            self.cancel_order(order, "Expired")

    def check(self, order: SimOrder) -> None:
        """Fill ``order`` as far as the current quote allows."""
        if order.status != "Submitted":
            return
        quote = self.market.quotes[order.con_id]
        if quote.halted or not self._session_open(order):
            return
        if order.order_type == "TRAIL":
            self._update_trail(order, quote)
        if order.order_type in ("STP", "STP LMT", "TRAIL") and not order.triggered:
            if not self._stop_hit(order, quote):
                return
            order.triggered = True
        limit = order.lmt_price if order.order_type in ("LMT", "STP LMT") else None
        price, size = self._fill_terms(order, quote, limit)
        if size > 0:
            self._fill(order, quote, price, size)
        elif limit is not None:
            order.rested = True
        if order.tif == "IOC" and not order.done:
            self.cancel_order(order, "IOC")

    def _session_open(self, order: SimOrder) -> bool:
        return self.always_open or in_session(self.now(), rth=not order.outside_rth)

    @staticmethod
    def _stop_hit(order: SimOrder, quote: Quote) -> bool:
        stop = order.trail_stop_price if order.order_type == "TRAIL" else order.aux_price
        if stop is None:
            return False
        return quote.ask >= stop if order.sign > 0 else quote.bid <= stop

    @staticmethod
    def _update_trail(order: SimOrder, quote: Quote) -> None:
        """Trail the stop behind the price; after a modify set the stop, only once the price passes the most
        favourable one seen then (IB's stop stays where the modify put it, looser or not, until then)."""
        ref = quote.bid if order.sign < 0 else quote.ask
        extreme = order.trail_extreme
        if extreme is not None and (ref <= extreme if order.sign < 0 else ref >= extreme):
            return
        order.trail_extreme = ref
        amount = order.aux_price if order.aux_price is not None else ref * (order.trailing_percent or 0) / 100
        candidate = quote.round_tick(ref + amount if order.sign > 0 else ref - amount)
        current = order.trail_stop_price
        if current is None:
            order.trail_stop_price = candidate
        elif order.sign < 0:
            order.trail_stop_price = max(current, candidate)
        else:
            order.trail_stop_price = min(current, candidate)

    def _fill_terms(self, order: SimOrder, quote: Quote, limit: float | None) -> tuple[float, float]:
        buying = order.sign > 0
        touch = quote.ask if buying else quote.bid
        shown = quote.ask_size if buying else quote.bid_size
        available = max(0.0, shown - self._taken.get((order.con_id, order.sign), 0.0))
        if limit is None:
            price = touch + order.sign * self.slippage_ticks * quote.inst.min_tick
        elif (buying and limit >= touch) or (not buying and limit <= touch):
            price = limit if order.rested else touch
        else:
            return 0.0, 0.0
        return quote.round_tick(price), min(order.remaining, available)

    def _fill(self, order: SimOrder, quote: Quote, price: float, size: float) -> None:
        key = (order.con_id, order.sign)
        self._taken[key] = self._taken.get(key, 0.0) + size
        order.filled += size
        order.fill_value += price * size
        order.avg_fill_price = round(order.fill_value / order.filled, 6)
        order.last_fill_price = price
        total = self.commissions.order_total(order.filled, order.fill_value, order.sign < 0)
        commission, order.commission = round(total - order.commission, 4), total
        realized = self.account.apply_fill(order.con_id, order.sign, size, price, commission)
        now = self.now()
        execution = SimExecution(self.ledger.new_exec_id(order.perm_id), order.client_id, order.order_id,
                                 order.perm_id, order.con_id, order.symbol, execution_exchange(quote.inst),
                                 "BOT" if order.sign > 0 else "SLD", size, price, now.timestamp(),
                                 order.filled, order.avg_fill_price, order.order_ref, order.account,
                                 commission, realized)
        self.ledger.executions.append(execution)
        if order.remaining <= 0:
            order.complete("Filled", now)
        self.events.order_filled(order, execution)
        self._after_fill(order, size)

    def _after_fill(self, order: SimOrder, size: float) -> None:
        if order.status == "Filled":
            for child in self.children(order):
                if child.status == "PreSubmitted":
                    child.status = "Submitted"
                    self.events.order_status(child)
                    self.check(child)
        siblings = self._oca_siblings(order)
        for sib in siblings:
            if order.oca_group and order.oca_type in (0, 1):
                self.cancel_order(sib, "OCA")
            else:
                self._reduce(sib, size)

    def _oca_siblings(self, order: SimOrder) -> list[SimOrder]:
        out = []
        for o in self.ledger.orders.values():
            if o is order or o.done or o.client_id != order.client_id and not order.oca_group:
                continue
            same_oca = bool(order.oca_group) and o.oca_group == order.oca_group
            same_parent = order.parent_id != 0 and o.parent_id == order.parent_id and o.client_id == order.client_id
            if same_oca or same_parent:
                out.append(o)
        return out

    def _reduce(self, order: SimOrder, size: float) -> None:
        order.total_qty = max(order.filled, order.total_qty - size)
        if order.remaining <= 0:
            self.cancel_order(order, "OCA")
        else:
            self.events.order_acked(order)
