"""Property tests (hypothesis): trading states, in-flight limits, the latched kill switch."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain import OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.events import KillSwitchReset, OperatorAction
from tui_trader.risk import KillSwitch, KillTrigger, RiskLimits, build_book

from .builders import ALL_ON, T0, account, check, market, order, position, quote, ticket

SYMBOLS = ("AAPL", "MSFT")
PROPS = settings(max_examples=150, deadline=None)

quantities = st.integers(min_value=1, max_value=500).map(float)
sides = st.sampled_from(Side)
tickets = st.builds(
    lambda sym, side, qty, kind, px: ticket(sym, side, qty, kind, None if kind is OrderType.MKT else px,
                                            px if kind in (OrderType.STP, OrderType.STP_LMT) else None),
    st.sampled_from(SYMBOLS), sides, quantities, st.sampled_from([OrderType.MKT, OrderType.LMT, OrderType.STP,
                                                                  OrderType.STP_LMT]),
    st.floats(min_value=95, max_value=105),
)  # fmt: skip
positions = st.lists(
    st.builds(position, st.sampled_from(SYMBOLS), st.integers(-800, 800).map(float)),
    max_size=2, unique_by=lambda p: p.symbol,
)  # fmt: skip
working_orders = st.lists(
    st.builds(lambda sym, side, qty: order(ticket(sym, side, qty)), st.sampled_from(SYMBOLS), sides, quantities),
    max_size=4,
)  # fmt: skip
MKT = market(quote("AAPL"), quote("MSFT"))


@PROPS
@given(t=tickets, held=positions, working=working_orders, limits=st.sampled_from([RiskLimits(), ALL_ON]))
def test_property_when_halted_then_no_order_passes(t, held, working, limits) -> None:
    verdict = check(t, limits, acct=account(positions=held, working=working), mkt=MKT, state=TradingState.HALTED)

    assert not verdict.passed


@PROPS
@given(t=tickets, held=positions, working=working_orders)
def test_property_when_reducing_then_no_passed_order_increases_exposure(t, held, working) -> None:
    acct = account(positions=held, working=working)

    verdict = check(t, RiskLimits(), acct=acct, mkt=MKT, state=TradingState.REDUCING)

    if verdict.passed:
        leg = build_book(acct, MKT).leg(t.symbol)
        pending = leg.buys if t.side is Side.BUY else leg.sells
        after_all_fill = leg.position + t.side.sign * (pending + t.quantity)
        assert abs(after_all_fill) <= abs(leg.position)
        assert leg.position * after_all_fill >= 0  # never past flat


LIMITED = RiskLimits(max_position_quantity=1_000, max_gross_exposure=1.5, max_daily_trades=12,
                     min_cash_fraction=0.2, require_quote=True)  # fmt: skip


@PROPS
@given(stream=st.lists(st.tuples(sides, quantities, st.sampled_from(SYMBOLS)), min_size=1, max_size=25))
def test_property_limits_hold_when_orders_are_in_flight(stream) -> None:
    # Arrange: nothing is ever acknowledged; every passed order stays in flight
    acct = account(trades_today=2)
    in_flight = []
    for i, (side, qty, sym) in enumerate(stream):
        t = ticket(sym, side, qty, limit_price=100.0 + i * 0.01)  # distinct prices: no duplicates
        # Act
        if check(t, LIMITED, acct=acct, mkt=MKT, in_flight=in_flight).passed:
            in_flight.append(order(t, status=OrderStatus.SENDING))
    # Assert: the worst case of everything in flight is inside every limit
    book = build_book(acct, MKT, in_flight)
    assert all(book.leg(s).worst_abs <= 1_000 for s in SYMBOLS)
    assert book.gross() <= 1.5 * acct.equity + 1e-6
    assert acct.trades_today + len(in_flight) <= 12
    assert acct.cash - book.buy_commitment() >= 0.2 * acct.equity - 1e-6


kill_ops = st.lists(
    st.one_of(
        st.tuples(st.just("engage"), st.sampled_from(KillTrigger), st.booleans()),
        st.tuples(st.just("reset"), st.sampled_from(["", "  ", "checked"]), st.booleans()),
        st.tuples(st.just("restart"), st.none(), st.none()),
        st.tuples(st.just("wait"), st.sampled_from([60, 3600, 86_400]), st.none()),
    ),
    max_size=30,
)


@PROPS
@given(ops=kill_ops)
def test_property_switch_never_released_without_a_recorded_reset(ops) -> None:
    switch, now = KillSwitch(), T0
    for op, a, b in ops:
        was = switch.engaged
        recorded = False
        if op == "engage":
            switch.engage("risk" if a is not KillTrigger.MANUAL else "alice", "why", now, trigger=a)
        elif op == "reset":
            decision = switch.reset("alice", a, now, confirm_same_day=b)
            recorded = decision.accepted and any(isinstance(e, KillSwitchReset) and e.reason.strip()
                                                 for e in decision.events) and any(
                isinstance(e, OperatorAction) and e.action == "reset_kill" for e in decision.events)  # fmt: skip
        elif op == "restart":
            switch = KillSwitch.restore(switch.state.to_dict())
            assert switch.start_state is (TradingState.HALTED if was else TradingState.ACTIVE)
        else:
            now += timedelta(seconds=a)
        if was and not switch.engaged:
            assert recorded, f"released by {op} without a recorded reset"