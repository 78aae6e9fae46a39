"""Pacing (162) backs off and retries; no permission (354) alerts and can fall back to delayed data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_trader.broker.ib.adapter import backoff_delays
from tui_trader.engine.bus import Subscription
from tui_trader.sim import SimGateway

from .helpers import alerts_said, eventually, make_config, make_engine, strategy


class AlertLog:
    """Alert kinds seen on a subscription, accumulated across drains."""

    def __init__(self, events: Subscription) -> None:
        self.events = events
        self.kinds: list[str] = []

    def __contains__(self, kind: str) -> bool:
        self.kinds.extend(a.kind for a in alerts_said(self.events))
        return kind in self.kinds

    def count(self, kind: str) -> int:
        """How often ``kind`` was raised so far."""
        _ = kind in self
        return self.kinds.count(kind)


def test_backoff_delays_double_and_stay_bounded() -> None:
    assert backoff_delays(1.0, 5.0, 5) == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_historical_pacing_162_then_backs_off_and_warms_up_after_it_lifts(
        sim: SimGateway, tmp_path: Path) -> None:
    sim.control.set_pacing(1, per_seconds=3600)  # the second historical request is paced
    engine = make_engine(sim, make_config(tmp_path, strategies=(strategy("ema_cross", ("AAPL", "MSFT")),)))
    engine.broker.pacing_backoff = (0.05, 0.2, 30)  # type: ignore[attr-defined]
    alerts = AlertLog(engine.subscribe("test", lossless=True))
    starting = asyncio.get_running_loop().create_task(engine.start())

    await eventually(lambda: "pacing" in alerts, what="pacing alert")
    assert not starting.done()  # backing off, not given up
    sim.control.set_pacing(None)
    await starting

    assert all(len(series.bars) > 0 for series in engine.series.values())
    assert alerts.count("pacing") == 1  # one alert a minute, not one per retry
    await engine.stop()


async def test_market_data_354_with_delayed_fallback_then_resubscribed_and_quotes_flagged_delayed(
        sim: SimGateway, tmp_path: Path) -> None:
    sim.control.deny_market_data("MSFT")
    engine = make_engine(sim, make_config(tmp_path, delayed_fallback=True))
    alerts = AlertLog(engine.subscribe("test", lossless=True))
    await engine.start()

    await eventually(lambda: "MSFT" in engine.snapshot().quotes, what="delayed MSFT quotes")
    assert "md_permission" in alerts
    assert "md_delayed" in alerts
    assert engine.snapshot().quotes["MSFT"].delayed
    assert not engine.snapshot().quotes["AAPL"].delayed
    await engine.stop()


async def test_market_data_354_with_delayed_fallback_then_delayed_quotes_keep_arriving(
        sim: SimGateway, tmp_path: Path) -> None:
    sim.control.deny_market_data("MSFT")
    engine = make_engine(sim, make_config(tmp_path, delayed_fallback=True))
    await engine.start()
    try:
        await eventually(lambda: "MSFT" in engine.snapshot().quotes, what="delayed MSFT quotes")
        sim.control.set_price("MSFT", 123.45)
        await eventually(lambda: engine.snapshot().quotes["MSFT"].last == 123.45,
                         what="quotes keep arriving")
        assert engine.snapshot().quotes["MSFT"].delayed
    finally:
        await engine.stop()


async def test_market_data_354_without_fallback_then_alert_and_no_quotes(sim: SimGateway, tmp_path: Path) -> None:
    sim.control.deny_market_data("MSFT")
    engine = make_engine(sim, make_config(tmp_path))
    alerts = AlertLog(engine.subscribe("test", lossless=True))
    await engine.start()

    await eventually(lambda: "md_permission" in alerts, what="permission alert")
    await eventually(lambda: "AAPL" in engine.market.quotes)
    assert "MSFT" not in engine.market.quotes
    assert "md_delayed" not in alerts
    await engine.stop()
