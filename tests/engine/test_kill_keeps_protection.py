"""An automatic trip to HALTED keeps the open positions' protective orders; the operator's kill does not.

The daily-loss trip (and every automatic trigger whose action is ``halted``) cancelled every working order,
the stop and target of every open position too, and then nothing managed those positions (HALTED blocks
the strategies' exits): a 2% loss limit could end in an unbounded loss. Now it cancels only what can add
exposure; Ctrl+K still cancels everything. Real engine against the simulator over loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ib_async
import pytest

from tui_trader.domain import Bracket, OrderStatus, OrderType, TradingState
from tui_trader.domain.events import AlertRaised, Event, KillChecked, KillReport, OperatorAction
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.ops.kill import latch
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.risk.limits import CancelScope, TriggerAction
from tui_trader.sim import SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import (
    CLIENT_ID,
    bracket_buy,
    buy,
    eventually,
    limits_for_tests,
    make_config,
    outside_client,
    protected_long,
    running,
    status,
)

S = OrderStatus


@dataclass
class Book:
    """What the trip found: a bracketed long in AAPL and a resting entry in MSFT."""

    entry: str
    stop: str
    target: str
    resting: str


class Seen:
    """Every event drained from a subscription, kept."""

    def __init__(self, events: Subscription) -> None:
        self.events = events
        self.all: list[Event] = []

    def checks(self) -> list[KillReport]:
        """The kill verifications so far."""
        return [e.report for e in self.checked()]

    def checked(self) -> list[KillChecked]:
        """The kill verifications so far, as published."""
        self.all.extend(self.events.drain())
        return [e for e in self.all if isinstance(e, KillChecked)]

    def recorded(self, action: str) -> list[OperatorAction]:
        """The operator actions ``action`` published so far."""
        self.checks()
        return [e for e in self.all if isinstance(e, OperatorAction) and e.action == action]

    def alerts(self, *kinds: str) -> list[str]:
        """The texts of the alerts of ``kinds`` so far."""
        self.checks()
        return [e.alert.text for e in self.all if isinstance(e, AlertRaised) and e.alert.kind in kinds]


def _config(tmp_path: Path, scope: CancelScope = CancelScope.OWN, ack_timeout_s: float = 2.0, **limits: Any) -> Any:
    return make_config(tmp_path, ack_timeout_s=ack_timeout_s,
                       limits=limits_for_tests(daily_loss_limit=500, kill_cancel_scope=scope, **limits))


async def _price(sim: SimGateway, engine: Engine, price: float) -> None:
    sim.control.set_price("AAPL", price)
    await eventually(lambda: (q := engine.market.quotes.get("AAPL")) is not None and q.mark == pytest.approx(price),
                     what=f"AAPL at {price}")


async def _bracketed_long_and_a_resting_entry(sim: SimGateway, engine: Engine) -> Book:
    """100 AAPL near 100 with its stop at 90 and target at 110, and a MSFT buy limit resting below the bid."""
    await eventually(lambda: {"AAPL", "MSFT"} <= set(engine.market.quotes), what="first quotes")
    await _price(sim, engine, 100.0)
    entry = await engine.submit(buy(100, bracket=Bracket(stop_price=90.0, take_profit_price=110.0)))
    limit = round(engine.market.quotes["MSFT"].bid * 0.97, 2)
    resting = await engine.submit(buy(5, "MSFT", order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="entry filled")
    stop, target = engine.orders.children(entry.order_ref)
    refs = (stop.order_ref, target.order_ref, resting.order_ref)
    await eventually(lambda: all(status(engine, r) is S.SUBMITTED for r in refs), what="stop, target, limit working")
    return Book(entry.order_ref, stop.order_ref, target.order_ref, resting.order_ref)


async def _daily_loss_trip(sim: SimGateway, engine: Engine, seen: Seen) -> KillReport:
    """AAPL down to 94 (a loss of about 600, over the limit of 500; the stop at 90 untouched): the kill's
    verification."""
    seen.checks()
    await _price(sim, engine, 94.0)
    await eventually(lambda: engine.risk.kill_state.engaged, what="daily loss tripped")
    assert engine.risk.kill_state.trigger is KillTrigger.DAILY_LOSS
    await eventually(seen.checks, what="the kill's verification")
    return seen.checks()[-1]


def _working_at_sim(sim: SimGateway, refs: Iterable[str]) -> set[str]:
    wanted = set(refs)
    return {o.order_ref for o in sim.orders() if o.order_ref in wanted and o.working}


@pytest.mark.parametrize("scope", list(CancelScope))
async def test_daily_loss_trip_then_the_entry_cancelled_and_the_positions_stop_and_target_kept_at_the_broker(
        sim: SimGateway, tmp_path: Path, scope: CancelScope) -> None:
    async with running(sim, _config(tmp_path, scope)) as (engine, events):
        book = await _bracketed_long_and_a_resting_entry(sim, engine)
        seen = Seen(events)
        sim.received_frames.clear()

        # Act
        verification = await _daily_loss_trip(sim, engine, seen)

        # Assert: the entry is gone, the position keeps its stop and target at the broker.
        assert engine.trading_state is TradingState.HALTED
        assert status(engine, book.resting) is S.CANCELLED
        assert _working_at_sim(sim, [book.resting, book.stop, book.target]) == {book.stop, book.target}
        assert verification.verified
        assert verification.cancelled == (book.resting,)
        assert sorted(verification.kept) == sorted([book.stop, book.target])
        assert not seen.alerts("kill_verify", "cancel_unverified")
        (engaged,) = seen.alerts("kill")
        assert "protective orders" in engaged
        assert "Ctrl+K cancels everything" in engaged
        global_cancels = [f for cid, f in sim.received_frames if cid == CLIENT_ID and f[:1] == [str(int(
            Out.REQ_GLOBAL_CANCEL))]]
        assert global_cancels == []  # it would have taken the stop
        assert engine.risk.kill_state.keeps_protection
        assert engine.snapshot().kill_keeps_protection


async def test_daily_loss_trip_in_global_scope_then_another_clients_order_untouched_and_not_named(
        sim: SimGateway, tmp_path: Path) -> None:
    config = _config(tmp_path, CancelScope.GLOBAL)
    async with running(sim, config) as (engine, events), outside_client(sim) as (outsider, aapl):
        book = await _bracketed_long_and_a_resting_entry(sim, engine)
        trade = outsider.placeOrder(aapl, ib_async.LimitOrder("BUY", 3, 80.0))
        await eventually(lambda: any(o.working and o.client_id == 99 for o in sim.orders()), what="resting")
        seen = Seen(events)

        # Act
        verification = await _daily_loss_trip(sim, engine, seen)

        # Assert
        assert verification.verified  # only this client's orders were cancelled, and asked for
        assert "other clients' orders were not touched" in seen.alerts("kill")[0]
        assert {o.order_ref for o in sim.orders() if o.working} == {book.stop, book.target, trade.order.orderRef}


async def test_ctrl_k_after_an_automatic_trip_then_the_kept_stop_and_target_cancelled_too(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, _config(tmp_path)) as (engine, events):
        book = await _bracketed_long_and_a_resting_entry(sim, engine)
        seen = Seen(events)
        await _daily_loss_trip(sim, engine, seen)

        # Act
        engine.kill("operator pressed ctrl+k")

        # Assert
        await eventually(lambda: len(seen.checks()) == 2, what="the second verification")
        verification = seen.checks()[1]
        assert verification.verified
        assert verification.kept == ()
        assert sorted(verification.cancelled) == sorted([book.stop, book.target])
        assert _working_at_sim(sim, [book.stop, book.target]) == set()
        assert not engine.risk.kill_state.keeps_protection
        assert engine.risk.kill_state.trigger is KillTrigger.DAILY_LOSS  # the first record stays
        assert seen.alerts("kill_all")
        assert not engine.snapshot().kill_keeps_protection


def _asked_open_orders(sim: SimGateway) -> bool:
    return any(cid == CLIENT_ID and f[:1] == [str(int(Out.REQ_OPEN_ORDERS))] for cid, f in sim.received_frames)


async def _ctrl_k_while_the_trips_check_waits(sim: SimGateway, engine: Engine, seen: Seen) -> Book:
    """A daily-loss trip whose check waits for the broker's answer until Ctrl+K is engaged and its cancels are
    done at the broker; then the trip's check is answered and published, and Ctrl+K's check follows."""
    book = await _bracketed_long_and_a_resting_entry(sim, engine)
    seen.checks()
    sim.control.delay_messages("open_orders_end", 1.0)  # the trip's check waits for the broker until stepped
    sim.received_frames.clear()
    await _price(sim, engine, 94.0)  # the daily loss trips
    await eventually(lambda: status(engine, book.resting) is S.CANCELLED, what="the trip's cancel done")
    await eventually(lambda: _asked_open_orders(sim), what="the trip's check asking the broker")
    assert engine.risk.kill_state.keeps_protection
    assert not seen.checks()
    for kind in ("order_status", "error"):  # Ctrl+K's cancels are answered (202, Cancelled) after the trip's check
        sim.control.delay_messages(kind, 2.0)
    engine.kill("operator pressed ctrl+k")
    await eventually(lambda: not _working_at_sim(sim, [book.stop, book.target]), what="Ctrl+K's cancels done")
    sim.control.delay_messages("open_orders_end", 0)
    sim.control.step(1.0)  # the trip's check is answered, Ctrl+K's cancels not yet
    await eventually(seen.checks, what="the trip's check")
    sim.control.clear_faults()
    sim.control.step(1.0)
    await eventually(lambda: len(seen.checks()) == 2, what="Ctrl+K's check")
    return book


async def test_ctrl_k_while_an_automatic_trips_cancels_are_checked_then_each_check_reports_its_own_decision(
        sim: SimGateway, tmp_path: Path) -> None:
    # Ctrl+K lands after the trip's cancels went out, while the trip's check waits for the broker's answer. The
    # trip's check worked out what is kept again from the latched state, which keeps nothing any more: it named
    # the stop and target it had left working on purpose as "still working after kill", not verified.
    async with running(sim, _config(tmp_path)) as (engine, events):
        seen = Seen(events)

        # Act
        book = await _ctrl_k_while_the_trips_check_waits(sim, engine, seen)

        # Assert: the trip's check reports what the trip kept; Ctrl+K's, what Ctrl+K cancelled.
        trip, ctrl_k = seen.checks()
        assert trip.verified
        assert trip.cancelled == (book.resting,)
        assert sorted(trip.kept) == sorted([book.stop, book.target])
        assert ctrl_k.verified
        assert ctrl_k.kept == ()
        assert sorted(ctrl_k.cancelled) == sorted([book.stop, book.target])
        assert not seen.alerts("kill_verify", "cancel_unverified")


async def test_ctrl_k_while_an_automatic_trips_cancels_are_checked_then_the_trips_check_is_superseded(
        sim: SimGateway, tmp_path: Path) -> None:
    # The trip's check, answered after Ctrl+K was decided, was published as any other: the console's banner took
    # it for the kill's check (a Ctrl+K's check pending showed the trip's "verified", own orders only asked for)
    # and, had it come after Ctrl+K's, would have replaced the latest kill's check with a superseded one.
    async with running(sim, _config(tmp_path)) as (engine, events):
        seen = Seen(events)

        # Act
        await _ctrl_k_while_the_trips_check_waits(sim, engine, seen)

        # Assert: the trip's check is marked superseded; Ctrl+K's, the latest kill's, stands.
        trip, ctrl_k = seen.checked()
        assert trip.report.kept
        assert trip.superseded
        assert ctrl_k.report.kept == ()
        assert not ctrl_k.superseded


async def test_reset_and_an_automatic_trip_before_ctrl_ks_check_then_the_stop_it_cancelled_is_not_counted_kept(
        sim: SimGateway, tmp_path: Path) -> None:
    # Ctrl+K's cancels of the stop and target go unanswered; before its check comes the operator resets and an
    # automatic trip engages (keeping protection). Ctrl+K's check took the latched state's word and counted the
    # stop and target it had cancelled, still working, as kept: "verified" while they still worked.
    async with running(sim, _config(tmp_path, ack_timeout_s=0.5)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        _, stop, target = await protected_long(engine)
        seen = Seen(events)
        for kind in ("order_status", "error"):  # Ctrl+K's cancels are answered (202, Cancelled) only once stepped
            sim.control.delay_messages(kind, 5.0)

        # Act
        engine.kill("operator pressed ctrl+k")
        engine.reset_kill("pressed by mistake")
        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)

        # Assert: the trip's check keeps them; Ctrl+K's names them still working, and is superseded by the trip
        # (published last, it does not replace the latest kill's check).
        await eventually(lambda: len(seen.checks()) == 2, what="both checks")
        assert engine.risk.kill_state.keeps_protection
        both = sorted((sorted(c.report.kept), sorted(c.report.remaining), c.superseded) for c in seen.checked())
        assert both == sorted([([], sorted([stop.order_ref, target.order_ref]), True),
                               (sorted([stop.order_ref, target.order_ref]), [], False)])
        assert seen.checked()[-1].superseded  # Ctrl+K's, waiting out its unanswered cancels, came last
        (named,) = seen.alerts("kill_verify")
        assert stop.order_ref in named
        assert target.order_ref in named
        sim.control.clear_faults()
        sim.control.step(5.0)
        await eventually(lambda: not engine.orders.working(), what="the cancels answered")


async def test_restart_with_an_automatic_trip_latched_then_the_kept_stop_and_target_not_called_still_working(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, _config(tmp_path)) as (before, events):
        book = await _bracketed_long_and_a_resting_entry(sim, before)
        await _daily_loss_trip(sim, before, Seen(events))
        await before.persist_kill_state()

    # Act
    async with running(sim, _config(tmp_path)) as (after, events):
        seen = Seen(events)
        await eventually(seen.checks, what="the latched kill's verification")

        # Assert
        assert after.trading_state is TradingState.HALTED
        assert after.risk.kill_state.keeps_protection
        (verification,) = seen.checks()
        assert verification.verified
        assert sorted(verification.kept) == sorted([book.stop, book.target])
        assert not seen.alerts("kill_verify", "cancel_unverified")
        assert _working_at_sim(sim, [book.stop, book.target]) == {book.stop, book.target}


async def test_disconnect_trip_while_disconnected_then_the_owed_cancels_keep_the_stop_and_target(
        sim: SimGateway, tmp_path: Path) -> None:
    # The disconnect trigger engages the kill in the outage; its cancels go out at the reconnect.
    # A connect attempt into the refused gateway waits out the broker's timeout: 0.5 s here, not 3.
    config = _config(tmp_path, ack_timeout_s=0.5, disconnect_halt_after_s=0.2)
    engine = Engine(config, make_broker(sim.host, sim.port, CLIENT_ID, timeout=0.5))
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        book = await _bracketed_long_and_a_resting_entry(sim, engine)
        seen = Seen(events)
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: not engine.broker.is_connected, what="disconnected")

        # Act: the outage outlasts the limit; then the connection comes back.
        await eventually(lambda: engine.risk.kill_state.engaged, what="disconnect tripped")
        assert engine.risk.kill_state.trigger is KillTrigger.DISCONNECT
        sim.control.refuse_connections(-1)

        # Assert
        await eventually(lambda: len(seen.checks()) == 2, what="the verification after the reconnect")
        verification = seen.checks()[1]
        assert verification.verified
        assert sorted(verification.kept) == sorted([book.stop, book.target])
        assert _working_at_sim(sim, [book.resting, book.stop, book.target]) == {book.stop, book.target}
        assert seen.alerts("kill_cancels_sent_late")
        # The first verification, in the outage, names the entry still working; never the kept stop and target.
        named = " ".join(seen.alerts("kill_verify", "cancel_unverified"))
        assert not [r for r in (book.stop, book.target) if re.search(rf"\b{re.escape(r)}\b", named)]
    finally:
        await engine.stop()


async def test_trade_count_trip_on_the_fill_of_the_last_trade_then_the_position_it_opened_keeps_its_stop(
        sim: SimGateway, tmp_path: Path) -> None:
    # The trade-count trigger fires on the fill of the last trade allowed: it cancelled the stop that fill
    # had just placed at the broker.
    config = make_config(tmp_path, limits=limits_for_tests(max_daily_trades=1))
    async with running(sim, config, sim.clock.now) as (engine, events):  # the fill's day is the engine's
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        seen = Seen(events)

        # Act
        stop = await bracket_buy(sim, engine)

        # Assert
        await eventually(lambda: engine.risk.kill_state.engaged, what="trade count tripped")
        assert engine.risk.kill_state.trigger is KillTrigger.TRADE_COUNT
        await eventually(seen.checks, what="the kill's verification")
        assert seen.checks()[0].kept == (stop.order_ref,)
        assert _working_at_sim(sim, [stop.order_ref]) == {stop.order_ref}


async def test_daily_loss_trip_with_halt_and_flatten_then_the_positions_are_still_flattened(
        sim: SimGateway, tmp_path: Path) -> None:
    config = make_config(tmp_path, limits=limits_for_tests(daily_loss_limit=500,
                                                           daily_loss_action=TriggerAction.HALT_AND_FLATTEN))
    async with running(sim, config) as (engine, events):
        book = await _bracketed_long_and_a_resting_entry(sim, engine)
        seen = Seen(events)

        # Act
        await _daily_loss_trip(sim, engine, seen)

        # Assert: flat, its stop and target cancelled first, the entry too.
        await eventually(lambda: not engine.portfolio.open_positions(), what="flattened")
        assert _working_at_sim(sim, [book.resting, book.stop, book.target]) == set()
        assert not sim.positions().get("AAPL")
        assert not seen.alerts("kill_verify", "cancel_unverified", "flatten_failed")
        # On the record as the trip's flatten, not the operator's: recorded once the broker answered its closing
        # order, which may come after the fill that made the position flat.
        await eventually(lambda: seen.recorded("flatten"), what="the flatten recorded")
        assert engine.journal is not None
        await engine.journal.flush()
        flattens = [e for e in await engine.journal.events(["OperatorAction"])
                    if isinstance(e, OperatorAction) and e.action == "flatten"]
        assert [a.who for a in flattens] == [engine.risk.kill_state.by]
        assert engine.risk.kill_state.by != "operator"


@pytest.mark.parametrize("how", ["trigger_file", "kill_cli"])
async def test_operators_kill_from_outside_the_console_after_an_automatic_trip_then_the_stop_and_target_cancelled(
        sim: SimGateway, tmp_path: Path, how: str) -> None:
    # The trigger file and `tui-trader kill` were not acted on while the kill was engaged: after an automatic
    # trip they are the operator's kill, and must cancel the stops and targets the trip kept.
    trigger = tmp_path / "KILL"
    config = _config(tmp_path).with_(trigger_file=trigger, kill_poll_s=0.05)
    async with running(sim, config) as (engine, events):
        book = await _bracketed_long_and_a_resting_entry(sim, engine)
        seen = Seen(events)
        await _daily_loss_trip(sim, engine, seen)

        # Act
        if how == "trigger_file":
            trigger.touch()
        else:
            await latch(tmp_path / "journal.sqlite", "kill-cli:op@host", "from the other terminal", sim.clock.now())

        # Assert
        await eventually(lambda: not engine.risk.kill_state.keeps_protection, what="the operator's kill")
        await eventually(lambda: not _working_at_sim(sim, [book.stop, book.target]), what="stop and target cancelled")
        await eventually(lambda: len(seen.checks()) == 2, what="the second verification")
        assert seen.checks()[1].verified


async def test_trade_count_trip_on_a_part_filled_bracket_entry_then_its_stop_is_placed_again_for_the_part_held(
        sim: SimGateway, tmp_path: Path) -> None:
    # The entry's rest must go (it adds exposure), and the broker cancels the bracket's stop with it; HALTED
    # sent nothing new, so the part held had no stop while the trip's alert said the protection was kept.
    config = make_config(tmp_path, limits=limits_for_tests(max_daily_trades=1))
    async with running(sim, config, sim.clock.now) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        seen = Seen(events)
        quote = engine.market.quotes["AAPL"]
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 100, 30)  # 30 offered: 30 of 100 fill

        # Act
        entry = await engine.submit(buy(100, bracket=Bracket(stop_price=round(quote.bid * 0.9, 2))))

        # Assert
        await eventually(seen.checks, what="the kill's verification")
        assert engine.risk.kill_state.trigger is KillTrigger.TRADE_COUNT
        assert engine.orders.orders[entry.order_ref].filled_quantity == 30
        assert sim.positions() == {"AAPL": 30}
        stop_price = entry.ticket.bracket.stop_price if entry.ticket.bracket else None
        await eventually(lambda: [(o.action, o.total_qty, o.aux_price, o.tif) for o in sim.orders() if o.working]
                         == [("SELL", 30, stop_price, "GTC")], what="the stop placed again for the 30 held")
        assert engine.trading_state is TradingState.HALTED
        (said,) = seen.alerts("protection_replaced")
        assert f"{entry.order_ref} was cancelled with 30 of 100 filled" in said
