"""Every pre-trade check at, just under and just over its limit."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from tui_trader.domain import Bracket, OrderStatus, OrderType, Quote, Side, TradingState
from tui_trader.domain.verdicts import figure
from tui_trader.risk import RecentOrder, RiskLimits, Throttle, check_cancel

from .builders import ALL_ON, CLOSE, OPEN, T0, account, check, instrument, market, order, position, quote, secs, ticket


def _passes(verdict, name: str) -> bool:
    result = verdict.check(name)
    assert result is not None, f"check {name} did not run"
    return result.passed


# --- order size ---------------------------------------------------------------------------------


@pytest.mark.parametrize("qty", [99, 100], ids=["under", "at"])
def test_submit_when_quantity_within_limit_then_passes(qty: float) -> None:
    # Arrange
    limits = RiskLimits(max_order_quantity=100)
    # Act
    verdict = check(ticket(quantity=qty), limits)
    # Assert
    assert verdict.passed
    assert verdict.check("order_quantity").headroom == 100 - qty


def test_submit_when_quantity_over_limit_then_denied() -> None:
    verdict = check(ticket(quantity=101), RiskLimits(max_order_quantity=100))

    assert not verdict.passed
    result = verdict.check("order_quantity")
    assert (result.value, result.limit, result.headroom) == (101, 100, -1)
    assert "order_quantity" in verdict.reason


@pytest.mark.parametrize(("qty", "ok"), [(99, True), (100, True), (101, False)], ids=["under", "at", "over"])
def test_submit_when_notional_against_limit_then_denied_only_over(qty: float, ok: bool) -> None:
    verdict = check(ticket(quantity=qty, limit_price=100.0), RiskLimits(max_order_notional=10_000))

    assert _passes(verdict, "order_notional") is ok


def test_submit_market_order_when_notional_priced_at_the_ask_then_denied_over_limit() -> None:
    # 100 shares at the ask of 100.01 is 10,001 > 10,000
    verdict = check(ticket(quantity=100, order_type=OrderType.MKT), RiskLimits(max_order_notional=10_000))

    assert not _passes(verdict, "order_notional")
    assert verdict.check("order_notional").value == pytest.approx(10_001)


# --- position and book --------------------------------------------------------------------------


@pytest.mark.parametrize(("qty", "ok"), [(29, True), (30, True), (31, False)], ids=["under", "at", "over"])
def test_submit_when_position_quantity_with_working_orders_against_limit(qty: float, ok: bool) -> None:
    # Arrange: long 50 plus a working buy of 20 already uses 70 of 100
    acct = account(positions=[position(quantity=50)], working=[order(ticket(quantity=20))])
    # Act
    verdict = check(ticket(quantity=qty), RiskLimits(max_position_quantity=100), acct=acct)
    # Assert
    assert _passes(verdict, "position_quantity") is ok


def test_submit_when_position_already_over_limit_and_order_reduces_then_passes() -> None:
    acct = account(positions=[position(quantity=500)])

    verdict = check(ticket(side=Side.SELL, quantity=100), RiskLimits(max_position_quantity=100), acct=acct)

    assert verdict.passed


@pytest.mark.parametrize(("qty", "ok"), [(99, True), (100, True), (101, False)], ids=["under", "at", "over"])
def test_submit_when_position_notional_against_limit(qty: float, ok: bool) -> None:
    verdict = check(ticket(quantity=qty), RiskLimits(max_position_notional=10_000))

    assert _passes(verdict, "position_notional") is ok


@pytest.mark.parametrize(("held", "ok"), [(("A",), True), (("A", "B"), False)], ids=["under", "over"])
def test_submit_new_symbol_when_open_positions_against_limit(held: tuple[str, ...], ok: bool) -> None:
    acct = account(positions=[position(s) for s in held])

    verdict = check(ticket(), RiskLimits(max_open_positions=2), acct=acct)

    assert _passes(verdict, "open_positions") is ok


def test_submit_in_held_symbol_when_open_positions_at_limit_then_passes() -> None:
    acct = account(positions=[position("AAPL"), position("B")])

    verdict = check(ticket(), RiskLimits(max_open_positions=2), acct=acct)

    assert verdict.passed


def test_submit_when_working_order_opens_symbol_then_it_counts_as_open_position() -> None:
    acct = account(positions=[position("A")], working=[order(ticket("B"))])

    verdict = check(ticket(), RiskLimits(max_open_positions=2), acct=acct)

    assert not _passes(verdict, "open_positions")


@pytest.mark.parametrize(("qty", "ok"), [(499, True), (500, True), (501, False)], ids=["under", "at", "over"])
def test_submit_when_gross_exposure_against_limit(qty: float, ok: bool) -> None:
    # equity 100k, limit 0.5 => 50k; the quote's mark is 100
    verdict = check(ticket(quantity=qty), RiskLimits(max_gross_exposure=0.5))

    assert _passes(verdict, "gross_exposure") is ok


def test_submit_when_gross_exposure_counts_short_positions_then_denied() -> None:
    acct = account(positions=[position("MSFT", quantity=-400)], equity=100_000)
    mkt = market(quote(), quote("MSFT"))

    verdict = check(ticket(quantity=101), RiskLimits(max_gross_exposure=0.5), acct=acct, mkt=mkt)

    assert not _passes(verdict, "gross_exposure")


@pytest.mark.parametrize(("qty", "ok"), [(299, True), (300, True), (301, False)], ids=["under", "at", "over"])
def test_submit_when_leverage_against_limit(qty: float, ok: bool) -> None:
    verdict = check(ticket(quantity=qty), RiskLimits(max_leverage=0.3))

    assert _passes(verdict, "leverage") is ok


def test_submit_when_long_short_book_then_leverage_counts_both_sides() -> None:
    # long/short books net to zero but are still leveraged: gross, not net
    acct = account(positions=[position("MSFT", quantity=-300)])
    mkt = market(quote(), quote("MSFT"))

    verdict = check(ticket(quantity=1), RiskLimits(max_leverage=0.3), acct=acct, mkt=mkt)

    assert not _passes(verdict, "leverage")


@pytest.mark.parametrize(("qty", "ok"), [(499, True), (500, True), (501, False)], ids=["under", "at", "over"])
def test_submit_buy_when_cash_fraction_against_minimum(qty: float, ok: bool) -> None:
    verdict = check(ticket(quantity=qty), RiskLimits(min_cash_fraction=0.5))

    assert _passes(verdict, "cash_fraction") is ok


def test_submit_buy_when_in_flight_buy_commits_cash_then_denied() -> None:
    in_flight = [order(ticket(quantity=100), status=OrderStatus.SENDING)]

    verdict = check(ticket(quantity=401), RiskLimits(min_cash_fraction=0.5), in_flight=in_flight)

    assert not _passes(verdict, "cash_fraction")


def test_submit_sell_when_cash_below_minimum_then_cash_check_passes() -> None:
    acct = account(cash=0.0, positions=[position(quantity=100)])

    verdict = check(ticket(side=Side.SELL, quantity=50), RiskLimits(min_cash_fraction=0.5), acct=acct)

    assert verdict.passed


def test_submit_when_equity_unknown_then_exposure_denied() -> None:
    verdict = check(ticket(), RiskLimits(max_gross_exposure=1.0), acct=account(equity=0.0))

    assert not verdict.passed
    assert "unknown" in verdict.check("gross_exposure").message


# --- prices and market data ---------------------------------------------------------------------


@pytest.mark.parametrize(("price", "ok"), [(100.99, True), (101.0, True), (101.01, False), (98.99, False)],
                         ids=["under", "at", "over", "over-below"])  # fmt: skip
def test_submit_when_price_against_collar_pct(price: float, ok: bool) -> None:
    verdict = check(ticket(limit_price=price), RiskLimits(price_collar_pct=1.0))

    assert _passes(verdict, "price_collar_pct") is ok


def test_submit_when_price_outside_collar_then_denied() -> None:
    verdict = check(ticket(limit_price=110.0), RiskLimits(price_collar_pct=5.0))

    assert not verdict.passed
    assert verdict.check("price_collar_pct").value == pytest.approx(10.0)
    assert verdict.check("price_collar_pct").message == "10% over the limit of 5%"


def test_denials_when_figures_have_units_then_the_message_reads_them_as_the_operator_would() -> None:
    # The order ticket showed "price_collar_pct: 25.7672 over limit 5 %".
    limits = RiskLimits(price_collar_pct=5.0, max_order_notional=1_000.0, max_order_quantity=5)
    verdict = check(ticket(quantity=12, limit_price=125.7672), limits)

    assert verdict.check("price_collar_pct").message == "25.77% over the limit of 5%"
    assert verdict.check("order_notional").message == "$1,509.21 over the limit of $1,000.00"
    assert verdict.check("order_quantity").message == "12 qty over the limit of 5 qty"


def test_submit_when_collar_reference_is_far_side_then_measured_from_ask() -> None:
    # 1% of the ask (100.01) is 1.0001: 101.01 is inside from the ask, outside from the mid
    limits = RiskLimits(price_collar_pct=1.0, collar_reference="far")

    assert check(ticket(limit_price=101.01), limits).passed
    assert not check(ticket(limit_price=101.02), limits).passed


def test_submit_when_stop_price_outside_collar_then_denied() -> None:
    t = ticket(order_type=OrderType.STP_LMT, limit_price=100.0, stop_price=90.0)

    verdict = check(t, RiskLimits(price_collar_pct=5.0))

    assert not _passes(verdict, "price_collar_pct")


@pytest.mark.parametrize(("price", "ok"), [(100.99, True), (101.0, True), (101.01, False)],
                         ids=["under", "at", "over"])  # fmt: skip
def test_submit_when_price_against_collar_ticks(price: float, ok: bool) -> None:
    verdict = check(ticket(limit_price=price), RiskLimits(price_collar_ticks=100))

    assert _passes(verdict, "price_collar_ticks") is ok


def test_submit_when_no_quote_and_collar_set_then_denied() -> None:
    verdict = check(ticket(), RiskLimits(price_collar_pct=5.0, require_quote=False), mkt=market(quote("MSFT")))

    assert not verdict.passed


@pytest.mark.parametrize(("bid", "ask", "ok"), [(99.96, 100.04, True), (99.95, 100.05, True),
                                                (99.94, 100.06, False)], ids=["under", "at", "over"])  # fmt: skip
def test_submit_market_order_when_spread_against_limit(bid: float, ask: float, ok: bool) -> None:
    mkt = market(quote(bid=bid, ask=ask))

    verdict = check(ticket(order_type=OrderType.MKT), RiskLimits(max_spread_pct=0.1), mkt=mkt)

    assert _passes(verdict, "spread") is ok


def test_submit_limit_order_when_spread_wide_then_spread_check_skipped() -> None:
    mkt = market(quote(bid=90, ask=110))

    verdict = check(ticket(), RiskLimits(max_spread_pct=0.1), mkt=mkt)

    assert verdict.check("spread") is None


@pytest.mark.parametrize(("age", "ok"), [(4.9, True), (5.0, True), (5.1, False)], ids=["under", "at", "over"])
def test_submit_when_quote_age_against_limit(age: float, ok: bool) -> None:
    mkt = market(quote(time=T0 - secs(age)))

    verdict = check(ticket(), RiskLimits(max_quote_age_s=5), mkt=mkt)

    assert _passes(verdict, "quote_age") is ok


@pytest.mark.parametrize(
    "q",
    [None, Quote("AAPL", T0, bid=101, ask=100), Quote("AAPL", T0, bid=100)],
    ids=["missing", "crossed", "one-sided-no-last"],
)
def test_submit_when_quote_unusable_then_denied(q: Quote | None) -> None:
    mkt = market(q) if q else market(quote("MSFT"))

    verdict = check(ticket(), RiskLimits(), mkt=mkt)

    assert not _passes(verdict, "quote")


def test_submit_when_quote_one_sided_with_last_then_passes() -> None:
    verdict = check(ticket(), RiskLimits(), mkt=market(Quote("AAPL", T0, bid=100, last=100)))

    assert verdict.passed


# --- rates, counts and duplicates ---------------------------------------------------------------


def test_submit_when_throttle_has_one_token_left_then_passes() -> None:
    throttle = Throttle.from_rates(2, None).record(T0)

    verdict = check(ticket(), RiskLimits(), throttle=throttle)

    assert verdict.check("throttle_per_second").headroom == pytest.approx(0)
    assert verdict.passed


def test_submit_when_throttle_exhausted_then_denied() -> None:
    throttle = Throttle.from_rates(2, None).record(T0).record(T0)

    verdict = check(ticket(), RiskLimits(), throttle=throttle)

    assert not verdict.passed
    assert "retry in 0.50s" in verdict.check("throttle_per_second").message


def test_submit_when_throttle_refilled_after_wait_then_passes() -> None:
    throttle = Throttle.from_rates(2, None).record(T0).record(T0)

    verdict = check(ticket(), RiskLimits(), throttle=throttle, now=T0 + secs(0.5))

    assert verdict.passed


def test_submit_when_minute_bucket_exhausted_then_denied() -> None:
    throttle = Throttle.from_rates(None, 3)
    for i in range(3):
        throttle = throttle.record(T0 + secs(i))

    verdict = check(ticket(), RiskLimits(), throttle=throttle, now=T0 + secs(3))

    assert not _passes(verdict, "throttle_per_minute")


def test_cancel_when_halted_and_throttle_exhausted_then_passes() -> None:
    throttle = Throttle.from_rates(1, None).record(T0)

    verdict = check_cancel(throttle, T0)

    assert verdict.passed
    assert "anyway" in verdict.checks[0].message


@pytest.mark.parametrize(("done", "ok"), [(8, True), (9, True), (10, False)], ids=["under", "at", "over"])
def test_submit_when_daily_trades_against_limit(done: int, ok: bool) -> None:
    verdict = check(ticket(), RiskLimits(max_daily_trades=10), acct=account(trades_today=done))

    assert _passes(verdict, "daily_trades") is ok


def test_submit_when_working_orders_fill_the_daily_trade_count_then_denied() -> None:
    acct = account(trades_today=8, working=[order(), order(ticket(limit_price=99))])

    verdict = check(ticket(limit_price=98), RiskLimits(max_daily_trades=10), acct=acct)

    assert not _passes(verdict, "daily_trades")


@pytest.mark.parametrize(("done", "ok"), [(3, True), (4, True), (5, False)], ids=["under", "at", "over"])
def test_submit_when_strategy_trades_against_limit(done: int, ok: bool) -> None:
    acct = account(trades_today=100, trades_today_by_strategy={"ema": done, "macd": 50})

    verdict = check(ticket(strategy="ema"), RiskLimits(max_daily_trades_per_strategy=5), acct=acct)

    assert _passes(verdict, "daily_trades_strategy") is ok


@pytest.mark.parametrize(("ago", "ok"), [(4.9, False), (5.0, False), (5.1, True)], ids=["inside", "at", "after"])
def test_submit_when_same_order_sent_recently_then_denied_inside_window(ago: float, ok: bool) -> None:
    recent = [RecentOrder.of(ticket(), T0 - secs(ago))]

    verdict = check(ticket(), RiskLimits(duplicate_window_s=5), recent=recent)

    assert _passes(verdict, "duplicate") is ok


def test_submit_when_same_order_working_then_denied_as_duplicate() -> None:
    acct = account(working=[order(created_at=T0 - secs(1))])

    verdict = check(ticket(), RiskLimits(duplicate_window_s=5), acct=acct)

    assert not _passes(verdict, "duplicate")


@pytest.mark.parametrize(
    "other",
    [ticket(limit_price=100.01), ticket(quantity=11), ticket(side=Side.SELL), ticket("MSFT")],
    ids=["price", "quantity", "side", "symbol"],
)
def test_submit_when_recent_order_differs_then_not_duplicate(other) -> None:
    recent = [RecentOrder.of(other, T0)]

    verdict = check(ticket(), RiskLimits(duplicate_window_s=5), recent=recent)

    assert _passes(verdict, "duplicate")


# --- allow-lists and hours ----------------------------------------------------------------------


def test_submit_when_symbol_not_allowed_then_denied() -> None:
    verdict = check(ticket("TSLA"), RiskLimits(allowed_symbols=("aapl",)), mkt=market(quote("TSLA")))

    assert not _passes(verdict, "symbol_allowed")


def test_submit_when_symbol_allowed_then_passes() -> None:
    assert check(ticket(), RiskLimits(allowed_symbols=["AAPL"])).passed


def test_submit_when_order_type_not_allowed_then_denied() -> None:
    verdict = check(ticket(order_type=OrderType.MKT), RiskLimits(allowed_order_types=("LMT",)))

    assert not _passes(verdict, "order_type_allowed")


def test_submit_when_order_type_allowed_then_passes() -> None:
    assert check(ticket(), RiskLimits(allowed_order_types=["lmt", "STP LMT"])).passed


@pytest.mark.parametrize(("now", "ok"), [(OPEN, True), (OPEN - secs(1), False), (CLOSE, False)],
                         ids=["open", "before", "at-close"])  # fmt: skip
def test_submit_when_liquid_hours_required_then_denied_outside(now, ok: bool) -> None:
    mkt = market(quote(time=now))

    verdict = check(ticket(), RiskLimits(require_liquid_hours=True), mkt=mkt, now=now)

    assert _passes(verdict, "trading_hours") is ok


def test_submit_outside_rth_order_in_extended_hours_then_passes() -> None:
    now = OPEN - timedelta(hours=1)

    verdict = check(ticket(outside_rth=True), RiskLimits(require_liquid_hours=True),
                    mkt=market(quote(time=now)), now=now)  # fmt: skip

    assert verdict.passed


def test_submit_when_hours_unknown_and_required_then_denied() -> None:
    mkt = market(instruments=[instrument(liquid=())])

    verdict = check(ticket(), RiskLimits(require_liquid_hours=True), mkt=mkt)

    assert "unknown" in verdict.check("trading_hours").message


@pytest.mark.parametrize(("before_close", "ok"), [(601, True), (600, True), (599, False)],
                         ids=["under", "at", "over"])  # fmt: skip
def test_submit_entry_when_near_close_then_denied_inside_window(before_close: float, ok: bool) -> None:
    now = CLOSE - secs(before_close)

    verdict = check(ticket(), RiskLimits(no_entry_before_close_min=10), mkt=market(quote(time=now)), now=now)

    assert _passes(verdict, "close_window") is ok


def test_submit_exit_when_near_close_then_passes() -> None:
    now = CLOSE - secs(60)
    acct = account(positions=[position(quantity=100)])

    verdict = check(ticket(side=Side.SELL), RiskLimits(no_entry_before_close_min=10), acct=acct,
                    mkt=market(quote(time=now)), now=now)  # fmt: skip

    assert verdict.passed


@pytest.mark.parametrize(("after_open", "ok"), [(301, True), (300, True), (299, False)],
                         ids=["under", "at", "over"])  # fmt: skip
def test_submit_entry_when_just_after_open_then_denied_inside_window(after_open: float, ok: bool) -> None:
    now = OPEN + secs(after_open)

    verdict = check(ticket(), RiskLimits(no_entry_after_open_min=5), mkt=market(quote(time=now)), now=now)

    assert _passes(verdict, "open_window") is ok


@pytest.mark.parametrize(("since_loss", "ok"), [(59, False), (60, True), (61, True)],
                         ids=["inside", "at", "after"])  # fmt: skip
def test_submit_entry_after_losing_streak_then_denied_during_cooldown(since_loss: float, ok: bool) -> None:
    acct = account(losing_streak=3, last_loss_at=T0 - secs(since_loss))

    verdict = check(ticket(), RiskLimits(max_losing_streak=3, cooldown_s=60), acct=acct)

    assert _passes(verdict, "cooldown") is ok


def test_submit_entry_when_streak_under_limit_then_no_cooldown() -> None:
    acct = account(losing_streak=2, last_loss_at=T0)

    assert check(ticket(), RiskLimits(max_losing_streak=3, cooldown_s=60), acct=acct).passed


# --- ticket sanity, trading state, in-flight ----------------------------------------------------


@pytest.mark.parametrize(
    "t",
    [ticket(quantity=0), ticket(quantity=float("nan")), ticket(limit_price=None),
     ticket(order_type=OrderType.STP, limit_price=None), ticket(order_type=OrderType.TRAIL, limit_price=None)],
    ids=["zero", "nan", "lmt-no-price", "stp-no-stop", "trail-no-amount"],
)  # fmt: skip
def test_submit_when_ticket_malformed_then_denied(t) -> None:
    assert not _passes(check(t, RiskLimits()), "ticket_valid")


def test_submit_when_trading_halted_then_denied() -> None:
    verdict = check(ticket(), RiskLimits(), state=TradingState.HALTED)

    assert not verdict.passed
    assert "halted" in verdict.reason


def test_submit_exit_when_trading_halted_then_denied() -> None:
    acct = account(positions=[position(quantity=100)])

    assert not check(ticket(side=Side.SELL), RiskLimits(), acct=acct, state=TradingState.HALTED).passed


def test_submit_when_reducing_and_order_reduces_then_passes() -> None:
    acct = account(positions=[position(quantity=100)])

    assert check(ticket(side=Side.SELL, quantity=100), RiskLimits(), acct=acct, state=TradingState.REDUCING).passed


def test_submit_when_reducing_and_order_goes_past_flat_then_denied() -> None:
    acct = account(positions=[position(quantity=100)])

    verdict = check(ticket(side=Side.SELL, quantity=101), RiskLimits(), acct=acct, state=TradingState.REDUCING)

    assert not _passes(verdict, "trading_state")


def test_submit_when_reducing_and_working_exits_cover_position_then_denied() -> None:
    acct = account(positions=[position(quantity=100)], working=[order(ticket(side=Side.SELL, quantity=60))])

    verdict = check(ticket(side=Side.SELL, quantity=41), RiskLimits(), acct=acct, state=TradingState.REDUCING)

    assert not verdict.passed


def test_submit_when_reducing_and_order_opens_position_then_denied() -> None:
    assert not check(ticket(), RiskLimits(), state=TradingState.REDUCING).passed


def test_submit_when_in_flight_order_uses_the_limit_then_denied() -> None:
    in_flight = [order(ticket(quantity=60), status=OrderStatus.SENDING)]

    verdict = check(ticket(quantity=41), RiskLimits(max_position_quantity=100), in_flight=in_flight)

    assert not verdict.passed


def test_submit_when_in_flight_order_is_final_then_not_counted() -> None:
    acct = account(working=[order(ticket(quantity=60), ref="X")])
    in_flight = [order(ticket(quantity=60), status=OrderStatus.CANCELLED, ref="X")]

    verdict = check(ticket(quantity=100), RiskLimits(max_position_quantity=100), acct=acct, in_flight=in_flight)

    assert verdict.passed


def test_recheck_after_approval_when_own_order_in_flight_then_not_counted_twice() -> None:
    from tui_trader.risk import pre_trade_check

    own = order(ticket(quantity=100), status=OrderStatus.APPROVED, ref="OWN")

    verdict = pre_trade_check(ticket(quantity=100), account(), market(), RiskLimits(max_position_quantity=100),
                              T0, Throttle(), TradingState.ACTIVE, [own], order_ref="OWN")  # fmt: skip

    assert verdict.passed


def test_recheck_of_bracket_when_its_children_are_approved_then_they_are_not_counted_either() -> None:
    from dataclasses import replace

    from tui_trader.risk import pre_trade_check

    parent = order(ticket(quantity=100), status=OrderStatus.APPROVED, ref="OWN")
    children = [replace(order(ticket(side=Side.SELL, quantity=100), status=OrderStatus.APPROVED, ref=f"OWN-{n}"),
                        parent_ref="OWN") for n in (1, 2)]
    limits = RiskLimits(max_position_quantity=100, max_daily_trades=1)

    verdict = pre_trade_check(ticket(quantity=100), account(), market(), limits,
                              T0, Throttle(), TradingState.ACTIVE, [parent, *children], order_ref="OWN")  # fmt: skip

    assert verdict.passed, verdict.reason
    assert {c.name: c.value for c in verdict.checks}["daily_trades"] == 1


def test_submit_when_orders_await_approval_then_they_are_not_counted() -> None:
    pending = [order(ticket(quantity=100), status=OrderStatus.PENDING_APPROVAL)]

    assert check(ticket(quantity=100), RiskLimits(max_position_quantity=100), in_flight=pending).passed


def test_submit_when_every_check_enabled_and_order_sane_then_passes_with_all_checks() -> None:
    verdict = check(ticket(), ALL_ON, throttle=Throttle.from_rates(10, 100))

    assert verdict.passed, verdict.reason
    assert len(verdict.checks) == 25


def test_submit_reduce_only_when_it_would_open_a_position_then_denied() -> None:
    verdict = check(ticket(side=Side.SELL, reduce_only=True), RiskLimits())

    assert not _passes(verdict, "reduce_only")


def test_submit_reduce_only_when_it_reduces_then_passes() -> None:
    acct = account(positions=[position(quantity=100)])

    assert check(ticket(side=Side.SELL, reduce_only=True), RiskLimits(), acct=acct).passed


# --- the account is read only when a check needs it -----------------------------------------------


class _Snapshots:
    """An account source that counts how often the gate builds the snapshot."""

    def __init__(self, acct) -> None:
        self.acct, self.calls = acct, 0

    def __call__(self):
        self.calls += 1
        return self.acct


def test_gate_when_no_enabled_check_reads_the_account_then_it_is_not_built() -> None:
    from tui_trader.risk import pre_trade_check

    source = _Snapshots(account(positions=[position(quantity=500)]))
    limits = RiskLimits(max_order_quantity=100, max_quote_age_s=5)

    verdict = pre_trade_check(ticket(quantity=100), source, market(), limits, T0, Throttle(), TradingState.ACTIVE)

    assert verdict.passed, verdict.reason
    assert source.calls == 0


@pytest.mark.parametrize("built_from", ["callable", "snapshot"])
def test_gate_when_a_position_limit_is_on_then_the_account_is_built_once_and_counted(built_from: str) -> None:
    from tui_trader.risk import pre_trade_check

    acct = account(positions=[position(quantity=50)])
    source = _Snapshots(acct)
    limits = RiskLimits(max_position_quantity=100, max_position_notional=10_000, max_gross_exposure=100.0)

    verdict = pre_trade_check(ticket(quantity=60), source if built_from == "callable" else acct, market(), limits,
                              T0, Throttle(), TradingState.ACTIVE)  # fmt: skip

    assert not _passes(verdict, "position_quantity")  # 50 held + 60 > 100: the snapshot's position counts
    assert source.calls == (1 if built_from == "callable" else 0)


def test_gate_when_reducing_then_a_reducing_order_is_told_from_an_adding_one_through_the_account() -> None:
    from tui_trader.risk import pre_trade_check

    source = _Snapshots(account(positions=[position(quantity=50)]))
    limits = RiskLimits(max_order_quantity=100)

    sell = pre_trade_check(ticket(side=Side.SELL, quantity=50), source, market(), limits, T0, Throttle(),
                           TradingState.REDUCING)  # fmt: skip
    buy = pre_trade_check(ticket(quantity=50), source, market(), limits, T0, Throttle(), TradingState.REDUCING)

    assert _passes(sell, "trading_state")
    assert not _passes(buy, "trading_state")
    assert source.calls == 2


BRACKET_CASES = [
    # side, type, limit, stop (entry), bracket stop, target, passes: quote 99.99 / 100.01
    (Side.BUY, OrderType.LMT, 100.0, None, 98.0, 104.0, True),
    (Side.BUY, OrderType.LMT, 100.0, None, 101.0, None, False),  # a stop-loss above the entry
    (Side.BUY, OrderType.LMT, 100.0, None, None, 99.5, False),  # a target below it
    (Side.BUY, OrderType.LMT, 105.0, None, 102.0, None, False),  # marketable: fills near the ask, under 102
    (Side.BUY, OrderType.LMT, 95.0, None, 94.0, 97.0, True),  # resting below: fills at 95 if at all
    (Side.SELL, OrderType.LMT, 100.0, None, 102.0, 96.0, True),
    (Side.SELL, OrderType.LMT, 100.0, None, 99.0, None, False),  # a short's stop below the entry
    (Side.SELL, OrderType.MKT, None, None, 100.5, 99.0, True),  # market: the bid, 99.99
    (Side.SELL, OrderType.MKT, None, None, 99.9, None, False),
    (Side.BUY, OrderType.STP, None, 103.0, 102.0, 106.0, True),  # a buy stop fills from 103 up
    (Side.BUY, OrderType.STP, None, 103.0, 103.5, None, False),
]


@pytest.mark.parametrize(("side", "order_type", "limit", "entry_stop", "sl", "tp", "ok"), BRACKET_CASES)
def test_bracket_when_its_exits_lie_on_the_wrong_side_of_the_entry_then_denied(
        side: Side, order_type: OrderType, limit: float | None, entry_stop: float | None, sl: float | None,
        tp: float | None, ok: bool) -> None:
    # A manual ticket took a stop-loss above a buy's price: the stop would sell the moment the entry filled.
    t = ticket(side=side, order_type=order_type, limit_price=limit, stop_price=entry_stop,
               bracket=Bracket(stop_price=sl, take_profit_price=tp))
    verdict = check(t, RiskLimits())
    assert _passes(verdict, "bracket") is ok
    assert verdict.passed is ok


def test_bracket_of_a_market_entry_without_a_quote_then_left_to_the_quote_check() -> None:
    t = ticket(order_type=OrderType.MKT, limit_price=None, bracket=Bracket(stop_price=101.0))
    verdict = check(t, RiskLimits(), mkt=market(quote(bid=math.nan, ask=math.nan, last=math.nan)))
    assert _passes(verdict, "bracket") is True
    assert not verdict.passed  # the quote check denies it


def test_bracket_denial_names_the_exit_and_the_entry() -> None:
    t = ticket(bracket=Bracket(stop_price=101.0, take_profit_price=99.0))
    message = check(t, RiskLimits()).check("bracket").message
    assert message == ("stop-loss 101.00 is above the entry's expected fill 100.00: it would trigger at once; "
                       "target 99.00 is below the entry's expected fill 100.00: it would fill at once")


def test_quote_age_without_a_quote_then_denied_saying_so() -> None:
    verdict = check(ticket(), RiskLimits(max_quote_age_s=5), mkt=market(quote("MSFT")))
    assert verdict.check("quote_age").message == "no quote"


def test_figures_when_not_finite_then_read_as_infinite_or_a_dash() -> None:
    assert (figure(math.inf, "s"), figure(-math.inf, "$"), figure(math.nan, "%")) == ("∞s", "-∞", "—")


def test_quote_when_the_symbol_is_not_watched_then_the_denial_says_no_quote_will_come() -> None:
    # A manual ticket for a symbol the session does not subscribe to said only "no quote".
    unwatched = check(ticket("MSFT"), RiskLimits(), mkt=market(quote("AAPL")))
    assert unwatched.check("quote").message == "no quote: not one of this session's symbols (--symbols, or the config)"
    watched = check(ticket("MSFT"), RiskLimits(), mkt=market(quote("AAPL"), instruments=[instrument("MSFT")]))
    assert watched.check("quote").message == "no quote"


def test_daily_trades_when_a_bracket_works_then_its_stop_and_target_count_once_and_the_denial_adds_up() -> None:
    # Found by QA: with max_daily_trades = 4 and 3 executions, an entry was denied "7 trades over the limit of 4
    # trades": a bracket's stop and target counted two, though one cancels the other, and 7 read as executed.
    entry = order(ticket(limit_price=98), ref="E1")
    stop = order(ticket(side=Side.SELL, order_type=OrderType.STP, limit_price=None, stop_price=90), parent_ref="E1")
    target = order(ticket(side=Side.SELL, limit_price=120), parent_ref="E1")
    acct = account(trades_today=1, working=[entry, stop, target])

    verdict = check(ticket(limit_price=97), RiskLimits(max_daily_trades=3), acct=acct)

    result = verdict.check("daily_trades")
    assert result is not None
    assert (result.passed, result.value) == (False, 4)  # 1 executed + the entry + one of its children + this one
    assert result.message == ("4 trades over the limit of 3 trades (1 executed today, 2 working orders that may "
                              "execute, and this one)")
