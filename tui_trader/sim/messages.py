"""Server → client messages at server version 178, one function per message.

Layouts follow ib_async 2.1.0's ``Decoder`` exactly; the exact-count messages (tickPrice 7,
updatePortfolio 20, position 16, commissionReport 8) and the long order layouts (openOrder 127,
completedOrder 96, execDetails 32) are pinned by golden tests.
"""

from __future__ import annotations

from datetime import date

from tui_trader.sim.account import OtherHolding, Position
from tui_trader.sim.instruments import (
    EXCHANGE_TZ_ID,
    ORDER_TYPES,
    VALID_EXCHANGES,
    Instrument,
    session_hours,
)
from tui_trader.sim.orders import SimExecution, SimOrder
from tui_trader.sim.protocol.framing import frame
from tui_trader.sim.protocol.ids import In


def contract11(inst: Instrument, exchange: str) -> list[object]:
    """conId symbol secType lastTrade strike right multiplier exchange currency localSymbol tradingClass."""
    return [inst.con_id, inst.symbol, "STK", "", 0.0, "", "", exchange, inst.currency, inst.symbol,
            inst.symbol if inst.primary_exchange != "NASDAQ" else "NMS"]


def error(req_id: int, code: int, text: str) -> bytes:
    """``4|2|reqId|code|text|advancedOrderRejectJson`` (the JSON field is mandatory at >=166)."""
    return frame([In.ERROR, 2, req_id, code, text, ""])


def next_valid_id(order_id: int) -> bytes:
    """Exactly 3 fields."""
    return frame([In.NEXT_VALID_ID, 1, order_id])


def managed_accounts(accounts: str) -> bytes:
    """Exactly 3 fields; the list must not be empty."""
    return frame([In.MANAGED_ACCOUNTS, 1, accounts])


def current_time(epoch: int) -> bytes:
    """``49|1|epoch``."""
    return frame([In.CURRENT_TIME, 1, epoch])


def contract_details(req_id: int, inst: Instrument, exchange: str, today: date) -> bytes:
    """``contractDetails`` without a version field (>=164): 40 fields with no secIds."""
    c = inst
    fields: list[object] = [
        In.CONTRACT_DETAILS, req_id, c.symbol, "STK", "", 0.0, "", exchange, c.currency, c.symbol,
        "NMS" if c.primary_exchange == "NASDAQ" else c.symbol, c.symbol if c.primary_exchange != "NASDAQ"
        else "NMS", c.con_id, c.min_tick, "", ORDER_TYPES, VALID_EXCHANGES, 1, 0, c.long_name,
        c.primary_exchange, "", c.industry, c.category, c.category, EXCHANGE_TZ_ID,
        session_hours(today, rth=False), session_hours(today, rth=True), "", "", 0,
        1, "", "", "26,26,26", "", c.stock_type, "1", "1", "100",
    ]
    return frame(fields)


def contract_details_end(req_id: int) -> bytes:
    """``52|1|reqId``."""
    return frame([In.CONTRACT_DETAILS_END, 1, req_id])


def order_status(o: SimOrder) -> bytes:
    """``3|orderId|status|filled|remaining|avgFillPrice|permId|parentId|lastFillPrice|clientId|whyHeld|mktCap``."""
    return frame([In.ORDER_STATUS, o.order_id, o.status, o.filled, o.remaining, o.avg_fill_price,
                  o.perm_id, o.parent_id, o.last_fill_price, o.client_id, o.why_held, 0.0])


def _order_core(o: SimOrder) -> list[object]:
    return [o.action, o.total_qty, o.order_type, o.lmt_price, o.aux_price, o.tif, o.oca_group, o.account,
            "", 0, o.order_ref]


def open_order(o: SimOrder, inst: Instrument, what_if: tuple[str, ...] | None = None) -> bytes:
    """``openOrder`` @178: 127 fields for a plain (non-combo) order."""
    state = what_if or ("",) * 9 + ("", "", "", "")
    status = "PreSubmitted" if what_if else o.status
    trail = o.trail_stop_price if o.order_type == "TRAIL" else None
    fields: list[object] = [In.OPEN_ORDER, o.order_id, *contract11(inst, o.exchange), *_order_core(o),
                            o.client_id, o.perm_id, o.outside_rth, False, 0.0, "", "", "", "", "",
                            "", o.good_till_date, "", "", "", 0, "", "", "", "", "", "", "", "",
                            o.display_size or "", False, False, False, "", o.oca_type, False, False,
                            "", o.parent_id, 0, "", 0, "", "",
                            False, 0, trail, o.trailing_percent, "", "", "", 0, 0, 0,
                            "", "", "", "", False, "", "", False, 0, "",
                            False, bool(what_if), status, *state[:9], *_commission_fields(state),
                            "", False, False, 0,
                            "", "", trail, "", "", "", "", 0, "", "", "", "", False, False, "", False,
                            0, False, False, "", "", "", "", ""]
    return frame(fields)


def _commission_fields(state: tuple[str, ...]) -> list[object]:
    return [state[9], state[10], state[11], state[12] if state[12] else ""]


def open_order_end() -> bytes:
    """``53|1``."""
    return frame([In.OPEN_ORDER_END, 1])


def completed_order(o: SimOrder, inst: Instrument) -> bytes:
    """``completedOrder`` @178: 96 fields; keyed by permId on the client."""
    trail = o.trail_stop_price if o.order_type == "TRAIL" else None
    fields: list[object] = [In.COMPLETED_ORDER, *contract11(inst, o.exchange), *_order_core(o), o.perm_id,
                            o.outside_rth, False, 0.0, "", "", "", "", "", o.good_till_date, "", "",
                            "", "", "", "", "", "", "", "", "", o.display_size or "", False, False, "",
                            o.oca_type, 0, "", 0, "", "", False, 0, trail, o.trailing_percent, "",
                            0, 0, 0, "", "", "", "", "", "", False, 0, "", False, o.status, False, False,
                            0, trail, "", "", False, False, "", o.filled, 0, False, False, False, False,
                            o.parent_perm_id, o.completed_time, o.completed_status, "", "", "", "", ""]
    return frame(fields)


def completed_orders_end() -> bytes:
    """``102`` alone: no version field."""
    return frame([In.COMPLETED_ORDERS_END])


def exec_details(req_id: int, e: SimExecution, inst: Instrument) -> bytes:
    """``execDetails`` @178: 32 fields (``pendingPriceRevision`` last)."""
    c = contract11(inst, e.exchange)
    fields: list[object] = [In.EXECUTION_DATA, req_id, e.order_id, *c, e.exec_id, e.time_text, e.account,
                            e.exchange, e.side, e.shares, e.price, e.perm_id, e.client_id, 0, e.cum_qty,
                            e.avg_price, e.order_ref, "", "", "", 1 if e.side == "BOT" else 2, False]
    return frame(fields)


def exec_details_end(req_id: int) -> bytes:
    """``55|1|reqId``."""
    return frame([In.EXECUTION_DATA_END, 1, req_id])


def commission_report(e: SimExecution) -> bytes:
    """``59|1|execId|commission|currency|realizedPNL|yield|yieldRedemptionDate``: exactly 8 fields."""
    return frame([In.COMMISSION_REPORT, 1, e.exec_id, round(e.commission, 4), "USD",
                  e.realized_pnl if e.realized_pnl else 1.7976931348623157e308, "", ""])


def position(account: str, inst: Instrument, pos: Position) -> bytes:
    """``position``: exactly 16 fields (no primaryExchange)."""
    c = contract11(inst, inst.primary_exchange)
    return frame([In.POSITION_DATA, 3, account, *c, pos.qty, round(pos.avg_cost, 6)])


def other_position(account: str, held: OtherHolding) -> bytes:
    """``position`` for a contract the simulator does not trade (an option, a future)."""
    return frame([In.POSITION_DATA, 3, account, held.con_id, held.symbol, held.sec_type, held.expiry, held.strike,
                  held.right, held.multiplier, "SMART", held.currency, held.symbol, held.symbol, held.qty,
                  held.avg_cost])


def position_end() -> bytes:
    """``62|1``."""
    return frame([In.POSITION_END, 1])


def portfolio(account: str, inst: Instrument, pos: Position, mark: float) -> bytes:
    """``updatePortfolio``: exactly 20 fields; the six numbers must not be empty."""
    c = inst
    value = pos.qty * mark
    unrealized = pos.qty * (mark - pos.avg_cost)
    return frame([In.PORTFOLIO_VALUE, 8, c.con_id, c.symbol, "STK", "", 0.0, "", "", c.primary_exchange,
                  c.currency, c.symbol, c.symbol if c.primary_exchange != "NASDAQ" else "NMS", pos.qty,
                  round(mark, 4), round(value, 2), round(pos.avg_cost, 6), round(unrealized, 2),
                  round(pos.realized, 2), account])


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    """``6|2|key|value|currency|account``."""
    return frame([In.ACCOUNT_VALUE, 2, key, value, currency, account])


def account_time(hhmm: str) -> bytes:
    """``8|1|HH:MM``."""
    return frame([In.ACCOUNT_UPDATE_TIME, 1, hhmm])


def account_download_end(account: str) -> bytes:
    """``54|1|account``."""
    return frame([In.ACCOUNT_DOWNLOAD_END, 1, account])


def account_update_multi(req_id: int, account: str, key: str, value: str, currency: str) -> bytes:
    """``73|1|reqId|account|modelCode|key|value|currency``."""
    return frame([In.ACCOUNT_UPDATE_MULTI, 1, req_id, account, "", key, value, currency])


def account_update_multi_end(req_id: int) -> bytes:
    """``74|1|reqId``."""
    return frame([In.ACCOUNT_UPDATE_MULTI_END, 1, req_id])


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    """``63|1|reqId|account|tag|value|currency``."""
    return frame([In.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency])


def account_summary_end(req_id: int) -> bytes:
    """``64|1|reqId``."""
    return frame([In.ACCOUNT_SUMMARY_END, 1, req_id])


def execution_exchange(inst: Instrument) -> str:
    """The venue printed on executions."""
    return {"NASDAQ": "ISLAND"}.get(inst.primary_exchange, inst.primary_exchange)


def frame_handshake(version: int, moment: object) -> bytes:
    """The handshake reply: exactly 2 fields, server version and connection time."""
    from datetime import datetime

    assert isinstance(moment, datetime)
    return frame([version, moment.strftime("%Y%m%d %H:%M:%S UTC")])
