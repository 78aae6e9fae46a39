"""Parsers of client requests as ib_async 2.1.0 writes them at server version 178."""

from __future__ import annotations

from dataclasses import dataclass, field

from tui_trader.sim.protocol.framing import UNSET_DOUBLE, UNSET_INTEGER


class FieldReader:
    """A cursor over the text fields of one request."""

    __slots__ = ("fields", "pos")

    def __init__(self, fields: list[str], pos: int = 1) -> None:
        """Start reading at ``pos`` (1 skips the message id)."""
        self.fields = fields
        self.pos = pos

    def text(self) -> str:
        """The next field as text (empty past the end)."""
        pos = self.pos
        self.pos += 1
        return self.fields[pos] if pos < len(self.fields) else ""

    def integer(self, default: int = 0) -> int:
        """The next field as an int; empty or unset gives ``default``; ``"10.0"`` is accepted."""
        raw = self.text()
        if not raw:
            return default
        value = int(float(raw))
        return default if value == UNSET_INTEGER else value

    def number(self) -> float | None:
        """The next field as a float, or ``None`` when empty or unset."""
        raw = self.text()
        if not raw:
            return None
        if raw == "Infinite":
            return float("inf")
        value = float(raw)
        return None if value >= UNSET_DOUBLE else value

    def flag(self) -> bool:
        """The next field as a bool (``"1"``/``"0"``/``"True"``)."""
        raw = self.text()
        return raw not in ("", "0", "False", "false")

    def skip(self, count: int = 1) -> None:
        """Skip ``count`` fields."""
        self.pos += count

    def contract(self) -> ContractSpec:
        """The 12 contract fields ``Client.send`` expands a ``Contract`` into."""
        con_id = self.integer()
        symbol, sec_type = self.text(), self.text()
        self.skip(4)  # lastTradeDateOrContractMonth, strike, right, multiplier
        exchange, primary, currency, local = self.text(), self.text(), self.text(), self.text()
        self.skip(1)  # tradingClass
        return ContractSpec(con_id, symbol, sec_type, exchange, primary, currency, local)


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The contract of a request, as sent (possibly unqualified)."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str


@dataclass(slots=True)
class PlaceOrderRequest:
    """The fields of ``placeOrder`` the simulator acts upon."""

    order_id: int
    contract: ContractSpec
    action: str = ""
    total_qty: float = 0.0
    order_type: str = ""
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""
    oca_group: str = ""
    account: str = ""
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    display_size: int = 0
    outside_rth: bool = False
    good_till_date: str = ""
    oca_type: int = 0
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    what_if: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def parse_place_order(fields: list[str]) -> PlaceOrderRequest:
    """Parse ``placeOrder`` sequentially, mirroring ``Client.placeOrder`` up to ``whatIf``."""
    r = FieldReader(fields)
    req = PlaceOrderRequest(order_id=r.integer(), contract=r.contract())
    r.skip(2)  # secIdType, secId
    req.action, req.total_qty, req.order_type = r.text(), r.number() or 0.0, r.text()
    req.lmt_price, req.aux_price, req.tif = r.number(), r.number(), r.text()
    req.oca_group, req.account = r.text(), r.text()
    r.skip(2)  # openClose, origin
    req.order_ref, req.transmit, req.parent_id = r.text(), r.flag(), r.integer()
    r.skip(2)  # blockOrder, sweepToFill
    req.display_size = r.integer()
    r.skip(1)  # triggerMethod
    req.outside_rth = r.flag()
    r.skip(1)  # hidden
    if req.contract.sec_type == "BAG":
        return req
    r.skip(3)  # sharesAllocation, discretionaryAmt, goodAfterTime
    req.good_till_date = r.text()
    r.skip(7)  # faGroup faMethod faPercentage modelCode shortSaleSlot designatedLocation exemptCode
    req.oca_type = r.integer()
    r.skip(17)  # rule80A .. volatilityType (see Client.placeOrder)
    if r.text():  # deltaNeutralOrderType
        r.skip(9)
    else:
        r.skip(1)
    r.skip(2)  # continuousUpdate, referencePriceType
    req.trail_stop_price, req.trailing_percent = r.number(), r.number()
    _skip_scale_to_what_if(r)
    req.what_if = r.flag()
    return req


def _skip_scale_to_what_if(r: FieldReader) -> None:
    r.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = r.number()
    if increment is not None and increment > 0:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if r.text():  # hedgeType
        r.skip(1)
    r.skip(4)  # optOutSmartRouting clearingAccount clearingIntent notHeld
    if r.flag():  # deltaNeutralContract present
        r.skip(3)
    if r.text():  # algoStrategy
        r.skip(2 * r.integer())
    r.skip(1)  # algoId


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """The filter of ``reqExecutions``; empty fields match everything."""

    client_id: int = 0
    account: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


def parse_exec_filter(fields: list[str]) -> tuple[int, ExecutionFilter]:
    """``7|3|reqId|clientId|acctCode|time|symbol|secType|exchange|side``."""
    r = FieldReader(fields, 2)
    req_id = r.integer()
    flt = ExecutionFilter(r.integer(), r.text(), r.text(), r.text(), r.text(), r.text(), r.text())
    return req_id, flt
