"""Fan-out of order, fill, position and account messages to the sessions that must see them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tui_trader.sim import messages as msg
from tui_trader.sim.instruments import EXCHANGE_TZ, Instrument
from tui_trader.sim.orders import SimExecution, SimOrder
from tui_trader.sim.session import Session

if TYPE_CHECKING:
    from tui_trader.sim.gateway import SimGateway

log = logging.getLogger("tui_trader.sim")


class OrderFanout:
    """Implements the engine's ``OrderEvents`` by writing messages to the right sessions.

    An order is seen by its owner's session and by every master (client id 0) session; errors
    about an order id go to the owner only (ib_async keys them by its own client id).
    """

    def __init__(self, gw: SimGateway) -> None:
        """Bind to a gateway."""
        self.gw = gw

    def order_sessions(self, order: SimOrder) -> list[Session]:
        """The owner's session and every master (client 0) session."""
        return [s for cid, s in self.gw.sessions.items() if cid == order.client_id or cid == 0]

    def _inst(self, con_id: int) -> Instrument:
        return self.gw.instrument(con_id)

    def order_acked(self, order: SimOrder) -> None:
        """openOrder + orderStatus to the sessions that see this order."""
        inst = self._inst(order.con_id)
        log.info("order %s/%s %s", order.client_id, order.order_id, order.status)
        for s in self.order_sessions(order):
            s.send_kind("open_order", msg.open_order(order, inst))
            s.send_kind("order_status", msg.order_status(order))
        self.gw.changed()

    def order_status(self, order: SimOrder) -> None:
        """orderStatus alone."""
        for s in self.order_sessions(order):
            s.send_kind("order_status", msg.order_status(order))

    def order_filled(self, order: SimOrder, execution: SimExecution) -> None:
        """The fill sequence, then position, portfolio and account updates."""
        inst = self._inst(order.con_id)
        log.info("fill %s/%s %s %s @ %s", order.client_id, order.order_id, execution.side, execution.shares,
                 execution.price)
        parts = {"execution": msg.exec_details(-1, execution, inst), "order_status": msg.order_status(order),
                 "commission": msg.commission_report(execution)}
        self.gw.save_now()  # before anyone hears of it
        for s in self.order_sessions(order):
            for kind in self.gw.faults.fill_sequence:
                s.send_kind(kind, parts[kind])
        self.send_position_update(order.con_id)

    def send_position_update(self, con_id: int) -> None:
        """Push position, portfolio and account values to their subscribers."""
        inst = self._inst(con_id)
        pos = self.gw.account.positions.get(con_id)
        if pos is None:
            return
        for s in list(self.gw.sessions.values()):
            if s.positions_sub:
                s.send_kind("position", msg.position(self.gw.account_id, inst, pos))
            if s.account_sub:
                mark = self.gw.market.quotes[con_id].last
                s.send_kind("portfolio", msg.portfolio(self.gw.account_id, inst, pos, mark))
                self.send_account_values(s)
            for req_id in s.account_multi:
                for key, value, currency in self.gw.account.values(self.gw.engine.marks()):
                    s.send_kind("account_value", msg.account_update_multi(req_id, self.gw.account_id, key, value,
                                                                          currency))

    def send_account_values(self, s: Session) -> None:
        """Every account value tag and the account time."""
        for key, value, currency in self.gw.account.values(self.gw.engine.marks()):
            s.send_kind("account_value", msg.account_value(key, value, currency, self.gw.account_id))
        s.send(msg.account_time(self.gw.clock.now().astimezone(EXCHANGE_TZ).strftime("%H:%M")))

    def send_account(self, s: Session) -> None:
        """The full account download: values, portfolio rows and time."""
        self.send_account_values(s)
        for pos in self.gw.account.positions.values():
            if pos.qty:
                inst = self._inst(pos.con_id)
                s.send(msg.portfolio(self.gw.account_id, inst, pos, self.gw.market.quotes[pos.con_id].last))

    def order_error(self, client_id: int, order_id: int, code: int, text: str) -> None:
        """An error about an order id, to its client."""
        log.info("order %s/%s error %d %s", client_id, order_id, code, text)
        session = self.gw.sessions.get(client_id)
        if session:
            session.send_kind("error", msg.error(order_id, code, text))

    def order_cancelled(self, order: SimOrder, reason: str) -> None:
        """orderStatus Cancelled to everyone who sees the order; error 202 to its owner."""
        log.info("order %s/%s cancelled %s", order.client_id, order.order_id, reason)
        for s in self.order_sessions(order):
            s.send_kind("order_status", msg.order_status(order))
        owner = self.gw.sessions.get(order.client_id)
        if owner:
            owner.send_kind("error", msg.error(order.order_id, 202, f"Order Canceled - reason:{reason}"))
        self.gw.changed()

    def what_if(self, client_id: int, order: SimOrder, state: tuple[str, ...]) -> None:
        """openOrder with the margin and commission figures of a what-if order."""
        session = self.gw.sessions.get(client_id)
        if session:
            session.send_kind("open_order", msg.open_order(order, self._inst(order.con_id), what_if=state))

    def push_account(self) -> None:
        """The periodic refresh: account values and portfolio marks to account subscribers."""
        for s in list(self.gw.sessions.values()):
            if s.account_sub:
                self.send_account(s)
