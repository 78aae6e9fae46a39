"""A modification the broker refuses: the order works on at the figures it had, and the engine shows them.

The engine shows a modify from the moment it sends it. IB refuses some (a race with a fill or a cancel,
a modify while the last one is still processed: 2102, a rejection: 201) with an error for the order id
alone, the order working on at its old figures. The engine kept the new ones (a stop shown moved while
the broker held it where it was), and ib_async, which marks a trade Cancelled at any error for it, had
the order shown rejected, the position as unprotected while its stop worked, and the next modify failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tui_trader.domain import AlertLevel, Bracket, Order, OrderStatus, OrderTicket, OrderType, Side, TradingState
from tui_trader.domain.alerts import Alert
from tui_trader.domain.events import AlertRaised, OrderDenied
from tui_trader.engine.amend import REFUSED_NOTE
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import (
    REFUSAL,
    alerts_said,
    bracket_buy,
    buy,
    eventually,
    held_at_broker,
    make_config,
    running,
    shown,
    status,
)

S = OrderStatus
STILL_PROCESSING = "Unable to modify this order as it is still being processed."
QUICK_RETRIES = (0.05, 0.05, 0.05)
"""The waits before a refused cut is sent again (``cut_retry_delays_s``), short for the tests."""


def refusals(events: Subscription) -> list[Alert]:
    """The alerts of refused modifications published so far."""
    return alerts_said(events, kind="modify_refused")


def cut_alerts(events: Subscription) -> list[tuple[AlertLevel, str]]:
    """(level, text) of the alerts published so far about protective orders and refused modifications."""
    return [(a.level, a.text) for a in alerts_said(events) if a.source == "protection" or a.kind == "modify_refused"]


async def cut_alerts_until(events: Subscription, enough: Callable[[list[tuple[AlertLevel, str]]], bool], what: str,
                           settled: Callable[[], object], settled_what: str) -> list[tuple[AlertLevel, str]]:
    """:func:`cut_alerts` collected as they are published until ``enough`` of them are, and then until the
    engine has ``settled`` (those said meanwhile too)."""
    said: list[tuple[AlertLevel, str]] = []
    await eventually(lambda: enough(said.extend(cut_alerts(events)) or said), what=what, timeout=5.0)
    await eventually(settled, what=settled_what)
    said.extend(cut_alerts(events))
    return said


def cuts_received(sim: SimGateway, order_ref: str) -> list[float]:
    """The size of each modification of ``order_ref`` the simulator received, refused ones too."""
    return [r.qty for r in sim.received_orders() if r.order_ref == order_ref and r.modification]


async def resting_buy(engine: Engine, sim: SimGateway) -> tuple[Order, float]:
    """A limit buy of 10 AAPL $3 under the bid, working (``SUBMITTED``) at the broker, and its limit."""
    await eventually(lambda: "AAPL" in engine.market.quotes)
    limit = round(sim.quote("AAPL").bid - 3.0, 2)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    return order, limit


def _cut_given_up_said(ref: str) -> list[tuple[AlertLevel, str]]:
    """What a cut of stop ``ref`` (STP 100 AAPL) to a position of 40 says when the broker refuses every try (2102):
    the cut, the first refusal, the CRITICAL giving up."""
    return [
        (AlertLevel.INFO, f"{ref} (STP 100 AAPL) cut to the position of 40"),
        (AlertLevel.WARNING, f"{ref} (STP 100 AAPL): the broker refused its cut to 40 (2102: {STILL_PROCESSING}): "
                             "tried again in 0.05s"),
        (AlertLevel.CRITICAL, f"{ref} (STP 100 AAPL) is larger than the position of 40 and could not be cut to it "
                              f"(the broker refused 4 tries, the last 2102: {STILL_PROCESSING}): if it fills, the "
                              "position reverses")]


async def test_modify_of_a_stop_when_the_broker_refuses_it_then_shown_where_the_broker_holds_it_and_said(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes)
        stop = await bracket_buy(sim, engine, qty=10)
        old = stop.ticket.stop_price or 0.0
        raised = round(old + 1.0, 2)
        sim.control.refuse_next_modify(201, REFUSAL)

        verdict = await engine.modify(stop.order_ref, stop_price=raised)

        assert verdict.passed
        alerts: list[Alert] = []
        await eventually(lambda: bool(alerts.extend(refusals(events)) or alerts), what="the refusal said")
        assert shown(engine, stop.order_ref) == held_at_broker(sim, stop.order_ref) == (10, None, old)
        assert status(engine, stop.order_ref) is S.SUBMITTED  # working, not rejected
        assert engine.portfolio.positions["AAPL"].stop_price == old  # the positions pane's stop
        assert [(a.level, a.text) for a in alerts] == [
            (AlertLevel.WARNING, f"{stop.order_ref} (STP SELL AAPL): the broker refused its modification to 10 stp "
                                 f"{raised:g} (201: {REFUSAL}); it works on at 10 stp {old:g}")]
        assert engine.journal is not None
        await engine.journal.flush()
        journaled = await engine.journal.order(stop.order_ref)
        assert journaled is not None
        assert journaled.ticket.stop_price == old
        assert journaled.history[-1].note == f"{REFUSED_NOTE} (201): as before"
        assert any(isinstance(e, AlertRaised) and e.alert.kind == "modify_refused"
                   for e in await engine.journal.events(["AlertRaised"]))

        # Then: the next modify of the order goes, and is shown as the broker holds it.
        await engine.modify(stop.order_ref, stop_price=raised)
        await eventually(lambda: held_at_broker(sim, stop.order_ref) == (10, None, raised), what="moved at last")
        assert shown(engine, stop.order_ref) == (10, None, raised)


async def test_modify_when_refused_as_still_being_processed_then_shown_as_before(
        engine: Engine, sim: SimGateway) -> None:
    # 2102 is one of IB's 21xx codes, which ib_async takes for warnings: the order stays "ValidationError" there.
    order, limit = await resting_buy(engine, sim)
    sim.control.refuse_next_modify(2102, "Unable to modify this order as it is still being processed.")

    await engine.modify(order.order_ref, quantity=20, limit_price=round(limit + 1.0, 2))

    await eventually(lambda: engine.orders.orders[order.order_ref].history[-1].note.startswith(REFUSED_NOTE),
                     what="put back")
    assert shown(engine, order.order_ref) == held_at_broker(sim, order.order_ref) == (10, limit, None)
    assert status(engine, order.order_ref) is S.SUBMITTED


async def test_protective_cut_when_the_broker_refuses_it_then_critical_and_shown_at_the_size_it_keeps(
        sim: SimGateway, tmp_path: Path) -> None:
    # Long 100 with its stop; a sell of 60 fills and the stop's cut to 40 is refused: the stop of 100 stays
    # on 40 held (if it triggers, it sells 60 more than is held). The engine showed it at 40.
    async with running(sim, make_config(tmp_path, ack_timeout_s=60)) as (engine, events):  # no retry in the test
        stop = await _stop_left_larger_than_the_position(sim, engine, 201, REFUSAL, 1)

        alerts: list[Alert] = []
        await eventually(lambda: bool(alerts.extend(refusals(events)) or alerts), what="the refusal said")
        assert shown(engine, stop.order_ref)[0] == held_at_broker(sim, stop.order_ref)[0] == 100
        assert engine.portfolio.quantity("AAPL") == 40
        (alert,) = alerts
        assert alert.level is AlertLevel.CRITICAL
        assert alert.text.startswith(f"{stop.order_ref} (STP SELL AAPL): the broker refused its modification to 40 ")
        assert alert.text.endswith(f"{stop.order_ref} at 100 is larger than the AAPL position it protects (40): if it "
                                   "fills, the position reverses")
        # The refusal answers the cut: it is not waited for until the ack timeout (60 s here), nor sent again.
        await eventually(lambda: stop.order_ref not in engine._cutting, what="the cut given up, said")
        assert [r.modification for r in sim.received_orders() if r.order_ref == stop.order_ref] == [False, True]


async def test_protective_cut_when_refused_as_still_being_processed_then_sent_again_and_the_stop_fits(
        sim: SimGateway, tmp_path: Path) -> None:
    # IB's 2102 refuses a modify for the moment only. The cut was given up at it, said CRITICAL: the stop of 100
    # stayed on 40 held until another fill happened to cut it again.
    async with running(sim, make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES)) as (engine, events):
        stop = await _stop_left_larger_than_the_position(sim, engine, 2102, STILL_PROCESSING, 1)

        await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 40, what="the stop cut at its second try",
                         timeout=5.0)
        await eventually(lambda: stop.order_ref not in engine._cutting, what="the cut done")
        assert cuts_received(sim, stop.order_ref) == [40, 40]
        assert shown(engine, stop.order_ref)[0] == engine.portfolio.quantity("AAPL") == 40
        assert cut_alerts(events) == [
            (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40"),
            (AlertLevel.WARNING, f"{stop.order_ref} (STP 100 AAPL): the broker refused its cut to 40 (2102: "
                                 f"{STILL_PROCESSING}): tried again in 0.05s"),
            (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40 at try 2")]


async def test_protective_cut_when_every_try_is_refused_as_still_being_processed_then_one_critical_and_left(
        sim: SimGateway, tmp_path: Path) -> None:
    # The tries are bounded: after the last, one CRITICAL (not one per try), and the stop works on at the size the
    # broker keeps (not cancelled: the position would have no stop at all).
    async with running(sim, make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES)) as (engine, events):
        stop = await _stop_left_larger_than_the_position(sim, engine, 2102, STILL_PROCESSING, 1 + len(QUICK_RETRIES))

        said = await cut_alerts_until(events, lambda said: any(level is AlertLevel.CRITICAL for level, _ in said),
                                      "the cut given up, said", lambda: stop.order_ref not in engine._cutting,
                                      "the cut done")
        assert cuts_received(sim, stop.order_ref) == [40] * (1 + len(QUICK_RETRIES))
        assert shown(engine, stop.order_ref)[0] == held_at_broker(sim, stop.order_ref)[0] == 100
        assert status(engine, stop.order_ref) is S.SUBMITTED
        assert said == _cut_given_up_said(stop.order_ref)


async def test_protective_cut_when_the_position_shrinks_again_while_a_refused_cut_waits_then_sized_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The try after a refusal is sized from the position as it is then, not as it was at the first try.
    config = make_config(tmp_path, cut_retry_delays_s=(0.5, *QUICK_RETRIES[1:]))  # time for a sell to fill
    async with running(sim, config) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes)
        stop = await bracket_buy(sim, engine, qty=100)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        sim.control.refuse_next_modify(2102, STILL_PROCESSING, order_ref=stop.order_ref)
        await engine.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))
        said: list[tuple[AlertLevel, str]] = []
        await eventually(lambda: any(level is AlertLevel.WARNING for level, _ in said.extend(cut_alerts(events))
                                     or said), what="the refusal said: the cut waits")

        second = await engine.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.MKT))

        await eventually(lambda: status(engine, second.order_ref) is S.FILLED, what="the second sell")
        await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 10, what="the stop cut to the 10 held")
        await eventually(lambda: stop.order_ref not in engine._cutting, what="the cut done")
        assert cuts_received(sim, stop.order_ref) == [40, 10]
        assert shown(engine, stop.order_ref)[0] == engine.portfolio.quantity("AAPL") == 10


async def test_modify_of_a_bracket_entry_when_the_broker_refuses_it_and_its_exits_grew_then_critical(
        engine: Engine, sim: SimGateway) -> None:
    # The entry grows first, then its exits: the broker refuses the entry (50) and takes the exits (80). When the
    # entry fills, its stop of 80 sells 30 more than the 50 bought.
    bid = sim.quote("AAPL").bid
    bracket = Bracket(stop_price=round(bid - 4, 2), take_profit_price=round(bid + 4, 2))
    entry = await engine.submit(buy(50, order_type=OrderType.LMT, limit_price=round(bid - 1, 2), bracket=bracket))
    stop, target = engine.orders.children(entry.order_ref)
    await eventually(lambda: all(status(engine, o.order_ref) is S.SUBMITTED for o in (entry, stop, target)))
    events = engine.subscribe("refusals", lossless=True)
    sim.control.refuse_next_modify(201, REFUSAL, order_ref=entry.order_ref)

    await engine.modify(entry.order_ref, quantity=80)

    alerts: list[Alert] = []
    await eventually(lambda: bool(alerts.extend(refusals(events)) or alerts), what="the refusal said")
    assert shown(engine, entry.order_ref)[0] == held_at_broker(sim, entry.order_ref)[0] == 50
    await eventually(lambda: [held_at_broker(sim, o.order_ref)[0] for o in (stop, target)] == [80, 80])
    assert [shown(engine, o.order_ref)[0] for o in (stop, target)] == [80, 80]
    (alert,) = alerts
    assert alert.level is AlertLevel.CRITICAL
    assert f"{stop.order_ref} at 80 is larger than its entry {entry.order_ref} (50)" in alert.text


async def test_modify_asked_while_a_refused_one_is_unanswered_then_built_on_what_the_broker_kept(
        engine: Engine, sim: SimGateway) -> None:
    # The second modify waits for the broker's answer to the first (IB refuses a modify while it processes the
    # last one): built on the order as the refusal left it, the refused 20 does not reach the broker with the
    # new limit. Sent at once, it carried the 20 it was amended on.
    order, limit = await resting_buy(engine, sim)
    sim.control.refuse_next_modify(201, REFUSAL)
    sim.control.delay_messages("error", 1.0)  # the refusal comes when the simulated clock moves on
    new_limit = round(limit + 0.5, 2)

    both = asyncio.gather(engine.modify(order.order_ref, quantity=20),
                          engine.modify(order.order_ref, limit_price=new_limit))
    await eventually(lambda: [r.qty for r in sim.received_orders() if r.modification] == [20], what="the first")
    sim.control.step(1.0)
    await both

    await eventually(lambda: held_at_broker(sim, order.order_ref) == (10, new_limit, None), what="the second")
    assert [r.qty for r in sim.received_orders() if r.modification] == [20, 10]
    assert shown(engine, order.order_ref) == (10, new_limit, None)


async def test_modify_asked_while_the_last_is_never_answered_then_sent_after_the_ack_timeout(
        sim: SimGateway, tmp_path: Path) -> None:
    # The wait for the broker's answer is bounded: an echo lost on the way never holds the next modify back.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.3)) as (engine, _):
        order, limit = await resting_buy(engine, sim)
        sim.control.drop_messages("open_order", 1)  # the first modify's echo is lost

        await engine.modify(order.order_ref, quantity=20)
        await engine.modify(order.order_ref, quantity=30)

        await eventually(lambda: held_at_broker(sim, order.order_ref) == (30, limit, None), what="the second")
        assert shown(engine, order.order_ref) == (30, limit, None)


async def test_modify_sent_while_the_last_is_unanswered_when_the_broker_refuses_one_then_the_oldest_and_the_newer_shown(
        sim: SimGateway, tmp_path: Path) -> None:
    # Two modifies of one order unanswered at once (the first's answer late past the ack timeout): IB answers the
    # oldest first, so its refusal is the first's. Taken for the newer one's, the engine said the 30 refused and
    # kept the order pending on the 20, which the broker's echo of 30 never confirms.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.3)) as (engine, events):
        order, limit = await resting_buy(engine, sim)
        sim.control.refuse_next_modify(201, REFUSAL, order_ref=order.order_ref)
        for kind in ("error", "open_order", "order_status"):  # the answers come when the simulated clock moves on
            sim.control.delay_messages(kind, 1.0)

        await engine.modify(order.order_ref, quantity=20)
        await engine.modify(order.order_ref, quantity=30)  # sent once the first is unanswered past the ack timeout

        await eventually(lambda: cuts_received(sim, order.order_ref) == [20, 30], what="both modifies received")
        for kind in ("error", "open_order", "order_status"):  # the reconciliation after the refusal is answered
            sim.control.delay_messages(kind, 0)
        assert held_at_broker(sim, order.order_ref) == (30, limit, None)
        assert engine.snapshot().modifications[order.order_ref].held.quantity == 10
        sim.control.step(1.0)  # the refusal of the first, then the echo of the second

        alerts: list[Alert] = []
        await eventually(lambda: bool(alerts.extend(refusals(events)) or alerts), what="the refusal said")
        assert [(a.level, a.text) for a in alerts] == [
            (AlertLevel.WARNING, f"{order.order_ref} (LMT BUY AAPL): the broker refused its modification to 20 lmt "
                                 f"{limit:g} (201: {REFUSAL}); it works on at 10 lmt {limit:g} until the broker "
                                 f"answers the newer modification to 30 lmt {limit:g}")]
        await eventually(lambda: not engine.snapshot().modifications, what="the second confirmed, nothing pending")
        assert shown(engine, order.order_ref) == (30, limit, None)
        assert status(engine, order.order_ref) is S.SUBMITTED


QUICK_RECHECK = 0.3
"""How often a cut given up is tried again (``cut_recheck_s``), short for the tests."""


async def _stop_left_larger_than_the_position(sim: SimGateway, engine: Engine, code: int, text: str,
                                              refusals_count: int) -> Order:
    """Long 100 AAPL with its stop; the broker refuses the stop's next ``refusals_count`` modifications; a sell
    of 60 fills: the stop is to be cut to the 40 held."""
    await eventually(lambda: "AAPL" in engine.market.quotes)
    stop = await bracket_buy(sim, engine, qty=100)
    quote = sim.quote("AAPL")
    sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
    sim.control.refuse_next_modify(code, text, order_ref=stop.order_ref, count=refusals_count)
    sell = await engine.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))
    await eventually(lambda: status(engine, sell.order_ref) is S.FILLED, what="the sell")
    return stop


async def test_protective_cut_given_up_when_the_refusals_stop_then_the_recheck_cuts_it_and_says_so_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # Every try of the cut refused (2102), one CRITICAL, and the stop of 100 stayed on 40 held until a later fill
    # or a reconciliation happened to cut it again. The broker takes modifies again: the re-check cuts it.
    config = make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES, cut_recheck_s=QUICK_RECHECK)
    async with running(sim, config) as (engine, events):
        stop = await _stop_left_larger_than_the_position(sim, engine, 2102, STILL_PROCESSING, 1 + len(QUICK_RETRIES))

        await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 40, what="cut by the re-check", timeout=5.0)

        await eventually(lambda: stop.order_ref not in engine._cutting, what="the cut done")
        assert cuts_received(sim, stop.order_ref) == [40] * (2 + len(QUICK_RETRIES))
        assert shown(engine, stop.order_ref)[0] == engine.portfolio.quantity("AAPL") == 40
        assert cut_alerts(events) == [
            *_cut_given_up_said(stop.order_ref),
            (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40 (after 5 attempts)")]
        assert not engine._uncut


async def test_protective_cut_when_a_recheck_is_refused_again_then_no_second_critical(
        sim: SimGateway, tmp_path: Path) -> None:
    # The first re-check's tries are all refused too: nothing more is said (not a CRITICAL every re-check for the
    # same order at the same sizes), and the next re-check cuts it.
    config = make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES, cut_recheck_s=QUICK_RECHECK)
    async with running(sim, config) as (engine, events):
        tries = 1 + len(QUICK_RETRIES)
        stop = await _stop_left_larger_than_the_position(sim, engine, 2102, STILL_PROCESSING, 2 * tries)

        await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 40, what="cut by the second re-check",
                         timeout=5.0)

        await eventually(lambda: stop.order_ref not in engine._cutting, what="the cut done")
        assert cuts_received(sim, stop.order_ref) == [40] * (2 * tries + 1)
        said = cut_alerts(events)
        assert [level for level, _ in said] == [AlertLevel.INFO, AlertLevel.WARNING, AlertLevel.CRITICAL,
                                                AlertLevel.INFO]
        assert said[-1] == (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40 "
                                             f"(after {2 * tries + 1} attempts)")


async def test_protective_cut_refused_outright_then_rechecked_refused_again_silently_then_cut(
        sim: SimGateway, tmp_path: Path) -> None:
    # A refusal that is not for the moment only (201) is said CRITICAL at once by the amendments; the re-check's
    # try refused the same way is not said again.
    config = make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES, cut_recheck_s=QUICK_RECHECK)
    async with running(sim, config) as (engine, events):
        stop = await _stop_left_larger_than_the_position(sim, engine, 201, REFUSAL, 2)

        await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 40, what="cut by the second re-check",
                         timeout=5.0)

        await eventually(lambda: stop.order_ref not in engine._cutting, what="the cut done")
        assert cuts_received(sim, stop.order_ref) == [40, 40, 40]
        said = cut_alerts(events)
        assert [level for level, _ in said] == [AlertLevel.INFO, AlertLevel.CRITICAL, AlertLevel.INFO]
        assert said[1][1].startswith(f"{stop.order_ref} (STP SELL AAPL): the broker refused its modification to 40 ")
        assert said[-1] == (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40 "
                                             "(after 3 attempts)")


async def test_protective_cut_given_up_when_the_gate_would_deny_it_then_not_retried_until_it_passes(
        sim: SimGateway, tmp_path: Path) -> None:
    # Trading halted after the cut gave up: each re-check's try would be denied, and each denial published (a
    # notice every re-check). Not tried while the gate would deny it; cut at the first re-check after.
    config = make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES, cut_recheck_s=QUICK_RECHECK)
    async with running(sim, config) as (engine, events):
        stop = await _stop_left_larger_than_the_position(sim, engine, 2102, STILL_PROCESSING, 1 + len(QUICK_RETRIES))
        await eventually(lambda: stop.order_ref in engine._uncut, what="the cut given up", timeout=5.0)
        assert engine.set_trading_state(TradingState.HALTED, "test", "an automatic trip")
        first = engine._next_cut_recheck

        await eventually(lambda: engine._next_cut_recheck > first + QUICK_RECHECK, what="two re-checks")

        assert cuts_received(sim, stop.order_ref) == [40] * (1 + len(QUICK_RETRIES))
        assert not [e for e in events.drain() if isinstance(e, OrderDenied) and e.order_ref == stop.order_ref]
        assert engine.set_trading_state(TradingState.ACTIVE, "test", "released")
        await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 40, what="cut by the re-check",
                         timeout=5.0)
        assert cuts_received(sim, stop.order_ref) == [40] * (2 + len(QUICK_RETRIES))


async def test_protective_cut_given_up_when_the_operator_cancels_the_stop_then_said_once_no_cut_needed(
        sim: SimGateway, tmp_path: Path) -> None:
    # Every try of the cut refused, said CRITICAL; the operator cancels the stop. The re-check forgot it silently:
    # the operator's last word on it was the CRITICAL (the stop larger than the position, it reverses).
    config = make_config(tmp_path, cut_retry_delays_s=QUICK_RETRIES, cut_recheck_s=QUICK_RECHECK)
    async with running(sim, config) as (engine, events):
        stop = await _stop_left_larger_than_the_position(sim, engine, 2102, STILL_PROCESSING, 100)  # every re-check
        await eventually(lambda: stop.order_ref in engine._uncut, what="the cut given up", timeout=5.0)

        await engine.cancel(stop.order_ref)

        said = await cut_alerts_until(events, lambda said: len(said) >= 4, "no cut needed said",
                                      lambda: not engine._uncut and stop.order_ref not in engine._cutting, "forgotten")
        assert status(engine, stop.order_ref) is S.CANCELLED
        assert said == [
            *_cut_given_up_said(stop.order_ref),
            (AlertLevel.INFO, f"{stop.order_ref} (STP 100 AAPL) ended CANCELLED: no cut needed")]
