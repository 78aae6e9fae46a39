"""Health: pure thresholds with hysteresis, and the monitor sampling the real machine."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from tui_trader.config import Settings
from tui_trader.config.sections import HealthSettings
from tui_trader.domain import ConnectionState
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.engine.operations import attach_health
from tui_trader.engine.snapshots import HealthInfo
from tui_trader.ops.health import HealthMonitor
from tui_trader.ops.thresholds import LevelTracker, Threshold, classify
from tui_trader.sim import ManualClock, SimGateway

from .conftest import eventually
from .engines import make_engine

OK, WARN, CRIT = AlertLevel.INFO, AlertLevel.WARNING, AlertLevel.CRITICAL
CPU = Threshold("cpu", 80, 95, "%")
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "previous", "expected"), [
    (50, OK, OK), (80, OK, WARN), (95, OK, CRIT), (79, WARN, WARN), (75, WARN, OK),
    (94, CRIT, CRIT), (90, CRIT, WARN), (10, CRIT, OK), (96, WARN, CRIT),
])
def test_classify_with_five_percent_band(value: float, previous: AlertLevel, expected: AlertLevel) -> None:
    assert classify(value, CPU, previous, 5.0) is expected


def test_value_hovering_at_the_limit_then_one_alert_not_a_storm() -> None:
    tracker = LevelTracker([CPU], 5.0)
    changes = [tracker.update("cpu", v) for v in (79.5, 80.2, 79.1, 80.0, 79.9, 80.4, 78.0, 80.1)]
    raised = [c for c in changes if c is not None]
    assert [(c.previous, c.level) for c in raised] == [(OK, WARN)]


def test_value_falls_clearly_below_then_back_to_normal_reported() -> None:
    tracker = LevelTracker([CPU], 5.0)
    tracker.update("cpu", 97)
    change = tracker.update("cpu", 40)
    assert change is not None
    assert (change.previous, change.level) == (CRIT, OK)
    assert "back to normal" in change.text


def test_disabled_level_then_never_raised() -> None:
    tracker = LevelTracker([Threshold("rss", None, None)], 5.0)
    assert tracker.update("rss", 1e9) is None


def test_value_swinging_across_the_limit_when_sustain_is_set_then_no_alert_but_the_level_shows() -> None:
    # Seen on a loaded machine: CPU swinging 66 % / 92 % every other second alerted on every swing.
    tracker = LevelTracker([CPU], 5.0, sustain=5)
    changes = [tracker.update("cpu", v) for v in (92, 66, 93, 70, 96, 60, 91, 66, 92, 67)]
    assert [c for c in changes if c is not None] == []
    assert tracker.level("cpu") is OK
    tracker.update("cpu", 92)
    assert tracker.level("cpu") is WARN  # the pane colours at once


def test_level_held_for_the_sustain_then_one_alert_with_the_level_held_throughout() -> None:
    tracker = LevelTracker([CPU], 5.0, sustain=3)
    rising = [tracker.update("cpu", v) for v in (85, 97, 86)]  # above the warning throughout, not the critical
    assert [(c.previous, c.level) for c in rising if c is not None] == [(OK, WARN)]
    critical = [tracker.update("cpu", v) for v in (97, 98, 96)]
    assert [(c.previous, c.level) for c in critical if c is not None] == [(WARN, CRIT)]
    falling = [tracker.update("cpu", v) for v in (40, 41, 42)]
    assert [(c.previous, c.level) for c in falling if c is not None] == [(CRIT, OK)]
    assert "back to normal" in falling[-1].text  # type: ignore[union-attr]


def test_rise_held_for_the_sustain_ending_in_the_band_then_the_alert_names_the_highest_value() -> None:
    # "cpu 76.1% reached the warning limit 80%": the sample that completed the sustain sat below the limit (within
    # the hysteresis band), and the alert quoted only it.
    tracker = LevelTracker([CPU], 5.0, sustain=3)
    changes = [tracker.update("cpu", v) for v in (84.0, 92.4, 76.1)]
    assert [c.text for c in changes if c is not None] == [
        "cpu reached the warning limit 80% for 3 samples in a row: 92.4% at the highest, 76.1% now"]
    once = LevelTracker([CPU], 5.0, sustain=1).update("cpu", 80.2)
    assert once is not None
    assert once.text == "cpu 80.2% reached the warning limit 80%"


def test_fall_from_critical_held_at_the_warning_level_then_said_as_back_under_the_critical_limit() -> None:
    # "cpu 59.8% reached the warning limit 80%": a fall from critical, worded as a rise to a limit it is under.
    tracker = LevelTracker([CPU], 5.0, sustain=3)
    for v in (97, 98, 96):
        tracker.update("cpu", v)
    falling = [tracker.update("cpu", v) for v in (88.0, 70.3, 59.8)]  # the first held the warning level
    assert [(c.previous, c.level, c.text) for c in falling if c is not None] == [
        (CRIT, WARN, "cpu back under the critical limit 95%: 59.8% now")]
    once = LevelTracker([CPU], 5.0)
    once.update("cpu", 97)
    change = once.update("cpu", 85.5)
    assert change is not None
    assert change.text == "cpu back under the critical limit 95%: 85.5% now"


def monitor(tmp_path: Path, alerts: list[Alert], **kw: object) -> HealthMonitor:
    settings = HealthSettings(sample_interval_s=0.05, market_data_stale_s=15, journal_queue_warn=100,
                              journal_queue_crit=10_000, alert_after_s=0)
    return HealthMonitor(settings, tmp_path / "journal.sqlite", alerts.append, **kw)  # type: ignore[arg-type]


async def test_sample_reads_cpu_memory_disk_and_process(tmp_path: Path) -> None:
    mon = monitor(tmp_path, [])
    first = await mon.sample()
    assert (first.cpu_pct, first.process_cpu_pct) == (None, None)  # psutil's first read covers no time
    sample = await mon.sample()
    assert sample.mem_pct is not None
    assert 0 < sample.mem_pct <= 100
    assert sample.disk_pct is not None
    assert 0 <= sample.disk_pct <= 100
    assert sample.process_rss_mb is not None
    assert sample.process_rss_mb > 1
    assert sample.cpu_pct is not None


async def test_cpu_busy_between_two_samples_while_the_thread_pool_is_busy_then_the_load_is_measured(
        tmp_path: Path) -> None:
    # psutil keeps the system CPU's previous read per thread: a sample taken on a new pool thread (the pool
    # grows while another worker is busy, e.g. an email being sent) measured no time at all and said ~0 %.
    mon = monitor(tmp_path, [])
    await mon.sample()
    deadline = time.perf_counter() + 0.5
    while time.perf_counter() < deadline:  # one core busy for the whole window
        pass
    working, release = threading.Event(), threading.Event()

    def send_email() -> None:
        working.set()
        release.wait()

    busy = asyncio.get_running_loop().run_in_executor(None, send_email)
    try:
        await eventually(working.is_set, what="the pool's worker busy")
        sample = await mon.sample()
    finally:
        release.set()
        await busy
    assert sample.cpu_pct is not None
    assert sample.cpu_pct >= 100 / (psutil.cpu_count() or 1) / 4


async def test_journal_backlog_and_stale_symbol_then_alerts_once_and_info_filled(tmp_path: Path) -> None:
    alerts: list[Alert] = []
    backlog = [5000]
    quotes = {"AAPL": NOW - timedelta(seconds=60), "MSFT": NOW - timedelta(seconds=1)}
    mon = monitor(tmp_path, alerts, journal_queue=lambda: backlog[0], quote_times=lambda: quotes, clock=lambda: NOW)
    await mon.sample()
    await mon.sample()
    watched = {"health_journal_queue", "health_market_data_age[AAPL]", "health_market_data_age[MSFT]"}
    kinds = sorted(a.kind for a in alerts if a.kind in watched)  # the host's own CPU/disk may alert too
    assert kinds == ["health_journal_queue", "health_market_data_age[AAPL]"]
    assert mon.latest.levels["journal_queue"] is WARN
    assert mon.latest.md_age_s["MSFT"] == pytest.approx(1.0)
    assert mon.info.journal_queue == 5000
    backlog[0] = 0
    await mon.sample()
    cleared = [a for a in alerts if a.kind == "health_journal_queue"][-1]
    assert cleared.level is OK
    assert "back to normal" in cleared.text


async def test_run_measures_loop_lag_and_broker_round_trip(tmp_path: Path) -> None:
    calls: list[int] = []

    async def round_trip() -> None:
        calls.append(1)
        await asyncio.sleep(0)

    mon = monitor(tmp_path, [], round_trip=round_trip)
    task = asyncio.create_task(mon.run())
    await eventually(lambda: mon.latest.loop_lag_ms is not None and mon.latest.broker_rtt_ms is not None)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert calls
    assert isinstance(mon.latest, HealthInfo)


async def test_broker_round_trip_after_a_disconnect_then_not_shown_as_the_current_one(tmp_path: Path) -> None:
    # The last round trip measured (then none for broker_rtt_interval_s) stayed in the connectivity pane
    # as the link's round trip while it was down.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path, reconnect_initial_s=600)
        settings = Settings(mode="sim", state_dir=tmp_path, health={"broker_rtt_interval_s": 600})
        attach_health(engine, settings)
        await engine.start()
        try:
            await eventually(lambda: engine.snapshot().connection.round_trip_ms is not None, what="a round trip")
            sim.control.drop_sessions()
            await eventually(lambda: engine.connection.state is ConnectionState.DISCONNECTED)
            assert engine.snapshot().connection.round_trip_ms is None
        finally:
            await engine.stop()


def test_loop_stalled_longer_than_alert_after_then_one_critical_alert_although_one_sample_held_it() -> None:
    # The probe reports a stall once, when it ends: a 60 s freeze of the engine was one sample at CRITICAL,
    # never held for alert_after_s samples, so never said.
    alerts: list[Alert] = []
    settings = HealthSettings(alert_after_s=5, sample_interval_s=1)
    mon = HealthMonitor(settings, Path("journal.sqlite"), alerts.append, clock=lambda: NOW)
    for lag_ms in (2, 60_000, 3, 200, 2):
        mon.evaluate(HealthInfo(time=NOW, loop_lag_ms=lag_ms))
    assert [(a.level, a.text) for a in alerts if a.kind == "health_loop_lag"] == [
        (CRIT, "loop_lag 60000.0 ms reached the critical limit 500 ms")]


def test_loop_frozen_past_the_critical_limit_for_less_than_alert_after_then_alerted_at_once() -> None:
    # A 2 s freeze (critical limit 500 ms, alert_after_s 5) was never said: the next samples were normal, so
    # its one critical sample never held for the sustain. For all of it nothing ran: no tick, order or Ctrl+K.
    alerts: list[Alert] = []
    settings = HealthSettings(alert_after_s=5, sample_interval_s=1)
    mon = HealthMonitor(settings, Path("journal.sqlite"), alerts.append, clock=lambda: NOW)
    for lag_ms in (2, 2_000, 3, 2, 900, 2, 2, 2, 2, 2):
        mon.evaluate(HealthInfo(time=NOW, loop_lag_ms=lag_ms))
    assert [(a.level, a.text) for a in alerts if a.kind == "health_loop_lag"] == [
        (CRIT, "loop_lag 2000.0 ms reached the critical limit 500 ms"),  # the second freeze, within the
        (OK, "loop_lag back to normal: 2.0 ms")]                           # sustain, is the same episode
    blips: list[Alert] = []
    mon = HealthMonitor(settings, Path("journal.sqlite"), blips.append, clock=lambda: NOW)
    for lag_ms in (2, 300, 3, 450, 2):  # hiccups at the warning level wait for the sustain, as before
        mon.evaluate(HealthInfo(time=NOW, loop_lag_ms=lag_ms))
    assert [a for a in blips if a.kind == "health_loop_lag"] == []


async def test_broker_stops_answering_then_the_round_trip_shown_grows_with_the_wait(tmp_path: Path) -> None:
    # The last quick answer (a millisecond) stayed the round trip until the probe gave up (2 × the critical
    # limit, 10 s by default): a frozen gateway looked fine for that long.
    answered = 0
    silence = asyncio.Event()

    async def round_trip() -> None:
        nonlocal answered
        if answered:
            await silence.wait()
        answered += 1

    settings = HealthSettings(sample_interval_s=0.05, broker_rtt_interval_s=0.05, broker_rtt_crit_ms=5_000)
    mon = HealthMonitor(settings, tmp_path / "journal.sqlite", [].append, round_trip=round_trip)
    task = asyncio.create_task(mon.run())
    try:
        await eventually(lambda: answered == 1 and mon.latest.broker_rtt_ms is not None, what="one answer")
        await eventually(lambda: (mon.latest.broker_rtt_ms or 0) >= 300, what="the wait shown")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stopped_as_a_round_trip_answers_then_the_monitor_stops(tmp_path: Path) -> None:
    # asyncio.wait_for (3.11) swallows a cancel that meets its awaitable's answer: the probe went on, and the
    # stop waited for it forever (the engine's stop, the console's quit).
    answered = asyncio.Event()
    answer = asyncio.Event()

    async def round_trip() -> None:
        answered.set()
        await asyncio.wait_for(answer.wait(), 60)  # as the broker adapter's current_time() does

    settings = HealthSettings(sample_interval_s=0.05, broker_rtt_interval_s=0.05)
    mon = HealthMonitor(settings, tmp_path / "journal.sqlite", [].append, round_trip=round_trip)
    task = asyncio.create_task(mon.run())
    await eventually(answered.is_set, what="a round trip in flight")
    answer.set()  # answered in the same turn of the loop as the stop
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done, "the monitor did not stop"
