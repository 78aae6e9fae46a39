"""Validation of new and modified orders, with IB's error codes and texts."""

from __future__ import annotations

from tui_trader.sim.instruments import Instrument
from tui_trader.sim.orders import SUPPORTED_TYPES
from tui_trader.sim.protocol.decode import PlaceOrderRequest

TIFS = frozenset({"", "DAY", "GTC", "IOC", "GTD"})
"""Times in force accepted. A GTD order needs its ``goodTillDate``; it works until cancelled here (the
simulator does not expire it at that date)."""
OFF_TICK = "The price does not conform to the minimum price variation for this contract."


class Rejection(Exception):
    """An order refused with an IB error code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def rejected(reason: str) -> Rejection:
    """IB's generic rejection (201) with a reason."""
    return Rejection(201, f"Order rejected - reason:{reason}")


def validate_new(req: PlaceOrderRequest, inst: Instrument, halted: bool) -> None:
    """Refuse an order IB would refuse.

    Raises:
        Rejection: 201 with a reason (type, tif, action, quantity, halted), 110 for an off-tick price.
    """
    if req.order_type not in SUPPORTED_TYPES:
        raise rejected(f"Unsupported order type {req.order_type}")
    if req.tif not in TIFS:
        raise rejected(f"Unsupported time in force {req.tif}")
    if req.tif == "GTD" and not req.good_till_date:
        raise rejected("A GTD order needs a good-till date")
    if req.action not in ("BUY", "SELL"):
        raise rejected(f"Invalid action {req.action}")
    if req.total_qty <= 0:
        raise rejected("The order quantity must be greater than zero")
    validate_prices(req, inst)
    if halted:
        raise rejected(f"Trading in {inst.symbol} is halted")


def validate_prices(req: PlaceOrderRequest, inst: Instrument) -> None:
    """Prices present where the order type needs them, positive and on the tick grid."""
    needs_lmt = req.order_type in ("LMT", "STP LMT")
    needs_aux = req.order_type in ("STP", "STP LMT")
    if (needs_lmt and req.lmt_price is None) or (needs_aux and req.aux_price is None):
        raise rejected(f"{req.order_type} order without a price")
    if req.order_type == "TRAIL" and req.aux_price is None and req.trailing_percent is None:
        raise rejected("TRAIL order without a trailing amount or percent")
    prices = [p for p, used in ((req.lmt_price, needs_lmt), (req.aux_price, needs_aux)) if used]
    for price in prices:
        if price is None or price <= 0 or not on_tick(price, inst.min_tick):
            raise Rejection(110, OFF_TICK)


def on_tick(price: float, tick: float) -> bool:
    """Whether ``price`` is a multiple of ``tick`` (within float noise)."""
    return abs(price / tick - round(price / tick)) <= 1e-6
