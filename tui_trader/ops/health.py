"""System health: CPU, memory, the journal's disk, event-loop lag, journal queue, broker round trip
and market-data age, sampled off the hot path, with warning/critical alerts that do not storm.

psutil is read in a worker thread once per ``sample_interval_s``; the loop-lag probe is a cheap
task that measures how late its own sleeps wake up; the broker round trip is a periodic request
the engine provides (a current-time request). Threshold crossings go through
:class:`~tui_trader.ops.thresholds.LevelTracker`, so an alert is raised once per change of level that held
``alert_after_s``. The system CPU holds its own, longer ``cpu_alert_after_s`` (a minute) and has no critical level by
default: other processes share it (a build, a backup swing it every few seconds on a small shared host), and what slows
trading, the engine's own loop lag, is watched with its critical level and its freeze alerted at once.
A symbol's quote age is news only on a live link and an open market: while the link is down the disconnect has
been said, while its market is closed its quotes stand still, and quotes cannot be late before the link is back or
the market opened (:meth:`HealthMonitor.quote_age_news`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psutil

from tui_trader.config.sections import HealthSettings
from tui_trader.domain.alerts import Alert
from tui_trader.domain.market import Instrument, open_for
from tui_trader.engine.snapshots import HealthInfo
from tui_trader.ops.thresholds import OK, LevelChange, LevelTracker, Threshold

log = logging.getLogger(__name__)
LAG_PROBE_S = 0.1


def thresholds_from(settings: HealthSettings) -> list[Threshold]:
    """The watched metrics and their limits; the system CPU holds its level ``cpu_alert_after_s`` before it is news."""
    s = settings
    return [
        Threshold("cpu", s.cpu_warn_pct, s.cpu_crit_pct, "%", samples_in(s.cpu_alert_after_s, s)),
        Threshold("memory", s.mem_warn_pct, s.mem_crit_pct, "%"),
        Threshold("process_rss", s.process_rss_warn_mb, s.process_rss_crit_mb, " MB"),
        Threshold("disk", s.disk_warn_pct, s.disk_crit_pct, "%"),
        Threshold("loop_lag", s.loop_lag_warn_ms, s.loop_lag_crit_ms, " ms"),
        Threshold("journal_queue", s.journal_queue_warn, s.journal_queue_crit),
        Threshold("broker_rtt", s.broker_rtt_warn_ms, s.broker_rtt_crit_ms, " ms"),
    ]


def samples_in(seconds: float, settings: HealthSettings) -> int:
    """How many samples in a row span ``seconds`` (at least one)."""
    return max(1, math.ceil(seconds / settings.sample_interval_s - 1e-9))


def existing_dir(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the volume whose disk usage counts)."""
    current = path if path.is_dir() else path.parent
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


@dataclass(frozen=True, slots=True)
class SystemFigures:
    """What psutil reports in one read."""

    cpu_pct: float
    process_cpu_pct: float
    mem_pct: float
    process_rss_mb: float
    disk_pct: float


def read_system(process: psutil.Process, disk_dir: Path) -> SystemFigures:
    """One psutil read (blocking: run it in a thread)."""
    return SystemFigures(psutil.cpu_percent(interval=None), process.cpu_percent(interval=None),
                         psutil.virtual_memory().percent, process.memory_info().rss / 1e6,
                         psutil.disk_usage(str(disk_dir)).percent)


class HealthMonitor:
    """Samples health periodically, raises alerts on level changes and keeps the latest sample.

    Args:
        settings: Thresholds and the sampling interval.
        disk_path: The journal file (its volume is watched).
        on_alert: Called with every alert (the engine publishes it; it must not block).
        journal_queue: Events waiting to be written to the journal.
        round_trip: One broker round trip (e.g. a current-time request); ``None``: not measured.
        quote_times: Time of the latest quote per symbol.
        link_up: Whether the broker link is up (``None``: taken as always up); see :meth:`quote_age_news`.
        hours: The instruments by symbol, with their trading hours (``None``: not followed, every market taken as
            always open; a symbol without hours too); see :meth:`quote_age_news`.
        clock: Timezone-aware clock.
    """

    def __init__(self, settings: HealthSettings, disk_path: Path, on_alert: Callable[[Alert], None], *,
                 journal_queue: Callable[[], int] | None = None,
                 round_trip: Callable[[], Awaitable[object]] | None = None,
                 quote_times: Callable[[], Mapping[str, datetime]] | None = None,
                 link_up: Callable[[], bool] | None = None,
                 hours: Callable[[], Mapping[str, Instrument]] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.latest = HealthInfo(time=(clock or _utc_now)())
        self._disk_dir = existing_dir(disk_path)
        self._on_alert = on_alert
        self._journal_queue = journal_queue
        self._round_trip = round_trip
        self._quote_times = quote_times
        self._link_up = link_up
        self._hours = hours
        self._link_seen_up: datetime | None = None
        """When a sample first found the link up (``None``: down at the last sample)."""
        self._up_for_s: float | None = None
        """How long the link has been up, as of the last sample (``None``: down)."""
        self._now = clock or _utc_now
        self._tracker = LevelTracker(thresholds_from(settings), settings.hysteresis_pct,
                                     samples_in(settings.alert_after_s, settings))
        self._process = psutil.Process()
        # psutil measures the system's CPU since its previous read *on the same thread*: a shared pool thread
        # picked at random measured since its own last read, or over no time at all when new.
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="health")
        self._cpu_read = False
        self._lag_ms: float | None = None
        self._rtt_ms: float | None = None
        self._rtt_sent: float | None = None
        """Loop time the round trip in flight was sent at (``None``: none in flight)."""

    @property
    def info(self) -> HealthInfo:
        """The latest figures for the engine snapshot."""
        return self.latest

    async def run(self) -> None:
        """Sample until cancelled (the lag and round-trip probes run alongside)."""
        probes = [asyncio.create_task(self._probe_lag(), name="health-lag")]
        if self._round_trip is not None:
            probes.append(asyncio.create_task(self._probe_rtt(), name="health-rtt"))
        try:
            while True:
                await self.sample()
                await asyncio.sleep(self.settings.sample_interval_s)
        finally:
            for task in probes:
                task.cancel()
            await asyncio.gather(*probes, return_exceptions=True)
            self._reader.shutdown(wait=False)

    async def sample(self) -> HealthInfo:
        """Take one sample now, raise the alerts it calls for, and keep it as :attr:`latest`."""
        figures = await asyncio.get_running_loop().run_in_executor(self._reader, read_system, self._process,
                                                                    self._disk_dir)
        now = self._now()
        lag, self._lag_ms = self._lag_ms, None
        # The first CPU read covers no time (psutil says 0.0): unknown, not an idle machine.
        cpu, process_cpu = (figures.cpu_pct, figures.process_cpu_pct) if self._cpu_read else (None, None)
        self._cpu_read = True
        sample = HealthInfo(now, cpu, process_cpu, figures.mem_pct,
                            figures.process_rss_mb, figures.disk_pct, lag,
                            self._journal_queue() if self._journal_queue else 0, self._round_trip_ms(),
                            self._md_ages(now))
        self.latest = self.evaluate(sample)
        return self.latest

    def evaluate(self, sample: HealthInfo) -> HealthInfo:
        """Run ``sample`` through the thresholds: alert on every change of level, return it with levels."""
        values: dict[str, float | None] = {
            "cpu": sample.cpu_pct, "memory": sample.mem_pct, "process_rss": sample.process_rss_mb,
            "disk": sample.disk_pct, "loop_lag": sample.loop_lag_ms, "journal_queue": float(sample.journal_queue),
            "broker_rtt": sample.broker_rtt_ms,
        }
        stale = self.settings.market_data_stale_s
        when = sample.time or self._now()
        self._follow_link(when)
        instruments = self._hours() if self._hours is not None else {}
        for symbol, age in sample.md_age_s.items():
            metric = f"market_data_age[{symbol}]"
            self._tracker.add(Threshold(metric, stale, None, " s"))
            values[metric] = self.quote_age_news(age, alerted=self._tracker.level(metric) is not OK,
                                                 open_for_s=open_for(instruments.get(symbol), when))
        for metric, value in values.items():
            change = self._tracker.update(metric, value, metric == "loop_lag" and self._is_freeze(value))
            if change is not None:
                self._raise(change, when, _own_share(change, sample))
        levels = {m: self._tracker.level(m) for m in values}
        return replace(sample, levels=levels)

    def quote_age_news(self, age_s: float, *, alerted: bool = False,
                       open_for_s: float | None = math.inf) -> float | None:
        """A symbol's quote age ``age_s`` as the alerts see it: ``None`` (not measured) while the link is down or
        the symbol's market is closed (``open_for_s`` ``None``), and from the link's return or the market's open
        (``open_for_s`` ago), the later, counted from then until a quote comes (none can be late before it was asked
        for again, nor before anything traded).

        An outage made a warning and a "back to normal" per symbol, five symbols ten alerts, after the alert that
        said the link was lost; a night made a warning per symbol whose quotes simply stood still. A quote stalled
        on a live link in an open market is still news, a symbol never quoted after the link came back or the
        market opened too: its age counts from then (:meth:`_follow_link`, at each sample). One ``alerted`` as stale
        before is not measured until a quote newer than that comes: the return or the open is no "back to normal".
        """
        if open_for_s is None:
            return None
        up_for_s = math.inf if self._link_up is None else self._up_for_s
        if up_for_s is None:
            return None
        since_s = min(up_for_s, open_for_s)
        if alerted and age_s > since_s:
            return None
        return min(age_s, since_s)

    def _follow_link(self, now: datetime) -> None:
        """Note whether the link is up at this sample, and for how long (from the first sample that found it up)."""
        if self._link_up is None or not self._link_up():
            self._link_seen_up = self._up_for_s = None
            return
        self._link_seen_up = self._link_seen_up or now
        self._up_for_s = max((now - self._link_seen_up).total_seconds(), 0.0)

    def _is_freeze(self, lag_ms: float | None) -> bool:
        """A loop stall that is an alert at once, not after the level has held for ``alert_after_s``.

        One sample holds the longest stall since the last: a stall as long as ``alert_after_s`` has held
        that long. And one at the critical limit is an event of its own, however short: for all of it
        nothing ran (no tick, no order, no Ctrl+K), and the samples after it are normal, so waiting for
        it to hold would never say it. Stalls at the warning level (a slow frame, a collection) still wait.
        """
        if lag_ms is None:
            return False
        return lag_ms >= self.settings.alert_after_s * 1000 or lag_ms >= self.settings.loop_lag_crit_ms

    def _round_trip_ms(self) -> float | None:
        """The last round trip, or the wait for the one in flight when longer: a gateway that stopped
        answering shows its growing silence, not the last quick answer, until the probe gives up."""
        if self._rtt_sent is None:
            return self._rtt_ms
        waiting = (asyncio.get_running_loop().time() - self._rtt_sent) * 1000
        return max(self._rtt_ms or 0.0, waiting)

    def _raise(self, change: LevelChange, when: datetime, note: str = "") -> None:
        self._on_alert(Alert(change.level, "health", change.text + note, when, kind=f"health_{change.metric}"))

    def _md_ages(self, now: datetime) -> dict[str, float]:
        if self._quote_times is None:
            return {}
        return {s: max((now - t).total_seconds(), 0.0) for s, t in self._quote_times().items()}

    async def _probe_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            lag_ms = max(loop.time() - start - LAG_PROBE_S, 0.0) * 1000
            self._lag_ms = lag_ms if self._lag_ms is None else max(self._lag_ms, lag_ms)

    async def _probe_rtt(self) -> None:
        assert self._round_trip is not None
        loop = asyncio.get_running_loop()
        limit_s = self.settings.broker_rtt_crit_ms / 1000 * 2
        me = asyncio.current_task()
        while True:
            start = self._rtt_sent = loop.time()
            try:
                # A stop must end the probe even when it meets the answer: wait_for (3.11) swallows such a cancel,
                # here or in the broker's request, and the stop would wait forever. Hence timeout() and the check.
                async with asyncio.timeout(limit_s):
                    await self._round_trip()
                self._rtt_ms = (loop.time() - start) * 1000
            except TimeoutError:
                self._rtt_ms = limit_s * 1000
            except (ConnectionError, OSError) as exc:
                log.debug("broker round trip not measured: %s", exc)
                self._rtt_ms = None
            finally:
                self._rtt_sent = None
            if me is not None and me.cancelling():
                raise asyncio.CancelledError
            # Until a first measurement (not connected yet), try again at the sampling pace.
            pause = self.settings.broker_rtt_interval_s if self._rtt_ms is not None else self.settings.sample_interval_s
            await asyncio.sleep(pause)


def _own_share(change: LevelChange, sample: HealthInfo) -> str:
    """For the system CPU over a limit, how much of it is tui-trader's own (as the pane's Process CPU): a busy machine
    is mostly other processes, and the operator reads at once whether the engine is the one using it."""
    if change.metric != "cpu" or change.level is OK or sample.process_cpu_pct is None:
        return ""
    return f" (tui-trader's own process: {sample.process_cpu_pct:.1f}%)"


def _utc_now() -> datetime:
    return datetime.now(UTC)
