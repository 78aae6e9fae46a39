"""Quote age per symbol is news only while its market trades: a closed market's quotes stand still.

QA: outside trading hours every symbol's quote aged past the limit, and the health monitor warned per symbol,
an alarm for a market that was simply closed. At the open, a quote cannot be late before anything traded: the
age counts from the open, so a feed that stays silent after it is still said.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tui_trader.config.sections import HealthSettings
from tui_trader.domain import AlertLevel
from tui_trader.domain.alerts import Alert
from tui_trader.domain.market import Instrument, Session
from tui_trader.engine.snapshots import HealthInfo
from tui_trader.ops.health import HealthMonitor

NY = ZoneInfo("America/New_York")
TUESDAY = date(2024, 3, 5)
OPENS = datetime.combine(TUESDAY, time(4), NY)
"""Extended hours 04:00-20:00 New York, regular 09:30-16:00."""
AAPL = Instrument("AAPL", trading_sessions=(Session(OPENS, datetime.combine(TUESDAY, time(20), NY)),),
                  liquid_sessions=(Session(datetime.combine(TUESDAY, time(9, 30), NY),
                                           datetime.combine(TUESDAY, time(16), NY)),))


def aapl_samples(instruments: dict[str, Instrument]) -> tuple[list[Alert], Callable[[datetime, float], None]]:
    """A monitor warning at a 15-s quote age on a link always up, following ``instruments``' hours, and what samples
    it: ``sample_at(when, AAPL's quote age)``; the alerts it raised."""
    now = [OPENS]
    alerts: list[Alert] = []
    mon = HealthMonitor(HealthSettings(market_data_stale_s=15, alert_after_s=1, sample_interval_s=1),
                        Path("journal.sqlite"), alerts.append, link_up=lambda: True, hours=lambda: instruments,
                        clock=lambda: now[0])

    def sample_at(when: datetime, age: float) -> None:
        now[0] = when
        mon.evaluate(HealthInfo(time=when, md_age_s={"AAPL": age}))

    return alerts, sample_at


def test_quote_age_when_the_market_is_closed_then_no_alert_however_old_the_quote() -> None:
    alerts, sample_at = aapl_samples({"AAPL": AAPL})
    night = OPENS - timedelta(hours=6)  # 22:00 the evening before; the last quote came at 20:00

    for minutes in range(0, 120, 10):
        sample_at(night + timedelta(minutes=minutes), 2 * 3600 + minutes * 60)

    assert alerts == []


def test_quote_age_when_no_quote_comes_after_the_open_then_counted_from_the_open() -> None:
    # Not said at the open for the night's age (a warning per symbol at 04:00 sharp), nor never: the limit after it.
    alerts, sample_at = aapl_samples({"AAPL": AAPL})
    night_s = 8 * 3600.0  # quoted last at 20:00 the evening before

    sample_at(OPENS - timedelta(seconds=1), night_s - 1)
    sample_at(OPENS, night_s)
    sample_at(OPENS + timedelta(seconds=10), night_s + 10)
    assert alerts == []
    sample_at(OPENS + timedelta(seconds=15), night_s + 15)

    assert [(a.level, a.text) for a in alerts] == [
        (AlertLevel.WARNING, "market_data_age[AAPL] 15.0 s reached the warning limit 15 s")]


def test_quote_age_when_the_hours_are_not_known_then_an_old_quote_is_said_as_before() -> None:
    alerts, sample_at = aapl_samples({"AAPL": Instrument("AAPL")})
    night = OPENS - timedelta(hours=6)

    sample_at(night, 2 * 3600)  # the link found up at this first sample: ages count from it
    sample_at(night + timedelta(seconds=15), 2 * 3600 + 15)

    assert [a.level for a in alerts] == [AlertLevel.WARNING]
