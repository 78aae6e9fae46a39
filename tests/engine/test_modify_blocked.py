"""Modifying a working exit while new entries are blocked (stale market data, an order in an unknown state).

Under a block only an order that reduces its position passes the engine's own check. For a modify, that check
counted the new ticket on top of the order's old one, still among the account's working orders: moving the
stop or exit limit of a long (unchanged size) was "past flat" and denied as "entries blocked", just when the
operator may need it. The risk gate's own reduce judgement (REDUCING) leaves the order out (and, for a bracket
child, its family); the engine's block check now leaves it out the same way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui_trader.domain import Order, OrderStatus, OrderType, TradingState
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import (
    bracket_buy,
    buy,
    eventually,
    held_at_broker,
    make_config,
    protected_long,
    running,
    sell,
    shown,
    status,
    strategy,
)

S = OrderStatus
UNKNOWN_BLOCK = ("unknown_orders", "an order's state is unknown; reconciling with the broker")


async def _long_with_exits(engine: Engine, qty: float = 10, *exits: tuple[OrderType, float]) -> list[Order]:
    """Long ``qty`` AAPL with plain (not reduce-only) sells working: a stop 10% under the bid or a limit 5% over
    the ask, of the quantities given."""
    await engine.submit(buy(qty))
    await eventually(lambda: engine.portfolio.quantity("AAPL") == qty, what=f"long {qty:g}")
    quote = engine.market.quotes["AAPL"]
    out = []
    for order_type, size in exits:
        price = ({"stop_price": round(quote.bid * 0.9, 2)} if order_type is OrderType.STP
                 else {"limit_price": round(quote.ask * 1.05, 2)})
        out.append(await engine.submit(sell(size, order_type=order_type, **price)))
    await eventually(lambda: all(status(engine, o.order_ref) is S.SUBMITTED for o in out), what="exits working")
    return out


async def test_stop_of_a_long_moved_while_market_data_is_stale_then_passes_and_reaches_the_broker(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 10, a plain sell stop of 10 working; the market data stalls past its threshold.
    now = [datetime(2026, 11, 20, 15, 0, tzinfo=UTC)]
    config = make_config(tmp_path, market_data_stale_s=30.0, strategies=(strategy("ema_cross"),))
    async with running(sim, config, clock=lambda: now[0]) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        (stop,) = await _long_with_exits(engine, 10, (OrderType.STP, 10))
        sim.control.stall_market_data(True)
        now[0] += timedelta(seconds=31)
        await eventually(lambda: "stale_data" in engine.blocks, what="entries blocked by stale data")
        assert [c.name for c in engine.preview(buy(1)).failures] == ["entries_blocked"]  # entries still are
        raised = round(stop.ticket.stop_price + 1, 2)  # type: ignore[operator]

        # Act: the stop moved up, its size unchanged.
        verdict = await engine.modify(stop.order_ref, stop_price=raised)

        # Assert: it still only closes the long: passes, and the broker holds the new stop.
        assert verdict.passed, verdict.reason
        await eventually(lambda: held_at_broker(sim, stop.order_ref) == (10, None, raised), what="stop moved")


async def test_exit_grown_past_flat_while_entries_blocked_then_denied_and_the_broker_keeps_it(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10, a sell limit of 5 and a sell stop of 5 working; entries blocked (an unknown order).
    limit, stop = await _long_with_exits(engine, 10, (OrderType.LMT, 5), (OrderType.STP, 5))
    engine.block(*UNKNOWN_BLOCK)

    # Act: the stop grown to 8 (with the limit's 5: 13 could sell, short 3); then only its price moved.
    grown = await engine.modify(stop.order_ref, quantity=8)
    lowered = round(stop.ticket.stop_price - 1, 2)  # type: ignore[operator]
    moved = await engine.modify(stop.order_ref, stop_price=lowered)

    # Assert: the growth is an entry and denied (nothing sent); the move only reduces and goes.
    assert [c.name for c in grown.failures] == ["entries_blocked"]
    assert moved.passed, moved.reason
    await eventually(lambda: held_at_broker(sim, stop.order_ref) == (5, None, lowered), what="stop moved")
    assert held_at_broker(sim, limit.order_ref)[0] == 5


async def test_stop_cut_unanswered_then_its_next_change_while_entries_blocked_leaves_it_out_at_either_size(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10, a plain sell stop of 10; its cut to 6 sent and not answered (the gate counts it at 10,
    # the larger); entries blocked.
    (stop,) = await _long_with_exits(engine, 10, (OrderType.STP, 10))
    sim.control.delay_messages("open_order", 1.0)
    assert (await engine.modify(stop.order_ref, quantity=6)).passed
    await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 6, what="the cut at the broker")
    assert stop.order_ref in engine.snapshot().modifications
    engine.block(*UNKNOWN_BLOCK)
    ticket = engine.orders.orders[stop.order_ref].ticket

    # Act: the checks of its next modify (the one a modify runs), at 6 and at 10.
    at_six = engine.verdict(ticket, stop.order_ref)
    at_ten = engine.verdict(replace(ticket, quantity=10), stop.order_ref)

    # Assert: the order is left out whichever size it is counted at; anything beside it is still counted.
    assert at_six.passed, at_six.reason
    assert at_ten.passed, at_ten.reason
    assert [c.name for c in engine.preview(sell(1)).failures] == ["entries_blocked"]  # 10 held + 1: past flat
    assert shown(engine, stop.order_ref)[0] == 6


async def test_bracket_stop_moved_while_entries_blocked_then_passes_and_reaches_the_broker(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10 with its bracket's stop and target (one OCA group of 10 each); entries blocked.
    _, stop, target = await protected_long(engine, 10)
    engine.block(*UNKNOWN_BLOCK)
    raised = round(stop.ticket.stop_price + 0.5, 2)  # type: ignore[operator]

    # Act
    verdict = await engine.modify(stop.order_ref, stop_price=raised)

    # Assert: the stop and its sibling target are alternatives, not 20 to sell: it passes.
    assert verdict.passed, verdict.reason
    await eventually(lambda: held_at_broker(sim, stop.order_ref) == (10, None, raised), what="stop moved")
    assert held_at_broker(sim, target.order_ref)[0] == 10


async def test_one_of_two_bracket_stops_grown_past_flat_while_entries_blocked_then_denied(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: two brackets filled, long 20, a stop of 10 from each; entries blocked.
    first = await bracket_buy(sim, engine, qty=10)
    second = await bracket_buy(sim, engine, qty=10)
    assert engine.portfolio.quantity("AAPL") == 20
    engine.block(*UNKNOWN_BLOCK)

    # Act: the first stop grown to 15 (within the position it protects, so not refused as oversized).
    verdict = await engine.modify(first.order_ref, quantity=15)

    # Assert: with the other bracket's stop, 25 could sell against the long of 20: not reducing. The gate's
    # reduce-only check (its own family left out) and the engine's block agree; the block's check used to leave
    # out every protective order of the symbol, the other stop too, and called the growth reducing.
    assert [c.name for c in verdict.failures] == ["entries_blocked", "reduce_only"]
    assert held_at_broker(sim, first.order_ref)[0] == 10
    assert held_at_broker(sim, second.order_ref)[0] == 10


async def test_exit_limit_moved_while_reducing_then_the_gate_leaves_the_order_out_and_passes(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10, a plain sell limit of 10 working; trading REDUCING.
    (limit,) = await _long_with_exits(engine, 10, (OrderType.LMT, 10))
    engine.reduce_only(True, "test")
    assert engine.trading_state is TradingState.REDUCING
    lowered = round(limit.ticket.limit_price - 0.5, 2)  # type: ignore[operator]

    # Act
    verdict = await engine.modify(limit.order_ref, limit_price=lowered)
    grown = await engine.modify(limit.order_ref, quantity=12)

    # Assert: moved (still reducing, its old self not counted beside it); grown past the long, denied.
    assert verdict.passed, verdict.reason
    await eventually(lambda: held_at_broker(sim, limit.order_ref) == (10, lowered, None), what="limit moved")
    assert not grown.passed
    assert "trading_state" in {c.name for c in grown.failures}


async def test_sell_closing_a_long_approved_while_entries_blocked_then_its_re_check_leaves_it_out_and_it_is_sent(
        sim: SimGateway, tmp_path: Path) -> None:
    # The re-check after approval is the other check of an order already tracked: approved, it is among the
    # orders in flight, and the block's check counted it beside its own ticket (sell 10 + 10 under a long 10).
    config = make_config(tmp_path, approvals_required=True, approval_timeout_s=60.0)
    async with running(sim, config) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        entry = await engine.submit(buy(10))
        engine.approve(entry.order_ref)
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="long 10")
        engine.block(*UNKNOWN_BLOCK)
        exit_ = await engine.submit(sell(10))
        assert status(engine, exit_.order_ref) is S.PENDING_APPROVAL

        # Act
        engine.approve(exit_.order_ref)

        # Assert: sent (not denied at its re-check), it closes the long.
        await eventually(lambda: status(engine, exit_.order_ref).is_final, what="the exit ended")
        assert status(engine, exit_.order_ref) is S.FILLED, engine.orders.orders[exit_.order_ref].history[-1].note
        assert engine.portfolio.quantity("AAPL") == 0
