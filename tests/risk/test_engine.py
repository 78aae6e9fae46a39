"""RiskEngine: trading state changes, denials as events, throttle and duplicate memory, monitors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tui_trader.domain import AlertLevel, OrderStatus, Side, TradingState
from tui_trader.domain.events import KillSwitchEngaged, MessagesSent, TradingStateChanged
from tui_trader.risk import KillAction, KillState, KillSwitchLatchedError, KillTrigger, RiskEngine, RiskLimits

from .builders import T0, account, market, order, position, quote, secs, ticket


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


# --- post-trade monitors ------------------------------------------------------------------------


def _loss(amount: float, **kwargs) -> object:
    return account(equity=100_000 - amount, start_of_day_equity=100_000, high_water_mark=100_000, **kwargs)


@pytest.mark.parametrize(("loss", "warnings"), [(499, 0), (500, 1), (799, 1), (800, 2), (999, 2)],
                         ids=["under-50", "at-50", "under-80", "at-80", "under-limit"])  # fmt: skip
def test_evaluate_when_daily_loss_crosses_thresholds_then_warns(loss: float, warnings: int) -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    decision = engine.evaluate(_loss(loss), T0)

    assert len(decision.alerts) == warnings
    assert all(a.level is AlertLevel.WARNING for a in decision.alerts)
    assert engine.state is TradingState.ACTIVE


def test_evaluate_when_daily_loss_hovers_at_threshold_then_alerts_once_per_day() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    counts = [len(engine.evaluate(_loss(loss), T0 + secs(i)).alerts) for i, loss in enumerate([510, 490, 520, 505])]
    next_day = engine.evaluate(_loss(510), T0 + timedelta(days=1))

    assert counts == [1, 0, 0, 0]
    assert len(next_day.alerts) == 1


def test_evaluate_when_daily_loss_at_limit_then_halts_with_automatic_kill() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    decision = engine.evaluate(_loss(1_000, working=[order(ref="W")]), T0)

    assert engine.state is TradingState.HALTED
    assert decision.kill is not None
    assert decision.kill.cancels.refs == ("W",)
    assert engine.kill_state.auto
    assert engine.kill_state.trigger is KillTrigger.DAILY_LOSS
    assert any(isinstance(e, KillSwitchEngaged) for e in decision.events)
    assert any(a.level is AlertLevel.CRITICAL for a in decision.alerts)


def test_monitor_when_daily_loss_at_limit_then_the_hit_reported_once_and_nothing_applied() -> None:
    # The engine reads the monitors here and performs each hit itself: one memory, this one.
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))

    alerts, hits = engine.monitor(_loss(1_000), T0)
    again = engine.monitor(_loss(1_100), T0 + secs(1))

    assert [h.trigger for h in hits] == [KillTrigger.DAILY_LOSS]
    assert [a.level for a in alerts] == [AlertLevel.CRITICAL]
    assert engine.state is TradingState.ACTIVE
    assert not engine.kill_state.engaged
    assert again == ((), ())


def test_evaluate_when_daily_loss_pct_over_limit_then_halts() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit_pct=2.0))

    engine.evaluate(_loss(2_001), T0)

    assert engine.state is TradingState.HALTED


def test_evaluate_when_action_is_halt_and_flatten_then_decision_asks_to_flatten() -> None:
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000, daily_loss_action="halt_and_flatten"))

    decision = engine.evaluate(_loss(1_500), T0)

    assert decision.flatten
    assert KillAction.FLATTEN in decision.kill.actions


def test_evaluate_when_action_is_reducing_then_state_reducing_without_kill() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown=1_000, drawdown_action="reducing"))

    decision = engine.evaluate(_loss(1_200), T0)

    assert engine.state is TradingState.REDUCING
    assert decision.kill is None
    assert decision.state_change is not None
    assert decision.state_change.by == "risk:drawdown"


def test_evaluate_when_action_is_alert_then_state_unchanged() -> None:
    engine = RiskEngine(RiskLimits(max_losing_streak=3, losing_streak_action="alert"))

    decision = engine.evaluate(account(losing_streak=3), T0)

    assert engine.state is TradingState.ACTIVE
    assert [a.level for a in decision.alerts][-1] is AlertLevel.ERROR


def test_evaluate_drawdown_from_tracked_high_water_mark() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown_pct=5.0))
    engine.evaluate(account(equity=120_000, high_water_mark=0.0), T0)

    engine.evaluate(account(equity=113_000, high_water_mark=0.0), T0 + secs(1))

    assert engine.state is TradingState.HALTED  # 7,000 of 120,000 = 5.8 %


def test_evaluate_trade_count_at_limit_then_halts() -> None:
    engine = RiskEngine(RiskLimits(max_daily_trades=10))

    engine.evaluate(account(trades_today=10), T0)

    assert engine.kill_state.trigger is KillTrigger.TRADE_COUNT


def test_evaluate_position_held_too_long_then_alert_names_it() -> None:
    engine = RiskEngine(RiskLimits(max_holding_s=3600))
    acct = account(positions=[position("AAPL", opened_at=T0 - timedelta(hours=2)),
                              position("MSFT", opened_at=T0 - timedelta(minutes=10))])  # fmt: skip

    decision = engine.evaluate(acct, T0)

    assert [h.symbols for h in decision.hits] == [("AAPL",)]
    assert engine.state is TradingState.ACTIVE


# --- automatic triggers outside snapshots -------------------------------------------------------


def test_on_disconnect_when_longer_than_limit_then_halts_once() -> None:
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=60))
    since = T0 - secs(61)

    first = engine.on_disconnect(since, T0)
    second = engine.on_disconnect(since, T0 + secs(1))

    assert first.kill is not None
    assert engine.kill_state.trigger is KillTrigger.DISCONNECT
    assert second.events == ()


def test_on_disconnect_when_shorter_than_limit_then_nothing() -> None:
    engine = RiskEngine(RiskLimits(disconnect_halt_after_s=60))

    assert engine.on_disconnect(T0 - secs(60), T0).events == ()
    assert engine.state is TradingState.ACTIVE


def test_on_unknown_orders_when_stuck_past_timeout_then_halts() -> None:
    engine = RiskEngine(RiskLimits(unknown_order_timeout_s=30))
    stuck = order(status=OrderStatus.UNKNOWN, created_at=T0 - secs(31), ref="U1")

    decision = engine.on_unknown_orders([stuck], T0)

    assert engine.kill_state.trigger is KillTrigger.UNKNOWN_ORDER
    assert "U1" in decision.hits[0].message


def test_on_position_mismatch_then_halts_naming_symbols() -> None:
    engine = RiskEngine(RiskLimits())

    decision = engine.on_position_mismatch({"AAPL": 100}, {"AAPL": 90, "MSFT": 5}, T0)

    assert decision.hits[0].symbols == ("AAPL", "MSFT")
    assert engine.state is TradingState.HALTED


def test_on_position_mismatch_when_positions_agree_then_nothing() -> None:
    engine = RiskEngine(RiskLimits())

    assert engine.on_position_mismatch({"AAPL": 100}, {"AAPL": 100.0}, T0).hits == ()


def test_on_journal_failure_then_halts_every_time_it_fails() -> None:
    engine = RiskEngine(RiskLimits())
    engine.on_journal_failure("disk full", T0)
    engine.reset_kill("alice", "disk cleaned", T0 + secs(60))

    engine.on_journal_failure("disk full again", T0 + secs(120))

    assert engine.state is TradingState.HALTED


def test_flatten_preview_keeps_engine_state_and_lists_tickets() -> None:
    engine = RiskEngine(RiskLimits())
    acct = account(positions=[position(quantity=-10)])

    preview = engine.flatten_preview(acct, market(quote()), T0)

    assert preview.tickets[0].side is Side.BUY
    assert engine.check_flatten(preview.tickets[0], acct).passed
    assert preview.trading_state is TradingState.REDUCING


# --- the drawdown's peak after the operator releases a drawdown trip -----------------------------------


def _equity(value: float) -> object:
    return account(equity=value, high_water_mark=0.0)  # the engine's memory keeps the peak


def test_reset_after_a_drawdown_trip_then_the_drawdown_counts_from_the_equity_at_the_reset() -> None:
    # Arrange: a peak of 120,000 and a 2,000 drawdown: tripped, then released by the operator.
    engine = RiskEngine(RiskLimits(max_drawdown=1_000))
    engine.evaluate(_equity(120_000), T0)
    engine.evaluate(_equity(118_000), T0 + secs(1))
    assert engine.kill_state.trigger is KillTrigger.DRAWDOWN
    # Act
    assert engine.reset_kill("alice", "drawdown accepted", T0 + secs(2), confirm_same_day=True).accepted
    next_day = engine.evaluate(_equity(118_000), T0 + timedelta(days=1))
    # Assert: the accepted drawdown does not trip again; a new one of the limit does, that same day.
    assert next_day.hits == ()
    assert engine.state is TradingState.ACTIVE
    engine.evaluate(_equity(117_000), T0 + timedelta(days=1, seconds=1))
    assert engine.kill_state.trigger is KillTrigger.DRAWDOWN


def test_resume_from_a_drawdown_reducing_then_the_drawdown_counts_from_the_equity_then() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown=1_000, drawdown_action="reducing"))
    engine.evaluate(_equity(120_000), T0)
    engine.evaluate(_equity(118_000), T0 + secs(1))
    assert engine.held_by_drawdown

    engine.set_state(TradingState.ACTIVE, "alice", "drawdown accepted", T0 + secs(2))
    engine.evaluate(_equity(118_000), T0 + timedelta(days=1))

    assert engine.state is TradingState.ACTIVE


def test_reset_after_another_trigger_then_the_drawdown_peak_is_kept() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown=5_000))
    engine.evaluate(_equity(120_000), T0)
    engine.engage_kill("alice", "fat finger", T0 + secs(1))
    engine.reset_kill("alice", "fixed", T0 + secs(2))

    engine.evaluate(_equity(114_000), T0 + secs(3))

    assert engine.kill_state.trigger is KillTrigger.DRAWDOWN


# --- a trigger the operator released stays quiet that day, across a restart ----------------------------


def _restarted(engine: RiskEngine) -> RiskEngine:
    """A new RiskEngine from the kill state the journal keeps (a restart)."""
    return RiskEngine(engine.limits, KillState.from_dict(engine.kill_state.to_dict()))


def test_daily_loss_reset_then_a_restart_the_same_day_does_not_trip_again_and_the_next_day_does() -> None:
    # Arrange: a daily-loss trip, reset by the operator (confirmed twice).
    engine = RiskEngine(RiskLimits(daily_loss_limit=1_000))
    engine.evaluate(_loss(1_500), T0)
    assert engine.reset_kill("alice", "loss accepted", T0 + secs(1), confirm_same_day=True).accepted
    # Act: a restart the same day, the loss unchanged (deeper, even).
    again = _restarted(engine)
    same_day = again.evaluate(_loss(1_800), T0 + secs(60))
    # Assert
    assert same_day.hits == ()
    assert same_day.alerts == ()
    assert again.state is TradingState.ACTIVE
    assert again.evaluate(_loss(1_500), T0 + timedelta(days=1)).kill is not None


def test_release_of_one_trigger_kept_through_a_manual_kill_and_its_reset_the_same_day() -> None:
    engine = RiskEngine(RiskLimits(max_daily_trades=10, daily_loss_limit=1_000))
    engine.evaluate(account(trades_today=10), T0)
    engine.reset_kill("alice", "enough for today, exits only", T0 + secs(1), confirm_same_day=True)
    engine.engage_kill("alice", "fat finger", T0 + secs(2))
    engine.reset_kill("alice", "fixed", T0 + secs(3))

    again = _restarted(engine)

    assert again.released_on(T0 + secs(4)) == (KillTrigger.TRADE_COUNT,)
    assert again.evaluate(account(trades_today=10), T0 + secs(4)).hits == ()
    assert again.evaluate(_loss(1_500, trades_today=10), T0 + secs(5)).kill is not None  # another trigger trips


def test_kill_state_with_released_triggers_round_trips() -> None:
    state = KillState(released=(KillTrigger.DAILY_LOSS, KillTrigger.TRADE_COUNT), released_at=T0)

    assert KillState.from_dict(state.to_dict()) == state
    assert KillState.from_dict({"engaged": False}) == KillState()  # a journal written before releases were kept
