"""The trading schedule: session closes from contract details, the IB Gateway's daily restart, and
when the engine goes REDUCING around them and comes back.

Pure: every function takes ``now`` (timezone-aware) and the sessions as the broker gave them
(:class:`~tui_trader.domain.market.Session`, exchange time zone resolved, holidays absent, early
closes as shorter sessions). :class:`ScheduleGuard` is the small state machine the engine calls on
its tick; it returns actions and never performs them:

* ``reduce`` — a window began (N minutes before the restart or the close): go REDUCING.
* ``flatten`` — optional, N minutes before the close: close every position.
* ``daily_summary`` — a day's last session closed: journal and send its summary (a summary a stopped
  engine missed is sent late by the runner: :func:`summary_cutoff`, :mod:`tui_trader.ops.missed_summary`).
* ``reconcile`` — the window is over: reconnect/resubscribe/reconcile, then report with
  :meth:`ScheduleGuard.on_recovered`.
* ``restore`` — recovery was clean after the window: return to the state before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from tui_trader.config.sections import ScheduleSettings
from tui_trader.domain.enums import TradingState
from tui_trader.domain.market import Instrument, Session


@dataclass(frozen=True, slots=True)
class Window:
    """A span in which the engine only reduces exposure; ``end`` None: until further notice."""

    start: datetime
    end: datetime | None
    reason: str

    def contains(self, now: datetime) -> bool:
        """True when ``now`` lies inside the window."""
        return self.start <= now and (self.end is None or now < self.end)


def sessions_of(instruments: Iterable[Instrument], use_liquid: bool = True) -> tuple[Session, ...]:
    """Every instrument's sessions (liquid hours when asked and known), sorted by start."""
    found: set[Session] = set()
    for inst in instruments:
        found.update(inst.liquid_sessions if use_liquid and inst.liquid_sessions else inst.trading_sessions)
    return tuple(sorted(found, key=lambda s: (s.start, s.end)))


def next_start(sessions: Sequence[Session], after: datetime) -> datetime | None:
    """The start of the first session starting at or after ``after``."""
    return min((s.start for s in sessions if s.start >= after), default=None)


def close_window(now: datetime, sessions: Sequence[Session], minutes: float) -> Window | None:
    """The window from ``minutes`` before a close to the next open that contains ``now``, if any.

    Outside every session the market is closed until the next open, also when the sessions list no
    earlier close: IB's contract details begin with the current day, so those read before the open,
    on a weekend or (by an engine running overnight) after midnight do not show the last close.
    No sessions at all (hours not known): no window.
    """
    for s in sessions:
        window = Window(s.end - timedelta(minutes=minutes), next_start(sessions, s.end),
                        f"session close at {s.end:%H:%M %Z}")
        if window.contains(now) and now >= s.start:
            return window
    if not sessions or any(s.contains(now) for s in sessions):
        return None
    opens = next_start(sessions, now)
    until = f"until the open at {opens:%a %H:%M %Z}" if opens is not None else "with no open known"
    return Window(now, opens, f"market closed {until}")


def restart_window(now: datetime, hhmm: str, zone: str, duration_min: float, before_min: float) -> Window:
    """The gateway's daily restart window (from ``before_min`` before it to its end) current or next."""
    tz = ZoneInfo(zone)
    hour, minute = map(int, hhmm.split(":"))
    local_day = now.astimezone(tz).date()
    for offset in (-1, 0, 1):
        restart = datetime.combine(local_day + timedelta(days=offset), time(hour, minute), tz)
        window = Window(restart - timedelta(minutes=before_min), restart + timedelta(minutes=duration_min),
                        f"IB Gateway restart at {hhmm} {zone}")
        if window.end is not None and now < window.end:
            return window
    raise AssertionError("a restart window always lies within a day")  # pragma: no cover


def active_window(now: datetime, settings: ScheduleSettings, sessions: Sequence[Session]) -> Window | None:
    """The reduce window ``now`` falls in (restart first, then close), or None."""
    s = settings
    if s.gateway_restart and s.reduce_before_restart_min is not None:
        window = restart_window(now, s.gateway_restart, s.gateway_restart_zone, s.restart_duration_min,
                                s.reduce_before_restart_min)
        if window.contains(now):
            return window
    if s.reduce_before_close_min is not None:
        return close_window(now, sessions, s.reduce_before_close_min)
    return None


def flatten_due(now: datetime, sessions: Sequence[Session], minutes: float | None) -> datetime | None:
    """The close being approached when ``now`` is within ``minutes`` of it (None: not due or off)."""
    if minutes is None:
        return None
    return next((s.end for s in sessions if s.start <= now < s.end and now >= s.end - timedelta(minutes=minutes)),
                None)


def closed_since(now: datetime, sessions: Sequence[Session], last: datetime | None) -> datetime | None:
    """The latest session end in ``(last, now]`` (a close that just happened), if any."""
    ends = [s.end for s in sessions if s.end <= now and (last is None or s.end > last)]
    return max(ends, default=None)


def closes_later_that_day(sessions: Sequence[Session], close: datetime) -> bool:
    """Whether another session ends after ``close`` on its day (in its time zone): a break in the day, or an
    instrument trading longer hours. That day's summary waits for its last close."""
    return any(s.end > close and s.end.astimezone(close.tzinfo).date() == close.date() for s in sessions)


SUMMARY_WITHIN = timedelta(hours=1)
"""How long after a day's last close its summary is asked for as the close passing; later, a new schedule
(a restart) takes that close for one long before start-up, and the summary is owed as a late one."""


def summary_cutoff(now: datetime, sessions: Sequence[Session], zone: str) -> datetime:
    """The midnight in ``zone`` before which every trading day is over, its summary hour past.

    Today's midnight; the next one once today's last session (as known) closed more than
    :data:`SUMMARY_WITHIN` ago. A trading day is the calendar day in the exchange's time zone.
    """
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    closes = [s.end for s in sessions if s.end.astimezone(tz).date() == today]
    over = bool(closes) and now - max(closes) > SUMMARY_WITHIN
    return datetime.combine(today + timedelta(days=1 if over else 0), time(0), tz)


class Phase(StrEnum):
    """Where the guard is."""

    NORMAL = "NORMAL"
    REDUCED = "REDUCED"
    RECOVERING = "RECOVERING"


@dataclass(frozen=True, slots=True)
class ScheduleAction:
    """Something the engine must do now."""

    kind: str
    reason: str
    state: TradingState | None = None
    when: datetime | None = None


class ScheduleGuard:
    """Decides, tick by tick, when the schedule takes the engine to REDUCING and back.

    Args:
        settings: The ``[schedule]`` section.
        sessions: The trading sessions (see :func:`sessions_of`); replace with :meth:`set_sessions`.
    """

    def __init__(self, settings: ScheduleSettings, sessions: Sequence[Session] = ()) -> None:
        self.settings = settings
        self.sessions = tuple(sessions)
        self.phase = Phase.NORMAL
        self.window: Window | None = None
        self.previous: TradingState | None = None
        self._window_over_at: datetime | None = None
        self._flattened: set[datetime] = set()
        self._last_close: datetime | None = None
        self._clean_at: datetime | None = None
        self._seen: TradingState | None = None

    def set_sessions(self, sessions: Sequence[Session]) -> None:
        """New sessions (contract details refreshed)."""
        self.sessions = tuple(sessions)

    def on_recovered(self, now: datetime, clean: bool) -> None:
        """The engine reconnected, resubscribed and reconciled; ``clean``: no difference left."""
        self._clean_at = now if clean else None

    def update(self, now: datetime, state: TradingState) -> list[ScheduleAction]:
        """The actions due at ``now`` given the engine's current trading state."""
        actions = self._daily(now)
        window = active_window(now, self.settings, self.sessions)
        if window is not None:
            actions += self._in_window(window, state, released=self._seen is TradingState.HALTED)
        elif self.phase is Phase.REDUCED:
            actions.append(self._window_over(now))
        elif self.phase is Phase.RECOVERING:
            actions += self._recovering(state)
        self._seen = state
        return actions

    def _daily(self, now: datetime) -> list[ScheduleAction]:
        actions: list[ScheduleAction] = []
        close = flatten_due(now, self.sessions, self.settings.flatten_before_close_min)
        if close is not None and close not in self._flattened:
            self._flattened.add(close)
            actions.append(ScheduleAction("flatten", f"flatten before the close at {close:%H:%M %Z}", when=close))
        closed = closed_since(now, self.sessions, self._last_close)
        if closed is not None:
            first = self._last_close is None and now - closed > SUMMARY_WITHIN
            self._last_close = closed
            # Not for a close long before start-up, nor for one with more trading after it that day (each
            # close of a day asked for its summary: two of one day, the first before its trading was over).
            if self.settings.daily_summary and not first and not closes_later_that_day(self.sessions, closed):
                actions.append(ScheduleAction("daily_summary", "session closed", when=closed))
        return actions

    def _in_window(self, window: Window, state: TradingState, released: bool) -> list[ScheduleAction]:
        """REDUCING as the window begins, and again when the kill switch is reset inside it.

        A reset releases the kill to ACTIVE (the state before the window is not what it resumes):
        inside the window that would trade through the close or the restart. Any other change the
        operator makes inside the window (REDUCING off) is theirs and stands.
        """
        self.window = window
        if self.phase is not Phase.NORMAL:
            self.phase = Phase.REDUCED
            if released and state is TradingState.ACTIVE:
                self.previous = state
                return [ScheduleAction("reduce", f"{window.reason} (kill switch reset inside the window)",
                                       TradingState.REDUCING)]
            return []
        self.phase = Phase.REDUCED
        self.previous = state
        if state is TradingState.ACTIVE:
            return [ScheduleAction("reduce", window.reason, TradingState.REDUCING)]
        return []

    def _window_over(self, now: datetime) -> ScheduleAction:
        self.phase, self._window_over_at, self._clean_at = Phase.RECOVERING, now, None
        return ScheduleAction("reconcile", "schedule window over: reconcile before resuming")

    def _recovering(self, state: TradingState) -> list[ScheduleAction]:
        clean = self._clean_at is not None and self._window_over_at is not None \
            and self._clean_at >= self._window_over_at
        if state is not TradingState.REDUCING or self.previous is not TradingState.ACTIVE:
            self._reset()  # someone else changed the state (kill switch, operator): leave it alone
            return []
        if not clean:
            return []
        self._reset()
        return [ScheduleAction("restore", "reconnected and reconciled cleanly after the window",
                               TradingState.ACTIVE)]

    def _reset(self) -> None:
        self.phase, self.window, self.previous = Phase.NORMAL, None, None
