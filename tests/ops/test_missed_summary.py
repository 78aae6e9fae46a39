"""Which day's summary a stopped engine still owes, read from a real journal file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tui_trader.domain import events as ev
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side
from tui_trader.domain.market import Session
from tui_trader.domain.orders import Fill, Order, OrderTicket
from tui_trader.engine.portfolio import Portfolio
from tui_trader.ops.missed_summary import missed_summary_day
from tui_trader.ops.schedule import summary_cutoff
from tui_trader.store.journal import Journal

NY = ZoneInfo("America/New_York")
ZONE = "America/New_York"


def ny(day: int, hhmm: str) -> datetime:
    """March ``day`` 2024 at ``hhmm`` New York, as the engine journals it (UTC)."""
    h, m = map(int, hhmm.split(":"))
    return datetime(2024, 3, day, h, m, tzinfo=NY).astimezone(UTC)


def filled(journal: Journal, n: int, side: Side, when: datetime) -> None:
    """An order of 10 AAPL filled at ``when``, journaled as the engine does."""
    order = Order(f"r{n}", OrderTicket("AAPL", side, 10, OrderType.MKT, created_at=when), OrderStatus.FILLED, when,
                  when, broker_id=n, filled_quantity=10, avg_fill_price=100)
    journal.append(ev.OrderUpdated(when, order, OrderStatus.SUBMITTED))
    journal.append(ev.OrderFilled(when, Fill(f"x{n}", order.order_ref, "AAPL", side, 10, 100, when, n), order))


def ran(journal: Journal, when: datetime, holding: float = 0) -> None:
    """A line the engine journals whenever it runs, no trading: its book (holding ``holding`` AAPL)."""
    checkpointed(journal, when, holding, "clean stop")


def checkpointed(journal: Journal, when: datetime, holding: float, reason: str) -> None:
    """The engine's book checkpointed at ``when``, holding ``holding`` AAPL, as the engine journals it."""
    book = Portfolio()
    if holding:
        book.adjust("AAPL", holding, 100.0, when)
    journal.append(ev.BookCheckpointed(when, book.state(), reason))


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.sqlite")
    yield j
    await j.close()


WEDNESDAY = datetime(2024, 3, 6, tzinfo=NY)  # the cutoff of a start on Tuesday evening or Wednesday morning


@pytest.mark.parametrize(("sold", "seen_until", "owed"), [
    (False, ny(5, "19:30"), date(2024, 3, 4)),  # this run started Tuesday 19:30: its own lines are not Tuesday's
    (False, ny(5, "19:31"), date(2024, 3, 5)),  # an earlier run ran on Tuesday holding the position
    (True, ny(5, "19:31"), date(2024, 3, 4)),  # ... flat: Tuesday had no activity
])
async def test_missed_summary_day_when_bought_monday_and_run_tuesday_then_the_last_day_traded_or_held(
        journal: Journal, sold: bool, seen_until: datetime, owed: date) -> None:
    filled(journal, 1, Side.BUY, ny(4, "10:00"))
    if sold:
        filled(journal, 2, Side.SELL, ny(4, "11:00"))
    ran(journal, ny(5, "19:30"), 0 if sold else 10)
    await journal.flush()
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, seen_until) == owed


async def test_missed_summary_day_when_that_day_or_a_later_one_has_its_summary_then_none(journal: Journal) -> None:
    filled(journal, 1, Side.BUY, ny(4, "10:00"))
    await journal.flush()
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, WEDNESDAY) == date(2024, 3, 4)
    await journal.save_daily_summary("2024-03-05", {})  # Tuesday's was sent: Monday's is no longer owed
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, WEDNESDAY) is None


async def test_missed_summary_day_when_only_the_cutoff_day_has_its_summary_then_the_day_before_still_owed(
        journal: Journal) -> None:
    # Arrange: traded on Tuesday, no summary of it. Wednesday's summary was journaled at its close and this run
    # starts at 16:30, within the hour after it: the cutoff is still Wednesday's midnight, Wednesday not over.
    # A summary of a day not before the cutoff stands for no day before it.
    filled(journal, 1, Side.BUY, ny(5, "10:00"))
    await journal.save_daily_summary("2024-03-06", {})
    await journal.flush()
    # Act / Assert
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, ny(6, "16:30")) == date(2024, 3, 5)


async def test_missed_summary_day_when_the_activity_is_after_the_cutoff_then_not_that_day(journal: Journal) -> None:
    """Trading after midnight in New York (an overnight session) belongs to Wednesday, not the day owed."""
    filled(journal, 1, Side.BUY, ny(5, "10:00"))
    filled(journal, 2, Side.SELL, ny(5, "11:00"))
    filled(journal, 3, Side.BUY, ny(6, "00:30"))
    await journal.flush()
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, ny(6, "09:00")) == date(2024, 3, 5)


@pytest.mark.parametrize("tuesday", ["restarted", "alert"])
async def test_missed_summary_day_when_a_position_adopted_from_the_broker_was_sold_then_the_day_it_was_sold(
        journal: Journal, tuesday: str) -> None:
    # Arrange: Monday's start adopts 10 AAPL from the broker (a checkpoint, no fill), then sells them: flat.
    # On Tuesday the engine runs again (its start checkpoints the flat book) or only journals an alert.
    # The fills alone summed to -10: every later day looked held, and Tuesday's summary was owed.
    checkpointed(journal, ny(4, "09:35"), 10, "adjusted to the broker: AAPL 0 -> 10")
    filled(journal, 1, Side.SELL, ny(4, "10:00"))
    if tuesday == "restarted":
        ran(journal, ny(5, "12:00"))
    else:
        journal.append(ev.AlertRaised(ny(5, "12:00"), Alert(AlertLevel.WARNING, "health", "lag", ny(5, "12:00"))))
    await journal.flush()
    # Act / Assert
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, WEDNESDAY) == date(2024, 3, 4)
    await journal.save_daily_summary("2024-03-04", {})  # Monday's was sent: Tuesday held nothing, nothing is owed
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, WEDNESDAY) is None


async def test_missed_summary_day_when_a_position_adopted_from_the_broker_is_held_then_the_last_day_run(
        journal: Journal) -> None:
    # Arrange: adopted on Monday, never traded, still held when Tuesday's run checkpointed its book.
    # With no fill at all nothing looked held: the late summary was never sent.
    checkpointed(journal, ny(4, "09:35"), 10, "adjusted to the broker: AAPL 0 -> 10")
    ran(journal, ny(5, "09:35"), 10)
    await journal.flush()
    # Act / Assert
    assert await missed_summary_day(journal, ZONE, WEDNESDAY, WEDNESDAY) == date(2024, 3, 5)


@pytest.mark.parametrize(("new_york", "cutoff"), [
    (datetime(2024, 3, 5, 9, 0, tzinfo=NY), datetime(2024, 3, 5, tzinfo=NY)),  # before the close: yesterday's
    (datetime(2024, 3, 5, 16, 30, tzinfo=NY), datetime(2024, 3, 5, tzinfo=NY)),  # the close's own hour
    (datetime(2024, 3, 5, 17, 1, tzinfo=NY), datetime(2024, 3, 6, tzinfo=NY)),  # past it: today is over
    (datetime(2024, 3, 5, 23, 59, tzinfo=NY), datetime(2024, 3, 6, tzinfo=NY)),  # Wednesday already in UTC
])
def test_summary_cutoff_then_today_counts_only_an_hour_after_its_last_close(
        new_york: datetime, cutoff: datetime) -> None:
    opens = datetime(2024, 3, 5, 9, 30, tzinfo=NY)
    sessions = [Session(opens + timedelta(days=d), opens + timedelta(days=d, hours=6, minutes=30)) for d in range(3)]
    assert summary_cutoff(new_york.astimezone(UTC), sessions, ZONE) == cutoff
