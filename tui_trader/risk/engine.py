"""RiskEngine: the limits, the trading state, the throttle, the kill switch and the monitors in one place.

The engine (async, elsewhere) owns one RiskEngine, calls :meth:`RiskEngine.check` immediately
before every send, :meth:`RiskEngine.record_sent` when an order goes out, and
:meth:`RiskEngine.monitor` (and the other automatic triggers) on every tick, and performs the decisions
it gets back: :meth:`RiskEngine.respond` says what each trigger's hit asks for.
The monitors' memory (what was reported today, what the operator released, the drawdown's peak) is
this object's alone: a release or a peak restart is applied here, once, whoever reads the monitors.
Nothing here reads a clock or does I/O: every method takes ``now``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tui_trader.domain import (
    AccountSnapshot,
    Alert,
    AlertLevel,
    MarketSnapshot,
    Order,
    OrderTicket,
    RiskVerdict,
    TradingState,
)
from tui_trader.domain.events import MessagesSent, OrderDenied, TradingStateChanged
from tui_trader.risk.checks import RecentOrder, check_cancel, pre_trade_check
from tui_trader.risk.kill_cancels import KillCancels
from tui_trader.risk.kill_switch import (
    KillDecision,
    KillState,
    KillSwitch,
    KillTrigger,
    ResetDecision,
    Verification,
)
from tui_trader.risk.limits import RiskLimits, TriggerAction
from tui_trader.risk.monitors import (
    DRAWDOWN_MONITORS,
    MonitorMemory,
    TriggerHit,
    disconnect_hit,
    evaluate_account,
    journal_failure_hit,
    position_mismatch_hit,
    unknown_order_hits,
)
from tui_trader.risk.throttle import Throttle

_RECENT_KEEP_S = 3600.0


class KillSwitchLatchedError(RuntimeError):
    """Raised when the trading state is changed while the kill switch is engaged."""


class RiskEngine:
    """Pre-trade gate, trading state, message throttle, recent-order memory and kill switch."""

    def __init__(self, limits: RiskLimits, kill_state: KillState | None = None) -> None:
        """Start ACTIVE, or HALTED when ``kill_state`` (restored from the journal) is engaged."""
        self._limits = limits
        self._kill = KillSwitch(kill_state, limits.kill_cancel_scope, limits.trading_day_time_zone)
        self._state = self._kill.start_state
        self._last_change: TradingStateChanged | None = None
        self._throttle = Throttle.from_rates(limits.max_orders_per_second, limits.max_orders_per_minute)
        self._recent: deque[RecentOrder] = deque()
        self._memory = MonitorMemory(limits.trading_day_time_zone)
        self._lasting_seen: set[str] = set()
        """The condition triggers that fired and whose condition still lasts (:meth:`_lasting`)."""

    # --- read-only views ----------------------------------------------------------------------

    @property
    def limits(self) -> RiskLimits:
        """The limits in force."""
        return self._limits

    @property
    def state(self) -> TradingState:
        """The trading state."""
        return self._state

    @property
    def last_change(self) -> TradingStateChanged | None:
        """Who changed the trading state last (or asked for it again), why and when (None since start)."""
        return self._last_change

    @property
    def throttle(self) -> Throttle:
        """The message buckets as of the last recorded message."""
        return self._throttle

    @property
    def kill_state(self) -> KillState:
        """The latched kill state (the journal persists it after every kill decision)."""
        return self._kill.state

    @property
    def held_by_drawdown(self) -> bool:
        """The trading state is the drawdown trigger's: the kill switch it engaged, or the REDUCING it set.

        Released by the operator (a kill reset, a resume), the drawdown's peak restarts at the equity then
        (:meth:`MonitorMemory.restart_peak`, here; the engine restarts its portfolio's too): otherwise the same
        drawdown from the old all-time peak trips again at every restart and every new trading day.
        """
        if self._kill.engaged:
            return self._kill.state.trigger is KillTrigger.DRAWDOWN
        last = self._last_change
        return (self._state is TradingState.REDUCING and last is not None
                and last.by in {trigger_by(m) for m in DRAWDOWN_MONITORS})

    @property
    def recent(self) -> tuple[RecentOrder, ...]:
        """Orders sent recently (for the duplicate check)."""
        return tuple(self._recent)

    def set_limits(self, limits: RiskLimits) -> None:
        """Replace the limits (the throttle restarts full when its rates change)."""
        rates_changed = (limits.max_orders_per_second, limits.max_orders_per_minute) != (
            self._limits.max_orders_per_second, self._limits.max_orders_per_minute)  # fmt: skip
        if rates_changed:
            self._throttle = Throttle.from_rates(limits.max_orders_per_second, limits.max_orders_per_minute)
        self._limits = limits
        self._kill.scope = limits.kill_cancel_scope
        self._memory.forget()  # new limits: warnings and trips are evaluated afresh

    # --- pre-trade ----------------------------------------------------------------------------

    def check(
        self,
        ticket: OrderTicket,
        account: AccountSnapshot | Callable[[], AccountSnapshot],
        market: MarketSnapshot,
        now: datetime,
        in_flight: Sequence[Order] | Callable[[], Sequence[Order]] = (),
        order_ref: str | None = None,
    ) -> RiskVerdict:
        """The pre-trade verdict for ``ticket`` (see :func:`~tui_trader.risk.checks.pre_trade_check`).

        ``account`` (and ``in_flight``) may be a callable building it: called only when an enabled
        check needs it.
        """
        return pre_trade_check(
            ticket, account, market, self._limits, now, self._throttle, self._state, in_flight,
            recent=self._recent, order_ref=order_ref,
        )  # fmt: skip

    def gate(
        self,
        ticket: OrderTicket,
        account: AccountSnapshot,
        market: MarketSnapshot,
        now: datetime,
        in_flight: Sequence[Order] = (),
        order_ref: str | None = None,
    ) -> tuple[RiskVerdict, OrderDenied | None]:
        """The verdict, and the ``OrderDenied`` event to publish when it denies (never silent)."""
        verdict = self.check(ticket, account, market, now, in_flight, order_ref)
        denied = None if verdict.passed else OrderDenied(now, ticket, verdict, order_ref or "")
        return verdict, denied

    def check_cancel(self, now: datetime) -> RiskVerdict:
        """Cancels always pass, in every trading state."""
        return check_cancel(self._throttle, now)

    def record_sent(self, ticket: OrderTicket, now: datetime, messages: int = 1) -> None:
        """An order (or a modify) went out in ``messages`` placeOrder messages (a bracket's family is one
        each): take as many throttle tokens and remember it for duplicates."""
        self._throttle = self._throttle.record(now, messages)
        self._recent.append(RecentOrder.of(ticket, now))
        self._prune(now)

    @property
    def memory_s(self) -> float:
        """How long a sent message counts: the longest throttle period and the duplicate window."""
        buckets = (self._throttle.per_second, self._throttle.per_minute)
        window = min(self._limits.duplicate_window_s or 0.0, _RECENT_KEEP_S)
        return max([window, *(b.period_s for b in buckets if b is not None)])

    def restore_sent(self, sent: Iterable[MessagesSent], now: datetime) -> None:
        """Replay the messages a previous run sent (its journal's records, at a restart): each takes its
        throttle tokens at its time, and an order placed or modified is remembered for the duplicate
        check, as :meth:`record_sent` and :meth:`record_cancel` did then. Without it a restart starts with
        full buckets and no memory: a crash loop sends a whole budget per restart, and the order just
        sent passes again. Messages older than :attr:`memory_s` change nothing.
        """
        for message in sorted(sent, key=lambda m: m.time):
            self._throttle = self._throttle.record(message.time, message.count)
            if message.ticket is not None:
                self._recent.append(RecentOrder.of(message.ticket, message.time))
        self._prune(now)

    def record_cancel(self, now: datetime, count: int = 1) -> None:
        """Cancels went out: they use throttle tokens (the bucket may go negative)."""
        self._throttle = self._throttle.record(now, count)

    def _prune(self, now: datetime) -> None:
        keep = max(self._limits.duplicate_window_s or 0.0, 1.0)
        horizon = now - timedelta(seconds=min(keep, _RECENT_KEEP_S))
        while self._recent and self._recent[0].time < horizon:
            self._recent.popleft()

    # --- trading state and kill switch --------------------------------------------------------

    def set_state(self, state: TradingState, by: str, reason: str, now: datetime) -> TradingStateChanged | None:
        """Change the trading state, recording who, why and when; None when already in it.

        Asking for the state already in force publishes nothing but still makes the asker its
        owner in :attr:`last_change`: an operator's REDUCING inside the schedule's window is then
        the operator's, and the schedule does not lift it afterwards.

        Raises:
            KillSwitchLatchedError: Leaving HALTED while the kill switch is engaged (reset it instead).
        """
        if state is self._state:
            self._claim(by, reason, now)
            return None
        if self._kill.engaged:
            raise KillSwitchLatchedError("kill switch engaged: reset it with a typed reason first")
        if state is TradingState.ACTIVE and self.held_by_drawdown:
            self._memory.restart_peak()
        return self._change(state, by, reason, now)

    def _change(self, state: TradingState, by: str, reason: str, now: datetime) -> TradingStateChanged:
        event = TradingStateChanged(now, self._state, state, by, reason)
        self._state, self._last_change = state, event
        return event

    def _claim(self, by: str, reason: str, now: datetime) -> None:
        """``by`` asked for the state already in force: it owns it now (no change, no event)."""
        self._last_change = TradingStateChanged(now, self._state, self._state, by, reason)

    def engage_kill(
        self,
        by: str,
        reason: str,
        now: datetime,
        working: Sequence[Order] = (),
        trigger: KillTrigger = KillTrigger.MANUAL,
        flatten: bool = False,
        taken: bool = False,
    ) -> KillDecision:
        """Engage the kill switch: HALTED before this returns; the decision lists the cancels and the records
        (``taken``: a kill latched out of band, recorded as taken: :meth:`KillSwitch.engage`)."""
        decision = self._kill.engage(
            by, reason, now, working=working, previous=self._state, trigger=trigger, flatten=flatten, taken=taken
        )
        if self._state is not TradingState.HALTED:
            self._change(TradingState.HALTED, by, decision.state.reason, now)
        return decision

    def cancels(self, working: Sequence[Order], keep_protection: bool = False) -> KillCancels:
        """The cancels of ``working`` in the kill's scope (:func:`kill_cancels`, as :meth:`engage_kill` lists
        them) for a cancel with no engaging: the operator's cancel-all, those a kill owes after an outage."""
        return self._kill.cancels(working, keep_protection)

    def verify_kill(self, cancels: KillCancels, cancelled: Iterable[str], still_working: Sequence[Order],
                    now: datetime, at_broker: Sequence[str] = (), checked: bool = True, *,
                    said: bool = False) -> Verification:
        """After ``cancels`` (as decided and sent): the verification's event, and a critical alert naming any
        order still working that they do not keep (``at_broker``, ``checked``, ``said``: see
        :meth:`KillSwitch.verify`)."""
        return self._kill.verify(cancels, cancelled, still_working, now, at_broker, checked, said=said)

    def reset_kill(
        self,
        by: str,
        reason: str,
        now: datetime,
        confirm_same_day: bool = False,
        resume: TradingState = TradingState.ACTIVE,
    ) -> ResetDecision:
        """Release the kill switch (typed reason; second confirmation on the day of an auto trip).

        A drawdown trip released restarts the drawdown's peak (:attr:`held_by_drawdown`); the journal-failure
        trigger is armed again (:meth:`journal_failure`)."""
        drawdown = self.held_by_drawdown
        decision = self._kill.reset(by, reason, now, confirm_same_day=confirm_same_day, resume=resume)
        if decision.accepted and drawdown:
            self._memory.restart_peak()
        if decision.accepted:
            self._lasting_seen.discard("journal")
        if decision.accepted and decision.trading_state is not None:
            self._change(decision.trading_state, by, reason.strip(), now)
        return decision

    # --- post-trade and automatic triggers ---------------------------------------------------

    def monitor(self, account: AccountSnapshot, now: datetime) -> tuple[tuple[Alert, ...], tuple[TriggerHit, ...]]:
        """The post-trade monitors' warning alerts and hits on ``account`` (the engine performs each hit:
        :meth:`respond`).

        Warnings and trips are each reported once per trading day per monitor; the triggers whose kill the
        operator reset today stay quiet (:meth:`KillSwitch.released_on`, kept in the kill state: across a restart
        too). They are handed to the memory on every call: a handful of comparisons, and what keeps them right
        across a new trading day, new limits (:meth:`set_limits` forgets) and a reset, with no hook in each.
        """
        self._memory.release(self._kill.released_on(now), now)
        return evaluate_account(account, self._limits, now, self._memory)

    def disconnect(self, disconnected_since: datetime | None, now: datetime, *,
                   ever_connected: bool = True) -> TriggerHit | None:
        """The disconnect trigger's hit, once while the broker stays disconnected past the limit (armed again
        once it is connected, or back under the limit). ``ever_connected``: the link was up at some time this
        run (:func:`disconnect_hit` words a link never made as such)."""
        hit = disconnect_hit(disconnected_since, now, self._limits, ever_connected=ever_connected)
        return self._lasting("disconnect", hit)

    def unknown_orders(self, orders: Sequence[Order], now: datetime) -> TriggerHit | None:
        """The unknown-order trigger's hit, once while any of ``orders`` stays UNKNOWN past the limit (armed
        again once none does)."""
        return self._lasting("unknown", unknown_order_hits(orders, now, self._limits))

    def journal_failure(self, error: str) -> TriggerHit | None:
        """The journal-failure trigger's hit, once per failure: armed again when the journal writes again
        (:meth:`journal_writes`) and when the operator resets the kill switch (:meth:`reset_kill`: the reset's
        own record is written next, and a journal that still fails halts trading again)."""
        return self._lasting("journal", journal_failure_hit(error, self._limits))

    def journal_writes(self) -> None:
        """The journal writes again: its next failure is a new one (:meth:`journal_failure`)."""
        self._lasting("journal", None)

    def position_mismatch(self, ours: Mapping[str, float], broker: Mapping[str, float]) -> TriggerHit | None:
        """The position-mismatch trigger's hit at every reconciliation that finds one, whose response says it; None
        when the positions agree or its action is only an alert (the reconciliation says that mismatch itself)."""
        hit = position_mismatch_hit(ours, broker, self._limits)
        return None if hit is None or hit.action is TriggerAction.ALERT else hit

    def respond(self, hit: TriggerHit, now: datetime) -> TriggerResponse:
        """What the engine performs for ``hit`` now; nothing is applied here.

        ALERT: a warning; a maximum holding time's, while HALTED, says the position is not closed (HALTED denies the
        close: it said "closing" a position left open). REDUCING: an error alert, and REDUCING unless HALTED (already
        REDUCING, it is asked again so the trigger owns it: a schedule's window ending does not lift it); HALTED, the
        alert says trading stays HALTED, and by whom (it said "reducing only" of a state it did not move to). HALTED and
        HALT_AND_FLATTEN: the kill switch, whose critical alert says the hit (its reason is the hit's message); engaged
        already, an account monitor's, a journal failure's or a position mismatch's hit is said in a critical alert of
        its own (:attr:`TriggerHit.said_by_kill`: nothing else would say it), the other triggers' are said by their own
        alerts. A hit that says what it does itself (:attr:`TriggerHit.does`: the account monitors', a journal
        failure's) is said in its own words, at its own level (:attr:`TriggerHit.level`), but for what it does while
        HALTED.
        """
        if hit.action is TriggerAction.ALERT:
            text = hit.message
            if hit.trigger is KillTrigger.HOLDING_TIME and self._state is TradingState.HALTED:
                text = f"{hit.fired} -> not closed: trading is HALTED (by {self._halted_by})"
            return TriggerResponse(hit, self._alert(hit, AlertLevel.WARNING, text, now))
        if hit.action is TriggerAction.REDUCING and self._state is TradingState.HALTED:
            text = f"{hit.fired} -> REDUCING: trading stays HALTED (by {self._halted_by})"
            return TriggerResponse(hit, self._alert(hit, AlertLevel.ERROR, text, now))
        if hit.action is TriggerAction.REDUCING:
            text = hit.message if hit.does is not None else f"{hit.message}: reducing only"
            return TriggerResponse(hit, self._alert(hit, AlertLevel.ERROR, text, now), reduce=True)
        if not self._kill.engaged:
            return TriggerResponse(hit, kill=True)
        if not hit.said_by_kill:
            return TriggerResponse(hit)
        text = f"{hit.message} (the kill switch was engaged already, by {self._kill.state.by})"
        return TriggerResponse(hit, Alert(AlertLevel.CRITICAL, "risk", text, now, kind=hit.monitor))

    @property
    def _halted_by(self) -> str:
        """Who holds trading HALTED: the kill switch's engager, else who set HALTED (a refused account: ``account``)."""
        if self._kill.engaged or self._last_change is None:
            return self._kill.state.by
        return self._last_change.by

    @staticmethod
    def _alert(hit: TriggerHit, level: AlertLevel, text: str, now: datetime) -> Alert:
        """The response's alert for ``hit``: at ``level`` unless the hit has its own (:attr:`TriggerHit.level`)."""
        return Alert(hit.level or level, "risk", text, now, kind=hit.monitor)

    def _lasting(self, key: str, hit: TriggerHit | None) -> TriggerHit | None:
        """``hit`` the first time its condition ``key`` is seen, None while it lasts; gone, it is armed again."""
        if hit is None:
            self._lasting_seen.discard(key)
        elif key not in self._lasting_seen:
            self._lasting_seen.add(key)
            return hit
        return None


@dataclass(frozen=True, slots=True)
class TriggerResponse:
    """What an automatic trigger's hit asks the engine to perform now (:meth:`RiskEngine.respond`).

    In this order: raise ``alert``; then move to REDUCING (``reduce``) or engage the kill switch (``kill``,
    flattening after its cancels when ``flatten``), by :attr:`by`, with the hit's message as the reason.
    """

    hit: TriggerHit
    alert: Alert | None = None
    reduce: bool = False
    kill: bool = False

    @property
    def by(self) -> str:
        """Who the trading state change is recorded as made by: ``risk:<monitor>``."""
        return trigger_by(self.hit.monitor)

    @property
    def flatten(self) -> bool:
        """The kill switch flattens the positions after its cancels."""
        return self.hit.action is TriggerAction.HALT_AND_FLATTEN


def trigger_by(monitor: str) -> str:
    """Who a trading-state change made by trigger ``monitor`` is recorded as made by: ``risk:disconnect``."""
    return f"risk:{monitor}"
