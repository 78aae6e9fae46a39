"""Plugin strategies for the engine's tests (loaded by ``module:Class`` as a user's would be)."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from tui_trader.domain import Side
from tui_trader.strategies.base import Signal, Strategy


class Counting(Strategy):
    """Counts its bars; never signals."""

    calls: ClassVar[int] = 0

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        type(self).calls += 1
        return None


class Raising(Strategy):
    """Raises on every bar."""

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        raise ZeroDivisionError("plugin bug")


class Smoothing(Strategy):
    """Smooths its bars in place (as user code does): the closes it is shown become their mean."""

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        bars["close"] = bars["close"].rolling(50, min_periods=1).mean() - 50
        return None


class NewestClose(Strategy):
    """Records the newest close and the number of bars of every frame it is shown (never signals)."""

    seen: ClassVar[list[tuple[float, int]]] = []

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        type(self).seen.append((float(bars["close"].iloc[-1]), len(bars)))
        return None


class NeedsAKey(Strategy):
    """Its constructor raises (a setting it reads is missing)."""

    def __init__(self, name: str, params: dict[str, Any] | None = None) -> None:
        raise KeyError("BROKER_TOKEN")


class Returning(Strategy):
    """Returns ``params["value"]`` built by ``params["make"]`` on every bar (malformed signals)."""

    MAKERS: ClassVar[dict[str, Any]] = {
        "str side": lambda: Signal("BUY", "a side given as text"),  # type: ignore[arg-type]
        "dict": lambda: {"side": "BUY"},
        "inf stop": lambda: Signal(Side.BUY, "an ATR over a gap", stop_distance=float("inf")),
        "buy 0.25": lambda: Signal(Side.BUY, "always", stop_distance=0.25),
        "exit as text": lambda: Signal(Side.BUY, "an exit flag read from a file", exit="False"),
    }

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        return self.MAKERS[str(self.params["make"])]()  # type: ignore[no-any-return]


class Scripted(Strategy):
    """Returns :attr:`signal` on every bar (the test sets it; ``None``: no signal)."""

    signal: ClassVar[Signal | None] = None

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        return type(self).signal


manual = Counting
"""A strategy loaded under the name the operator's tickets carry (``engine.plugin_strategies:manual``)."""
