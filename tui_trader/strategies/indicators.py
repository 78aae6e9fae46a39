"""Indicators on bar DataFrames (pandas, vectorised; pandas itself is imported when first needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def ema(series: pd.Series, span: int) -> pd.Series:
    """Exponential moving average with ``span`` (adjust=False, like trading platforms)."""
    return series.ewm(span=span, adjust=False).mean()


def macd(close: pd.Series, fast: int, slow: int, signal: int) -> tuple[pd.Series, pd.Series]:
    """MACD line and its signal line."""
    line = ema(close, fast) - ema(close, slow)
    return line, ema(line, signal)


def true_range(bars: pd.DataFrame) -> pd.Series:
    """True range of each bar."""
    import pandas as pd

    prev_close = bars["close"].shift(1)
    ranges = pd.concat([bars["high"] - bars["low"], (bars["high"] - prev_close).abs(),
                        (bars["low"] - prev_close).abs()], axis=1)
    return ranges.max(axis=1)


def atr(bars: pd.DataFrame, period: int = 14) -> pd.Series:
    """Average true range (Wilder smoothing)."""
    return true_range(bars).ewm(alpha=1 / period, adjust=False).mean()


def rolling_vwap(bars: pd.DataFrame, window: int) -> pd.Series:
    """Volume-weighted average price over the last ``window`` bars (typical price)."""
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3
    volume = bars["volume"].clip(lower=0)
    pv = (typical * volume).rolling(window, min_periods=window).sum()
    vol = volume.rolling(window, min_periods=window).sum()
    return (pv / vol.where(vol > 0)).fillna(typical.rolling(window, min_periods=window).mean())
