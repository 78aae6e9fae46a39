"""Kill switch: engage, verify, latch across restarts, audited reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tui_trader.domain import AlertLevel, Order, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.events import (
    AlertRaised,
    KillChecked,
    KillLatchTaken,
    KillReport,
    KillSwitchEngaged,
    KillSwitchReset,
    OperatorAction,
    TradingStateChanged,
)
from tui_trader.risk import (
    CancelScope,
    KillAction,
    KillCancels,
    KillState,
    KillSwitch,
    KillTrigger,
    kill_cancels,
)

from .builders import T0, order, ticket


def _kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_engage_when_released_then_halted_with_cancel_and_verify_actions() -> None:
    # Arrange
    switch = KillSwitch()
    working = [order(ref="A"), order(ref="B", status=OrderStatus.FILLED)]
    # Act
    decision = switch.engage("alice", "runaway strategy", T0, working=working)
    # Assert
    assert switch.engaged
    assert switch.start_state is TradingState.HALTED
    assert decision.trading_state is TradingState.HALTED
    assert decision.actions == (KillAction.SET_HALTED, KillAction.CANCEL_OWN, KillAction.VERIFY_CANCELLED)
    assert decision.cancels.refs == ("A",)
    assert _kinds(decision.events) == ["TradingStateChanged", "KillSwitchEngaged", "OperatorAction", "AlertRaised"]


def test_engage_when_scope_global_then_global_cancel_listed() -> None:
    decision = KillSwitch(scope=CancelScope.GLOBAL).engage("alice", "x", T0)

    assert KillAction.CANCEL_GLOBAL in decision.actions
    assert decision.cancel_scope is CancelScope.GLOBAL


def test_engage_when_already_engaged_then_first_record_kept_and_no_new_events() -> None:
    switch = KillSwitch()
    switch.engage("alice", "fat finger", T0)

    again = switch.engage("bob", "panic", T0 + timedelta(seconds=5), working=[order(ref="C")])

    assert again.already_engaged
    assert again.events == ()
    assert again.cancels.refs == ("C",)  # cancels are retried
    assert (switch.state.by, switch.state.trigger, switch.state.auto) == ("alice", KillTrigger.MANUAL, False)


def test_engage_by_the_operator_after_an_automatic_trip_then_first_record_kept_and_the_protection_cancelled_too(
) -> None:
    # Changed deliberately: an automatic trip keeps the positions' stops; the operator's Ctrl+K on top of
    # it cancels them too, and says so (before, engaging again published nothing: it changed nothing).
    switch = KillSwitch(scope=CancelScope.GLOBAL)
    stop = order(ticket(side=Side.SELL, order_type=OrderType.STP, limit_price=None, stop_price=90.0,
                        reduce_only=True), ref="STOP")
    switch.engage("risk:daily_loss", "loss", T0, working=[stop], trigger=KillTrigger.DAILY_LOSS)

    again = switch.engage("bob", "panic", T0 + timedelta(seconds=5), working=[order(ref="C"), stop])

    assert again.already_engaged
    assert again.cancels.refs == ("C", "STOP")
    assert again.cancels.kept == ()
    assert KillAction.CANCEL_GLOBAL in again.actions
    assert not switch.state.keeps_protection
    assert _kinds(again.events) == ["OperatorAction", "AlertRaised"]
    alert = next(e.alert for e in again.events if isinstance(e, AlertRaised))
    assert "protective stops and targets" in alert.text
    assert (switch.state.by, switch.state.trigger, switch.state.auto) == ("risk:daily_loss",
                                                                         KillTrigger.DAILY_LOSS, True)  # fmt: skip


def _protective(ref: str) -> Order:
    """A working protective stop (reduce-only)."""
    return order(ticket(side=Side.SELL, order_type=OrderType.STP, limit_price=None, stop_price=90.0,
                        reduce_only=True), ref=ref)


def test_engage_a_latch_taken_then_the_latch_taken_recorded_not_a_second_engagement_nor_operator_action() -> None:
    # `tui-trader kill` (another process) journaled the engagement and its operator action; the engine taking the
    # latch records that it took it, with the state change and the alert that are its own.
    decision = KillSwitch().engage("kill-cli:ops@host", "console frozen", T0, working=[order(ref="A")], taken=True)

    assert _kinds(decision.events) == ["TradingStateChanged", "KillLatchTaken", "AlertRaised"]
    assert decision.events[1] == KillLatchTaken(T0, "kill-cli:ops@host", "console frozen", again=False)
    assert decision.cancels.refs == ("A",)
    assert KillSwitch().engage("alice", "x", T0, previous=TradingState.HALTED, taken=True).events[0].kind == \
        "KillLatchTaken"  # already HALTED (a schedule's halt, say): no state change to record


@pytest.mark.parametrize(("trip", "kinds"), [
    (KillTrigger.DAILY_LOSS, ["KillLatchTaken", "AlertRaised"]),  # on top of a trip: the stops cancelled too, said
    (KillTrigger.MANUAL, ["KillLatchTaken"]),  # on top of a kill that cancelled everything: only taken
])
def test_engage_a_latch_taken_when_engaged_already_then_taken_again(trip: KillTrigger, kinds: list[str]) -> None:
    switch = KillSwitch()
    switch.engage("first", "loss", T0, working=[_protective("STOP")], trigger=trip)

    again = switch.engage("kill-cli:ops@host", "console frozen", T0 + timedelta(seconds=5), working=[
        _protective("STOP")], taken=True)

    assert _kinds(again.events) == kinds
    assert again.events[0] == KillLatchTaken(T0 + timedelta(seconds=5), "kill-cli:ops@host", "console frozen",
                                             again=True)
    assert again.cancels.refs == ("STOP",)
    assert switch.state.by == "first"


@pytest.mark.parametrize("scope", list(CancelScope))
def test_engage_by_an_automatic_trigger_then_only_entries_listed_and_the_protection_kept(scope: CancelScope) -> None:
    switch = KillSwitch(scope=scope)
    entry, stop = order(ref="ENTRY"), _protective("STOP")

    decision = switch.engage("risk:daily_loss", "loss 2%", T0, working=[entry, stop], trigger=KillTrigger.DAILY_LOSS)

    assert decision.cancels.refs == ("ENTRY",)
    assert decision.cancels.kept == ("STOP",)
    assert decision.actions == (KillAction.SET_HALTED, KillAction.CANCEL_OWN, KillAction.VERIFY_CANCELLED)
    assert switch.state.keeps_protection
    alert = next(e.alert for e in decision.events if isinstance(e, AlertRaised))
    assert "protective orders" in alert.text
    assert "Ctrl+K cancels everything" in alert.text
    assert ("other clients' orders were not touched" in alert.text) is (scope is CancelScope.GLOBAL)


def test_engage_by_an_automatic_trigger_that_flattens_then_its_alert_says_the_positions_are_flattened_next(
) -> None:
    # The trip's one alert (the monitor raises none beside it) said the stops were kept working, as the flatten
    # that follows cancelled them and closed the positions.
    decision = KillSwitch().engage("risk:daily_loss", "daily_loss limit reached: $600.00 (limit $500.00) -> "
                                   "HALT_AND_FLATTEN", T0, trigger=KillTrigger.DAILY_LOSS, flatten=True)

    (alert,) = [e.alert for e in decision.events if isinstance(e, AlertRaised)]
    assert alert.text == ("kill switch engaged by risk:daily_loss (daily_loss): daily_loss limit reached: $600.00 "
                          "(limit $500.00) -> HALT_AND_FLATTEN. Entries cancelled; the open positions are flattened "
                          "next (their protective orders cancelled first)")
    assert KillAction.FLATTEN in decision.actions


def test_engage_by_the_operator_then_the_protection_is_listed_too() -> None:
    switch = KillSwitch()

    decision = switch.engage("alice", "x", T0, working=[order(ref="ENTRY"), _protective("STOP")])

    assert decision.cancels.refs == ("ENTRY", "STOP")
    assert not switch.state.keeps_protection


def test_kill_cancels_then_entries_before_their_protective_children_and_orders_not_placed_left_out() -> None:
    # The request pacing holds back the last cancels: the stops and targets, which go with their entry anyway.
    # An order not placed yet has nothing to cancel at the broker: the send's own check of the state stops it.
    stop = order(ticket(side=Side.SELL, order_type=OrderType.STP, limit_price=None, stop_price=90.0,
                        reduce_only=True), ref="STOP", parent_ref="ENTRY")
    working = [stop, order(ref="ENTRY"), order(ref="UNPLACED", status=OrderStatus.SENDING, placed=False),
               order(ref="DONE", status=OrderStatus.FILLED), order(ref="SOLO")]

    cancels = kill_cancels(working, CancelScope.OWN)

    assert cancels == KillCancels(("ENTRY", "SOLO", "STOP"))


@pytest.mark.parametrize("scope", list(CancelScope))
def test_kill_cancels_when_the_protection_is_kept_then_only_entries_one_by_one_whatever_the_scope(
        scope: CancelScope) -> None:
    cancels = kill_cancels([order(ref="ENTRY"), _protective("STOP")], scope, keep_protection=True)

    assert cancels == KillCancels(("ENTRY",), ("STOP",), global_cancel=False, keeps_protection=True)


def test_kill_cancels_in_the_global_scope_then_one_global_cancel_that_takes_every_order() -> None:
    cancels = kill_cancels([order(ref="ENTRY"), _protective("STOP")], CancelScope.GLOBAL)

    assert cancels == KillCancels(("ENTRY", "STOP"), global_cancel=True)


def test_verify_when_an_automatic_trip_kept_the_protection_then_kept_not_remaining() -> None:
    switch = KillSwitch()
    stop = _protective("STOP")
    decision = switch.engage("risk:trade_count", "50 trades", T0, working=[order(ref="ENTRY"), stop],
                             trigger=KillTrigger.TRADE_COUNT)

    result = switch.verify(decision.cancels, ["ENTRY"], [stop], T0, at_broker=["STOP"])

    assert result.ok
    assert result.kept == ("STOP",)
    assert result.events == (KillChecked(T0, KillReport(("ENTRY",), (), checked=True, kept=("STOP",))),)
    assert result.events[0].report.verified


def test_verify_an_automatic_trips_cancels_after_the_operators_kill_then_its_protection_kept_not_remaining() -> None:
    # The operator's Ctrl+K lands between the trip's cancels and their check: the trip's check reports what the
    # trip decided to keep, not what the latched state (which keeps nothing now) would decide.
    switch = KillSwitch()
    entry, stop = order(ref="ENTRY"), _protective("STOP")
    trip = switch.engage("risk:daily_loss", "loss 2%", T0, working=[entry, stop], trigger=KillTrigger.DAILY_LOSS)
    switch.engage("alice", "ctrl+k", T0, working=[entry, stop])

    result = switch.verify(trip.cancels, ["ENTRY"], [stop], T0, at_broker=["STOP"])

    assert not switch.state.keeps_protection
    assert result.ok
    assert result.kept == ("STOP",)
    # ... and says it is a superseded kill's check: the operator's kill's own check is the one that stands.
    assert result.events == (KillChecked(T0, KillReport(("ENTRY",), (), checked=True, kept=("STOP",)), True),)


def test_verify_an_operators_kill_after_a_reset_and_an_automatic_trip_then_the_stop_it_cancels_is_remaining() -> None:
    # The latched state keeps the protection again by the time the operator's kill is checked: the stop that
    # kill cancelled, still working, must not be counted as kept (the kill would be reported verified).
    switch = KillSwitch()
    entry, stop = order(ref="ENTRY"), _protective("STOP")
    kill = switch.engage("alice", "ctrl+k", T0, working=[entry, stop])
    switch.reset("alice", "fixed", T0)
    switch.engage("risk:drawdown", "drawdown 5%", T0, working=[stop], trigger=KillTrigger.DRAWDOWN)

    result = switch.verify(kill.cancels, ["ENTRY", "STOP"], [stop], T0)

    assert switch.state.keeps_protection
    assert not result.ok
    assert result.remaining == ("STOP",)
    assert result.kept == ()
    assert result.cancelled == ("ENTRY",)


def test_kill_cancels_keep_a_protective_order_placed_since_but_never_one_they_cancel() -> None:
    # A bracket's stop placed again for the part of an entry held (after the trip's cancels) is protection the
    # trip keeps; an order the trip listed to cancel is not kept, whatever it has become since.
    listed = order(ref="ENTRY")
    cancels = kill_cancels([listed, _protective("STOP")], CancelScope.OWN, keep_protection=True)
    became_protective = order(ticket(side=Side.SELL, reduce_only=True), ref="ENTRY")
    working = [became_protective, _protective("STOP"), _protective("STOP-AGAIN")]

    assert cancels.kept_of(working, at_broker=["STOP", "OTHER"]) == ("STOP", "STOP-AGAIN")
    assert kill_cancels([listed], CancelScope.OWN).kept_of(working) == ()


def test_engage_when_reason_blank_then_still_engaged_with_default_reason() -> None:
    switch = KillSwitch()

    switch.engage("alice", "  ", T0)

    assert switch.engaged
    assert switch.state.reason == "kill switch"


def test_verify_when_orders_remain_then_critical_alert_names_them() -> None:
    switch = KillSwitch()
    stuck = order(ticket(side=Side.SELL, quantity=5), ref="STUCK")
    decision = switch.engage("alice", "x", T0, working=[stuck, order(ref="GONE")])

    result = switch.verify(decision.cancels, ["STUCK", "GONE"], [stuck], T0)

    assert not result.ok
    assert result.remaining == ("STUCK",)
    assert result.cancelled == ("GONE",)
    alert = next(e.alert for e in result.events if isinstance(e, AlertRaised))
    assert alert.level is AlertLevel.CRITICAL
    assert "STUCK SELL 5 AAPL" in alert.text
    assert KillChecked(T0, KillReport(("GONE",), ("STUCK",), checked=True)) in result.events


def test_verify_when_all_cancelled_then_ok_with_only_the_verification_event() -> None:
    switch = KillSwitch()

    result = switch.verify(KillCancels(("A",)), ["A"], [order(ref="A", status=OrderStatus.CANCELLED)], T0)

    assert result.ok
    assert result.events == (KillChecked(T0, KillReport(("A",), (), checked=True)),)
    assert result.events[0].report.verified


def test_verify_when_the_broker_could_not_be_asked_then_not_verified() -> None:
    switch = KillSwitch()

    result = switch.verify(KillCancels(("A",)), ["A"], [order(ref="A", status=OrderStatus.CANCELLED)], T0,
                           checked=False)

    assert result.events == (KillChecked(T0, KillReport(("A",), (), checked=False)),)
    assert not result.events[0].report.verified


def test_reset_with_typed_reason_then_released_and_recorded_as_operator_action() -> None:
    switch = KillSwitch()
    switch.engage("alice", "x", T0)

    decision = switch.reset("alice", "strategy fixed", T0 + timedelta(minutes=1))

    assert decision.accepted
    assert not switch.engaged
    assert decision.trading_state is TradingState.ACTIVE
    reset = next(e for e in decision.events if isinstance(e, KillSwitchReset))
    action = next(e for e in decision.events if isinstance(e, OperatorAction))
    assert (reset.by, reset.reason) == ("alice", "strategy fixed")
    assert (action.action, action.why, action.after) == ("reset_kill", "strategy fixed", "ACTIVE")
    assert any(isinstance(e, TradingStateChanged) for e in decision.events)


@pytest.mark.parametrize(("by", "reason"), [("alice", ""), ("alice", "   "), ("", "fixed")],
                         ids=["empty-reason", "blank-reason", "no-operator"])  # fmt: skip
def test_reset_without_reason_or_operator_then_refused(by: str, reason: str) -> None:
    switch = KillSwitch()
    switch.engage("alice", "x", T0)

    decision = switch.reset(by, reason, T0)

    assert not decision.accepted
    assert switch.engaged
    assert decision.events == ()


def test_reset_when_not_engaged_then_refused() -> None:
    assert not KillSwitch().reset("alice", "why", T0).accepted


def test_reset_to_halted_then_refused() -> None:
    switch = KillSwitch()
    switch.engage("alice", "x", T0)

    assert not switch.reset("alice", "why", T0, resume=TradingState.HALTED).accepted


@pytest.mark.parametrize("trigger", [KillTrigger.DAILY_LOSS, KillTrigger.TRADE_COUNT, KillTrigger.DRAWDOWN])
def test_reset_same_day_after_automatic_trigger_then_needs_second_confirmation(trigger: KillTrigger) -> None:
    switch = KillSwitch()
    switch.engage("risk:x", "limit", T0, trigger=trigger)

    first = switch.reset("alice", "reviewed", T0 + timedelta(hours=1))
    second = switch.reset("alice", "reviewed", T0 + timedelta(hours=1), confirm_same_day=True)

    assert not first.accepted
    assert first.needs_confirmation
    assert second.accepted


def test_reset_next_trading_day_after_automatic_trigger_then_no_second_confirmation() -> None:
    switch = KillSwitch()
    switch.engage("risk:daily_loss", "limit", T0, trigger=KillTrigger.DAILY_LOSS)

    decision = switch.reset("alice", "new day", T0 + timedelta(days=1))

    assert decision.accepted


def test_reset_same_day_after_manual_kill_then_no_second_confirmation() -> None:
    switch = KillSwitch()
    switch.engage("alice", "x", T0)

    assert switch.reset("alice", "ok", T0 + timedelta(minutes=5)).accepted


def test_trading_day_is_taken_in_the_exchange_time_zone() -> None:
    # 23:30 New York on Monday and 00:30 New York on Tuesday are different trading days,
    # though both fall on Tuesday in UTC
    switch = KillSwitch(trading_day_time_zone="America/New_York")
    switch.engage("risk:daily_loss", "limit", datetime(2024, 3, 5, 3, 30, tzinfo=UTC), trigger=KillTrigger.DAILY_LOSS)

    assert not switch.needs_confirmation(datetime(2024, 3, 5, 5, 30, tzinfo=UTC))


def test_kill_state_when_round_tripped_through_dict_then_equal() -> None:
    state = KillState(True, "risk:daily_loss", "loss 2%", T0, KillTrigger.DAILY_LOSS, True, keeps_protection=True)

    assert KillState.from_dict(state.to_dict()) == state
    assert not KillState.from_dict(state.to_dict() | {"keeps_protection": None}).keeps_protection
    assert KillState.from_dict(KillState().to_dict()) == KillState()


def test_kill_state_when_timestamp_naive_then_refused() -> None:
    data = KillState(True, "a", "b", T0).to_dict() | {"engaged_at": "2024-03-04T15:00:00"}

    with pytest.raises(ValueError, match="timezone"):
        KillState.from_dict(data)


def test_restart_when_engaged_then_begins_halted_and_reset_still_needed() -> None:
    switch = KillSwitch()
    switch.engage("alice", "x", T0)

    restored = KillSwitch.restore(switch.state.to_dict())

    assert restored.engaged
    assert restored.start_state is TradingState.HALTED
    assert restored.reset("bob", "checked", T0).accepted


def test_restart_when_never_engaged_then_begins_active() -> None:
    assert KillSwitch.restore(None).start_state is TradingState.ACTIVE


def test_engage_event_carries_reason() -> None:
    decision = KillSwitch().engage("alice", "why", T0)

    engaged = next(e for e in decision.events if isinstance(e, KillSwitchEngaged))
    assert (engaged.by, engaged.reason) == ("alice", "why")


def test_verify_when_an_order_is_in_unknown_state_then_the_alert_names_it_apart_from_the_working() -> None:
    switch = KillSwitch()
    stuck = order(ticket(side=Side.SELL, quantity=5), ref="STUCK")
    unsure = order(ticket(quantity=3), ref="UNSURE", status=OrderStatus.UNKNOWN)
    decision = switch.engage("alice", "x", T0, working=[stuck, unsure])

    result = switch.verify(decision.cancels, ["STUCK", "UNSURE"], [stuck, unsure], T0, at_broker=["broker#7"])

    assert result.remaining == ("STUCK", "UNSURE", "broker#7")
    alert = next(e.alert for e in result.events if isinstance(e, AlertRaised))
    assert alert.text == ("orders still working after kill: STUCK SELL 5 AAPL, broker#7 (at the broker); "
                          "state unknown: UNSURE BUY 3 AAPL")
