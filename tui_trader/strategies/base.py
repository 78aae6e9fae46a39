"""The strategy interface: a strategy looks at a symbol's recent bars and may return a signal.

A strategy is a small class with ``on_bar(symbol, bars) -> Signal | None``; ``bars`` is a pandas
DataFrame indexed by bar start with columns open, high, low, close, volume, wap, count, oldest
first, the newest bar last. Strategies never place orders: the engine sizes the signal, checks
it against the risk engine and (where required) the operator, and sends a bracket.
"""

from __future__ import annotations

import difflib
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
        stop_distance: The price's volatility as the strategy measures it (an ATR), in price
            units. The protective stop is placed by ``[sizing] stop_method``: with ``"atr"`` it sits
            ``atr_mult`` times this from the entry (``None``: ``stop_pct`` percent instead); with
            ``"fixed_pct"`` (the default) or ``"trailing"`` this is not used. It is not the stop's
            own distance: return the ATR, not ``atr_mult`` times it.
        exit: Close the current position instead of opening one (``True`` or ``False``).
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
    if not _is_bool(signal.exit):  # "False" (truthy) would close the position; a Series has no one truth
        return f"returned a Signal whose exit {_shown(signal.exit)} is not True or False"
    distance = signal.stop_distance
    if distance is not None and not (isinstance(distance, int | float) and math.isfinite(distance) and distance > 0):
        return f"returned a Signal whose stop_distance {distance!r} is not a positive finite price distance"
    return ""


def _is_bool(value: object) -> bool:
    """``value`` is True or False: a bool, or a numpy one (``bars["close"].iloc[-1] < x``), read
    without numpy, which strategies import and the engine does not need to."""
    if isinstance(value, bool):
        return True
    return str(getattr(value, "dtype", "")) == "bool" and getattr(value, "shape", None) == ()


def _shown(value: object) -> str:
    """``value`` for a one-line alert: its repr, or its type when that is long (a whole Series)."""
    text = repr(value)
    return text if len(text) <= 60 and "\n" not in text else f"a {type(value).__name__}"


class Strategy:
    """Base class of every strategy (built-in or plugin).

    Args:
        name: Instance name (the strategy's config name).
        params: Parameters from the config, merged over :attr:`defaults`.
    """

    defaults: ClassVar[Mapping[str, Any]] = {}
    """Default parameters; config values override them."""

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Raises:
            ValueError: ``params`` has problems (:meth:`param_problems`), all of them named.
        """
        problems = self.param_problems(params or {})
        if problems:
            raise ValueError("; ".join(problems))
        self.name = name
        self.params: dict[str, Any] = {**self.defaults, **(params or {})}

    @classmethod
    def param_problems(cls, params: Mapping[str, Any]) -> list[str]:
        """What is wrong with the configured ``params`` (empty: nothing).

        A misspelt name would otherwise be ignored and the strategy trade on its default, a
        period given as text would fail on the first bar, and a fast EMA slower than the slow one
        would trade the opposite of its name. So: a name not in :attr:`defaults` is refused
        (when the class declares any; a plugin without defaults takes what it is given), a value
        of another kind than its default's is refused, then :meth:`check_params` sees the values.
        """
        problems = []
        for key, value in params.items():
            if cls.defaults and key not in cls.defaults:
                close = difflib.get_close_matches(key, list(cls.defaults), n=2)
                known = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(cls.defaults)}"
                problems.append(f"unknown parameter {key!r} ({known})")
            elif key in cls.defaults and not _same_kind(value, cls.defaults[key]):
                problems.append(f"{key} = {value!r}: must be {_kind(cls.defaults[key])}")
        return problems or cls.check_params({**cls.defaults, **params})

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Override: what is wrong with the parameters' values (defaults merged; kinds already checked)."""
        return []

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


def at_least(params: Mapping[str, Any], minimum: int, *names: str) -> list[str]:
    """A problem for each of ``names`` below ``minimum`` (periods and windows)."""
    return [f"{name} = {params[name]!r}: must be at least {minimum}" for name in names if not params[name] >= minimum]


def positive(params: Mapping[str, Any], *names: str) -> list[str]:
    """A problem for each of ``names`` that is not a finite number above 0."""
    return [f"{name} = {params[name]!r}: must be a number above 0" for name in names
            if not (math.isfinite(params[name]) and params[name] > 0)]  # fmt: skip


def shorter(params: Mapping[str, Any], fast: str, slow: str) -> list[str]:
    """A problem when the ``fast`` period is not shorter than the ``slow`` one."""
    if params[fast] < params[slow]:
        return []
    return [f"{fast} ({params[fast]!r}) must be shorter than {slow} ({params[slow]!r})"]


def _same_kind(value: object, default: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def _kind(default: object) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    return "text" if isinstance(default, str) else f"a {type(default).__name__}"


def crossed(prev: float, now: float) -> int:
    """+1 when a difference crossed above zero, -1 below, 0 otherwise (NaN never crosses)."""
    if math.isnan(prev) or math.isnan(now):
        return 0
    if prev <= 0 < now:
        return 1
    if prev >= 0 > now:
        return -1
    return 0
