"""From a strategy signal to an entry ticket: quantity, protective stop and take-profit.

The stop is fixed percent, an ATR multiple or trailing (``[sizing] stop_method``); the
take-profit sits ``take_profit_r`` times the stop distance away. The quantity comes from
:func:`tui_trader.risk.sizing.size_order`, capped by the limits' headroom.
"""

from __future__ import annotations

from tui_trader.config.sections import SizingSettings
from tui_trader.domain.enums import OrderType, Side
from tui_trader.domain.market import Instrument
from tui_trader.domain.orders import Bracket, OrderTicket
from tui_trader.risk.sizing import SizingMethod, SizingRule
from tui_trader.strategies.base import Signal


def stop_distance(signal: Signal, price: float, sizing: SizingSettings) -> float:
    """Distance from the entry to the protective stop, in price units."""
    fixed = price * sizing.stop_pct / 100
    if sizing.stop_method == "atr":
        return sizing.atr_mult * signal.stop_distance if signal.stop_distance else fixed
    return fixed


def sizing_rule(sizing: SizingSettings) -> SizingRule:
    """The risk engine's sizing rule for the ``[sizing]`` settings."""
    return SizingRule(SizingMethod(sizing.method), sizing.quantity, sizing.notional, sizing.equity_pct,
                      sizing.risk_money, sizing.risk_pct, sizing.atr_mult, sizing.stop_pct)


def entry_probe(symbol: str, signal: Signal, price: float, sizing: SizingSettings,
                instrument: Instrument, strategy: str) -> OrderTicket | None:
    """A market entry with its bracket and quantity 0 (sized by :func:`risk.sizing.size_order`)."""
    distance = stop_distance(signal, price, sizing)
    if not distance > 0 or not price > 0:
        return None
    protection = bracket(signal.side, price, distance, sizing, instrument)
    if not protection.stop_price or protection.stop_price <= 0 or (
            protection.take_profit_price is not None and protection.take_profit_price <= 0):
        return None  # a stop (a short's target) at or below zero: the distance is wider than the price
    return OrderTicket(symbol, signal.side, 0.0, OrderType.MKT, strategy=strategy, reason=signal.reason,
                       bracket=protection, signal_price=price)


def bracket(side: Side, price: float, distance: float, sizing: SizingSettings,
            instrument: Instrument) -> Bracket:
    """The protective stop (fixed or trailing) and optional take-profit around ``price``."""
    sign = side.sign
    stop = instrument.round_price(price - sign * distance)
    target = None
    if sizing.take_profit_r:
        target = instrument.round_price(price + sign * distance * sizing.take_profit_r)
    if sizing.stop_method == "trailing":
        return Bracket(stop_price=stop, take_profit_price=target, trail_percent=sizing.stop_pct)
    return Bracket(stop_price=stop, take_profit_price=target)


def exit_ticket(symbol: str, position_qty: float, reason: str, strategy: str, price: float) -> OrderTicket:
    """A market order closing ``position_qty``."""
    side = Side.SELL if position_qty > 0 else Side.BUY
    return OrderTicket(symbol, side, abs(position_qty), OrderType.MKT, strategy=strategy, reason=reason,
                       reduce_only=True, signal_price=price)
