"""Request dispatch and the handlers of account, position and order requests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tui_trader.sim import market_handlers as mh
from tui_trader.sim import messages as msg
from tui_trader.sim.protocol.decode import ExecutionFilter, parse_exec_filter, parse_place_order
from tui_trader.sim.protocol.ids import Out
from tui_trader.sim.session import Session

log = logging.getLogger("tui_trader.sim")

Handler = Callable[[Session, list[str]], None]


def dispatch(s: Session, fields: list[str]) -> None:
    """Route one request to its handler; malformed requests are logged, never fatal."""
    try:
        handler = HANDLERS.get(int(fields[0]))
    except ValueError:
        log.warning("bad message id %r from client %s", fields[0], s.client_id)
        return
    if handler is None:
        log.info("unsupported request %s from client %s", fields[0], s.client_id)
        return
    try:
        handler(s, fields)
    except (ValueError, IndexError, KeyError, ArithmeticError) as exc:
        log.warning("malformed request %s from client %s: %s", fields[:3], s.client_id, exc)


def positions(s: Session, fields: list[str]) -> None:
    """``61|1``: every non-zero position, the end marker, then live updates."""
    gw = s.gw
    for pos in gw.account.positions.values():
        inst = gw.instruments.by_con_id(pos.con_id)
        if pos.qty and inst:
            s.send(msg.position(gw.account_id, inst, pos))
    for held in gw.account.other_holdings.values():
        s.send(msg.other_position(gw.account_id, held))
    s.send(msg.position_end())
    s.positions_sub = True


def cancel_positions(s: Session, fields: list[str]) -> None:
    """``64|1``."""
    s.positions_sub = False


def account_updates(s: Session, fields: list[str]) -> None:
    """``6|2|subscribe|account``: values, portfolio, time and ``accountDownloadEnd``."""
    subscribe = fields[2] not in ("0", "")
    s.account_sub = subscribe
    if subscribe:
        s.gw.fanout.send_account(s)
        s.send(msg.account_download_end(s.gw.account_id))


def account_updates_multi(s: Session, fields: list[str]) -> None:
    """``76|1|reqId|account|modelCode|ledgerAndNLV``."""
    req_id = int(fields[2])
    for key, value, currency in s.gw.account.values(s.gw.engine.marks()):
        s.send(msg.account_update_multi(req_id, s.gw.account_id, key, value, currency))
    s.send(msg.account_update_multi_end(req_id))
    s.account_multi.add(req_id)


def cancel_account_updates_multi(s: Session, fields: list[str]) -> None:
    """``77|1|reqId``."""
    s.account_multi.discard(int(fields[2]))


def account_summary(s: Session, fields: list[str]) -> None:
    """``62|1|reqId|group|tags``: the requested tags (all when ``All``/empty)."""
    req_id, tags = int(fields[2]), set(filter(None, fields[4].split(","))) if len(fields) > 4 else set()
    for key, value, currency in s.gw.account.values(s.gw.engine.marks()):
        if currency != "BASE" and (not tags or key in tags or "All" in tags):
            s.send(msg.account_summary(req_id, s.gw.account_id, key, value, currency))
    s.send(msg.account_summary_end(req_id))


def open_orders(s: Session, fields: list[str]) -> None:
    """``5|1``: this client's working orders (every client's for client 0), then ``53``."""
    _send_open_orders(s, everyone=s.master)


def all_open_orders(s: Session, fields: list[str]) -> None:
    """``16|1``: every client's working orders, then ``53``."""
    _send_open_orders(s, everyone=True)


def _send_open_orders(s: Session, everyone: bool) -> None:
    gw = s.gw
    for order in gw.ledger.orders.values():
        if order.open and (everyone or order.client_id == s.client_id):
            inst = gw.instruments.by_con_id(order.con_id)
            if inst:
                s.send(msg.open_order(order, inst))
                s.send(msg.order_status(order))
    s.send_kind("open_orders_end", msg.open_order_end())


def completed_orders(s: Session, fields: list[str]) -> None:
    """``99|apiOnly``: filled and cancelled orders of every client (of today: :meth:`SimGateway.reported_since`),
    then ``102``."""
    gw = s.gw
    since = gw.reported_since()
    for order in gw.ledger.orders.values():
        inst = gw.instruments.by_con_id(order.con_id)
        if order.done and inst and order.completed_time >= since:
            s.send(msg.completed_order(order, inst))
    s.send(msg.completed_orders_end())


def _matches(flt: ExecutionFilter, e_client: int, symbol: str, side: str, when: str) -> bool:
    return ((not flt.client_id or flt.client_id == e_client) and (not flt.symbol or flt.symbol == symbol)
            and (not flt.side or flt.side[:1] == side[:1])  # BUY/BOT, SELL/SLD
            and (not flt.time or when >= flt.time.replace("-", " ")[:17]))


def executions(s: Session, fields: list[str]) -> None:
    """``7|3|reqId|filter…``: matching executions with their commissions, then ``55``.

    Only today's (:meth:`SimGateway.reported_since`). The commission reports go through the faults of
    their kind (a broker that never reports one).
    """
    req_id, flt = parse_exec_filter(fields)
    gw = s.gw
    since = gw.reported_since()
    for e in gw.ledger.executions:
        inst = gw.instruments.by_con_id(e.con_id)
        visible = s.master or e.client_id == s.client_id or flt.client_id == e.client_id
        when = e.time_text
        if inst and visible and when >= since and _matches(flt, e.client_id, e.symbol, e.side, when[:17]):
            s.send(msg.exec_details(req_id, e, inst))
            s.send_kind("commission", msg.commission_report(e))
    s.send(msg.exec_details_end(req_id))


def place_order(s: Session, fields: list[str]) -> None:
    """``placeOrder``: new order, modification or what-if."""
    req = parse_place_order(fields)
    assert s.client_id is not None
    log.info("order client=%d id=%d %s %s %s %s lmt=%s aux=%s ref=%r", s.client_id, req.order_id, req.action,
             req.total_qty, req.contract.symbol, req.order_type, req.lmt_price, req.aux_price, req.order_ref)
    s.gw.engine.place(s.client_id, req)
    s.gw.save_now()  # its id is used: a restarted simulator must not hand it out again


def cancel_order(s: Session, fields: list[str]) -> None:
    """``4|1|orderId|manualCancelOrderTime``."""
    assert s.client_id is not None
    s.gw.engine.cancel(s.client_id, int(fields[2]))
    s.gw.changed()


def global_cancel(s: Session, fields: list[str]) -> None:
    """``58|1``: every working order of every session."""
    log.info("global cancel from client %s", s.client_id)
    s.gw.engine.global_cancel()
    s.gw.changed()


def req_ids(s: Session, fields: list[str]) -> None:
    """``8|1|n`` → ``nextValidId``."""
    s.send(msg.next_valid_id(s.gw.ledger.max_order_id() + 1))


def current_time(s: Session, fields: list[str]) -> None:
    """``49|1`` → ``49|1|epoch``."""
    s.send(msg.current_time(int(s.gw.clock.now().timestamp())))


def managed_accounts(s: Session, fields: list[str]) -> None:
    """``17|1`` → ``15|1|accounts``."""
    s.send(msg.managed_accounts(s.gw.account_id))


def ignore(s: Session, fields: list[str]) -> None:
    """Requests that need no reply (``reqAutoOpenOrders``, cancels of one-shot requests)."""


HANDLERS: dict[int, Handler] = {
    Out.REQ_MKT_DATA: mh.mkt_data, Out.CANCEL_MKT_DATA: mh.cancel_mkt_data,
    Out.REQ_MARKET_DATA_TYPE: mh.market_data_type, Out.REQ_CONTRACT_DATA: mh.contract_details,
    Out.REQ_REAL_TIME_BARS: mh.realtime_bars, Out.CANCEL_REAL_TIME_BARS: mh.cancel_realtime_bars,
    Out.REQ_HISTORICAL_DATA: mh.historical_data, Out.CANCEL_HISTORICAL_DATA: mh.cancel_historical,
    Out.REQ_HEAD_TIMESTAMP: mh.head_timestamp, Out.CANCEL_HEAD_TIMESTAMP: ignore,
    Out.REQ_POSITIONS: positions, Out.CANCEL_POSITIONS: cancel_positions,
    Out.REQ_ACCT_DATA: account_updates, Out.REQ_ACCOUNT_UPDATES_MULTI: account_updates_multi,
    Out.CANCEL_ACCOUNT_UPDATES_MULTI: cancel_account_updates_multi, Out.REQ_ACCOUNT_SUMMARY: account_summary,
    Out.CANCEL_ACCOUNT_SUMMARY: ignore, Out.REQ_OPEN_ORDERS: open_orders, Out.REQ_ALL_OPEN_ORDERS: all_open_orders,
    Out.REQ_AUTO_OPEN_ORDERS: ignore, Out.REQ_COMPLETED_ORDERS: completed_orders, Out.REQ_EXECUTIONS: executions,
    Out.PLACE_ORDER: place_order, Out.CANCEL_ORDER: cancel_order, Out.REQ_GLOBAL_CANCEL: global_cancel,
    Out.REQ_IDS: req_ids, Out.REQ_CURRENT_TIME: current_time, Out.REQ_MANAGED_ACCTS: managed_accounts,
}
