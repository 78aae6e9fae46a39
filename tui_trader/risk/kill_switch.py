"""The kill switch: a latched HALTED state, the actions engaging it requires, and its audited reset.

This module decides and records; the engine performs. Engaging flips the trading state to HALTED at
once and lists what to do next (cancel working orders in scope, then verify that none remain).
The latched :class:`KillState` is what the journal persists; a restart with an engaged switch
begins HALTED. Only an explicit reset with a typed reason releases it, and after an automatic
daily-loss, drawdown or trade-count trigger a reset on the same trading day needs a second
confirmation (RTS 6 Art. 15(3)). Flatten is a separate, previewed decision.

Whoever engages it, nothing new passes. What is cancelled depends on who: the operator's kill (Ctrl+K,
the trigger file, ``tui-trader kill``) is the emergency stop and cancels every working order in scope,
the positions' stops and targets too; an automatic trip (daily loss, drawdown, a disconnect, …) cancels
only the orders that can add exposure and keeps the positions' protective orders (:func:`is_protective`)
working: "may allow risk-reducing orders while preventing risk-increasing ones" (FIA). Halted, nothing
else manages those positions: cancelling their stops turned a 2% daily-loss trip into an unbounded loss.
Which orders are cancelled and which kept is decided in one place, :mod:`~tui_trader.risk.kill_cancels`; the engine
writes exactly its list (the kill's, the cancels a kill owes after an outage, the operator's cancel-all), and
the verification of those cancels reports as kept exactly what that decision kept (:meth:`KillSwitch.verify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.domain import Alert, AlertLevel, Order, OrderStatus, TradingState
from tui_trader.domain.events import (
    AlertRaised,
    Event,
    KillChecked,
    KillLatchTaken,
    KillReport,
    KillSwitchEngaged,
    KillSwitchReset,
    OperatorAction,
    TradingStateChanged,
)
from tui_trader.risk.kill_cancels import KillCancels, kill_cancels
from tui_trader.risk.limits import CancelScope


class KillTrigger(StrEnum):
    """Why the switch was engaged: by hand, or which automatic trigger fired."""

    MANUAL = "manual"
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    TRADE_COUNT = "trade_count"
    LOSING_STREAK = "losing_streak"
    HOLDING_TIME = "holding_time"
    DISCONNECT = "disconnect"
    JOURNAL_FAILURE = "journal_failure"
    UNKNOWN_ORDER = "unknown_order"
    POSITION_MISMATCH = "position_mismatch"


CONFIRM_SAME_DAY = frozenset({KillTrigger.DAILY_LOSS, KillTrigger.DRAWDOWN, KillTrigger.TRADE_COUNT})
"""Automatic triggers after which a reset on the same trading day needs a second confirmation."""


class KillAction(StrEnum):
    """What the engine must do, in this order, after the switch is engaged."""

    SET_HALTED = "set_halted"
    CANCEL_OWN = "cancel_own"
    CANCEL_GLOBAL = "cancel_global"
    VERIFY_CANCELLED = "verify_cancelled"
    FLATTEN = "flatten"


@dataclass(frozen=True, slots=True)
class KillState:
    """The latched state of the switch, as the journal persists it."""

    engaged: bool = False
    by: str = ""
    reason: str = ""
    engaged_at: datetime | None = None
    trigger: KillTrigger | None = None
    auto: bool = False
    released: tuple[KillTrigger, ...] = ()
    """Automatic triggers whose kill the operator reset on the trading day of ``released_at``: their
    monitors stay quiet for the rest of that day, also after a restart (:meth:`KillSwitch.released_on`)."""
    released_at: datetime | None = None
    keeps_protection: bool = False
    """The positions' protective orders are kept working (an automatic trip's kill): only entries are
    cancelled (:func:`kill_cancels`). Cleared by an operator's kill on top (Ctrl+K cancels them too). A
    verification follows the :class:`KillCancels` it checks, decided as the cancels were sent, not this
    state as it is when the check comes."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO datetime, enum value)."""
        return {
            "engaged": self.engaged,
            "by": self.by,
            "reason": self.reason,
            "engaged_at": self.engaged_at.isoformat() if self.engaged_at else None,
            "trigger": self.trigger.value if self.trigger else None,
            "auto": self.auto,
            "released": [t.value for t in self.released],
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "keeps_protection": self.keeps_protection,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KillState:
        """Rebuild a state written by :meth:`to_dict`; a naive timestamp is refused."""
        at, released_at = _aware(data, "engaged_at"), _aware(data, "released_at")
        trigger = KillTrigger(data["trigger"]) if data.get("trigger") else None
        released = tuple(KillTrigger(t) for t in data.get("released") or ())
        return cls(bool(data["engaged"]), str(data.get("by", "")), str(data.get("reason", "")),
                   at, trigger, bool(data.get("auto", False)), released, released_at,
                   bool(data.get("keeps_protection", False)))  # fmt: skip

    def released_only(self) -> KillState:
        """A state not engaged that keeps only what was released (a journal's state after a reset)."""
        return KillState(released=self.released, released_at=self.released_at)


def _aware(data: dict[str, Any], key: str) -> datetime | None:
    """The timestamp ``data[key]`` (``None`` when absent); a naive one is refused."""
    at = datetime.fromisoformat(data[key]) if data.get(key) else None
    if at is not None and at.tzinfo is None:
        raise ValueError(f"kill state {key} must be timezone-aware")
    return at


@dataclass(frozen=True, slots=True)
class KillDecision:
    """The outcome of engaging: the latched state and what the engine must do next."""

    state: KillState
    already_engaged: bool
    actions: tuple[KillAction, ...]
    cancel_scope: CancelScope
    cancels: KillCancels
    """The cancels to send (:func:`kill_cancels`), as the latched state keeps the positions' protection or not."""
    events: tuple[Event, ...]
    trading_state: TradingState = TradingState.HALTED


@dataclass(frozen=True, slots=True)
class ResetDecision:
    """The outcome of a reset request; ``accepted`` False leaves the switch engaged."""

    accepted: bool
    state: KillState
    message: str
    needs_confirmation: bool = False
    trading_state: TradingState | None = None
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether the cancels issued by the kill switch took effect."""

    cancelled: tuple[str, ...]
    remaining: tuple[str, ...]
    events: tuple[Event, ...]
    kept: tuple[str, ...] = ()
    """The protective orders still working that the kill keeps on purpose (not remaining)."""

    @property
    def ok(self) -> bool:
        """True when no working order remains."""
        return not self.remaining


class KillSwitch:
    """Holds the latched :class:`KillState`; every method takes the clock and returns a decision."""

    def __init__(
        self,
        state: KillState | None = None,
        scope: CancelScope = CancelScope.OWN,
        trading_day_time_zone: str = "America/New_York",
    ) -> None:
        self._state = state or KillState()
        self.scope = scope
        self._decisions = 0
        self._tz = ZoneInfo(trading_day_time_zone)

    @classmethod
    def restore(cls, data: dict[str, Any] | None, **kwargs: Any) -> KillSwitch:
        """The switch as the journal left it (``None``: never engaged)."""
        return cls(KillState.from_dict(data) if data else None, **kwargs)

    @property
    def state(self) -> KillState:
        """The latched state (persist it after every decision)."""
        return self._state

    @property
    def engaged(self) -> bool:
        """True while latched."""
        return self._state.engaged

    @property
    def decisions(self) -> int:
        """How many kills were decided since this switch was made (:meth:`engage`, also engaging again): the
        number of the latest, which :attr:`KillCancels.kill` carries."""
        return self._decisions

    def cancels(self, working: Iterable[Order], keep_protection: bool = False) -> KillCancels:
        """The cancels of ``working`` in scope (:func:`kill_cancels`) as the latest kill decided stands: the
        cancels a kill owes after an outage, a latched kill's check, the operator's cancel-all."""
        return replace(kill_cancels(working, self.scope, keep_protection), kill=self._decisions)

    @property
    def start_state(self) -> TradingState:
        """Trading state to begin with after a restart: HALTED while engaged."""
        return TradingState.HALTED if self._state.engaged else TradingState.ACTIVE

    def engage(
        self,
        by: str,
        reason: str,
        now: datetime,
        *,
        working: Sequence[Order] = (),
        previous: TradingState = TradingState.ACTIVE,
        trigger: KillTrigger = KillTrigger.MANUAL,
        flatten: bool = False,
        taken: bool = False,
    ) -> KillDecision:
        """Latch HALTED and list the cancels to send; engaging again keeps the first record.

        An automatic trigger keeps the positions' protective orders (:attr:`KillState.keeps_protection`):
        only the orders that can add exposure are listed, and never the global cancel (it would take the
        stops, other clients' orders are not touched). The operator engaging it (``MANUAL``), also on top
        of an automatic trip, lists every working order in scope, the protective ones too.

        Args:
            by: Who or what engaged it (an operator name, or ``risk:<monitor>``).
            reason: Why; never refused (an empty reason is recorded as "kill switch").
            now: The clock.
            working: Orders known to be working (:func:`kill_cancels` lists those to cancel).
            previous: The trading state before engaging.
            trigger: MANUAL, or the automatic trigger that fired.
            flatten: Also flatten positions afterwards (the HALT_AND_FLATTEN action).
            taken: The operator's kill latched out of band (``tui-trader kill``, another process), which the
                engine takes: that command journaled the engagement and its operator action, so the decision
                records a :class:`KillLatchTaken` instead of them (the state change and the alert are the
                engine's own).
        """
        reason = reason.strip() or "kill switch"
        again = self._state.engaged
        manual = trigger is KillTrigger.MANUAL
        events: tuple[Event, ...] = ()
        if not again:
            before = self._state
            self._state = KillState(True, by, reason, now, trigger, not manual, before.released, before.released_at,
                                    keeps_protection=not manual)
            events = self._engage_events(now, previous, taken=taken, flatten=flatten)
        elif manual and self._state.keeps_protection:
            self._state = replace(self._state, keeps_protection=False)
            events = _everything_events(by, reason, now, taken)
        elif taken:
            events = (KillLatchTaken(now, by, reason, again=True),)
        self._decisions += 1
        cancels = self.cancels(working, self._state.keeps_protection)
        cancel = KillAction.CANCEL_GLOBAL if cancels.global_cancel else KillAction.CANCEL_OWN
        actions: tuple[KillAction, ...] = (KillAction.SET_HALTED, cancel, KillAction.VERIFY_CANCELLED)
        actions += (KillAction.FLATTEN,) if flatten else ()
        return KillDecision(self._state, again, actions, self.scope, cancels, events)

    def verify(self, cancels: KillCancels, cancelled: Iterable[str], still_working: Sequence[Order],
               now: datetime, at_broker: Sequence[str] = (), checked: bool = True, *,
               said: bool = False) -> Verification:
        """Check ``cancels`` took effect: a :class:`KillChecked` always, and a critical alert naming any
        order still working.

        ``cancels``: the kill's cancels as they were decided and sent. The orders still working they keep
        (:meth:`KillCancels.keeps`: an automatic trip's protective orders) are ``kept``, not remaining; every
        other order still working is remaining, also when the switch keeps or cancels the positions'
        protection differently now (an operator's kill since, a reset and another trip): each kill's check
        reports its own decision, a later kill's check its own.

        ``at_broker``: orders the broker still holds that the engine does not track as working (another
        client's, under the global scope); they are named and counted as remaining too. ``checked``:
        whether the broker could be asked at all (unchecked, nothing is verified). ``said``: the cancels were not sent
        (trading is refused for the account) and the alert saying so named what still works: the check is recorded,
        with no alert of its own (one event, one critical alert).

        A check of cancels a later kill decision has superseded (:attr:`KillCancels.kill`) is marked so
        (:attr:`KillChecked.superseded`): the latest kill's check is the one that stands, whichever comes last.
        """
        live = [o for o in still_working if o.status.is_working]
        kept = cancels.kept_of(live, at_broker)
        working = [o for o in live if o.order_ref not in kept]
        tracked = tuple(o.order_ref for o in working)
        remaining = tracked + tuple(r for r in dict.fromkeys(at_broker) if r not in tracked and r not in kept)
        done = tuple(r for r in cancelled if r not in remaining and r not in kept)
        event = KillChecked(now, KillReport(done, remaining, checked, kept), cancels.kill < self._decisions)
        if not remaining or said:
            return Verification(done, remaining, (event,), kept)
        described = {o.order_ref: f"{o.order_ref} {o.ticket.side} {o.remaining:g} {o.symbol}" for o in working}
        described |= {r: f"{r} (at the broker)" for r in remaining[len(tracked):]}
        unknown = [o.order_ref for o in working if o.status is OrderStatus.UNKNOWN]
        # Not asked: only what the engine last knew working (a stop may have filled since), never said as working.
        title = "orders still working after kill" if checked else \
            "kill NOT VERIFIED (the broker could not be asked); orders last known working"
        text = remaining_text(remaining, unknown, described, title)
        alert = Alert(AlertLevel.CRITICAL, "kill_switch", text, now, kind="kill_verify")
        return Verification(done, remaining, (event, AlertRaised(now, alert)), kept)

    def reset(
        self,
        by: str,
        reason: str,
        now: datetime,
        *,
        confirm_same_day: bool = False,
        resume: TradingState = TradingState.ACTIVE,
    ) -> ResetDecision:
        """Release the switch with a typed reason; recorded as an operator action.

        Args:
            by: The operator releasing it (required).
            reason: Why (required, non-blank).
            now: The clock.
            confirm_same_day: The second confirmation needed on the day of an automatic
                daily-loss, drawdown or trade-count trigger.
            resume: The trading state to resume in (ACTIVE or REDUCING).
        """
        refusal = self._refusal(by, reason, now, confirm_same_day, resume)
        if refusal is not None:
            return refusal
        before = self._state
        self._state = KillState(released=self._released_after(before, now), released_at=now)
        return ResetDecision(True, self._state, "kill switch released", trading_state=resume,
                             events=self._reset_events(before, by, reason.strip(), now, resume))  # fmt: skip

    def released_on(self, now: datetime) -> tuple[KillTrigger, ...]:
        """The automatic triggers whose kill the operator reset on ``now``'s trading day."""
        s = self._state
        return s.released if s.released_at is not None and self._same_day(s.released_at, now) else ()

    def _released_after(self, before: KillState, now: datetime) -> tuple[KillTrigger, ...]:
        """What is released once ``before`` (engaged) is reset at ``now``: its trigger, if automatic, and
        the triggers released earlier the same trading day."""
        earlier = before.released if before.released_at is not None and self._same_day(before.released_at, now) else ()
        own = (before.trigger,) if before.auto and before.trigger is not None else ()
        return tuple(dict.fromkeys((*earlier, *own)))

    def _same_day(self, a: datetime, b: datetime) -> bool:
        return a.astimezone(self._tz).date() == b.astimezone(self._tz).date()

    def needs_confirmation(self, now: datetime) -> bool:
        """True when a reset at ``now`` needs the second, same-day confirmation."""
        s = self._state
        if not (s.engaged and s.auto and s.trigger in CONFIRM_SAME_DAY and s.engaged_at):
            return False
        return s.engaged_at.astimezone(self._tz).date() == now.astimezone(self._tz).date()

    def _refusal(
        self, by: str, reason: str, now: datetime, confirm: bool, resume: TradingState
    ) -> ResetDecision | None:
        problem, confirm_needed = "", False
        if not self._state.engaged:
            problem = "kill switch is not engaged"
        elif not by.strip():
            problem = "a reset must name the operator"
        elif not reason.strip():
            problem = "a reset needs a typed reason"
        elif resume is TradingState.HALTED:
            problem = "a reset must resume ACTIVE or REDUCING"
        elif self.needs_confirmation(now) and not confirm:
            confirm_needed = True
            problem = f"tripped today by {self._state.trigger}: confirm the reset a second time"
        if not problem:
            return None
        return ResetDecision(False, self._state, problem, needs_confirmation=confirm_needed)

    def _engage_events(self, now: datetime, previous: TradingState, *, taken: bool, flatten: bool
                       ) -> tuple[Event, ...]:
        """The records of the engagement just latched (:attr:`state`), from ``previous``; ``taken``, ``flatten``:
        see :meth:`engage`."""
        by, reason, trigger = self._state.by, self._state.reason, self._state.trigger or KillTrigger.MANUAL
        events: list[Event] = []
        if previous is not TradingState.HALTED:
            events.append(TradingStateChanged(now, previous, TradingState.HALTED, by, reason))
        events.append(KillLatchTaken(now, by, reason) if taken else KillSwitchEngaged(now, by, reason))
        if trigger is KillTrigger.MANUAL and not taken:
            events.append(OperatorAction(now, by, "kill", reason, previous.value, TradingState.HALTED.value))
        events.append(AlertRaised(now, engaged_alert(by, reason, trigger, now, self.scope, flatten=flatten)))
        return tuple(events)

    @staticmethod
    def _reset_events(
        before: KillState, by: str, reason: str, now: datetime, resume: TradingState
    ) -> tuple[Event, ...]:
        trig = before.trigger.value if before.trigger else "manual"
        was = f"HALTED (kill by {before.by}, {trig}: {before.reason})"
        return (
            KillSwitchReset(now, by, reason),
            OperatorAction(now, by, "reset_kill", reason, was, resume.value),
            TradingStateChanged(now, TradingState.HALTED, resume, by, reason),
            AlertRaised(now, released_alert(by, reason, now)),
        )


def engaged_alert(by: str, reason: str, trigger: KillTrigger, now: datetime,
                  scope: CancelScope = CancelScope.OWN, *, flatten: bool = False) -> Alert:
    """The critical alert every engagement raises (the console shows it; it adds none of its own).

    An automatic trip's is the trip's only alert (the monitor raises none beside it: one message on the trader's
    phone, on every channel that listens to the kill switch or to the trigger: :attr:`Alert.trip`): its ``reason`` is
    the hit's message (what tripped, its figures, the action), and it says what the kill did: the entries cancelled,
    the positions' protective orders kept and how to cancel them too, or, with ``flatten`` (HALT_AND_FLATTEN), the
    positions flattened next."""
    text = f"kill switch engaged by {by} ({trigger.value}): {reason}"
    if trigger is KillTrigger.MANUAL:
        return Alert(AlertLevel.CRITICAL, "kill_switch", text, now, kind="kill")
    others = "; other clients' orders were not touched" if scope is CancelScope.GLOBAL else ""
    if flatten:
        text += (f". Entries cancelled; the open positions are flattened next (their protective orders cancelled "
                 f"first){others}")
    else:
        text += (f". Entries cancelled; the open positions' protective orders (stops, targets, exits) are kept "
                 f"working{others}. Ctrl+K cancels everything, those too")
    return Alert(AlertLevel.CRITICAL, "kill_switch", text, now, kind="kill", trip=trigger.value)


def _everything_events(by: str, reason: str, now: datetime, taken: bool) -> tuple[Event, ...]:
    """The operator's kill on top of an automatic trip that kept the positions' protection: it now cancels
    every working order in scope, the protective ones too. ``taken``: a kill latched out of band, whose
    operator action is the command's (:meth:`KillSwitch.engage`)."""
    text = (f"kill switch engaged again by {by}: {reason}. Every working order in scope is cancelled now, the "
            "open positions' protective stops and targets kept by the automatic trip too")
    halted = TradingState.HALTED.value
    record: Event = (KillLatchTaken(now, by, reason, again=True) if taken
                     else OperatorAction(now, by, "kill", reason, halted, halted))
    return record, AlertRaised(now, Alert(AlertLevel.CRITICAL, "kill_switch", text, now, kind="kill_all"))


def released_alert(by: str, reason: str, now: datetime) -> Alert:
    """The warning every reset raises."""
    return Alert(AlertLevel.WARNING, "kill_switch", f"kill switch released by {by}: {reason}", now, kind="kill_reset")


def remaining_text(remaining: Sequence[str], unknown: Iterable[str], described: dict[str, str],
                   working_title: str) -> str:
    """The orders a cancel left behind, the working ones apart from those in UNKNOWN state.

    An UNKNOWN order is neither known working nor known ended (reconciliation settles it), so it is not
    said to be working. ``described``: a ref's words, where there are more than its ref.
    """
    unsure = set(unknown)
    parts = [f"{title}: {', '.join(described.get(r, r) for r in refs)}"
             for title, refs in ((working_title, [r for r in remaining if r not in unsure]),
                                 ("state unknown", [r for r in remaining if r in unsure])) if refs]
    return "; ".join(parts)
