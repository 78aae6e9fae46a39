"""The operator's cancel and modify of an order are on the record: who did it, to which order, what changed.

Against the simulator and a real journal: each is journaled as an :class:`OperatorAction` under the order's ref
(the journal indexes it with the order's other events, for its trace); the protective cuts the engine makes by
itself are not the operator's and are not recorded as theirs.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from tui_trader.domain import OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import ModifyRefused, OperatorAction
from tui_trader.domain.orders import REFUSED_NOTE
from tui_trader.engine.engine import Engine
from tui_trader.ops.reports import Period, build_report
from tui_trader.sim import SimGateway

from .helpers import REFUSAL, alerts_said, below_bid, bracket_buy, buy, eventually, make_config, running, status

S = OrderStatus


async def _actions(engine: Engine, order_ref: str | None = None) -> list[tuple[str, str, str, str, str, str]]:
    """The operator actions journaled so far (under ``order_ref``, when given)."""
    assert engine.journal is not None
    await engine.journal.flush()
    return [(e.who, e.action, e.why, e.before, e.after, e.order_ref)
            for e in await engine.journal.events(kinds=("OperatorAction",), order_ref=order_ref)
            if isinstance(e, OperatorAction)]


async def _resting_buy(engine: Engine) -> tuple[str, float]:
    """A buy limit of 10 AAPL working below the bid: its ref and limit."""
    limit = below_bid(engine)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED, what="the limit working")
    return order.order_ref, limit


async def test_cancel_of_a_working_order_then_journaled_as_the_operators_action_under_its_ref(
        engine: Engine) -> None:
    ref, _ = await _resting_buy(engine)

    await engine.cancel(ref)

    await eventually(lambda: status(engine, ref) is S.CANCELLED, what="cancelled at the broker")
    assert await _actions(engine, ref) == [
        ("operator", "cancel_order", f"{ref} (BUY 10 AAPL LMT)", "SUBMITTED", "cancel sent to the broker", ref)]
    trace = await engine.order_trace(ref)  # it read "SUBMITTED -> CANCELLED (Cancelled)", a broker's cancel alike
    assert trace is not None
    assert [s.detail for s in trace.steps if s.step == "operator"] == [
        "operator: cancel order, SUBMITTED -> cancel sent to the broker"]


async def test_modify_of_a_working_order_then_journaled_with_its_figures_before_and_after(
        engine: Engine, sim: SimGateway) -> None:
    ref, limit = await _resting_buy(engine)
    lower = round(limit - 0.5, 2)

    verdict = await engine.modify(ref, quantity=15, limit_price=lower)

    assert verdict.passed
    await eventually(lambda: [o.lmt_price for o in sim.orders() if o.order_ref == ref] == [lower],
                     what="the new limit at the broker")
    assert await _actions(engine, ref) == [
        ("operator", "modify_order", f"{ref} (BUY 10 AAPL LMT)", f"quantity 10, limit {limit:g}",
         f"quantity 15, limit {lower:g}", ref)]
    # The order's trace says who modified it and what changed (it showed only "SUBMITTED, updated").
    trace = await engine.order_trace(ref)
    assert trace is not None
    assert [s.detail for s in trace.steps if s.step == "operator"] == [
        f"operator: modify order, quantity 10, limit {limit:g} -> quantity 15, limit {lower:g}"]


async def test_protective_cut_after_a_partial_exit_then_not_recorded_as_the_operators_modify(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes, what="first quote")
        stop = await bracket_buy(sim, eng, qty=100)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)

        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))

        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the sell")
        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [40],
                         what="the stop cut to 40 at the broker")
        assert await _actions(eng) == []


async def test_modify_the_broker_refuses_then_the_record_says_refused_and_the_trace_shows_the_refusal_once(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange
    events = engine.subscribe("test", lossless=True)
    ref, limit = await _resting_buy(engine)
    lower = round(limit - 0.5, 2)
    sim.control.refuse_next_modify(201, REFUSAL)

    # Act
    await engine.modify(ref, limit_price=lower)

    # Assert: the console's alert was right, the record was not: the operator's modify read as done, and the trace
    # showed the modify, then "SUBMITTED, updated: broker id …" twice without a word of the refusal.
    await eventually(lambda: alerts_said(events, kind="modify_refused"), what="the refusal said")
    assert engine.journal is not None
    await engine.journal.flush()
    asked, held = f"quantity 10, limit {lower:g}", f"quantity 10, limit {limit:g}"
    (refused,) = [e for e in await engine.journal.events(kinds=("ModifyRefused",), order_ref=ref)
                  if isinstance(e, ModifyRefused)]
    day = refused.time.astimezone(ZoneInfo("America/New_York")).date()
    report = await build_report(engine.journal, Period(day, day))
    assert [(a["action"], a["before"], a["after"]) for a in report["operator_actions"]] == [
        ("modify_order", held, f"{held}: the broker refused {asked} (201: {REFUSAL})")]
    trace = await engine.order_trace(ref)
    assert trace is not None
    said = [(s.step, s.detail) for s in trace.steps if s.step in ("status", "operator", "modify refused")]
    assert said[-3:] == [
        ("operator", f"operator: modify order, {held} -> {asked}"),
        ("status", f"SUBMITTED, updated: {REFUSED_NOTE} (201): as before; broker: 201: {REFUSAL}"),
        ("modify refused", f"the broker refused the modify to {asked} (201: {REFUSAL}); the order stays at {held}")]
    statuses = [d for step, d in said if step == "status"]
    assert len(statuses) == len(set(statuses)), statuses  # no update said twice
