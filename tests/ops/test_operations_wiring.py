"""The engine the CLI builds runs the health monitor and the notifier beside it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui_trader.config import Settings, load_settings
from tui_trader.domain import Alert, AlertLevel
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.sim import SimGateway

from .conftest import eventually
from .servers import HttpServer, closed_port


@pytest.fixture
async def sim_engine(isolated: Path, http: HttpServer) -> AsyncIterator[Engine]:
    settings = load_settings(None, {
        "state_dir": str(isolated / "state"), "confirm": False, "strategies": [],
        "sim": {"port": 0},
        "health": {"sample_interval_s": 0.2},
        "notifications": {"batch_window_s": 0, "webhook": {"enabled": True, "url": http.url + "/hook",
                                                            "levels": ["WARNING", "ERROR", "CRITICAL"]}},
    })
    engine = create_engine(settings)
    await engine.start()
    yield engine
    await engine.stop()


async def test_sim_engine_when_running_then_snapshot_carries_health_and_broker_round_trip(sim_engine: Engine) -> None:
    await eventually(lambda: sim_engine.snapshot().health.cpu_pct is not None, what="a health sample")
    await eventually(lambda: sim_engine.snapshot().connection.round_trip_ms is not None, what="a broker round trip")
    health = sim_engine.snapshot().health
    assert health.process_rss_mb is not None
    assert health.process_rss_mb > 0
    assert health.disk_pct is not None


async def test_sim_engine_when_alert_raised_then_webhook_receives_it(sim_engine: Engine, http: HttpServer) -> None:
    sim_engine.alert(AlertLevel.ERROR, "test", "journal disk nearly full", kind="system")
    await eventually(lambda: any("journal disk nearly full" in r.body.decode() for r in http.requests),
                     what="the alert at the webhook")
    body = json.loads(next(r.body for r in http.requests if b"journal disk" in r.body))
    assert "journal disk nearly full" in json.dumps(body)


async def test_sim_engine_when_a_channel_gives_up_on_a_message_then_one_alert_and_one_when_it_delivers_again(
        isolated: Path, http: HttpServer) -> None:
    # A channel that failed showed only as FAIL in the console's channel strip and in the log.
    http.plan = [500, 500]  # the first message and the one after it fail; then the server answers 200
    settings = load_settings(None, {
        "state_dir": str(isolated / "state"), "confirm": False, "strategies": [], "sim": {"port": 0},
        "notifications": {"batch_window_s": 0, "retries": 0,
                          "webhook": {"enabled": True, "url": http.url + "/hook", "levels": ["ERROR"]}},
    })
    engine = create_engine(settings)
    events, seen = engine.subscribe("test", lossless=True), []

    def alerts() -> list[Alert]:
        seen.extend(e.alert for e in events.drain() if isinstance(e, AlertRaised))
        return seen

    await engine.start()
    try:
        engine.alert(AlertLevel.ERROR, "test", "first", kind="system")
        await eventually(lambda: len(http.requests) == 1, what="the first message refused")
        engine.alert(AlertLevel.ERROR, "test", "second", kind="system")
        await eventually(lambda: len(http.requests) == 2, what="the second message refused")
        engine.alert(AlertLevel.ERROR, "test", "third", kind="system")
        await eventually(lambda: any(b"third" in r.body for r in http.requests), what="the third delivered")
        await eventually(lambda: any(a.kind == "notification_recovered" for a in alerts()), what="recovered")
    finally:
        await engine.stop()
    said = [(a.level, a.kind) for a in alerts() if a.source == "notifications"]
    assert said == [(AlertLevel.WARNING, "notification_failed"), (AlertLevel.INFO, "notification_recovered")]
    failed = next(a for a in alerts() if a.kind == "notification_failed")
    assert failed.text.startswith("webhook: a message was not delivered (")


def notifying_settings(tmp_path: Path, http: HttpServer, port: int, levels: list[str]) -> Settings:
    """A paper engine at the gateway on ``port``, notifying every notice at ``levels`` to the webhook at once."""
    return load_settings(None, {
        "mode": "paper", "state_dir": str(tmp_path / "state"), "strategies": [],
        "broker": {"port": port, "connect_timeout": 2.0},
        "notifications": {"batch_window_s": 0, "webhook": {"enabled": True, "url": http.url + "/hook",
                                                            "levels": levels}},
    })


def notified(http: HttpServer) -> list[str]:
    """Every notice the webhook received, one line each."""
    return [line for r in http.requests for line in r.json()["text"].splitlines()]


async def test_engine_when_its_start_cannot_connect_then_one_notice_says_why(
        isolated: Path, http: HttpServer) -> None:
    # Two went out: "broker: could not connect to H:P: ..." and "broker disconnected: could not connect to H:P: ..."
    # (the same words): the operator's phone buzzed twice for one thing, and it had never been connected.
    port = closed_port()
    engine = create_engine(notifying_settings(isolated, http, port, ["WARNING", "ERROR", "CRITICAL"]))
    await engine.start()
    try:
        await eventually(lambda: any("could not connect" in line for line in notified(http)), what="the notice")
    finally:
        await engine.stop()  # the notifier delivers what is queued before it stops
    about = [line for line in notified(http) if f"127.0.0.1:{port}" in line]
    assert len(about) == 1, about
    assert f"[ERROR] broker: could not connect to 127.0.0.1:{port}: connection refused" in about[0]


async def test_engine_when_its_link_is_lost_after_connecting_then_one_error_notice_says_broker_disconnected(
        isolated: Path, http: HttpServer) -> None:
    # Two went out: "[WARNING] broker: disconnected from the broker; reconnecting" and "[ERROR] broker disconnected:
    # connection lost", for the one lost link.
    async with SimGateway(port=0, seed=7, always_open=True) as sim:
        engine = create_engine(notifying_settings(isolated, http, sim.port, ["WARNING", "ERROR", "CRITICAL"]))
        await engine.start()
        try:
            await eventually(lambda: engine.is_connected, what="connected")
            sim.control.disconnect()
            await eventually(lambda: any("broker disconnected" in line for line in notified(http)),
                             what="the lost link notified")
        finally:
            await engine.stop()
    (line,) = [line for line in notified(http) if "broker" in line and "disconnect" in line]
    assert line.endswith("[ERROR] broker disconnected: connection lost; new entries blocked until reconciled")
