"""Pure mapping between ib_async objects and domain values: ib_async's camelCase stops here.

Nothing in this module performs I/O; every function takes ib_async values and returns domain
values (or the reverse for orders), so it is unit-tested without a connection.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ib_async import BarData, Contract, ContractDetails, OrderState, RealTimeBar, Stock, Ticker, Trade
from ib_async import Fill as IbFill
from ib_async import Order as IbOrder
from ib_async import OrderStatus as IbOrderStatus
from ib_async import Position as IbPosition
from ib_async.util import UNSET_DOUBLE

from tui_trader.broker.base import ORDER_CANCELLED, ORDER_ENDED_OR_UNKNOWN, BrokerOrderReport, BrokerPosition
from tui_trader.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from tui_trader.domain.market import Bar, Instrument, Quote, Session
from tui_trader.domain.orders import LOCATE, Fill, Order, WhatIf

#: IB order status → engine status; ``None`` means "no lifecycle information, keep the current".
MAP_ORDER_STATUS: dict[str, OrderStatus | None] = {
    "PendingSubmit": OrderStatus.SENDING,
    "ApiPending": OrderStatus.SENDING,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "ApiUpdate": OrderStatus.SUBMITTED,
    "PendingCancel": None,
    "ValidationError": None,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Filled": OrderStatus.FILLED,
    "Inactive": OrderStatus.REJECTED,
}

MAP_EXEC_SIDE = {"BOT": Side.BUY, "SLD": Side.SELL}
#: IB order type → the engine's; one missing here (MIT, TRAIL LIMIT, REL, …) is ``OrderType.OTHER``.
MAP_ORDER_TYPE = {t.value: t for t in OrderType if t is not OrderType.OTHER}
#: IB time in force → the engine's; one missing here (FOK, DTC, …) is ``TimeInForce.OTHER``.
MAP_TIME_IN_FORCE = {t.value: t for t in TimeInForce if t is not TimeInForce.OTHER}


def _num(value: float | Decimal | None) -> float | None:
    """``None`` for IB's unset/NaN/zero sentinels, else the value."""
    if value is None:
        return None
    number = float(value)
    if number == UNSET_DOUBLE or math.isnan(number) or number == 0:
        return None
    return number


def _positive(value: float) -> float:
    """NaN for IB's unset sentinels and non-positive prices."""
    if value is None or value == UNSET_DOUBLE or not value > 0:
        return math.nan
    return float(value)


def _aware(when: datetime | date) -> datetime:
    """A timezone-aware datetime (IB dates without a time become midnight UTC)."""
    if not isinstance(when, datetime):
        return datetime.combine(when, time(0), tzinfo=UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def map_status(raw: str, filled: float, remaining: float, why_held: str = "") -> OrderStatus | None:
    """Engine status for an IB status string, fill counts and ``whyHeld``: ``Inactive`` is a rejection,
    unless IB holds the order for a locate (then it works on)."""
    status = OrderStatus.SUBMITTED if _locating(raw, why_held) else MAP_ORDER_STATUS.get(raw)
    if status is OrderStatus.SUBMITTED and filled > 0 and remaining > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def held_for_locate(status: IbOrderStatus) -> bool:
    """An order IB holds for a locate: ``Inactive`` (one of ib_async's done states) yet alive."""
    return _locating(status.status, status.whyHeld)


def _locating(raw: str, why_held: str) -> bool:
    """IB's status ``raw`` with ``why_held`` is an order held for a locate (the one rule of both above)."""
    return raw == "Inactive" and why_held == LOCATE


def stock_contract(symbol: str, exchange: str = "SMART", currency: str = "USD") -> Contract:
    """An unqualified stock contract."""
    return Stock(symbol, exchange, currency)


def instrument_from_details(details: ContractDetails) -> Instrument:
    """An :class:`Instrument` from IB contract details, with its trading and liquid sessions.

    Hours that cannot be parsed leave the sessions empty: the risk gate then denies entries
    ("trading hours unknown") instead of guessing.
    """
    contract = details.contract or Contract()
    zone = zone_name(details.timeZoneId)
    return Instrument(
        symbol=contract.symbol,
        con_id=contract.conId,
        exchange=contract.exchange or "SMART",
        primary_exchange=contract.primaryExchange,
        currency=contract.currency or "USD",
        long_name=details.longName,
        min_tick=details.minTick or 0.01,
        size_increment=float(details.sizeIncrement or 1.0),
        time_zone=zone or DEFAULT_ZONE,
        trading_sessions=_sessions_or_none(details.tradingHours, zone),
        liquid_sessions=_sessions_or_none(details.liquidHours, zone),
    )


def instrument_from_contract(contract: Contract) -> Instrument:
    """A minimal :class:`Instrument` from a qualified contract (no hours: entries fail closed)."""
    return Instrument(
        symbol=contract.symbol,
        con_id=contract.conId,
        exchange=contract.exchange or "SMART",
        primary_exchange=contract.primaryExchange,
        currency=contract.currency or "USD",
    )


DEFAULT_ZONE = "America/New_York"

#: IB's legacy zone abbreviations → IANA names. ``EST`` and ``CST`` are valid zoneinfo keys but
#: fixed offsets without daylight saving, so the alias must win over zoneinfo.
ZONE_ALIASES = {
    "EST": "America/New_York", "EDT": "America/New_York", "EST5EDT": "America/New_York",
    "CST": "America/Chicago", "CDT": "America/Chicago", "CST6CDT": "America/Chicago",
    "MST": "America/Denver", "PST": "America/Los_Angeles", "GMT": "Europe/London",
    "BST": "Europe/London", "GB": "Europe/London", "MET": "Europe/Berlin", "CET": "Europe/Berlin",
    "JST": "Asia/Tokyo", "HKT": "Asia/Hong_Kong", "AET": "Australia/Sydney",
}


def zone_name(zone: str) -> str:
    """The IANA zone for IB's ``timeZoneId`` ('US/Eastern', 'EST (Eastern Standard Time)', ...).

    Returns '' when the zone is empty or unknown.
    """
    key = zone.split("(")[0].strip() if zone else ""
    key = ZONE_ALIASES.get(key, key)
    if not key:
        return ""
    try:
        ZoneInfo(key)
    except (ValueError, KeyError, OSError):
        return ""
    return key


def parse_sessions(text: str, zone: str) -> tuple[Session, ...]:
    """IB ``tradingHours`` / ``liquidHours`` text → sessions as aware instants, in time order.

    Understands both of IB's formats: ``20240722:0930-20240722:1600`` (each end dated, so a
    session may cross midnight: ``20240721:1700-20240722:1600``) and the older
    ``20090507:0700-1830,1830-2330`` (times only; an end at or before its start lies on the next
    day). ``20240721:CLOSED`` days have no session. Raises ``ValueError`` on anything else,
    including an unknown ``zone``.
    """
    name = zone_name(zone)
    if not name:
        raise ValueError(f"unknown time zone {zone!r}")
    tz = ZoneInfo(name)
    sessions: set[Session] = set()
    for part in filter(None, (p.strip() for p in text.split(";"))):
        day, sep, ranges = part.partition(":")
        if not sep or ranges == "CLOSED":
            _date(day)
            continue
        for piece in ranges.split(","):
            sessions.add(_session(day, piece, tz))
    return tuple(sorted(sessions, key=lambda s: s.start))


def _session(day: str, piece: str, tz: ZoneInfo) -> Session:
    start_text, sep, end_text = piece.partition("-")
    if not sep:
        raise ValueError(f"not a time range: {piece!r}")
    start = _instant(day, start_text, tz)
    end = _instant(day, end_text, tz)
    if end <= start and ":" not in end_text:
        end = _instant(day, end_text, tz, days=1)
    if end <= start:
        raise ValueError(f"session ends before it starts: {day}:{piece}")
    return Session(start, end)


def _instant(day: str, text: str, tz: ZoneInfo, days: int = 0) -> datetime:
    """``HHMM`` on ``day`` (or a dated ``YYYYMMDD:HHMM``) in ``tz``; ``2400`` is the next midnight."""
    if ":" in text:
        day, _, text = text.partition(":")
    if len(text) != 4 or not text.isdigit():
        raise ValueError(f"not a time: {text!r}")
    hours, minutes = int(text[:2]), int(text[2:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"not a time: {text!r}")
    local = datetime.combine(_date(day), time(0), tzinfo=tz)
    return local + timedelta(days=days, hours=hours, minutes=minutes)


def _date(text: str) -> date:
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"not a date: {text!r}")
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _sessions_or_none(text: str, zone: str) -> tuple[Session, ...]:
    try:
        return parse_sessions(text, zone) if text else ()
    except ValueError:
        return ()


def quote_from_ticker(ticker: Ticker, now: datetime) -> Quote:
    """A :class:`Quote` from an ib_async ticker (NaN sentinels kept as NaN)."""
    return Quote(
        symbol=ticker.contract.symbol if ticker.contract else "",
        time=_aware(ticker.time) if ticker.time else now,
        bid=_positive(ticker.bid),
        ask=_positive(ticker.ask),
        last=_positive(ticker.last),
        bid_size=_size(ticker.bidSize),
        ask_size=_size(ticker.askSize),
        last_size=_size(ticker.lastSize),
        volume=_size(ticker.volume),
        close=_positive(ticker.close),
        delayed=ticker.marketDataType in (3, 4),
        halted=is_halted(ticker.halted),
    )


def is_halted(value: float) -> bool | None:
    """IB's "Halted" tick (49) as a flag: 1 a general (regulatory) halt, 2 a volatility halt; 0 not halted, -1 not
    known (ib_async stores both as 0, IB's size default); NaN until IB says anything (a new subscription, every
    reconnect's, gets its tick after its prices): ``None``, not known."""
    return value > 0 if value == value else None


def _size(value: float) -> float:
    """0 for unset or NaN sizes."""
    if value is None or math.isnan(value) or value == UNSET_DOUBLE:
        return 0.0
    return float(value)


def bar_from_realtime(symbol: str, bar: RealTimeBar) -> Bar:
    """A 5-second :class:`Bar` from an IB real-time bar."""
    return Bar(symbol, _aware(bar.time), bar.open_, bar.high, bar.low, bar.close,
               float(bar.volume), bar.wap, bar.count)


def bar_from_history(symbol: str, bar: BarData) -> Bar:
    """A :class:`Bar` from an IB historical bar."""
    return Bar(symbol, _aware(bar.date), bar.open, bar.high, bar.low, bar.close,
               float(bar.volume), bar.average, bar.barCount)


#: IB's history bar sizes (``barSizeSetting``) in seconds, from 5 s (ours are multiples of 5) to an hour.
#: Each divides an hour, so its bars, on the exchange's clock, fall within the engine's (on the same clock,
#: ``engine.market.BarClock``) also on a day the clock changes; the larger ones (2, 3, 4, 8 hours, 1 day)
#: are not used: the engine folds its long bars from these.
HISTORY_BAR_SIZES = {5: "5 secs", 10: "10 secs", 15: "15 secs", 30: "30 secs", 60: "1 min",
                     120: "2 mins", 180: "3 mins", 300: "5 mins", 600: "10 mins", 900: "15 mins",
                     1200: "20 mins", 1800: "30 mins", 3600: "1 hour"}


def bar_size_setting(seconds: int) -> str:
    """IB's ``barSizeSetting`` for history folded into bars of ``seconds``: the largest IB size that
    divides it (90 → '30 secs', 420 → '1 min', 7200 → '1 hour'), so no IB bar spans two of ours.

    Raises:
        ValueError: No IB bar size divides ``seconds``.
    """
    fitting = [size for size in HISTORY_BAR_SIZES if seconds > 0 and seconds % size == 0]
    if not fitting:
        raise ValueError(f"no IB history bar size divides a bar of {seconds} s")
    return HISTORY_BAR_SIZES[max(fitting)]


def duration_setting(seconds: int) -> str:
    """IB's ``durationStr`` covering at least ``seconds``."""
    if seconds <= 86_400:
        return f"{max(seconds, 60)} S"
    return f"{math.ceil(seconds / 86_400)} D"


def fill_from_ib(fill: IbFill, order_ref: str = "") -> Fill:
    """A :class:`Fill` from an ib_async fill; commission only when the broker reported one."""
    ex = fill.execution
    report = fill.commissionReport
    has_commission = bool(report.execId) and report.commission != UNSET_DOUBLE
    return Fill(
        exec_id=ex.execId,
        order_ref=ex.orderRef or order_ref,
        symbol=fill.contract.symbol,
        side=MAP_EXEC_SIDE.get(ex.side, Side.BUY),
        quantity=float(ex.shares),
        price=float(ex.price),
        time=_aware(ex.time),
        broker_id=ex.orderId or None,
        commission=float(report.commission) if has_commission else None,
        realized_pnl=_num(report.realizedPNL) if has_commission else None,
        perm_id=ex.permId or None,
    )


IB_ASYNC_WORDS = re.compile(r"^(?:Error|Warning) -?\d+, reqId -?\d+: ")
"""How ib_async words an order's error on its trade log, before the broker's own words: ``Error 201, reqId 12: ``."""


def broker_reason(message: str) -> str:
    """The broker's words alone from a trade log entry's message: ``Error 201, reqId 12: Order rejected -
    reason:Simulated rejection`` is ``Order rejected - reason:Simulated rejection``, as IB sent it (an order's
    reason, for the console, the journal and the reports)."""
    return IB_ASYNC_WORDS.sub("", message).strip()


def _status_with_error(trade: Trade, filled: float, remaining: float) -> tuple[OrderStatus | None, str, int]:
    """The engine status, reading the error code ib_async put on the trade's last log entry: the status, the
    broker's words and (for a rejection) its error code.

    ib_async marks a trade Cancelled on any order error: a 201 is really a rejection, and an order IB says has
    ended or does not know (:data:`~tui_trader.broker.base.ORDER_ENDED_OR_UNKNOWN`: a cancel's race with a fill,
    say) carries no information about the final state. (One that refused a modification never gets here: the
    adapter puts the trade back to working first.)
    """
    raw = trade.orderStatus.status
    status = map_status(raw, filled, remaining, trade.orderStatus.whyHeld)
    last = trade.log[-1] if trade.log else None
    code = last.errorCode if last is not None else 0
    said = broker_reason(last.message) if last is not None and code else ""
    if status is OrderStatus.CANCELLED and code and code != ORDER_CANCELLED:
        if code in ORDER_ENDED_OR_UNKNOWN:
            return None, f"cancel race {code}: {said}", 0
        return OrderStatus.REJECTED, said, code
    return status, said, 0


def report_from_trade(trade: Trade, note: str = "") -> BrokerOrderReport:
    """The broker's view of an order from an ib_async trade."""
    order, status = trade.order, trade.orderStatus
    quantity = float(order.totalQuantity)
    filled = float(status.filled)
    remaining = float(status.remaining) if status.status and status.remaining else quantity - filled
    engine_status, error_note, error_code = _status_with_error(trade, filled, remaining)
    trails = order.orderType == "TRAIL"
    percent = _num(order.trailingPercent) if trails else None
    return BrokerOrderReport(
        order_ref=order.orderRef,
        broker_id=order.orderId,
        perm_id=order.permId or status.permId,
        client_id=order.clientId,
        symbol=trade.contract.symbol,
        side=Side(order.action) if order.action in ("BUY", "SELL") else Side.BUY,
        quantity=quantity,
        order_type=MAP_ORDER_TYPE.get(order.orderType, OrderType.OTHER),
        status=engine_status,
        filled=filled,
        remaining=remaining,
        avg_fill_price=float(status.avgFillPrice or 0.0),
        limit_price=_num(order.lmtPrice),
        stop_price=_num(order.trailStopPrice if trails else order.auxPrice),
        parent_id=order.parentId,
        oca_group=order.ocaGroup,
        raw_status=status.status,
        note=note or error_note,
        tif=MAP_TIME_IN_FORCE.get(order.tif, TimeInForce.OTHER) if order.tif else None,
        why_held=status.whyHeld,
        # A trailing stop's auxPrice is its trailing amount, unless it trails by a percent.
        trail_amount=_num(order.auxPrice) if trails and percent is None else None,
        trail_percent=percent,
        outside_rth=bool(order.outsideRth),
        raw_order_type=order.orderType,
        raw_tif=order.tif,
        good_till=order.goodTillDate if order.tif == "GTD" else "",
        error_code=error_code,
    )


def is_managed(contract: Contract) -> bool:
    """A contract tui-trader trades and accounts for: a US stock. An option, future or foreign stock of
    the same symbol is another instrument, never to be merged into the stock's position."""
    return contract.secType == "STK" and contract.currency in ("USD", "")


def describe_contract(contract: Contract) -> str:
    """``AAPL OPT 20261218 200 C x100`` (what the operator needs to recognise a holding)."""
    parts = [contract.symbol, contract.secType, contract.lastTradeDateOrContractMonth,
             f"{contract.strike:g}" if contract.strike else "", contract.right,
             f"x{contract.multiplier}" if contract.multiplier else "",
             contract.currency if contract.currency not in ("USD", "") else ""]
    return " ".join(p for p in parts if p)


def position_from_ib(position: IbPosition) -> BrokerPosition:
    """A :class:`BrokerPosition` from an ib_async position."""
    return BrokerPosition(position.contract.symbol, float(position.position),
                          float(position.avgCost), position.account)


def order_to_ib(order: Order, broker_id: int, account: str = "", blank: IbOrder | None = None, *,
                trail_stop: bool = True) -> IbOrder:
    """An ib_async order for a domain order (prices, TIF, ref, account).

    ``blank``: a default ``IbOrder()`` made ahead of time, filled in here. ib_async's order has 139
    fields; making one right before the wire cost ≈65 µs with caches cold, filling one ≈25 µs
    (:class:`~tui_trader.broker.ib.adapter.IbBroker` keeps the next one ready).

    ``trail_stop``: send a trailing stop's stop price (``trailStopPrice``). A new order sends where it starts;
    a modify only a stop changed on purpose: left unset, IB keeps the stop where it trailed to, which the
    ticket does not know (IB moves it without a word), so a quantity-only modify sending the ticket's would
    set it back, looser.
    """
    t = order.ticket
    ib = IbOrder() if blank is None else blank
    # str() of a StrEnum member is its value as a plain str, in C (``.value`` runs enum's Python code).
    ib.orderId, ib.action, ib.totalQuantity, ib.orderType = broker_id, str(t.side), t.quantity, str(t.order_type)
    ib.tif, ib.outsideRth, ib.orderRef, ib.account = str(t.tif), t.outside_rth, order.order_ref, account
    if t.order_type in (OrderType.LMT, OrderType.STP_LMT) and t.limit_price is not None:
        ib.lmtPrice = t.limit_price
    if t.order_type in (OrderType.STP, OrderType.STP_LMT) and t.stop_price is not None:
        ib.auxPrice = t.stop_price
    if t.order_type is OrderType.TRAIL:
        _set_trail(ib, order, trail_stop)
    return ib


def _set_trail(ib: IbOrder, order: Order, trail_stop: bool) -> None:
    """Trailing amount or percent, and the stop when known and asked for (see :func:`order_to_ib`)."""
    t = order.ticket
    if t.trail_percent is not None:
        ib.trailingPercent = t.trail_percent
    elif t.trail_amount is not None:
        ib.auxPrice = t.trail_amount
    if trail_stop and t.stop_price is not None:
        ib.trailStopPrice = t.stop_price


def trail_stop_changed(order: Order, held: IbOrder) -> bool:
    """A modify of ``order`` moves its trailing stop on purpose: its ticket's stop is not the one last set at the
    broker (``held``: the order as ib_async keeps it, with the stop sent or reported last)."""
    stop = order.ticket.stop_price
    return order.ticket.order_type is OrderType.TRAIL and stop is not None and stop != _num(held.trailStopPrice)


def what_if_from_state(state: OrderState) -> WhatIf:
    """The broker's answer to a what-if order (IB sends its margin figures as text; unset ones are
    empty or IB's largest double)."""
    return WhatIf(_figure(state.initMarginChange), _figure(state.maintMarginChange),
                  _figure(state.equityWithLoanChange), _figure(state.commission), state.warningText or "")


def _figure(value: str | float) -> float | None:
    """A what-if figure; ``None`` when IB left it unset. Zero is a figure (the order changes nothing)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number == UNSET_DOUBLE or not math.isfinite(number) else number
