"""Operations services run beside the engine: the health monitor, the notifier and the schedule.

The factory attaches them for real runs; engine tests that do not need them leave them out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import LINK_UP, AlertLevel, TradingState
from tui_trader.domain.market import Quote
from tui_trader.domain.portfolio import Position
from tui_trader.engine.config import schedule_from_settings
from tui_trader.engine.engine import Engine
from tui_trader.errors import TraderError
from tui_trader.ops.health import HealthMonitor
from tui_trader.ops.missed_summary import missed_summary_day
from tui_trader.ops.notify.notice import origin_label
from tui_trader.ops.notify.notifier import Notifier
from tui_trader.ops.schedule import Phase, ScheduleAction, ScheduleGuard, sessions_of, summary_cutoff

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.store.journal import Journal

log = logging.getLogger(__name__)

NOTIFIER_QUEUE = 1_000


def attach_health(engine: Engine, settings: Settings) -> HealthMonitor:
    """Sample CPU, memory, the journal's disk, loop lag, journal queue, broker round trip, data age."""

    def raise_alert(alert: Alert) -> None:
        engine.alert(alert.level, alert.source, alert.text, kind=alert.kind)

    monitor = HealthMonitor(
        settings.health, settings.journal_path, raise_alert,
        journal_queue=lambda: engine.journal.backlog if engine.journal is not None else 0,
        round_trip=_round_trip(engine),
        quote_times=lambda: quote_times(engine.market.quotes),
        link_up=lambda: engine.connection.state in LINK_UP,  # a lost link is said once, not as stale quotes
        hours=(lambda: engine.market.instruments) if engine.config.exchange_hours else None,  # a closed market: none
    )
    def start() -> None:
        engine.spawn(monitor.run(), "health-monitor")

    engine.health_source = lambda: monitor.info
    engine.add_service(start)
    return monitor


def _round_trip(engine: Engine) -> Callable[[], Awaitable[object]]:
    async def probe() -> object:
        if not engine.broker.is_connected:
            raise ConnectionError("not connected")
        return await engine.broker.current_time()

    return probe


def attach_notifier(engine: Engine, settings: Settings) -> Notifier:
    """Route engine events to the configured channels (a lossy subscription: never blocks the engine)."""
    notifier = Notifier.from_settings(  # times as the console shows them; the account once the broker said it
        settings.notifications, ZoneInfo(engine.config.time_zone), lambda: origin_of(engine))
    engine.notifier = notifier  # the console sees its statuses and can send a test message
    engine.add_service(
        lambda: notifier.start(engine.subscribe("notifier", maxsize=NOTIFIER_QUEUE)),
        lambda: notifier.stop(grace_s=2.0),
    )
    engine.add_tick_hook(ChannelWatch(engine, notifier).tick)
    return notifier


def origin_of(engine: Engine) -> str:
    """Where the engine's notices come from: its mode and the account connected (before the broker answered, the
    account configured), as a phone shows it (``LIVE U1234567``)."""
    config = engine.config
    return origin_label(config.mode, config.dry_run, engine.account_id or config.expected_account)


class ChannelWatch:
    """Says in an alert when a channel gives up on a message, once until it delivers again.

    A trader away from the screen counts on the channels; one that fails (a revoked bot token, a
    mail server refusing the login) showed only as FAIL in the console's channel strip and in the
    log, so the operator learned of it when a fill or a kill never arrived. The alert goes out on
    the other channels; once per outage, so a channel that fails its own alert makes no storm.
    """

    def __init__(self, engine: Engine, notifier: Notifier) -> None:
        self.engine, self.notifier = engine, notifier
        self._failed: dict[str, int] = {}
        self._down: set[str] = set()

    def tick(self, now: datetime) -> None:
        """Compare each channel's counters with the last tick's."""
        for status in self.notifier.statuses():
            failed, before = status.failed, self._failed.get(status.name, 0)
            self._failed[status.name] = failed
            recovered = status.last_success is not None and (status.last_failure is None
                                                              or status.last_success > status.last_failure)
            if recovered and status.name in self._down:
                self._down.discard(status.name)
                self.engine.alert(AlertLevel.INFO, "notifications", f"{status.name}: delivering again",
                                  kind="notification_recovered")
            elif failed > before and status.name not in self._down:
                self._down.add(status.name)
                self.engine.alert(AlertLevel.WARNING, "notifications", f"{status.name}: a message was not "
                                  f"delivered ({status.last_error or 'no reason given'}); notices on this channel "
                                  f"may be lost until it delivers again", kind="notification_failed")


def attach_operations(engine: Engine, settings: Settings) -> Engine:
    """Every service; returns ``engine`` for chaining in the factory."""
    attach_health(engine, settings)
    notifier = attach_notifier(engine, settings)
    attach_schedule(engine, settings, notifier)
    return engine


class ScheduleRunner:
    """Carries out the schedule's decisions: REDUCING before the gateway restart and the close,
    back to ACTIVE only after a clean reconciliation, optional flatten, the daily summary.

    Args:
        engine: The engine to drive.
        guard: The schedule's pure decision logic.
        notify: Where the daily summary goes (the notifier), or ``None``.
    """

    RETRY_S = 15.0
    FLATTEN_RETRY_S = 30.0  # as the maximum holding time's: a rejected close is not resent in a loop

    def __init__(self, engine: Engine, guard: ScheduleGuard, notify: Callable[..., None] | None = None) -> None:
        self.engine = engine
        self.guard = guard
        self._notify = notify
        self._use_liquid = guard.settings.use_liquid_hours
        self._reconciling = False
        self._last_attempt: datetime | None = None
        self._sessions_version = -1
        self._flatten_close: datetime | None = None  # the close the book must be flat by, until it passes
        self._flattening = False
        self._flatten_at: datetime | None = None
        self._summarized: set[date] = set()  # the days whose summary this run asked for
        self._started = engine.now()  # what the journal holds from before is other runs' (missed summaries)
        self._summary_cutoff: datetime | None = None  # the last day boundary a missed summary was looked for at

    def tick(self, now: datetime) -> None:
        """One step: refresh the sessions, then act on what the guard decides."""
        self._refresh_sessions()
        for action in self.guard.update(now, self.engine.trading_state):
            self._act(action, now)
        if self.guard.phase is Phase.RECOVERING and self._retry_due(now):
            self._reconcile(now)
        self._keep_flat(now)
        self._look_for_missed_summary(now)

    def _refresh_sessions(self) -> None:
        """Rebuild the sessions whenever the engine read contract details (every connect, every new day)."""
        market = self.engine.market
        if market.instruments_version != self._sessions_version:
            self._sessions_version = market.instruments_version
            self.guard.set_sessions(sessions_of(market.instruments.values(), self._use_liquid))

    def _act(self, action: ScheduleAction, now: datetime) -> None:
        if action.kind == "restore" and not self._reducing_is_ours():
            return
        if action.kind in ("reduce", "restore") and action.state is not None:
            self._set_state(action.state, action.reason)
        elif action.kind == "flatten":
            self._flatten_close = action.when
            self._flatten(now)
        elif action.kind == "daily_summary" and self.engine.journal is not None and action.when is not None:
            day = action.when.astimezone(ZoneInfo(self.engine.config.time_zone)).date()
            if day not in self._summarized:
                self._summarized.add(day)
                self.engine.spawn(self._summarize(self.engine.journal, day), "daily-summary")
        elif action.kind == "reconcile":
            self._reconcile(now)

    def _set_state(self, state: TradingState, reason: str) -> None:
        """Move to ``state`` for ``reason`` and say it, as a risk trigger's change is said: in an alert (the log, the
        notifications, a headless run's stderr), with until when. A headless run at night said only "REDUCING;
        orders 9 REJECTED (9 denied by risk)", nowhere why."""
        before = self.engine.trading_state
        if not self.engine.set_trading_state(state, "schedule", reason) or self.engine.trading_state is before:
            return
        if state is TradingState.ACTIVE:
            self.engine.alert(AlertLevel.INFO, "schedule", f"ACTIVE again: {reason}", kind="schedule_restored")
            return
        end = self.guard.window.end if self.guard.window is not None else None
        until = f"{end:%a %H:%M %Z}" if end is not None else "the next open (none known yet)"
        self.engine.alert(AlertLevel.WARNING, "schedule", f"{state.value}: {reason}; only orders that reduce exposure "
                          f"pass until {until}, then ACTIVE again once reconciled", kind="schedule_reduced")

    async def _summarize(self, journal: Journal, day: date, late: datetime | None = None) -> None:
        """Journal and send ``day``'s summary, unless the journal holds it already: one summary a trading day.

        A console restarted soon after the close took that close for just passed (its schedule is new and
        had seen no close) and sent the day's summary a second time; the journal remembers across restarts.
        """
        from tui_trader.ops.reports import close_session  # pandas: loaded only when a summary is due

        if await journal.has_daily_summary(day.isoformat()):
            log.info("daily summary of %s already journaled: not sent again", day)
            return
        await close_session(journal, day, self.engine.config.time_zone, self._notify, late=late)

    def _look_for_missed_summary(self, now: datetime) -> None:
        """On start, and each time another day is over, send the summary a stopped engine missed (late).

        The summary is asked for within the hour after the close: an engine stopped before then and
        started again later (a VPS rebooted overnight) never sent that day's. Looked for again at each
        new cutoff (midnight; an hour after today's close), so a start before today's close still sends
        yesterday's and an engine that could not see today's close sends it after midnight.
        """
        journal = self.engine.journal
        if not self.guard.settings.daily_summary or journal is None:
            return
        cutoff = summary_cutoff(now, self.guard.sessions, self.engine.config.time_zone)
        if cutoff != self._summary_cutoff:
            self._summary_cutoff = cutoff
            self.engine.spawn(self._send_missed_summary(journal, cutoff, now), "daily-summary")

    async def _send_missed_summary(self, journal: Journal, cutoff: datetime, now: datetime) -> None:
        day = await missed_summary_day(journal, self.engine.config.time_zone, cutoff, self._started)
        if day is not None and day not in self._summarized:  # this run's own (on time) summary is not late
            self._summarized.add(day)
            log.info("daily summary of %s was not sent (the engine was stopped at its close): sending it late", day)
            await self._summarize(journal, day, late=now)

    def _keep_flat(self, now: datetime) -> None:
        """Flatten again while the flatten window lasts and positions are still open.

        One flatten may not leave the book flat: the gateway was down that minute, a closing order
        was rejected, a late fill opened a position after it. Retried every ``FLATTEN_RETRY_S``,
        only when no flatten is under way, the link is up (a retry into a dead link said the same
        two warnings every 30 s) and none of the positions' exits is still pending (a working close
        is left to fill); an ERROR when the close comes and positions are still open.
        """
        close = self._flatten_close
        if close is None:
            return
        left = self.engine.portfolio.open_positions()
        if now >= close:
            self._flatten_close = None
            if left:
                self.engine.alert(AlertLevel.ERROR, "schedule",
                                  f"not flat at the close at {close:%H:%M %Z}: {_positions_text(left)} held past "
                                  "it although flatten_before_close_min asks for flat",
                                  kind="schedule_not_flat_at_close")
            return
        if (not left or self._flattening or not self.engine.is_connected  # tried again once the link is back
                or self.engine.trading_state is TradingState.HALTED  # said once; tried again after a reset
                or any(self.engine.exits_pending(symbol) for symbol in left)):
            return
        if self._flatten_at is not None and (now - self._flatten_at).total_seconds() < self.FLATTEN_RETRY_S:
            return
        self.engine.alert(AlertLevel.WARNING, "schedule",
                          f"the flatten before the close at {close:%H:%M %Z} did not leave the book flat: "
                          f"{_positions_text(left)} still open; flattening again", kind="schedule_not_flat")
        self._flatten(now)

    def _flatten(self, now: datetime) -> None:
        """Flatten, unless trading is HALTED: nothing new passes then, an automatic close included
        (the operator's own flatten, F, still does). Said, with what is left held."""
        if self.engine.trading_state is TradingState.HALTED:
            left = self.engine.portfolio.open_positions()
            if left:
                kill = self.engine.risk.kill_state
                why = f"the kill switch is engaged ({kill.reason})" if kill.engaged else "trading is HALTED"
                self.engine.alert(AlertLevel.WARNING, "schedule",
                                  f"flatten before the close not sent: {why}; {_positions_text(left)} held past the "
                                  "close unless flattened by hand", kind="schedule_flatten_halted")
            return
        self._flattening, self._flatten_at = True, now
        self.engine.spawn(self._flatten_and_say(), "schedule-flatten")

    async def _flatten_and_say(self) -> None:
        """Flatten; a refusal (not connected, say) is said, not a crashed task: it is tried again."""
        try:
            await self.engine.flatten(preview=False, by="schedule")
        except TraderError as exc:
            self.engine.alert(AlertLevel.WARNING, "schedule", f"flatten before the close not sent: {exc.message}",
                              kind="schedule_flatten_not_sent")
        finally:
            self._flattening = False

    def _reducing_is_ours(self) -> bool:
        """The REDUCING the window is leaving is still the schedule's own; otherwise say so and keep it.

        An operator or a risk monitor that asked for REDUCING during the window owns it since
        (:attr:`RiskEngine.last_change`): restoring ACTIVE would lift their decision unseen.
        """
        change = self.engine.risk.last_change
        if change is None or change.by == "schedule":
            return True
        self.engine.alert(AlertLevel.INFO, "schedule", f"window over: {self.engine.trading_state.value} left in "
                          f"place, as {change.by} set it ({change.reason})", kind="schedule_state_kept")
        return False

    def _retry_due(self, now: datetime) -> bool:
        return not self._reconciling and (self._last_attempt is None
                                          or (now - self._last_attempt).total_seconds() >= self.RETRY_S)

    def _reconcile(self, now: datetime) -> None:
        self._reconciling, self._last_attempt = True, now
        self.engine.spawn(self._reconcile_and_report(), "schedule-reconcile")

    async def _reconcile_and_report(self) -> None:
        try:
            if self.engine.is_connected:
                await self.engine.reconcile("schedule window over")
            clean = self.engine.is_connected and not self.engine.blocks
            self.guard.on_recovered(self.engine.now(), clean)
        finally:
            self._reconciling = False


def _positions_text(positions: Mapping[str, Position]) -> str:
    return ", ".join(f"{symbol} {pos.quantity:g}" for symbol, pos in sorted(positions.items()))


def attach_schedule(engine: Engine, settings: Settings, notifier: Notifier | None = None) -> ScheduleRunner:
    """Drive the engine from the trading calendar and the gateway's restart window."""
    runner = ScheduleRunner(engine, ScheduleGuard(schedule_from_settings(settings)),
                            notifier.notify if notifier else None)
    engine.add_tick_hook(runner.tick)
    return runner


def quote_times(quotes: Mapping[str, Quote]) -> dict[str, datetime]:
    """The time of each symbol's latest quote whose age is news: not a halted symbol's, whose quote stands still
    until it resumes (its halt is said on its own)."""
    return {symbol: quote.time for symbol, quote in quotes.items() if not quote.halted}
