"""Post-trade monitors and automatic triggers, as pure readings of snapshots.

A monitor reads one measure from an :class:`AccountSnapshot` (daily loss, drawdown, losing
streak, trade count, holding time per position) against its limit. :class:`MonitorMemory`
remembers, per trading day, which warning thresholds and which trips were already reported, so a
value hovering around a threshold alerts once, not on every snapshot. The other automatic
triggers (disconnect, journal failure, unknown order, position mismatch) are plain functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tui_trader.domain import AccountSnapshot, Alert, AlertLevel, Order, OrderStatus
from tui_trader.domain.verdicts import figure
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.risk.limits import RiskLimits, TriggerAction


@dataclass(frozen=True, slots=True)
class MonitorReading:
    """One monitor's measure against its limit; it trips at ``value >= limit``."""

    monitor: str
    trigger: KillTrigger
    value: float
    limit: float
    unit: str
    action: TriggerAction
    warnings: tuple[float, ...]
    does: str | None = None
    """What reaching the limit does, in words, when the engine acts beyond ``action`` (the maximum holding time
    closes the position: "-> ALERT" read as if it were only said)."""

    @property
    def ratio(self) -> float:
        """How much of the limit is used (1.0 = at the limit)."""
        if self.limit > 0:
            return self.value / self.limit
        return math.inf if self.value > 0 else 0.0

    @property
    def hit(self) -> bool:
        """True when the limit is reached."""
        return self.value >= self.limit


@dataclass(frozen=True, slots=True)
class TriggerHit:
    """An automatic trigger that fired, with the action configured for it."""

    trigger: KillTrigger
    action: TriggerAction
    monitor: str
    value: float
    limit: float
    fired: str
    """What fired, in words (``daily_loss limit reached: $600.00 (limit $500.00)``)."""
    symbols: tuple[str, ...] = ()
    does: str | None = None
    """What it does, in its own words after what fired (an account monitor's ``REDUCING, closing AAPL LONG 5 (max
    holding time)``, a journal failure's ``REDUCING``); None: the response's alert says it (``: reducing only``)."""
    level: AlertLevel | None = None
    """The level of the response's alert whatever the action (an account monitor's ERROR, a journal failure's
    CRITICAL); None: a warning for an alert, an error for REDUCING. The response raises each hit's one alert
    (:meth:`~tui_trader.risk.engine.RiskEngine.respond`): raised with the hit, before its response, an account
    monitor's and a journal failure's said "-> REDUCING" while trading stayed HALTED (by the operator, or by the hit
    before it)."""
    said_by_kill: bool = False
    """An account monitor's, a journal failure's or a position mismatch's hit that engages the kill switch (HALTED,
    HALT_AND_FLATTEN): the kill switch's critical alert says it, with this hit's message as its reason; none other is
    raised (one trip was two alerts, two messages on the trader's phone, each half the story). With the kill switch
    engaged already, the response says the hit (:meth:`~tui_trader.risk.engine.RiskEngine.respond`)."""

    @property
    def message(self) -> str:
        """What fired and what it does: the response's words, and the reason of the trading state it sets."""
        return self.fired if self.does is None else f"{self.fired} -> {self.does}"


DISCONNECT_MONITOR = "disconnect"
"""The disconnect trigger's monitor (its hits', :func:`disconnect_hit`: the trading state it sets is ``by``
``risk:disconnect``)."""

ACCOUNT_TRIGGERS = frozenset({KillTrigger.DAILY_LOSS, KillTrigger.DRAWDOWN, KillTrigger.TRADE_COUNT,
                              KillTrigger.LOSING_STREAK, KillTrigger.HOLDING_TIME})
"""The triggers of the monitors that read the account's figures (:func:`read_monitors`); the others read the link,
the journal, the orders or the positions against the broker's."""

DRAWDOWN_MONITORS = ("drawdown", "drawdown_pct")
"""The monitors of the drawdown trigger (the trading state they set is ``by`` ``risk:<monitor>``)."""


QUIET_ONCE_RELEASED = {
    KillTrigger.DAILY_LOSS: ("daily_loss", "daily_loss_pct"),
    KillTrigger.TRADE_COUNT: ("trade_count",),
    KillTrigger.LOSING_STREAK: ("losing_streak",),
}
"""The monitors of each automatic trigger that stay quiet for the rest of the trading day once the operator
resets its kill (RTS 6 Art. 15(3): re-enabled by a person). A released drawdown restarts its peak instead
(:meth:`MonitorMemory.restart_peak`)."""


class MonitorMemory:
    """What was already reported today, and the equity high-water mark seen so far.

    Drawdown is from the high-water mark: the all-time high, until the operator releases a drawdown
    trip (:meth:`restart_peak`). The engine's snapshots carry that mark themselves (the portfolio
    keeps it and journals it, so it survives a restart); this one, in memory only, is for callers
    whose snapshots do not. One :class:`~tui_trader.risk.engine.RiskEngine` owns the one the engine's
    monitors use (:meth:`~tui_trader.risk.engine.RiskEngine.monitor`): a release or a peak restart is
    applied to it once, there.
    """

    def __init__(self, trading_day_time_zone: str = "America/New_York") -> None:
        self._tz = ZoneInfo(trading_day_time_zone)
        self._day: date | None = None
        self._seen: set[str] = set()
        self._quiet: set[str] = set()
        """Monitors released by the operator today (:meth:`release`)."""
        self.high_water_mark = 0.0

    def first_today(self, key: str, now: datetime) -> bool:
        """True the first time ``key`` is reported on the trading day of ``now``."""
        day = now.astimezone(self._tz).date()
        if day != self._day:
            self._day, self._seen, self._quiet = day, set(), set()
        if key in self._seen or key.split("@", 1)[0] in self._quiet:
            return False
        self._seen.add(key)
        return True

    def release(self, triggers: Sequence[KillTrigger], now: datetime) -> None:
        """The operator reset the kill of ``triggers`` on ``now``'s trading day: their monitors
        (:data:`QUIET_ONCE_RELEASED`) neither warn nor trip again that day, as if already reported,
        also in a run started after the reset (the kill state keeps what was released)."""
        for trigger in triggers:
            for monitor in QUIET_ONCE_RELEASED.get(trigger, ()):
                self.first_today(f"{monitor}@hit", now)
                self._quiet.add(monitor)

    def forget(self, prefix: str = "") -> None:
        """Re-arm the monitors whose key starts with ``prefix`` (all by default; released ones too)."""
        self._seen = {k for k in self._seen if prefix and not k.startswith(prefix)}
        self._quiet = {m for m in self._quiet if prefix and not m.startswith(prefix)}

    def restart_peak(self) -> None:
        """The operator released a drawdown trip: the peak restarts at the next equity read, and the
        drawdown's warnings and trip are armed again, for a new drawdown of the limit from there."""
        self.high_water_mark = 0.0
        self.forget("drawdown")


def read_monitors(
    account: AccountSnapshot, limits: RiskLimits, now: datetime, high_water_mark: float = 0.0
) -> list[MonitorReading]:
    """Every enabled monitor's reading of ``account``."""
    readings = _loss_readings(account, limits)
    readings += _drawdown_readings(account, limits, max(account.high_water_mark, high_water_mark))
    readings += _count_readings(account, limits)
    readings += _holding_readings(account, limits, now)
    return readings


def _reading(
    monitor: str, trigger: KillTrigger, value: float, limit: float, unit: str,
    action: TriggerAction, warnings: tuple[float, ...], does: str | None = None,
) -> MonitorReading:  # fmt: skip
    return MonitorReading(monitor, trigger, value, limit, unit, action, warnings, does)


def _warn(own: tuple[float, ...] | None, limits: RiskLimits) -> tuple[float, ...]:
    return own if own is not None else limits.warning_thresholds


def _loss_readings(account: AccountSnapshot, limits: RiskLimits) -> list[MonitorReading]:
    loss = max(-account.day_pnl, 0.0)
    out, act, warn = [], limits.daily_loss_action, _warn(limits.daily_loss_warnings, limits)
    if limits.daily_loss_limit is not None:
        out.append(_reading("daily_loss", KillTrigger.DAILY_LOSS, loss, limits.daily_loss_limit, "$", act, warn))
    if limits.daily_loss_limit_pct is not None and account.start_of_day_equity > 0:
        pct = loss / account.start_of_day_equity * 100
        out.append(_reading("daily_loss_pct", KillTrigger.DAILY_LOSS, pct, limits.daily_loss_limit_pct, "%",
                            act, warn))  # fmt: skip
    return out


def _drawdown_readings(account: AccountSnapshot, limits: RiskLimits, hwm: float) -> list[MonitorReading]:
    drawdown = max(hwm - account.equity, 0.0)
    out, act, warn = [], limits.drawdown_action, _warn(limits.drawdown_warnings, limits)
    if limits.max_drawdown is not None:
        out.append(_reading("drawdown", KillTrigger.DRAWDOWN, drawdown, limits.max_drawdown, "$", act, warn))
    if limits.max_drawdown_pct is not None and hwm > 0:
        pct = drawdown / hwm * 100
        out.append(_reading("drawdown_pct", KillTrigger.DRAWDOWN, pct, limits.max_drawdown_pct, "%", act, warn))
    return out


def _count_readings(account: AccountSnapshot, limits: RiskLimits) -> list[MonitorReading]:
    out = []
    if limits.max_daily_trades is not None:
        out.append(_reading("trade_count", KillTrigger.TRADE_COUNT, account.trades_today,
                            limits.max_daily_trades, "trades", limits.trade_count_action,
                            _warn(limits.trade_count_warnings, limits)))  # fmt: skip
    if limits.max_losing_streak is not None:
        out.append(_reading("losing_streak", KillTrigger.LOSING_STREAK, account.losing_streak,
                            limits.max_losing_streak, "losses", limits.losing_streak_action,
                            _warn(limits.losing_streak_warnings, limits)))  # fmt: skip
    return out


def _holding_readings(account: AccountSnapshot, limits: RiskLimits, now: datetime) -> list[MonitorReading]:
    """One reading per open position; past the limit the engine closes it (``EngineConfig.max_holding_s``, the same
    ``[risk] max_holding_s``), which its hit says."""
    if limits.max_holding_s is None:
        return []
    return [
        _reading(f"holding_time:{sym}", KillTrigger.HOLDING_TIME, (now - pos.opened_at).total_seconds(),
                 limits.max_holding_s, "s", limits.holding_time_action, _warn(limits.holding_time_warnings, limits),
                 f"closing {sym} {'LONG' if pos.quantity > 0 else 'SHORT'} {abs(pos.quantity):g} (max holding time)")
        for sym, pos in sorted(account.positions.items())
        if pos.opened_at is not None and not pos.is_flat
    ]  # fmt: skip


def evaluate_readings(
    readings: Sequence[MonitorReading], now: datetime, memory: MonitorMemory
) -> tuple[tuple[Alert, ...], tuple[TriggerHit, ...]]:
    """Warning alerts for thresholds crossed and hits for limits reached, each once per trading day; a hit is said
    by its response (:attr:`TriggerHit.level`), or by the kill switch's alert (:attr:`TriggerHit.said_by_kill`)."""
    alerts: list[Alert] = []
    hits: list[TriggerHit] = []
    for r in readings:
        for threshold in r.warnings:
            if r.ratio >= threshold and not r.hit and memory.first_today(f"{r.monitor}@{threshold:g}", now):
                alerts.append(_warning(r, threshold, now))
        if r.hit and memory.first_today(f"{r.monitor}@hit", now):
            hits.append(_hit(r))
    return tuple(alerts), tuple(hits)


def _warning(r: MonitorReading, threshold: float, now: datetime) -> Alert:
    text = f"{r.monitor} at {r.ratio:.0%} of its limit ({figure(r.value, r.unit)} of {figure(r.limit, r.unit)})"
    return Alert(AlertLevel.WARNING, "risk", text, now, kind=f"warning:{r.monitor}")


def _hit(r: MonitorReading) -> TriggerHit:
    # What the engine does beyond the action is said only where it can: HALTED and HALT_AND_FLATTEN engage the kill
    # switch first, which denies the maximum holding time's close (the alert said "closing" a position left open).
    does = r.action.value if r.does is None or r.action.rank >= TriggerAction.HALTED.rank else r.does
    if r.does is not None and r.action is TriggerAction.REDUCING:
        does = f"{r.action.value}, {r.does}"
    fired = f"{r.monitor} limit reached: {figure(r.value, r.unit)} (limit {figure(r.limit, r.unit)})"
    symbol = r.monitor.split(":", 1)[1] if ":" in r.monitor else ""
    return TriggerHit(r.trigger, r.action, r.monitor, r.value, r.limit, fired, (symbol,) if symbol else (), does,
                      AlertLevel.ERROR, said_by_kill=r.action.rank >= TriggerAction.HALTED.rank)


def evaluate_account(
    account: AccountSnapshot, limits: RiskLimits, now: datetime, memory: MonitorMemory
) -> tuple[tuple[Alert, ...], tuple[TriggerHit, ...]]:
    """Read every monitor of ``account`` (tracking the high-water mark) and evaluate the readings."""
    memory.high_water_mark = max(memory.high_water_mark, account.high_water_mark, account.equity)
    return evaluate_readings(read_monitors(account, limits, now, memory.high_water_mark), now, memory)


# --------------------------------------------------------------------------------------------
# Triggers outside the account snapshot
# --------------------------------------------------------------------------------------------


def disconnect_hit(disconnected_since: datetime | None, now: datetime, limits: RiskLimits, *,
                   ever_connected: bool = True) -> TriggerHit | None:
    """Fires when the broker has been disconnected longer than ``disconnect_halt_after_s``.

    ``ever_connected``: the link was up at some time this run. A link never made was not "disconnected": the
    words say there has been no connection.
    """
    limit = limits.disconnect_halt_after_s
    if disconnected_since is None or limit is None:
        return None
    down = (now - disconnected_since).total_seconds()
    if down <= limit:
        return None
    what = "broker disconnected" if ever_connected else "no connection to the broker"
    text = f"{what} for {down:.0f}s (limit {limit:g}s)"
    return TriggerHit(KillTrigger.DISCONNECT, limits.disconnect_action, DISCONNECT_MONITOR, down, limit, text)


def unknown_order_hits(orders: Sequence[Order], now: datetime, limits: RiskLimits) -> TriggerHit | None:
    """Fires when any order has been UNKNOWN longer than ``unknown_order_timeout_s``."""
    limit = limits.unknown_order_timeout_s
    if limit is None:
        return None
    stuck = [o for o in orders if o.status is OrderStatus.UNKNOWN and (now - o.updated_at).total_seconds() > limit]
    if not stuck:
        return None
    worst = max((now - o.updated_at).total_seconds() for o in stuck)
    refs = ", ".join(o.order_ref for o in stuck)
    text = f"order state unknown for over {limit:g}s: {refs}"
    symbols = tuple(sorted({o.symbol for o in stuck}))
    return TriggerHit(KillTrigger.UNKNOWN_ORDER, limits.unknown_order_action, "unknown_order", worst, limit,
                      text, symbols)  # fmt: skip


def position_mismatch_hit(
    ours: Mapping[str, float], broker: Mapping[str, float], limits: RiskLimits, tolerance: float = 1e-9
) -> TriggerHit | None:
    """Fires when our positions differ from the broker's in any symbol. Its message names each symbol's two
    quantities, ours and the broker's: a hit that halts trading is said only by the kill switch's alert, whose reason
    it is (:attr:`TriggerHit.said_by_kill`)."""
    diffs = {
        s: (ours.get(s, 0.0), broker.get(s, 0.0))
        for s in sorted({*ours, *broker})
        if abs(ours.get(s, 0.0) - broker.get(s, 0.0)) > tolerance
    }
    if not diffs:
        return None
    text = "position mismatch with the broker: " + ", ".join(
        f"{s}: ours {a:g}, broker {b:g}" for s, (a, b) in diffs.items())  # fmt: skip
    action = limits.position_mismatch_action
    return TriggerHit(KillTrigger.POSITION_MISMATCH, action, "position_mismatch", float(len(diffs)), 0.0, text,
                      tuple(diffs), said_by_kill=action.rank >= TriggerAction.HALTED.rank)


def journal_failure_hit(error: str, limits: RiskLimits) -> TriggerHit:
    """A journal write failed: always fires. Said once, as an account monitor's hit is: by its response's critical
    alert, or by the kill switch's when it halts trading."""
    action = limits.journal_failure_action
    fired = f"journal write failed: {error}"
    return TriggerHit(KillTrigger.JOURNAL_FAILURE, action, "journal_failure", 1.0, 0.0, fired, does=action.value,
                      level=AlertLevel.CRITICAL, said_by_kill=action.rank >= TriggerAction.HALTED.rank)
