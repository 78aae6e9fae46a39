"""The daily summary an engine owes from a run that stopped before its day's close.

The summary is asked for within the hour after the day's last close (:mod:`tui_trader.ops.schedule`);
an engine stopped before then and started again later (a VPS rebooted overnight) never sent it.
:func:`missed_summary_day` finds the one day still owed: the most recent completed trading day on
which the engine traded or held positions, if no summary of it is journaled. Only that day: a
week off sends one late summary, not five, and a day with a summary after it is not owed any more.

Reads the journal only (no pandas: asked on every start).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from tui_trader.store.journal import Journal

TRADING_KINDS = ("OrderUpdated", "OrderFilled", "OrderDenied", "OrderNotSent", "ApprovalResolved")
"""Journal events that show the engine traded (or tried to) that day."""


async def missed_summary_day(journal: Journal, time_zone: str, cutoff: datetime, seen_until: datetime) -> date | None:
    """The most recent trading day before ``cutoff`` with activity and no summary journaled, if any.

    Args:
        journal: The engine's journal.
        time_zone: The exchange time zone: a trading day is its calendar day.
        cutoff: A midnight in ``time_zone``: every day before it is over (:func:`summary_cutoff`).
        seen_until: Only what was journaled before this instant shows activity (the current run's
            own start-up after a close must not make that day look traded or held).

    A day is active when the engine traded on it, or journaled anything on it while holding
    positions: its book not flat after its last event (the last checkpoint of the book, a position
    adopted from the broker included, plus the executions since).
    """
    tz = ZoneInfo(time_zone)
    until = min(cutoff, seen_until)
    traded = max(filter(None, [await journal.last_event_time(until, TRADING_KINDS),
                               await journal.last_execution_time(until)]), default=None)
    day = traded.astimezone(tz).date() if traded is not None else None
    seen = await journal.last_event_time(until)
    # Nothing journaled after ``seen``: the book as of ``until`` is what that day held.
    if seen is not None and (day is None or seen.astimezone(tz).date() > day) and await _holding(journal, until):
        day = seen.astimezone(tz).date()
    if day is None:
        return None
    summarized = await journal.last_summary_day(cutoff.astimezone(tz).date().isoformat())
    return None if summarized is not None and summarized >= day.isoformat() else day


async def _holding(journal: Journal, before: datetime) -> bool:
    """Whether the engine's book held a position at the instant ``before``."""
    return any(abs(qty) > 1e-9 for qty in (await journal.book_positions(before)).values())
