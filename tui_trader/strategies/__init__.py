"""Strategies: the interface, the built-ins and plugin loading."""

from tui_trader.strategies.base import Signal, Strategy
from tui_trader.strategies.builtin import BUILTINS, EmaCross, Macd, VolumeBreakout, VwapReversion
from tui_trader.strategies.registry import StrategyLoadError, resolve

__all__ = ["BUILTINS", "EmaCross", "Macd", "Signal", "Strategy", "StrategyLoadError", "VolumeBreakout",
           "VwapReversion", "resolve"]
