"""The strategy interface: a strategy looks at a symbol's recent bars and may return a signal.

A strategy is a small class with ``on_bar(symbol, bars) -> Signal | None``; ``bars`` is a pandas
DataFrame indexed by bar start with columns open, high, low, close, volume, wap, count, oldest
first, the newest bar last. Strategies never place orders: the engine sizes the signal, checks
it against the risk engine and (where required) the operator, and sends a bracket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tui_trader.domain.enums import Side
from tui_trader.domain.market import Quote

if TYPE_CHECKING:  # pandas loads with the first bar, not with the engine (startup time)
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants.

    Attributes:
        side: BUY to be long, SELL to be short (or to close a long when ``exit`` is set).
        reason: One line the operator reads in the approval modal and the journal.
        stop_distance: Distance from the entry to the protective stop, in price units; the
            engine's sizing default (fixed percent, ATR or trailing) is used when ``None``.
        exit: Close the current position instead of opening one.
    """

    side: Side
    reason: str
    stop_distance: float | None = None
    exit: bool = False


def signal_problem(signal: object) -> str:
    """What makes a strategy's return value unusable as a :class:`Signal` (``''`` when nothing does).

    Plugins are the user's code: a side given as a string, a dict, or an infinite stop distance
    (an ATR of a series with a gap) must disable the strategy with an alert, not crash the data
    handler that called it, nor reach the sizing.
    """
    if not isinstance(signal, Signal):
        return f"returned {type(signal).__name__} {signal!r}, not a Signal"
    if not isinstance(signal.side, Side):
        return f"returned a Signal whose side {signal.side!r} is not a Side"
    distance = signal.stop_distance
    if distance is not None and not (isinstance(distance, int | float) and math.isfinite(distance) and distance > 0):
        return f"returned a Signal whose stop_distance {distance!r} is not a positive finite price distance"
    return ""


class Strategy:
    """Base class of every strategy (built-in or plugin).

    Args:
        name: Instance name (the strategy's config name).
        params: Parameters from the config, merged over :attr:`defaults`.
    """

    defaults: ClassVar[Mapping[str, Any]] = {}
    """Default parameters; config values override them."""

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.params: dict[str, Any] = {**self.defaults, **(params or {})}

    @property
    def warmup_bars(self) -> int:
        """Bars of history needed before the first signal."""
        return 30

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Look at ``symbol``'s bars (newest last) after a bar completes; return a signal or None."""
        return None

    def on_quote(self, quote: Quote) -> Signal | None:
        """Optional: react to a quote (most strategies work on bars only)."""
        return None

    def first_bar_direction(self, symbol: str, value: float) -> int:
        """On a symbol's first evaluation with ``enter_on_start`` set: the sign of ``value``; else 0."""
        seen: set[str] = self.__dict__.setdefault("_started", set())
        if symbol in seen:
            return 0
        seen.add(symbol)
        if not self.params.get("enter_on_start") or math.isnan(value) or value == 0:
            return 0
        return 1 if value > 0 else -1

    def param(self, key: str) -> Any:
        """A parameter's value."""
        return self.params[key]


def crossed(prev: float, now: float) -> int:
    """+1 when a difference crossed above zero, -1 below, 0 otherwise (NaN never crosses)."""
    if math.isnan(prev) or math.isnan(now):
        return 0
    if prev <= 0 < now:
        return 1
    if prev >= 0 > now:
        return -1
    return 0
