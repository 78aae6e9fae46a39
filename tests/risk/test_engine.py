"""RiskEngine: trading state changes, denials as events, throttle and duplicate memory, monitors and triggers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from tui_trader.domain import Alert, AlertLevel, OrderStatus, TradingState
from tui_trader.domain.events import AlertRaised, KillSwitchEngaged, MessagesSent, TradingStateChanged
from tui_trader.risk import (
    KillAction,
    KillState,
    KillSwitchLatchedError,
    KillTrigger,
    RiskEngine,
    RiskLimits,
    TriggerAction,
    TriggerHit,
)
from tui_trader.risk.monitors import disconnect_hit

from .builders import T0, account, market, order, position, secs, ticket


def test_set_state_records_who_why_and_when() -> None:
    engine = RiskEngine(RiskLimits())

    event = engine.set_state(TradingState.REDUCING, "alice", "news pending", T0)

    assert event == TradingStateChanged(T0, TradingState.ACTIVE, TradingState.REDUCING, "alice", "news pending")
    assert engine.state is TradingState.REDUCING
    assert engine.last_change == event


def test_set_state_when_unchanged_then_no_event() -> None:
    assert RiskEngine(RiskLimits()).set_state(TradingState.ACTIVE, "alice", "x", T0) is None


def test_set_state_when_already_in_it_then_no_event_but_the_asker_owns_it() -> None:
    engine = RiskEngine(RiskLimits())
    engine.set_state(TradingState.REDUCING, "schedule", "gateway restart", T0)

    event = engine.set_state(TradingState.REDUCING, "alice", "winding down", T0 + secs(5))

    assert event is None
    assert engine.last_change == TradingStateChanged(T0 + secs(5), TradingState.REDUCING, TradingState.REDUCING,
                                                     "alice", "winding down")


def test_set_state_when_kill_engaged_then_refused() -> None:
    engine = RiskEngine(RiskLimits())
    engine.engage_kill("alice", "x", T0)

    with pytest.raises(KillSwitchLatchedError):
        engine.set_state(TradingState.ACTIVE, "alice", "override", T0)


def test_engine_when_restored_with_engaged_kill_state_then_starts_halted() -> None:
    engine = RiskEngine(RiskLimits(), kill_state=KillState(True, "alice", "x", T0))

    assert engine.state is TradingState.HALTED
    assert not engine.check(ticket(), account(), market(), T0).passed


def test_gate_when_denied_then_returns_order_denied_event() -> None:
    engine = RiskEngine(RiskLimits(max_order_quantity=5))

    verdict, denied = engine.gate(ticket(quantity=10), account(), market(), T0)

    assert not verdict.passed
    assert denied is not None
    assert denied.verdict is verdict
    assert denied.ticket.quantity == 10


def test_gate_when_passed_then_no_denial() -> None:
    _, denied = RiskEngine(RiskLimits()).gate(ticket(), account(), market(), T0)

    assert denied is None


def test_record_sent_then_same_order_is_a_duplicate_inside_window() -> None:
    engine = RiskEngine(RiskLimits(duplicate_window_s=5))
    engine.record_sent(ticket(), T0)

    assert not engine.check(ticket(), account(), market(), T0 + secs(1)).passed
    assert engine.check(ticket(), account(), market(), T0 + secs(6)).passed


def test_record_sent_and_cancels_use_the_throttle() -> None:
    engine = RiskEngine(RiskLimits(max_orders_per_second=2))
    engine.record_sent(ticket(), T0)
    engine.record_cancel(T0)

    assert not engine.check(ticket(limit_price=99), account(), market(), T0).passed
    assert engine.check_cancel(T0).passed


def test_restore_sent_when_cancels_filled_the_second_then_the_next_order_waits_for_the_next_second() -> None:
    engine = RiskEngine(RiskLimits(max_orders_per_second=3))

    engine.restore_sent([MessagesSent(T0, "place", 1, "A", ticket()), MessagesSent(T0, "cancel", 2, "A")], T0)

    verdict = engine.check(ticket(limit_price=99), account(), market(), T0 + timedelta(milliseconds=100))
    assert [c.name for c in verdict.failures] == ["throttle_per_second"]
    assert engine.check(ticket(limit_price=99), account(), market(), T0 + secs(1)).passed


def test_restore_sent_when_an_order_was_placed_then_it_is_a_duplicate_and_a_cancel_is_not_remembered() -> None:
    engine = RiskEngine(RiskLimits(duplicate_window_s=60))

    engine.restore_sent([MessagesSent(T0, "place", 1, "A", ticket()), MessagesSent(T0, "cancel", 1, "A")], T0)

    assert [c.name for c in engine.check(ticket(), account(), market(), T0 + secs(5)).failures] == ["duplicate"]
    assert len(engine.recent) == 1


def test_restore_sent_when_the_minute_is_spent_by_cancels_then_the_next_order_is_throttled() -> None:
    engine = RiskEngine(RiskLimits(max_orders_per_minute=3))

    engine.restore_sent([MessagesSent(T0, "place", 1, "A", ticket()), MessagesSent(T0, "cancel", 2, "A")], T0)

    verdict = engine.check(ticket(limit_price=99), account(), market(), T0 + secs(1))
    assert [c.name for c in verdict.failures] == ["throttle_per_minute"]


def test_engage_kill_then_halted_synchronously_and_reset_resumes() -> None:
    engine = RiskEngine(RiskLimits())

    decision = engine.engage_kill("alice", "stop", T0, working=[order(ref="A")])

    assert engine.state is TradingState.HALTED
    assert decision.cancels.refs == ("A",)
    assert not engine.reset_kill("alice", "", T0).accepted
    assert engine.reset_kill("alice", "ok now", T0, resume=TradingState.REDUCING).accepted
    assert engine.state is TradingState.REDUCING


# --- post-trade monitors and automatic triggers: which hits fire now, and what each asks for ---------------
# The engine performs each hit as RiskEngine.respond decides it (Engine.apply_hit, tests/engine/test_triggers.py).


def _loss(amount: float, **kwargs) -> object:
    return account(equity=100_000 - amount, start_of_day_equity=100_000, high_water_mark=100_000, **kwargs)


def _trip(engine: RiskEngine, acct: object, now: datetime) -> tuple[TriggerHit, ...]:
    """The monitors' hits on ``acct``, each performed on ``engine`` as the engine does (Engine.apply_hit: the
    state change or the kill goes through these same RiskEngine methods; the cancels are the engine's I/O)."""
    _, hits = engine.monitor(acct, now)
    for hit in hits:
        response = engine.respond(hit, now)
        if response.reduce:
            engine.set_state(TradingState.REDUCING, response.by, hit.message, now)
        elif response.kill:
            engine.engage_kill(response.by, hit.message, now, trigger=hit.trigger, flatten=response.flatten)
    return hits


def _assert_kills(engine: RiskEngine, hit: TriggerHit | None, trigger: KillTrigger) -> TriggerHit:
    """``hit``, asserted to have come, to be ``trigger``'s and to have the kill switch as the engine's response."""
    assert hit is not None
    assert hit.trigger is trigger
    assert engine.respond(hit, T0).kill
    return hit


@pytest.mark.parametrize(("loss", "warnings"), [(499, 0), (500, 1), (799, 1), (800, 2), (999, 2)],
                         ids=["under-50", "at-50", "under-80", "at-80", "under-limit"])  # fmt: skip
def test_monitor_when_daily_loss_crosses_thresholds_then_warns(loss: float, warnings: int) -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    alerts, hits = engine.monitor(_loss(loss), T0)

    assert len(alerts) == warnings
    assert all(a.level is AlertLevel.WARNING for a in alerts)
    assert hits == ()


def test_monitor_when_daily_loss_hovers_at_threshold_then_alerts_once_per_day() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    counts = [len(engine.monitor(_loss(loss), T0 + secs(i))[0]) for i, loss in enumerate([510, 490, 520, 505])]
    next_day, _ = engine.monitor(_loss(510), T0 + timedelta(days=1))

    assert counts == [1, 0, 0, 0]
    assert len(next_day) == 1


def test_respond_when_daily_loss_at_limit_then_the_kill_switch_by_the_monitor() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))
    alerts, (hit,) = engine.monitor(_loss(1_000), T0)

    response = engine.respond(hit, T0)

    # Said once, by the kill switch: the monitor's own critical alert beside it was a second message for one trip.
    assert alerts == ()
    assert hit.trigger is KillTrigger.DAILY_LOSS
    assert (response.kill, response.reduce, response.alert, response.flatten) == (True, False, None, False)
    assert response.by == "risk:daily_loss"
    assert engine.state is TradingState.ACTIVE  # nothing applied: the engine engages the kill (its cancels are I/O)
    decision = engine.engage_kill(response.by, hit.message, T0, [order(ref="W")], hit.trigger, response.flatten)
    assert engine.state is TradingState.HALTED
    assert decision.cancels.refs == ("W",)
    assert engine.kill_state.auto
    assert engine.kill_state.trigger is KillTrigger.DAILY_LOSS
    assert any(isinstance(e, KillSwitchEngaged) for e in decision.events)
    (said,) = [e.alert for e in decision.events if isinstance(e, AlertRaised)]
    assert (said.level, said.source, said.kind) == (AlertLevel.CRITICAL, "kill_switch", "kill")
    assert said.text.startswith("kill switch engaged by risk:daily_loss (daily_loss): daily_loss limit reached: "
                                "$1,000.00 (limit $1,000.00) -> HALTED. Entries cancelled; the open positions' "
                                "protective orders")


def test_respond_when_the_kill_switch_is_engaged_already_then_no_kill_and_the_hit_said_in_its_own_alert() -> None:
    # No kill switch alert to say it: the trip is said once, by itself (it is not reported again today).
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))
    engine.engage_kill("alice", "fat finger", T0)
    alerts, (hit,) = engine.monitor(_loss(1_000), T0 + secs(1))

    response = engine.respond(hit, T0 + secs(1))

    assert (response.kill, response.reduce, alerts) == (False, False, ())
    assert response.alert == Alert(AlertLevel.CRITICAL, "risk", "daily_loss limit reached: $1,000.00 (limit "
                                   "$1,000.00) -> HALTED (the kill switch was engaged already, by alice)",
                                   T0 + secs(1), kind="daily_loss")


def test_respond_when_the_kill_switch_is_engaged_already_and_a_trigger_says_itself_then_nothing_more() -> None:
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=30, disconnect_action=TriggerAction.HALTED))
    engine.engage_kill("alice", "fat finger", T0)
    hit = engine.disconnect(T0, T0 + secs(31))
    assert hit is not None

    response = engine.respond(hit, T0 + secs(31))

    assert (response.kill, response.reduce, response.alert) == (False, False, None)


def test_monitor_when_daily_loss_at_limit_then_the_hit_reported_once_and_nothing_applied() -> None:
    # The engine reads the monitors here and performs each hit itself: one memory, this one.
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    alerts, hits = engine.monitor(_loss(1_000), T0)
    again = engine.monitor(_loss(1_100), T0 + secs(1))

    assert [h.trigger for h in hits] == [KillTrigger.DAILY_LOSS]
    assert alerts == ()  # the kill switch it engages says it
    assert engine.state is TradingState.ACTIVE
    assert not engine.kill_state.engaged
    assert again == ((), ())


def test_monitor_when_daily_loss_pct_over_limit_then_the_kill_switch() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit_pct=2.0))

    _, hits = engine.monitor(_loss(2_001), T0)

    assert [h.monitor for h in hits] == ["daily_loss_pct"]
    assert engine.respond(hits[0], T0).kill


def test_respond_when_action_is_halt_and_flatten_then_the_kill_flattens() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000, daily_loss_action="halt_and_flatten"))
    _, (hit,) = engine.monitor(_loss(1_500), T0)

    response = engine.respond(hit, T0)

    assert response.kill
    assert response.flatten
    decision = engine.engage_kill(response.by, hit.message, T0, trigger=hit.trigger, flatten=response.flatten)
    assert KillAction.FLATTEN in decision.actions


def test_respond_when_action_is_reducing_then_reducing_by_the_monitor_without_kill_said_once() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown=1_000, drawdown_action="reducing"))
    alerts, (hit,) = engine.monitor(_loss(1_200), T0)

    response = engine.respond(hit, T0)

    assert (response.reduce, response.kill) == (True, False)
    # Said once, by the response (it was said twice: "… -> REDUCING" and "… -> REDUCING: reducing only").
    assert alerts == ()
    assert response.alert == Alert(AlertLevel.ERROR, "risk", "drawdown limit reached: $1,200.00 (limit $1,000.00) "
                                   "-> REDUCING", T0, kind="drawdown")
    engine.set_state(TradingState.REDUCING, response.by, hit.message, T0)
    assert engine.state is TradingState.REDUCING
    assert engine.last_change is not None
    assert engine.last_change.by == "risk:drawdown"


@pytest.mark.parametrize(("state", "reduce", "does"), [
    (TradingState.REDUCING, True, "REDUCING"),
    # The monitor's own alert said "-> REDUCING", and trading stayed HALTED.
    (TradingState.HALTED, False, "REDUCING: trading stays HALTED (by schedule)"),
])
def test_respond_when_reducing_hit_and_not_active_then_reducing_claimed_but_halted_kept(
        state: TradingState, reduce: bool, does: str) -> None:
    # Already REDUCING: asked again, so the trigger owns it (a schedule's window ending does not lift it).
    engine = RiskEngine(RiskLimits(max_drawdown=1_000, drawdown_action="reducing"))
    engine.set_state(state, "schedule", "gateway restart", T0)
    alerts, (hit,) = engine.monitor(_loss(1_200), T0)

    response = engine.respond(hit, T0)

    assert (response.reduce, response.kill) == (reduce, False)
    assert alerts == ()
    assert response.alert == Alert(AlertLevel.ERROR, "risk", f"drawdown limit reached: $1,200.00 (limit $1,000.00) "
                                   f"-> {does}", T0, kind="drawdown")


def test_respond_when_holding_time_reducing_hit_while_halted_then_it_does_not_say_closing() -> None:
    # "-> REDUCING, closing SPY LONG 11 (max holding time)", while HALTED denied the close.
    engine = RiskEngine(RiskLimits(max_holding_s=90, holding_time_action="reducing"))
    engine.engage_kill("alice", "going for lunch", T0)
    alerts, (hit,) = engine.monitor(account(positions=[position("SPY", quantity=11, opened_at=T0 - secs(363))]), T0)

    response = engine.respond(hit, T0)

    assert (response.reduce, response.kill, alerts) == (False, False, ())
    assert response.alert == Alert(AlertLevel.ERROR, "risk", "holding_time:SPY limit reached: 363s (limit 90s) -> "
                                   "REDUCING: trading stays HALTED (by alice)", T0, kind="holding_time:SPY")


@pytest.mark.parametrize(("halt", "by"), [
    (lambda engine: engine.engage_kill("alice", "going for lunch", T0), "alice"),
    (lambda engine: engine.set_state(TradingState.HALTED, "schedule", "gateway restart", T0), "schedule"),
], ids=["kill", "halted"])
def test_respond_when_holding_time_alert_hit_while_halted_then_it_says_not_closed(
        halt: Callable[[RiskEngine], object], by: str) -> None:
    # "-> closing SPY LONG 11 (max holding time)", while HALTED denied the close.
    engine = RiskEngine(RiskLimits(max_holding_s=90, holding_time_action="alert"))
    halt(engine)
    alerts, (hit,) = engine.monitor(account(positions=[position("SPY", quantity=11, opened_at=T0 - secs(363))]), T0)

    response = engine.respond(hit, T0)

    assert (response.reduce, response.kill, alerts) == (False, False, ())
    assert response.alert == Alert(AlertLevel.ERROR, "risk", "holding_time:SPY limit reached: 363s (limit 90s) -> "
                                   f"not closed: trading is HALTED (by {by})", T0, kind="holding_time:SPY")


def test_respond_when_action_is_alert_then_a_warning_and_the_state_unchanged() -> None:
    engine = RiskEngine(RiskLimits(max_losing_streak=3, losing_streak_action="alert"))
    alerts, (hit,) = engine.monitor(account(losing_streak=3), T0)

    response = engine.respond(hit, T0)

    assert alerts == ()  # said once, by the response
    assert response.alert == Alert(AlertLevel.ERROR, "risk", "losing_streak limit reached: 3 losses (limit 3 "
                                   "losses) -> ALERT", T0, kind="losing_streak")
    assert (response.reduce, response.kill) == (False, False)
    assert engine.state is TradingState.ACTIVE


def test_monitor_drawdown_from_tracked_high_water_mark() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown_pct=5.0))
    engine.monitor(account(equity=120_000, high_water_mark=0.0), T0)

    _, hits = engine.monitor(account(equity=113_000, high_water_mark=0.0), T0 + secs(1))

    assert [h.trigger for h in hits] == [KillTrigger.DRAWDOWN]  # 7,000 of 120,000 = 5.8 %


def test_monitor_trade_count_at_limit_then_the_kill_switch() -> None:
    engine = RiskEngine(RiskLimits(max_daily_trades=10))

    _, (hit,) = engine.monitor(account(trades_today=10), T0)

    _assert_kills(engine, hit, KillTrigger.TRADE_COUNT)


def test_monitor_position_held_too_long_then_the_hit_names_it() -> None:
    engine = RiskEngine(RiskLimits(max_holding_s=3600))
    acct = account(positions=[position("AAPL", opened_at=T0 - timedelta(hours=2)),
                              position("MSFT", opened_at=T0 - timedelta(minutes=10))])  # fmt: skip

    _, hits = engine.monitor(acct, T0)

    assert [h.symbols for h in hits] == [("AAPL",)]
    response = engine.respond(hits[0], T0)  # an alert only, by default: the state is left as it is
    assert (response.reduce, response.kill) == (False, False)
    assert response.alert is not None


def test_monitor_position_held_too_long_then_its_alert_says_the_position_is_closed() -> None:
    # "holding_time:SPY limit reached: 363.01s (limit 90s) -> ALERT" while the engine sold the position.
    engine = RiskEngine(RiskLimits(max_holding_s=90))
    acct = account(positions=[position("SPY", quantity=11, opened_at=T0 - secs(363)),
                              position("QQQ", quantity=-5, opened_at=T0 - secs(100))])  # fmt: skip

    _, hits = engine.monitor(acct, T0)

    said = [engine.respond(hit, T0).alert for hit in hits]
    assert sorted(a.text for a in said if a is not None and a.level is AlertLevel.ERROR) == [
        "holding_time:QQQ limit reached: 100s (limit 90s) -> closing QQQ SHORT 5 (max holding time)",
        "holding_time:SPY limit reached: 363s (limit 90s) -> closing SPY LONG 11 (max holding time)"]


# --- automatic triggers outside snapshots: each fires once while its condition lasts -------------------


def test_disconnect_when_longer_than_limit_then_fires_once_while_it_lasts_and_again_after_a_reconnect() -> None:
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=60))
    since = T0 - secs(61)

    first = engine.disconnect(since, T0)
    second = engine.disconnect(since, T0 + secs(1))
    engine.disconnect(None, T0 + secs(2))  # connected again
    next_outage = engine.disconnect(T0 + secs(3), T0 + secs(65))

    _assert_kills(engine, first, KillTrigger.DISCONNECT)
    assert second is None
    assert next_outage is not None


def test_disconnect_when_the_operator_resets_the_kill_in_the_outage_then_it_does_not_fire_again() -> None:
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=60))
    hit = engine.disconnect(T0 - secs(61), T0)
    assert hit is not None
    engine.engage_kill("risk:disconnect", hit.message, T0, trigger=hit.trigger)
    engine.reset_kill("alice", "gateway restarting, known", T0 + secs(1))

    assert engine.disconnect(T0 - secs(61), T0 + secs(2)) is None


def test_disconnect_when_the_link_was_never_up_then_it_says_no_connection_not_disconnected() -> None:
    # 30 s without a gateway that never answered said "broker disconnected for 30s": a link never made.
    limits = RiskLimits(disconnect_halt_after_s=30, disconnect_action=TriggerAction.REDUCING)
    since = T0 - secs(31)

    never = RiskEngine(limits).disconnect(since, T0, ever_connected=False)
    lost = disconnect_hit(since, T0, limits, ever_connected=True)

    assert never is not None
    assert lost is not None
    assert never.message == "no connection to the broker for 31s (limit 30s)"
    assert RiskEngine(limits).respond(never, T0).alert == Alert(
        AlertLevel.ERROR, "risk", "no connection to the broker for 31s (limit 30s): reducing only", T0,
        kind="disconnect")
    assert lost.message == "broker disconnected for 31s (limit 30s)"


@pytest.mark.parametrize(("halt", "by"), [("kill", "alice"), ("state", "account")])
def test_respond_when_reducing_hit_while_halted_then_it_says_trading_stays_halted_and_by_whom(
        halt: str, by: str) -> None:
    # It said "…: reducing only", and trading stayed HALTED (by the kill switch, or by a refused account's HALTED).
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=30, disconnect_action=TriggerAction.REDUCING))
    if halt == "kill":
        engine.engage_kill(by, "going for lunch", T0)
    else:
        engine.set_state(TradingState.HALTED, by, "trading refused: not a paper account", T0)
    hit = engine.disconnect(T0 - secs(31), T0)
    assert hit is not None

    response = engine.respond(hit, T0)

    assert (response.reduce, response.kill) == (False, False)
    assert response.alert == Alert(AlertLevel.ERROR, "risk", "broker disconnected for 31s (limit 30s) -> REDUCING: "
                                   f"trading stays HALTED (by {by})", T0, kind="disconnect")


def test_disconnect_when_shorter_than_limit_then_nothing() -> None:
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=60))

    assert engine.disconnect(T0 - secs(60), T0) is None
    assert engine.state is TradingState.ACTIVE


def test_unknown_orders_when_stuck_past_timeout_then_fires_once_while_one_is_stuck() -> None:
    engine = RiskEngine(RiskLimits(unknown_order_timeout_s=30))
    stuck = order(status=OrderStatus.UNKNOWN, created_at=T0 - secs(31), ref="U1")

    hit = engine.unknown_orders([stuck], T0)
    again = engine.unknown_orders([stuck], T0 + secs(1))
    engine.unknown_orders([], T0 + secs(2))  # settled

    assert "U1" in _assert_kills(engine, hit, KillTrigger.UNKNOWN_ORDER).message
    assert again is None
    assert engine.unknown_orders([stuck], T0 + secs(3)) is not None


def test_position_mismatch_then_the_kill_switch_naming_symbols_at_every_reconciliation() -> None:
    engine = RiskEngine(RiskLimits())

    hit = engine.position_mismatch({"AAPL": 100}, {"AAPL": 90, "MSFT": 5})

    assert hit is not None
    assert hit.symbols == ("AAPL", "MSFT")
    assert hit.message == "position mismatch with the broker: AAPL: ours 100, broker 90, MSFT: ours 0, broker 5"
    assert hit.said_by_kill  # the kill switch's alert says it, its reason this message
    assert engine.respond(hit, T0).kill
    assert engine.position_mismatch({"AAPL": 100}, {"AAPL": 90, "MSFT": 5}) is not None


def test_position_mismatch_when_positions_agree_or_the_action_is_only_an_alert_then_nothing() -> None:
    # The reconciliation says every mismatch itself: an alert-only trigger adds nothing.
    engine = RiskEngine(RiskLimits())
    alert_only = RiskEngine(RiskLimits(position_mismatch_action="alert"))

    assert engine.position_mismatch({"AAPL": 100}, {"AAPL": 100.0}) is None
    assert alert_only.position_mismatch({"AAPL": 100}, {"AAPL": 90}) is None


def test_journal_failure_then_fires_once_per_failure_and_again_once_it_wrote_or_after_a_reset() -> None:
    engine = RiskEngine(RiskLimits())

    first = engine.journal_failure("disk full")
    still = engine.journal_failure("disk full")
    engine.journal_writes()
    after_writing = engine.journal_failure("disk full again")
    assert after_writing is not None
    engine.engage_kill("risk:journal_failure", after_writing.message, T0, trigger=after_writing.trigger)
    engine.reset_kill("alice", "disk cleaned", T0 + secs(60))
    after_reset = engine.journal_failure("disk still full")

    _assert_kills(engine, first, KillTrigger.JOURNAL_FAILURE)
    assert still is None
    assert after_reset is not None


# --- the drawdown's peak after the operator releases a drawdown trip -----------------------------------


def _equity(value: float) -> object:
    return account(equity=value, high_water_mark=0.0)  # the engine's memory keeps the peak


def test_reset_after_a_drawdown_trip_then_the_drawdown_counts_from_the_equity_at_the_reset() -> None:
    # Arrange: a peak of 120,000 and a 2,000 drawdown: tripped, then released by the operator.
    engine = RiskEngine(RiskLimits(max_drawdown=1_000))
    _trip(engine, _equity(120_000), T0)
    _trip(engine, _equity(118_000), T0 + secs(1))
    assert engine.kill_state.trigger is KillTrigger.DRAWDOWN
    # Act
    assert engine.reset_kill("alice", "drawdown accepted", T0 + secs(2), confirm_same_day=True).accepted
    next_day = _trip(engine, _equity(118_000), T0 + timedelta(days=1))
    # Assert: the accepted drawdown does not trip again; a new one of the limit does, that same day.
    assert next_day == ()
    assert engine.state is TradingState.ACTIVE
    _trip(engine, _equity(117_000), T0 + timedelta(days=1, seconds=1))
    assert engine.kill_state.trigger is KillTrigger.DRAWDOWN


def test_resume_from_a_drawdown_reducing_then_the_drawdown_counts_from_the_equity_then() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown=1_000, drawdown_action="reducing"))
    _trip(engine, _equity(120_000), T0)
    _trip(engine, _equity(118_000), T0 + secs(1))
    assert engine.held_by_drawdown

    engine.set_state(TradingState.ACTIVE, "alice", "drawdown accepted", T0 + secs(2))
    _trip(engine, _equity(118_000), T0 + timedelta(days=1))

    assert engine.state is TradingState.ACTIVE


def test_reset_after_another_trigger_then_the_drawdown_peak_is_kept() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown=5_000))
    _trip(engine, _equity(120_000), T0)
    engine.engage_kill("alice", "fat finger", T0 + secs(1))
    engine.reset_kill("alice", "fixed", T0 + secs(2))

    _trip(engine, _equity(114_000), T0 + secs(3))

    assert engine.kill_state.trigger is KillTrigger.DRAWDOWN


# --- a trigger the operator released stays quiet that day, across a restart ----------------------------


def _restarted(engine: RiskEngine) -> RiskEngine:
    """A new RiskEngine from the kill state the journal keeps (a restart)."""
    return RiskEngine(engine.limits, KillState.from_dict(engine.kill_state.to_dict()))


def test_daily_loss_reset_then_a_restart_the_same_day_does_not_trip_again_and_the_next_day_does() -> None:
    # Arrange: a daily-loss trip, reset by the operator (confirmed twice).
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))
    _trip(engine, _loss(1_500), T0)
    assert engine.reset_kill("alice", "loss accepted", T0 + secs(1), confirm_same_day=True).accepted
    # Act: a restart the same day, the loss unchanged (deeper, even).
    again = _restarted(engine)
    same_day = again.monitor(_loss(1_800), T0 + secs(60))
    # Assert
    assert same_day == ((), ())
    assert again.state is TradingState.ACTIVE
    _trip(again, _loss(1_500), T0 + timedelta(days=1))
    assert again.kill_state.trigger is KillTrigger.DAILY_LOSS


def test_release_of_one_trigger_kept_through_a_manual_kill_and_its_reset_the_same_day() -> None:
    engine = RiskEngine(RiskLimits(max_daily_trades=10, daily_loss_limit=1_000))
    _trip(engine, account(trades_today=10), T0)
    engine.reset_kill("alice", "enough for today, exits only", T0 + secs(1), confirm_same_day=True)
    engine.engage_kill("alice", "fat finger", T0 + secs(2))
    engine.reset_kill("alice", "fixed", T0 + secs(3))

    again = _restarted(engine)

    assert again.kill_state.released == (KillTrigger.TRADE_COUNT,)
    assert again.monitor(account(trades_today=10), T0 + secs(4))[1] == ()
    assert [h.trigger for h in _trip(again, _loss(1_500, trades_today=10), T0 + secs(5))] == [KillTrigger.DAILY_LOSS]
    assert again.kill_state.trigger is KillTrigger.DAILY_LOSS  # another trigger trips


def test_kill_state_with_released_triggers_round_trips() -> None:
    state = KillState(released=(KillTrigger.DAILY_LOSS, KillTrigger.TRADE_COUNT), released_at=T0)

    assert KillState.from_dict(state.to_dict()) == state
    assert KillState.from_dict({"engaged": False}) == KillState()  # a journal written before releases were kept


def test_monitor_position_held_too_long_when_its_action_halts_then_its_words_promise_no_close() -> None:
    # The kill switch engages first and denies the close: "-> HALTED, closing SPY LONG 11" left the position open.
    engine = RiskEngine(RiskLimits(max_holding_s=90, holding_time_action=TriggerAction.HALTED))
    acct = account(positions=[position("SPY", quantity=11, opened_at=T0 - secs(363))])

    _, hits = engine.monitor(acct, T0)

    assert [h.message for h in hits] == ["holding_time:SPY limit reached: 363s (limit 90s) -> HALTED"]
