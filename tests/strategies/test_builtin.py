"""Built-in strategies on fixed DataFrames, plugin loading, and the bar aggregation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tui_trader.domain import Bar, Side
from tui_trader.engine.market import BarSeries
from tui_trader.strategies import (
    BUILTINS,
    EmaCross,
    Macd,
    Signal,
    Strategy,
    StrategyLoadError,
    VolumeBreakout,
    VwapReversion,
    resolve,
)
from tui_trader.strategies.base import signal_problem

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def frame(closes: list[float], volumes: list[float] | None = None) -> pd.DataFrame:
    """Bars with the given closes (high/low 0.1 around), 5-second spacing."""
    n = len(closes)
    close = np.array(closes, dtype=float)
    index = pd.DatetimeIndex([T0 + timedelta(seconds=5 * i) for i in range(n)], name="time")
    return pd.DataFrame({"open": close, "high": close + 0.1, "low": close - 0.1, "close": close,
                         "volume": volumes or [100.0] * n, "wap": close, "count": [1] * n}, index=index)


def test_ema_cross_up_then_buy_signal_once() -> None:
    strat = EmaCross("ema", {"fast": 3, "slow": 8, "enter_on_start": False})
    closes = [100.0 - 0.2 * i for i in range(30)] + [95.0 + 1.0 * i for i in range(10)]
    signals = [strat.on_bar("X", frame(closes[:i])) for i in range(10, len(closes) + 1)]
    fired = [s for s in signals if s is not None]
    assert len(fired) == 1
    assert fired[0].side is Side.BUY
    assert fired[0].stop_distance is not None


def test_ema_cross_enter_on_start_signals_the_current_trend_once() -> None:
    strat = EmaCross("ema", {"fast": 3, "slow": 8})
    falling = frame([100.0 - 0.2 * i for i in range(30)])
    first = strat.on_bar("X", falling)
    assert first is not None
    assert first.side is Side.SELL
    assert strat.on_bar("X", falling) is None


def test_macd_cross_down_then_sell_signal() -> None:
    strat = Macd("macd", {"fast": 3, "slow": 6, "signal": 3, "enter_on_start": False})
    closes = [100.0 + 0.3 * i for i in range(30)] + [109.0 - 1.0 * i for i in range(8)]
    fired = [s for i in range(12, len(closes) + 1) if (s := strat.on_bar("X", frame(closes[:i])))]
    assert fired[0].side is Side.SELL


def test_vwap_reversion_buys_a_stretch_below_vwap() -> None:
    strat = VwapReversion("vwap", {"window": 10, "band_pct": 0.5})
    closes = [100.0] * 20 + [99.0]
    signal = strat.on_bar("X", frame(closes))
    assert signal is not None
    assert signal.side is Side.BUY


def test_volume_breakout_needs_both_the_high_and_the_volume() -> None:
    strat = VolumeBreakout("vb", {"lookback": 5, "volume_mult": 2.0})
    closes = [100.0, 100.2, 100.1, 100.3, 100.2, 101.0]
    assert strat.on_bar("X", frame(closes, [100.0] * 6)) is None
    signal = strat.on_bar("X", frame(closes, [100.0] * 5 + [300.0]))
    assert signal is not None
    assert signal.side is Side.BUY


def test_volume_breakout_when_the_bars_volume_is_unknown_then_no_signal() -> None:
    # NaN compared below the threshold is False: a bar without volume passed as heavy volume.
    strat = VolumeBreakout("vb", {"lookback": 5, "volume_mult": 2.0})
    closes = [100.0, 100.2, 100.1, 100.3, 100.2, 103.0]
    assert strat.on_bar("X", frame(closes, [100.0] * 5 + [float("nan")])) is None


def test_resolve_builtins_module_path_and_unknown_names() -> None:
    assert resolve("ema_cross") is BUILTINS["ema_cross"]
    assert resolve("tui_trader.strategies.builtin:Macd") is Macd
    with pytest.raises(StrategyLoadError):
        resolve("no_such_strategy")
    with pytest.raises(StrategyLoadError):
        resolve("tui_trader.strategies.base:crossed")


def test_params_from_config_override_defaults() -> None:
    strat: Strategy = EmaCross("ema", {"fast": 4})
    assert strat.params["fast"] == 4
    assert strat.params["slow"] == 21


def _bar(second: int, price: float, volume: float = 10) -> Bar:
    return Bar("X", T0 + timedelta(seconds=second), price, price + 1, price - 1, price, volume, price, 1)


def test_five_second_bars_aggregate_to_the_strategy_bar_size() -> None:
    series = BarSeries("X", 15)
    done = [series.add(_bar(s, 100 + s)) for s in (0, 5, 10, 15)]
    assert done[:2] == [None, None]
    bar = done[2]
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100, 111, 99, 110, 30)
    assert len(series.frame()) == 1


@pytest.mark.parametrize(("cls", "params", "problem"), [
    (EmaCross, {"fats": 3}, "unknown parameter 'fats' (did you mean fast?)"),
    (EmaCross, {"fast": 21}, "fast (21) must be shorter than slow (21)"),
    (EmaCross, {"fast": 2.5}, "fast = 2.5: must be a whole number"),
    (EmaCross, {"allow_short": 1}, "allow_short = 1: must be true or false"),
    (Macd, {"signal": 0}, "signal = 0: must be at least 1"),
    (VwapReversion, {"band_pct": -0.5}, "band_pct = -0.5: must be a number above 0"),
    (VwapReversion, {"band_pct": float("inf")}, "band_pct = inf: must be a number above 0"),
    (VolumeBreakout, {"lookback": 1}, "lookback = 1: must be at least 2"),
    (VolumeBreakout, {"zzz": 1}, "unknown parameter 'zzz' (known: lookback, volume_mult, allow_short, atr_period)"),
])
def test_params_when_wrong_then_refused_naming_the_problem(cls: type[Strategy], params: dict[str, object],
                                                          problem: str) -> None:
    assert cls.param_problems(params) == [problem]
    with pytest.raises(ValueError, match=re.escape(problem)):
        cls("s", params)


def test_params_when_right_then_none_refused_and_a_plugin_without_defaults_takes_any() -> None:
    assert EmaCross.param_problems({"fast": 5, "slow": 13, "enter_on_start": False}) == []
    assert VwapReversion.param_problems({"band_pct": 1}) == []  # a whole number where a number is asked
    assert Strategy.param_problems({"anything": "goes"}) == []


def test_signal_exit_when_a_numpy_bool_then_usable_and_when_a_series_or_text_then_refused() -> None:
    close = frame([100.0, 99.0])["close"]
    assert signal_problem(Signal(Side.SELL, "below", exit=close.iloc[-1] < close.iloc[0])) == ""
    assert signal_problem(Signal(Side.SELL, "below", exit=close < 100)) == (
        "returned a Signal whose exit a Series is not True or False")
    assert signal_problem(Signal(Side.SELL, "x", exit="no")) == "returned a Signal whose exit 'no' is not True or False"
