"""Built-in strategies, after the trading systems this product replaces.

Each returns a signal only on the bar where its condition starts (a fresh cross or breakout),
never on every bar while it holds, so one setup makes one order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from tui_trader.domain.enums import Side
from tui_trader.strategies.base import Signal, Strategy, at_least, crossed, positive, shorter
from tui_trader.strategies.indicators import atr, ema, macd, rolling_vwap

if TYPE_CHECKING:  # the DataFrames come from the engine; importing pandas here would slow startup
    import pandas as pd


class EmaCross(Strategy):
    """Long when the fast EMA crosses above the slow one, short (or exit) when it crosses below.

    With ``enter_on_start`` (default) the first live bar after warm-up also signals the side
    the EMAs already point to, so a (re)started strategy does not sit out the current trend.
    """

    defaults: ClassVar[dict[str, object]] = {"fast": 9, "slow": 21, "allow_short": True, "atr_period": 14,
                                             "enter_on_start": True}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Spans of at least one bar, the fast one shorter."""
        return at_least(params, 1, "fast", "slow", "atr_period") or shorter(params, "fast", "slow")

    @property
    def warmup_bars(self) -> int:
        """Twice the slow span."""
        return int(self.params["slow"]) * 2

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Signal on a fresh cross of the fast EMA over the slow EMA."""
        if len(bars) < int(self.params["slow"]) + 2:
            return None
        close = bars["close"]
        diff = ema(close, int(self.params["fast"])) - ema(close, int(self.params["slow"]))
        label = f"EMA{self.params['fast']} crossed {{}} EMA{self.params['slow']}"
        return _cross_signal(self, symbol, diff, bars, label)


def _cross_signal(strategy: Strategy, symbol: str, spread: pd.Series, bars: pd.DataFrame,
                  label: str) -> Signal | None:
    """A signal when ``spread`` changes sign (or, on the first live bar, its current sign).

    ``label`` names the cross with ``{}`` where 'above' or 'below' goes.
    """
    direction = strategy.first_bar_direction(symbol, float(spread.iloc[-1]))
    direction = direction or crossed(float(spread.iloc[-2]), float(spread.iloc[-1]))
    if direction == 0:
        return None
    side = Side.BUY if direction > 0 else Side.SELL
    stop = _atr_stop(bars, int(strategy.params["atr_period"]))
    reason = label.format("above" if direction > 0 else "below")
    return Signal(side, reason, stop, exit=side is Side.SELL and not strategy.params["allow_short"])


class Macd(Strategy):
    """Long when MACD crosses above its signal line, short (or exit) when it crosses below.

    ``enter_on_start`` works as in :class:`EmaCross`.
    """

    defaults: ClassVar[dict[str, object]] = {"fast": 12, "slow": 26, "signal": 9, "allow_short": True,
                                             "atr_period": 14, "enter_on_start": True}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Spans of at least one bar, the fast one shorter."""
        return at_least(params, 1, "fast", "slow", "signal", "atr_period") or shorter(params, "fast", "slow")

    @property
    def warmup_bars(self) -> int:
        """Slow span plus the signal span, twice."""
        return (int(self.params["slow"]) + int(self.params["signal"])) * 2

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Signal on a fresh cross of the MACD line over its signal line."""
        if len(bars) < int(self.params["slow"]) + int(self.params["signal"]):
            return None
        line, signal = macd(bars["close"], int(self.params["fast"]), int(self.params["slow"]),
                            int(self.params["signal"]))
        return _cross_signal(self, symbol, line - signal, bars, "MACD crossed {} its signal line")


class VwapReversion(Strategy):
    """Fade stretches away from the rolling VWAP: buy below, sell above, by ``band_pct`` percent."""

    defaults: ClassVar[dict[str, object]] = {"window": 30, "band_pct": 0.3, "allow_short": True}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """A window of at least two bars, a band above 0 %."""
        return at_least(params, 2, "window") + positive(params, "band_pct")

    @property
    def warmup_bars(self) -> int:
        """The VWAP window plus one."""
        return int(self.params["window"]) + 1

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Signal when the close first moves beyond the band around the VWAP."""
        window = int(self.params["window"])
        if len(bars) < window + 1:
            return None
        vwap = rolling_vwap(bars, window)
        band = float(self.params["band_pct"]) / 100
        dev = bars["close"] / vwap - 1
        prev, now = float(dev.iloc[-2]), float(dev.iloc[-1])
        if math.isnan(now) or math.isnan(prev):
            return None
        if now < -band <= prev:
            return Signal(Side.BUY, f"close {now:.2%} below VWAP", abs(now) * float(bars['close'].iloc[-1]))
        if now > band >= prev and self.params["allow_short"]:
            return Signal(Side.SELL, f"close {now:.2%} above VWAP", now * float(bars['close'].iloc[-1]))
        return None


class VolumeBreakout(Strategy):
    """Break of the recent high (low) on volume above ``volume_mult`` times its average."""

    defaults: ClassVar[dict[str, object]] = {"lookback": 20, "volume_mult": 2.0, "allow_short": True,
                                             "atr_period": 14}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """A lookback of at least two bars, a volume multiple above 0."""
        return at_least(params, 2, "lookback") + at_least(params, 1, "atr_period") + positive(params, "volume_mult")

    @property
    def warmup_bars(self) -> int:
        """The lookback plus one."""
        return int(self.params["lookback"]) + 1

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Signal when the close breaks the lookback's range on heavy volume."""
        lookback = int(self.params["lookback"])
        if len(bars) < lookback + 1:
            return None
        last, window = bars.iloc[-1], bars.iloc[-lookback - 1:-1]
        avg_volume = float(window["volume"].mean())
        # "not >=": a bar whose volume is unknown (NaN) is not heavy volume.
        if not avg_volume > 0 or not float(last["volume"]) >= float(self.params["volume_mult"]) * avg_volume:
            return None
        stop = _atr_stop(bars, int(self.params["atr_period"]))
        if float(last["close"]) > float(window["high"].max()):
            return Signal(Side.BUY, f"breakout above {lookback}-bar high on volume", stop)
        if float(last["close"]) < float(window["low"].min()) and self.params["allow_short"]:
            return Signal(Side.SELL, f"breakdown below {lookback}-bar low on volume", stop)
        return None


def _atr_stop(bars: pd.DataFrame, period: int) -> float | None:
    """The latest ATR, or None while it is not defined."""
    value = float(atr(bars, period).iloc[-1])
    return value if value > 0 and not math.isnan(value) else None


BUILTINS: dict[str, type[Strategy]] = {
    "ema_cross": EmaCross,
    "macd": Macd,
    "vwap_reversion": VwapReversion,
    "volume_breakout": VolumeBreakout,
}
