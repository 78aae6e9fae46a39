"""A strategy is the user's code: one that raises or returns something unusable is disabled with an
alert, and the other strategies go on; a usable signal is sized on the stop its bracket carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tui_trader.config.sections import SizingSettings
from tui_trader.domain import AlertLevel, Bar, Instrument, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.sizing import entry_probe
from tui_trader.sim import SimGateway
from tui_trader.strategies.base import Signal

from . import plugin_strategies
from .helpers import eventually, limits_for_tests, make_config, make_engine, running, strategy

PLUGINS = "engine.plugin_strategies"


def _bar(k: int = 0, close: float = 100.0, symbol: str = "AAPL") -> Bar:
    """The ``k``-th 5-second bar of a run newer than anything the warm-up fetched."""
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    at -= timedelta(seconds=at.second % 5)
    at += timedelta(seconds=5 * k)
    return Bar(symbol, at, close, close + 0.1, close - 0.1, close, 100.0, close, 1)


async def test_strategy_when_it_raises_then_disabled_with_an_alert_and_the_others_still_run(
        sim: SimGateway, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"{PLUGINS}:Raising"), strategy(f"{PLUGINS}:Counting")))
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        before = plugin_strategies.Counting.calls
        eng.on_bar(_bar())

        assert eng.strategies["Raising"].disabled_reason == "it raised ZeroDivisionError('plugin bug')"
        assert plugin_strategies.Counting.calls == before + 1
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "strategy_disabled"] == [
            "strategy Raising disabled: it raised ZeroDivisionError('plugin bug')"]


@pytest.mark.parametrize(("make", "said"), [
    ("str side", "returned a Signal whose side 'BUY' is not a Side"),
    ("dict", "returned dict {'side': 'BUY'}, not a Signal"),
    ("inf stop", "returned a Signal whose stop_distance inf is not a positive finite price distance"),
    ("exit as text", "returned a Signal whose exit 'False' is not True or False"),  # truthy: it closed a long
])
async def test_strategy_when_it_returns_something_unusable_then_disabled_saying_what_and_no_order(
        sim: SimGateway, tmp_path: Path, make: str, said: str) -> None:
    # It raised out of the bar handler: the strategy stayed enabled and failed again on every bar, and
    # the strategies after it on that bar never ran.
    sizing = SizingSettings(method="fixed_quantity", stop_method="atr")
    config = make_config(tmp_path, sizing=sizing, strategies=(strategy(f"{PLUGINS}:Returning", make=make),
                                                              strategy(f"{PLUGINS}:Counting")))
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        before = plugin_strategies.Counting.calls
        eng.on_bar(_bar())

        assert eng.strategies["Returning"].disabled_reason == said
        assert plugin_strategies.Counting.calls == before + 1
        assert not eng.orders.orders


async def test_risk_per_trade_when_the_stop_is_a_fixed_percent_then_sized_on_that_stop_not_the_atr(
        sim: SimGateway, tmp_path: Path) -> None:
    # Sized on atr_mult x the signal's ATR (0.25) while the bracket's stop sat 2% away: 100 at risk
    # became a stop-out of about 800.
    sizing = SizingSettings(method="risk_per_trade", risk_money=100, stop_method="fixed_pct", stop_pct=2.0)
    config = make_config(tmp_path, sizing=sizing, strategies=(strategy(f"{PLUGINS}:Returning", make="buy 0.25"),))
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        eng.on_bar(_bar())

        (entry,) = [o for o in eng.orders.orders.values() if o.parent_ref is None]
        assert entry.ticket.bracket is not None
        assert entry.ticket.bracket.stop_price is not None
        loss_at_stop = entry.ticket.quantity * (entry.ticket.signal_price - entry.ticket.bracket.stop_price)
        assert 90 <= loss_at_stop <= 105


def test_entry_when_its_atr_stop_is_wider_than_the_price_then_none_not_a_negative_stop() -> None:
    sizing = SizingSettings(method="fixed_quantity", stop_method="atr", atr_mult=3.0, take_profit_r=2.0)
    assert entry_probe("X", Signal(Side.BUY, "b", stop_distance=4.0), 10.0, sizing, Instrument("X"), "t") is None
    assert entry_probe("X", Signal(Side.SELL, "s", stop_distance=2.0), 10.0, sizing, Instrument("X"), "t") is None
    assert entry_probe("X", Signal(Side.BUY, "b", stop_distance=1.0), 10.0, sizing, Instrument("X"), "t") is not None


async def test_start_when_a_plugin_does_not_parse_or_its_constructor_raises_then_alerted_and_the_others_run(
        sim: SimGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A SyntaxError (or any error) importing the module, or a constructor raising anything but a
    # TypeError or ValueError, came out of Engine.start: no engine, no strategies, no console.
    (tmp_path / "zz_unparsable.py").write_text("def on_bar(:\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = make_config(tmp_path, strategies=(strategy("zz_unparsable:Mine"),
                                               strategy(f"{PLUGINS}:NeedsAKey"),
                                               strategy(f"{PLUGINS}:Counting")))
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        before = plugin_strategies.Counting.calls
        eng.on_bar(_bar())

        assert list(eng.strategies) == ["Counting"]
        assert plugin_strategies.Counting.calls == before + 1
        said = [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "strategy_not_loaded"]
        assert said[0].startswith("strategy zz_unparsable:Mine not loaded: zz_unparsable:Mine: importing "
                                  "zz_unparsable raised SyntaxError: invalid syntax")
        assert said[1:] == [f"strategy {PLUGINS}:NeedsAKey not loaded: {PLUGINS}:NeedsAKey: creating it raised "
                            "KeyError: 'BROKER_TOKEN'"]


async def test_strategy_when_it_changes_its_bars_then_the_next_strategy_on_them_sees_the_bars_as_they_are(
        sim: SimGateway, tmp_path: Path) -> None:
    # Every strategy on a series was handed the same cached DataFrame: one that smoothed its closes in
    # place changed the prices the next one traded on.
    config = make_config(tmp_path, strategies=(strategy(f"{PLUGINS}:Smoothing"), strategy(f"{PLUGINS}:NewestClose")))
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        plugin_strategies.NewestClose.seen.clear()
        bar = _bar()
        eng.on_bar(bar)

        assert plugin_strategies.NewestClose.seen == [(bar.close, len(eng.series[("AAPL", 5)].bars))]


async def test_warm_up_when_no_history_came_then_no_signal_before_the_strategys_warmup_bars(
        sim: SimGateway, tmp_path: Path) -> None:
    # Strategies ran from the first live bar on: with the history paced away, EMA(2)/EMA(5) entered on
    # 7 bars although it declares 10 (warmup_bars) needed, and a plugin reading bars.iloc[-warmup_bars]
    # raised and was disabled.
    sim.control.set_pacing(0, per_seconds=3600)  # every historical request is paced (162)
    ema = strategy("ema_cross", fast=2, slow=5)
    engine = make_engine(sim, make_config(tmp_path, strategies=(ema,), warmup_bars=1))
    engine.broker.pacing_backoff = (0.01, 0.01, 0)  # type: ignore[attr-defined]
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        await eventually(lambda: "AAPL" in engine.market.quotes)
        assert engine.strategies["ema_cross"].strategy.warmup_bars == 10
        series = engine.series[("AAPL", 5)]
        assert not series.bars  # no history
        said = [e.alert.text for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "warmup_short"]
        assert said == ["AAPL 5s bars: 0 of history, its strategies need 10: they wait for 10 live bars before they "
                        "trade"]

        for k in range(9):
            engine.on_bar(_bar(k, 100.0 + k))
        assert (len(series.bars), engine.orders.orders) == (9, {})

        engine.on_bar(_bar(9, 109.0))
        (entry,) = [o for o in engine.orders.orders.values() if o.parent_ref is None]
        assert (entry.ticket.side, entry.ticket.strategy) == (Side.BUY, "ema_cross")
    finally:
        await engine.stop()


async def test_warm_up_when_one_symbol_is_unknown_then_only_it_is_said_and_the_known_one_is_traded(
        sim: SimGateway, tmp_path: Path) -> None:
    # After "unknown symbol ZZZZ: not traded" the warm-up asked for ZZZZ's history and said its strategies "wait
    # for 10 live bars before they trade": a symbol that is not traded was said to be waiting to trade.
    sim.control.set_pacing(0, per_seconds=3600)  # no history: a short warm-up is said for every series warmed
    ema = strategy("ema_cross", symbols=("ZZZZ", "AAPL"), fast=2, slow=5)
    engine = make_engine(sim, make_config(tmp_path, strategies=(ema,), symbols=(), warmup_bars=1))
    engine.broker.pacing_backoff = (0.01, 0.01, 0)  # type: ignore[attr-defined]
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        said = [(e.alert.level, e.alert.kind, e.alert.text) for e in events.drain() if isinstance(e, AlertRaised)
                and ("ZZZZ" in e.alert.text or e.alert.kind in ("warmup_short", "nothing_to_trade"))]
        assert said == [
            (AlertLevel.ERROR, "unknown_symbol", "unknown symbol ZZZZ: the broker has no such stock (SMART, USD); "
             "not traded"),
            (AlertLevel.WARNING, "warmup_short", "AAPL 5s bars: 0 of history, its strategies need 10: they wait for "
             "10 live bars before they trade")]
        assert engine.nothing_to_trade == ""  # AAPL is traded
    finally:
        await engine.stop()


async def test_entry_when_an_order_size_limit_caps_it_then_the_order_says_what_it_was_sized_and_what_cut_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # Found by QA: with max_order_quantity = 3 every entry went out as 3 (AAPL 3 for 25) and the trace said only
    # "SELL 3 AAPL MKT DAY by ema_cross".
    config = _always_buying(tmp_path, SIZED_25, max_order_quantity=3)
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        eng.on_bar(_bar())

        (entry,) = [o for o in eng.orders.orders.values() if o.parent_ref is None]
        assert entry.ticket.quantity == 3
        assert entry.ticket.reason == "always; sized 25, capped to 3 by order_quantity"


async def test_entry_when_it_sizes_to_nothing_then_an_info_alert_once_until_one_is_sized(
        sim: SimGateway, tmp_path: Path) -> None:
    # A signal that sized to 0 was logged at INFO and vanished: the trader saw a strategy that never traded.
    config = _always_buying(tmp_path, SIZED_25, max_order_notional=10)
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        eng.on_bar(_bar())
        eng.on_bar(_bar(1))

        assert not eng.orders.orders
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "not_sized"]
        assert [(a.level, a.text) for a in said] == [
            (AlertLevel.INFO, "Returning's BUY AAPL signal opens nothing: sized to 0 (no headroom left under "
                              "order_notional)")]


async def test_entry_when_risk_per_trade_rounds_to_nothing_on_every_bar_then_said_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # The reason's words hold each bar's figures ("1 at risk over 3.97 ..."): de-duplicated on them, it was said on
    # every signal.
    config = _always_buying(tmp_path, SizingSettings(method="risk_per_trade", risk_money=1, stop_method="fixed_pct",
                                                     stop_pct=2.0))
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        for k, price in enumerate((180.0, 190.0, 200.0)):
            sim.control.set_price("AAPL", price)
            await eventually(lambda p=price: eng.market.mark("AAPL") == pytest.approx(p, abs=1))  # type: ignore[misc]
            eng.on_bar(_bar(k))

        assert not eng.orders.orders
        said = [e.alert.text for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "not_sized"]
        assert len(said) == 1, said


SIZED_25 = SizingSettings(method="fixed_quantity", quantity=25, stop_method="fixed_pct", stop_pct=2.0)


def _always_buying(tmp_path: Path, sizing: SizingSettings, **limits: float) -> EngineConfig:
    """An engine whose one strategy signals BUY on every bar, sized by ``sizing`` under the test limits changed by
    ``limits``."""
    return make_config(tmp_path, sizing=sizing, limits=limits_for_tests(**limits),
                       strategies=(strategy(f"{PLUGINS}:Returning", make="buy 0.25"),))
