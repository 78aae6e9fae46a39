"""Pacing (162) backs off and retries; a 162 that refuses (no permission, no data) is said once and not retried;
no permission (354) alerts and can fall back to delayed data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_trader.broker.ib.adapter import backoff_delays
from tui_trader.domain.enums import ConnectionState
from tui_trader.domain.events import AlertRaised, ConnectionChanged
from tui_trader.engine.bus import Subscription
from tui_trader.sim import SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import alerts_said, eventually, make_config, make_engine, running, strategy


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


def history_asked(sim: SimGateway, symbol: str) -> int:
    """How many historical data requests for ``symbol`` the simulator has received (from its request log)."""
    return sum(1 for _, fields in sim.received_frames if fields[0] == str(int(Out.REQ_HISTORICAL_DATA))
               and symbol in fields)


def warming() -> bool:
    """Whether a reconnect's warm-up is under way (the start's is awaited by the start)."""
    return any(t.get_name() == "warm-up" and not t.done() for t in asyncio.all_tasks())


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


async def test_historical_162_no_permission_then_said_once_naming_symbol_and_strategies_and_never_paced(
        sim: SimGateway, tmp_path: Path) -> None:
    sim.control.deny_market_data("MSFT")
    config = make_config(tmp_path, delayed_fallback=True, strategies=(strategy("ema_cross", ("AAPL", "MSFT")),))
    engine = make_engine(sim, config)
    engine.broker.pacing_backoff = (0.05, 0.05, 20)  # type: ignore[attr-defined]
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        said = alerts_said(events)
        refused = [a for a in said if a.kind == "history_refused"]
        assert [a.text for a in refused] == [
            "history of MSFT refused by the broker (162: No market data permissions for NASDAQ STK): ema_cross "
            "cannot warm up on MSFT; its live bars are refused too: they cannot trade it"]
        assert not [a for a in said if a.kind == "pacing"]
        bars_denied = [a.text for a in said if a.kind == "md_permission" and "MSFT bars" in a.text]
        assert len(bars_denied) == 1
        assert bars_denied[0].endswith("ema_cross get no live bars of MSFT (IB has no delayed ones): they cannot "
                                       "trade it")
        assert history_asked(sim, "MSFT") == 1  # a refusal is not retried
        assert engine.series[("AAPL", 5)].bars  # the other symbol warmed up

        before = engine.reconnects
        sim.control.connectivity_restored(data_lost=True)
        await eventually(lambda: engine.reconnects > before and history_asked(sim, "MSFT") == 2
                         and not warming(), what="the reconnect's warm-up asked once")
        assert not [a for a in alerts_said(events) if a.kind in ("history_refused", "pacing")]  # said once
        assert history_asked(sim, "MSFT") == 2
    finally:
        await engine.stop()


async def test_historical_pacing_when_reconnected_mid_backoff_then_one_retry_chain_replaces_the_other(
        sim: SimGateway, tmp_path: Path) -> None:
    sim.control.set_pacing(0, per_seconds=3600)  # every historical request paced
    engine = make_engine(sim, make_config(tmp_path, strategies=(strategy("ema_cross", ("MSFT",)),)))
    engine.broker.pacing_backoff = (0.4, 0.4, 100)  # type: ignore[attr-defined]
    starting = asyncio.get_running_loop().create_task(engine.start())
    try:
        await eventually(lambda: history_asked(sim, "MSFT") >= 2, what="the start's warm-up retrying")
        sim.control.connectivity_restored(data_lost=True)
        await eventually(lambda: engine.reconnects == 1, what="the reconnect")
        asked = history_asked(sim, "MSFT")
        await eventually(lambda: history_asked(sim, "MSFT") > asked, what="the reconnect's warm-up asking")

        sim.control.set_pacing(None)
        lifted = history_asked(sim, "MSFT")
        await eventually(lambda: starting.done() and not warming(), what="every warm-up done")

        assert history_asked(sim, "MSFT") - lifted == 1  # one chain asked again, not one per connection
        assert engine.series[("MSFT", 5)].bars
    finally:
        await starting
        await engine.stop()


async def test_history_and_secdef_farms_broken_then_named_for_what_they_serve_and_quotes_not_called_degraded(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        events.drain()
        sim.control.send_error(2105)
        sim.control.send_error(2157)
        await eventually(lambda: engine.connection.farms.get("secdefnj") == "broken", what="both farms broken")
        seen = events.drain()
        assert [e.alert.text for e in seen if isinstance(e, AlertRaised)] == [
            "historical data farm broken (2105): history (the strategies' warm-up) may not come; quotes and live "
            "bars are another farm's: HMDS data farm connection is broken:ushmds",
            "security definition farm broken (2157): contract details (a symbol added, the trading hours) may not "
            "come; quotes and live bars are another farm's: Sec-def data farm connection is broken:secdefnj"]
        assert not [e for e in seen if isinstance(e, ConnectionChanged)]
        assert engine.connection.state is ConnectionState.CONNECTED
        assert not engine.connection.market_data_degraded

        sim.control.send_error(2106)
        sim.control.send_error(2158)
        await eventually(lambda: engine.connection.farms.get("secdefnj") == "ok", what="both farms back")
        assert [a.text for a in alerts_said(events, kind="farm_ok")] == [
            "historical data farm back (2106): HMDS data farm connection is OK:ushmds",
            "security definition farm back (2158): Sec-def data farm connection is OK:secdefnj"]
