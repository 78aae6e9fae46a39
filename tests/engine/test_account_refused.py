"""The account is the gateway's, and an account refused gets nothing sent: no order, modify or cancel.

``--paper`` against a live account (or an account that is not the configured one) blocked only new entries: exits,
the maximum holding time's close, the operator's flatten, cancels, modifies and the kill's cancels still went to the
account. And a configured account was taken as the connected one, so the account checks compared it with itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ib_async
import pytest

from tui_trader.config import Settings
from tui_trader.domain import AlertLevel, ConnectionState, Mode, Order, OrderStatus, OrderType, TradingState
from tui_trader.domain.events import AlertRaised, KillChecked
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.engine.runner import TRADING_REFUSED, headless_run, outcome, summarize
from tui_trader.errors import BrokerError, SafetyError
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import (
    CLIENT_ID,
    alerts_said,
    allow_journal_writes,
    below_bid,
    bracket_buy,
    buy,
    eventually,
    filled,
    gateway_keeping_state,
    journal_fails,
    limits_for_tests,
    make_config,
    make_engine,
    outside_client,
    placed_by_another_tool,
    protected_long,
    refuse_journal_writes,
    running,
    sell,
    status,
)

S = OrderStatus
ORDER_MESSAGES = {str(int(Out.PLACE_ORDER)), str(int(Out.CANCEL_ORDER)), str(int(Out.REQ_GLOBAL_CANCEL))}


def order_messages(gw: SimGateway) -> list[list[str]]:
    """The orders, modifications and cancels the gateway received (since its frames were last cleared)."""
    return [fields for _, fields in gw.received_frames if fields and fields[0] in ORDER_MESSAGES]


def working_at(gw: SimGateway) -> set[str]:
    """The refs of the orders working at the gateway."""
    return {o.order_ref for o in gw.orders() if o.status in ("PreSubmitted", "Submitted")}


@pytest.fixture
async def live() -> AsyncIterator[SimGateway]:
    """A gateway whose only account is a live one (USIM0001)."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, live_account=True, always_open=True) as gw:
        yield gw


async def refused_paper_engine(gw: SimGateway, tmp_path: Path, **changes: Any) -> tuple[Engine, str, str]:
    """A protected LONG 10 AAPL bought on ``gw``'s live account by a ``--sim`` run (its stop and target working),
    then a ``--paper`` engine started on the same journal: the engine (started, refused), the stop's and the
    target's refs. The gateway's frames are cleared: what it receives from here on is the refused run's."""
    async with running(gw, make_config(tmp_path)) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        _, stop, target = await protected_long(first)
    engine = make_engine(gw, make_config(tmp_path, mode=Mode.PAPER, **changes))
    await engine.start()
    await eventually(lambda: engine.is_connected and "AAPL" in engine.market.quotes, what="connected, quoted")
    assert engine.refusal == "--paper but account USIM0001 is not a paper account (paper ids start with DU)"
    assert engine.portfolio.quantity("AAPL") == 10
    assert working_at(gw) == {stop.order_ref, target.order_ref}
    gw.received_frames.clear()
    return engine, stop.order_ref, target.order_ref


async def test_paper_against_live_account_when_max_holding_time_passes_then_no_close_is_sent(
        live: SimGateway, tmp_path: Path) -> None:
    # QA: max_holding_s = 5 closed QQQ 10 on the live account, its stop cancelled first.
    engine, stop, target = await refused_paper_engine(live, tmp_path, max_holding_s=0.01)
    try:
        await eventually(lambda: any(o.ticket.strategy == "max_holding" for o in engine.orders.orders.values()),
                         what="the maximum holding time's exit asked")
        exit_order = next(o for o in engine.orders.orders.values() if o.ticket.strategy == "max_holding")
        assert exit_order.status is S.REJECTED
        assert "trading refused: --paper but account USIM0001" in exit_order.history[-1].note
        assert order_messages(live) == []
        assert working_at(live) == {stop, target}
        assert live.positions() == {"AAPL": 10}
    finally:
        await engine.stop()


async def test_paper_against_live_account_when_operator_flattens_then_nothing_is_sent(
        live: SimGateway, tmp_path: Path) -> None:
    engine, stop, target = await refused_paper_engine(live, tmp_path)
    try:
        await engine.flatten(preview=False)
        (closing,) = [o for o in engine.orders.orders.values() if o.ticket.strategy == "flatten"]
        assert closing.status is S.REJECTED
        assert "trading refused" in closing.history[-1].note
        assert order_messages(live) == []
        assert working_at(live) == {stop, target}
        assert live.positions() == {"AAPL": 10}
    finally:
        await engine.stop()


async def test_paper_against_live_account_when_operator_cancels_or_modifies_then_refused_and_nothing_sent(
        live: SimGateway, tmp_path: Path) -> None:
    engine, stop, target = await refused_paper_engine(live, tmp_path)
    try:
        with pytest.raises(BrokerError, match="not sent: trading refused"):
            await engine.cancel(stop)
        with pytest.raises(BrokerError, match="cancel all not sent: trading refused"):
            await engine.cancel_all()
        price = engine.orders.orders[stop].ticket.stop_price
        assert price is not None
        verdict = await engine.modify(stop, stop_price=round(price - 1, 2))
        assert not verdict.passed
        assert "account_refused: trading refused" in verdict.reason
        assert order_messages(live) == []
        assert working_at(live) == {stop, target}
        assert status(engine, stop) is S.SUBMITTED
        assert engine.orders.orders[stop].ticket.stop_price == price
    finally:
        await engine.stop()


async def test_paper_against_live_account_when_killed_then_latched_and_its_cancels_said_not_sent(
        live: SimGateway, tmp_path: Path) -> None:
    engine, stop, target = await refused_paper_engine(live, tmp_path)
    events = engine.subscribe("test", lossless=True)
    try:
        engine.kill("operator pressed Ctrl+K")
        assert engine.risk.kill_state.engaged
        assert engine.trading_state is TradingState.HALTED
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        (said,) = [a for a in alerts if a.kind == "kill_cancels_refused"]
        assert "its cancel of 2 orders NOT sent: trading is refused for this account" in said.text
        assert "TWS" in said.text
        await eventually(lambda: engine.snapshot().kill_engaged, what="kill persisted")
        assert order_messages(live) == []
        assert working_at(live) == {stop, target}
        with pytest.raises(SafetyError, match="trading is refused"):
            engine.reset_kill("the wrong gateway", confirm_same_day=True)
    finally:
        await engine.stop()


async def test_paper_against_live_account_then_halted_for_the_run_and_the_summary_says_why(
        live: SimGateway, tmp_path: Path) -> None:
    engine, _, _ = await refused_paper_engine(live, tmp_path)
    try:
        assert engine.trading_state is TradingState.HALTED
        change = engine.risk.last_change
        assert change is not None
        assert (change.by, change.reason[:25]) == ("account", "trading refused: --paper ")
        with pytest.raises(SafetyError, match="trading is refused"):
            engine.reduce_only(False, "resume")
        assert not engine.set_trading_state(TradingState.ACTIVE, "schedule", "window opens")
        assert engine.trading_state is TradingState.HALTED
        line = outcome(summarize(engine), engine.connection)
        assert "account USIM0001: HALTED (trading refused: --paper but account USIM0001 is not a paper" in line
    finally:
        await engine.stop()


async def test_paper_with_configured_paper_account_against_a_live_only_gateway_then_the_gateway_account_is_refused(
        live: SimGateway, tmp_path: Path) -> None:
    # QA: --paper --account DU1234567 against a gateway whose only account is USIM0001 bought MSFT 10 there.
    config = make_config(tmp_path, mode=Mode.PAPER, expected_account="DU1234567")
    engine = Engine(config, make_broker(live.host, live.port, CLIENT_ID, account="DU1234567", timeout=3.0))
    try:
        await engine.start()
        await eventually(lambda: engine.is_connected and "MSFT" in engine.market.quotes, what="connected, quoted")
        assert engine.account_id == engine.snapshot().account_id == "USIM0001"
        assert engine.refusal == ("connected account USIM0001 is not the configured account DU1234567 "
                                  "(the gateway's: USIM0001)")
        order = await engine.submit(buy(10, "MSFT"))
        assert order.status is S.REJECTED
        assert live.order_refs() == []
        assert live.positions() == {}
    finally:
        await engine.stop()


async def test_configured_account_not_the_gateways_then_refused_even_in_sim_mode(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        config = make_config(tmp_path, expected_account="DU1234567")
        engine = Engine(config, make_broker(gw.host, gw.port, CLIENT_ID, account="DU1234567", timeout=3.0))
        try:
            await engine.start()
            await eventually(lambda: engine.is_connected, what="connected")
            assert engine.account_id == "DUSIM0001"
            assert engine.refusal.startswith("connected account DUSIM0001 is not the configured account DU1234567")
            assert engine.trading_state is TradingState.HALTED
            order = await engine.submit(buy(1))
            assert order.status is S.REJECTED
            assert gw.order_refs() == []
        finally:
            await engine.stop()


async def test_configured_account_that_the_gateway_manages_then_traded(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        config = make_config(tmp_path, mode=Mode.PAPER, expected_account=gw.account_id)
        engine = Engine(config, make_broker(gw.host, gw.port, CLIENT_ID, account=gw.account_id, timeout=3.0))
        try:
            await engine.start()
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
            assert (engine.account_id, engine.refusal, engine.trading_state) == (gw.account_id, "",
                                                                                TradingState.ACTIVE)
            order = await engine.submit(buy(1))
            await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled")
        finally:
            await engine.stop()


async def test_paper_against_live_account_sold_flat_in_tws_while_away_then_its_protection_is_not_cancelled_from_here(
        live: SimGateway, tmp_path: Path) -> None:
    # Flat at the broker, a position's stop and target could only open one: the engine cancels them, not here (it
    # crashed the start: the cancel refused in the reconciliation).
    config = make_config(tmp_path, book_settle_s=0.2)
    async with running(live, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        _, stop, target = await protected_long(first)
    async with outside_client(live) as (tws, contract):
        tws.placeOrder(contract, ib_async.MarketOrder("SELL", 10))
        await eventually(lambda: live.positions() == {}, what="sold in TWS")
    live.received_frames.clear()
    async with running(live, config.with_(mode=Mode.PAPER)) as (engine, events):
        await eventually(lambda: engine.is_connected and engine.book_settled, what="connected, the book settled")
        assert engine.portfolio.quantity("AAPL") == 0
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        (said,) = [a for a in alerts if a.kind == "protection_not_fitted"]
        assert said.text == (f"{stop.order_ref} and {target.order_ref} not fitted to the AAPL position (0 here): "
                             "trading is refused for this account, nothing is cut or cancelled from here; check them "
                             "in TWS")
        assert [a.text for a in alerts if a.kind == "task_failed"] == []
        assert order_messages(live) == []
        assert working_at(live) == {stop.order_ref, target.order_ref}


async def test_paper_exit_working_when_the_gateway_comes_back_on_a_live_account_and_cancels_it_then_the_refusal_said(
        tmp_path: Path) -> None:
    # Its stop cancelled for the exit, the exit cancelled in TWS after the gateway came back logged into a live
    # account: the position was said "not placed again while the kill switch holds trading halted", no kill engaged.
    before, clock, state = await gateway_keeping_state(tmp_path)
    after: SimGateway | None = None
    try:
        async with running(before, make_config(tmp_path, mode=Mode.PAPER)) as (engine, events):
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
            await bracket_buy(before, engine)
            quote = before.quote("AAPL")
            before.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # the simulator fills one share
            await engine.close_position("AAPL", "exit signal", "ema_cross")
            (exit_order,) = [o for o in engine.orders.orders.values() if o.ticket.strategy == "ema_cross"]
            await eventually(lambda: engine.portfolio.quantity("AAPL") == 9, what="one share sold")
            await before.stop()  # restarted, logged into a live account
            await eventually(lambda: engine.connection.state is ConnectionState.DISCONNECTED, what="disconnect seen")
            after = SimGateway(port=before.port, clock=clock, seed=7, always_open=True, state_path=state,
                               live_account=True)
            await after.start()
            await eventually(lambda: engine.refusal and engine.book_settled, what="refused, the book settled")
            assert status(engine, exit_order.order_ref) is S.PARTIALLY_FILLED
            events.drain()

            after.control.cancel(exit_order.order_ref)

            await eventually(lambda: status(engine, exit_order.order_ref) is S.CANCELLED, what="the exit cancelled")
            (said,) = alerts_said(events, kind="exit_unprotected")
            assert (said.level, said.text) == (AlertLevel.CRITICAL,
                "exit of AAPL (exit signal) CANCELLED (Cancelled): AAPL LONG 9 has no stop at the broker (its "
                f"protective orders were cancelled for the exit); not placed again: trading refused: {engine.refusal}; "
                "place a stop in TWS")
            assert engine.orders.with_status(S.APPROVED, S.SENDING) == []
            assert [o for o in after.orders() if o.working] == []
    finally:
        await (after or before).stop()


def test_headless_paper_run_against_a_live_account_then_it_exits_5(tmp_path: Path) -> None:
    # A refused headless run exited 0: a supervisor (systemd, cron) took a run that could trade nothing for a good one.
    async def run() -> int:
        async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True, live_account=True) as sim:
            settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                                broker={"port": sim.port})
            return await headless_run(settings, 1.0, tmp_path / "summary.json")

    code = asyncio.run(run())

    assert code == TRADING_REFUSED
    assert "not a paper account" in json.loads((tmp_path / "summary.json").read_text())["trading_refused"]


async def test_paper_against_live_account_when_a_target_fills_during_the_connects_sync_then_nothing_is_sent(
        live: SimGateway, tmp_path: Path) -> None:
    # The account was checked once the connect had returned: a target that filled while ib_async's sync waited for
    # the open orders had the engine cancel the stop it left, at the live account, before trading was refused.
    async with running(live, make_config(tmp_path)) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        _, stop, target = await protected_long(first)
    assert target.ticket.limit_price is not None
    live.control.delay_messages("open_orders_end", 60)
    live.received_frames.clear()
    engine = make_engine(live, make_config(tmp_path, mode=Mode.PAPER))
    starting = asyncio.ensure_future(engine.start())
    try:
        await eventually(lambda: {t.order.orderRef for t in engine.broker.ib.openTrades()}  # type: ignore[attr-defined]
                         == {stop.order_ref, target.order_ref}, what="the sync's open orders in, their end held")
        live.control.set_price("AAPL", target.ticket.limit_price + 1)
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 0, what="the target's fill booked")
        live.control.clear_faults()
        live.control.step(60)  # the open orders' end goes out
        await starting
        await eventually(lambda: engine.is_connected, what="connected")

        assert engine.refusal == "--paper but account USIM0001 is not a paper account (paper ids start with DU)"
        assert order_messages(live) == []
    finally:
        await engine.stop()


async def test_paper_against_live_account_when_its_loss_passes_the_daily_limit_then_no_kill_latched_for_the_next_run(
        live: SimGateway, tmp_path: Path) -> None:
    # A refused run books the gateway's account, not its own: its daily-loss trip latched a kill in the journal, and
    # the next run, in the right mode, started HALTED by a restored kill (CRITICAL) that no loss of its own made.
    engine, _, _ = await refused_paper_engine(live, tmp_path, limits=limits_for_tests(daily_loss_limit=5))
    events = engine.subscribe("test", lossless=True)
    try:
        live.control.set_price("AAPL", round(engine.market.quotes["AAPL"].mark - 1.5, 2))  # above the stop
        await eventually(lambda: engine.account_snapshot().day_pnl < -5, what="a loss past the limit booked")
        engine.tick()

        (said,) = alerts_said(events, kind="daily_loss")
        assert said.level is AlertLevel.ERROR
        assert said.text.startswith("daily_loss limit reached: $")
        assert said.text.endswith(" -> HALTED: no kill switch latched, as trading is refused for this run (--paper but "
                                  "account USIM0001 is not a paper account (paper ids start with DU)): these figures "
                                  "are account USIM0001's, and nothing is sent anyway")
        assert not engine.risk.kill_state.engaged
    finally:
        await engine.stop()
    async with running(live, make_config(tmp_path)) as (after, after_events):
        await eventually(lambda: after.is_connected, what="connected")

        assert not after.risk.kill_state.engaged
        assert alerts_said(after_events, kind="kill_restored") == []
        assert after.trading_state is TradingState.ACTIVE


async def test_paper_against_live_account_when_its_journal_fails_then_no_kill_latched_and_no_figures_named(
        live: SimGateway, tmp_path: Path) -> None:
    # Every halting hit of a refused run said "these figures are account USIM0001's": a journal failure has none.
    config = make_config(tmp_path, mode=Mode.PAPER)
    assert config.journal_path is not None
    async with running(live, config) as (engine, events):
        await eventually(lambda: engine.book_settled, what="the book settled")
        assert engine.refusal
        refuse_journal_writes(config.journal_path)
        try:
            # Act
            await journal_fails(engine)
        finally:
            allow_journal_writes(config.journal_path)

        # Assert
        (said,) = alerts_said(events, kind="journal_failure")
        assert (said.level, said.text) == (AlertLevel.ERROR, "journal write failed: disk full -> HALTED: no kill "
                                           "switch latched, as trading is refused for this run (--paper but account "
                                           "USIM0001 is not a paper account (paper ids start with DU)): nothing is "
                                           "sent anyway")
        assert not engine.risk.kill_state.engaged


async def test_paper_against_live_account_when_killed_then_one_critical_says_nothing_sent_and_what_still_works(
        live: SimGateway, tmp_path: Path) -> None:
    # The kill said it twice beside its engagement, each a message on the trader's phone: its cancels NOT sent, and
    # its verification's "orders still working after kill", the same two orders, both true, one event.
    engine, stop, target = await refused_paper_engine(live, tmp_path)
    events = engine.subscribe("test", lossless=True)
    seen: list[object] = []
    try:
        engine.kill("operator pressed Ctrl+K")
        await eventually(lambda: seen.extend(events.drain()) or any(isinstance(e, KillChecked) for e in seen),
                         what="the kill's verification")
        engine.tick()
        seen.extend(events.drain())
    finally:
        await engine.stop()

    critical = [e.alert for e in seen if isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL]
    assert [a.kind for a in critical] == ["kill_cancels_refused", "kill"]  # the cancels' words, then the engagement's
    assert critical[0].text == (
        "kill switch latched, but its cancel of 2 orders NOT sent: trading is refused for this account (--paper but "
        "account USIM0001 is not a paper account (paper ids start with DU)); 2 orders still working at the broker: "
        f"{stop} SELL 10 AAPL, {target} SELL 10 AAPL: manage them in TWS, and restart in the right mode with the "
        "right account")
    (checked,) = [e for e in seen if isinstance(e, KillChecked)]
    assert set(checked.report.remaining) == {stop, target}
    assert order_messages(live) == []


async def test_paper_against_live_account_then_its_book_is_not_journaled_for_the_next_run(
        live: SimGateway, tmp_path: Path) -> None:
    # A refused run seeded the journal's book from the gateway's account: the next run, on its own account, restored
    # the other account's positions, did not find them at its broker, and its position-mismatch trigger halted it.
    # Its seed said "new journal: book starts from the broker's account", of a journal that kept none of it.
    async with outside_client(live) as (tws, contract):
        tws.placeOrder(contract, ib_async.MarketOrder("BUY", 10))
        await eventually(lambda: live.positions() == {"AAPL": 10}, what="bought in TWS")
    async with running(live, make_config(tmp_path, mode=Mode.PAPER)) as (refused, refused_events):
        await eventually(lambda: refused.book_settled, what="the book settled")
        assert refused.refusal
        assert refused.portfolio.quantity("AAPL") == 10  # shown as the gateway has it
        (seeded,) = alerts_said(refused_events, kind="book_seeded")
        assert re.fullmatch(r"book of refused account USIM0001 \(cash [\d,.]+; AAPL 10\): shown, not kept in the "
                            r"journal", seeded.text), seeded.text

    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper,
                running(paper, make_config(tmp_path, mode=Mode.PAPER)) as (after, events)):
        await eventually(lambda: after.book_settled, what="the book settled")

        assert (after.account_id, after.refusal) == (paper.account_id, "")
        assert after.portfolio.quantity("AAPL") == 0
        said = [a for a in alerts_said(events) if a.source in ("portfolio", "reconcile")]
        assert [a.kind for a in said] == ["book_seeded"]  # no cash or position mismatch
        assert said[0].text.endswith("; no positions)")
        assert not after.risk.kill_state.engaged


async def test_paper_against_live_account_on_a_journal_of_its_own_then_the_book_shown_is_the_refused_accounts(
        live: SimGateway, tmp_path: Path) -> None:
    # On an existing journal the start moved the journal's book to the refused account's as if one account's: "1
    # execution today of orders this journal does not know …; taken from the broker: cash …" and an ERROR position
    # mismatch ("AAPL: ours 0, broker 15"), of two accounts.
    config = make_config(tmp_path, mode=Mode.PAPER, book_settle_s=0.2)
    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper,
                running(paper, config) as (before, _)):
        await eventually(lambda: before.book_settled, what="the paper account's book journaled")
    async with outside_client(live) as (tws, contract):
        tws.placeOrder(contract, ib_async.MarketOrder("BUY", 10))
        await eventually(lambda: live.positions() == {"AAPL": 10}, what="bought in TWS")
    limit = round(live.quote("AAPL").bid - 1, 2)
    await placed_by_another_tool(live, ib_async.LimitOrder("BUY", 5, limit))
    live.control.set_price("AAPL", limit - 0.5)
    await eventually(lambda: live.positions() == {"AAPL": 15}, what="another tool's order filled")

    async with running(live, config) as (refused, events):
        await eventually(lambda: refused.book_settled, what="the book settled")

        assert refused.refusal
        assert (refused.portfolio.quantity("AAPL"), refused.portfolio.cash) == (15, round(live.cash, 2))
        said = [(a.level, a.text) for a in alerts_said(events) if a.source in ("portfolio", "reconcile", "risk")]
        assert said == [
            (AlertLevel.INFO, f"book of refused account USIM0001 (cash {live.cash:,.2f}; AAPL 15): shown, not kept in "
                              "the journal"),
            (AlertLevel.INFO, "1 execution of refused account USIM0001 today left out: already in its positions, "
                              "shown, not kept in the journal")]


async def test_paper_against_live_account_on_a_journal_that_lost_money_then_the_book_shown_has_none_of_its_pnl(
        live: SimGateway, tmp_path: Path) -> None:
    # The refused account's book was seeded over the journal's restored one and kept its realized P&L, commissions
    # and losing streak: the other account's, shown and summarized as the refused one's.
    async with running(live, make_config(tmp_path)) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        await filled(first, buy(5))
        await filled(first, sell(5))
        journaled = (first.portfolio.realized_pnl, first.portfolio.commissions, first.portfolio.losing_streak)
    assert journaled[0] < 0 < journaled[1]
    assert journaled[2] == 1

    async with running(live, make_config(tmp_path, mode=Mode.PAPER)) as (refused, _):
        await eventually(lambda: refused.book_settled, what="the book settled")
        account = refused.snapshot().account
        book = (refused.portfolio.realized_pnl, refused.portfolio.commissions)
        summary = summarize(refused)

    assert refused.refusal
    assert (account.losing_streak, account.last_loss_at) == (0, None)
    assert book == (0, 0)
    assert (summary["realized_pnl"], summary["commissions"]) == (0, 0)


async def own_order_left_working(paper: SimGateway, config: EngineConfig, filled_first: bool = False,
                                 ) -> tuple[Order, set[str]]:
    """A run of the journal's own account (``paper``) that leaves a limit BUY 5 working there (after a filled BUY 5,
    ``filled_first``): that order, and the refs the journal then holds."""
    async with running(paper, config) as (before, _):
        await eventually(lambda: "AAPL" in before.market.quotes, what="first quote")
        if filled_first:
            await filled(before, buy(5))
        own = await before.submit(buy(5, order_type=OrderType.LMT, limit_price=below_bid(before)))
        await eventually(lambda: status(before, own.order_ref) is S.SUBMITTED, what="its own order working")
        return own, set(before.orders.orders)


async def test_paper_against_live_account_when_it_adopts_and_fills_orders_then_the_next_run_restores_none_of_them(
        live: SimGateway, tmp_path: Path) -> None:
    # A refused run journaled what it heard of the live account: the order it adopted, its fill and commission. The
    # next run on the journal, in the right mode with the right account, showed the order, replayed the fill into its
    # book (a position and a P&L not its own), and its position-mismatch trigger halted it. Its own order, working at
    # its broker, was settled as gone by the refused run, whose broker never had it.
    config = make_config(tmp_path, mode=Mode.PAPER, book_settle_s=0.2)
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper:
        own, _ = await own_order_left_working(paper, config)
        limit = round(live.quote("AAPL").bid - 1, 2)
        await placed_by_another_tool(live, ib_async.LimitOrder("BUY", 10, limit))
        async with running(live, config) as (refused, _):
            await eventually(lambda: refused.book_settled, what="the book settled")
            assert refused.refusal
            (adopted,) = [o for o in refused.orders.orders.values() if o.ticket.strategy == "adopted"]
            live.control.set_price("AAPL", limit - 0.5)
            await eventually(lambda: status(refused, adopted.order_ref) is S.FILLED and len(refused.orders.fills) == 1
                             and not refused.orders.uncommissioned, what="filled, its commission booked")
            assert refused.portfolio.quantity("AAPL") == 10  # shown as the live account has it
            assert own.order_ref not in refused.orders.orders  # not at the live account: set aside

        async with running(paper, config) as (after, events):
            await eventually(lambda: after.book_settled, what="the book settled")

            assert (after.account_id, after.refusal) == (paper.account_id, "")
            assert list(after.orders.orders) == [own.order_ref]
            assert status(after, own.order_ref) is S.SUBMITTED
            assert after.orders.fills == {}
            assert after.portfolio.quantity("AAPL") == 0
            assert after.account_snapshot().day_pnl == 0
            assert [a.text for a in alerts_said(events) if a.level is not AlertLevel.INFO] == []
            assert (after.trading_state, after.risk.kill_state.engaged) == (TradingState.ACTIVE, False)


async def test_paper_against_live_account_when_the_operator_kills_then_the_next_run_starts_with_the_kill_latched(
        live: SimGateway, tmp_path: Path) -> None:
    # The journal keeps nothing the run heard of the refused account, but the operator's Ctrl+K is the operator's:
    # it stays latched, in the right mode with the right account too, until a reset with a typed reason.
    config = make_config(tmp_path, mode=Mode.PAPER)
    async with running(live, config) as (refused, _):
        await eventually(lambda: refused.is_connected, what="connected")
        assert refused.refusal
        refused.kill("operator pressed Ctrl+K")

    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper,
                running(paper, config) as (after, events)):
        await eventually(lambda: after.is_connected, what="connected")

        assert (after.refusal, after.trading_state, after.risk.kill_state.engaged) == ("", TradingState.HALTED, True)
        (said,) = alerts_said(events, kind="kill_restored")
        assert "operator pressed Ctrl+K" in said.text


async def test_paper_against_live_account_on_a_journal_with_orders_then_none_of_them_shown_settled_or_sent(
        live: SimGateway, tmp_path: Path) -> None:
    # The journal's orders (its account's: the day's finished ones, one working) were restored and shown as the
    # refused account's: the working one, not at the live account, settled UNKNOWN ("working here but unknown to the
    # broker", entries blocked for it) and counted in the summary, beside the live account's book.
    config = make_config(tmp_path, mode=Mode.PAPER, book_settle_s=0.2)
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper:
        own, journaled = await own_order_left_working(paper, config, filled_first=True)
        live.received_frames.clear()

        async with running(live, config) as (refused, events):
            await eventually(lambda: refused.book_settled, what="the book settled")

            assert refused.refusal
            assert refused.snapshot().orders == ()
            assert summarize(refused)["orders"] == {}
            assert "unknown_orders" not in refused.blocks
            (said,) = alerts_said(events, kind="journal_orders_set_aside")
            assert (said.level, said.text) == (AlertLevel.WARNING, (
                "2 orders and 1 fill of the paper journal set aside, not shown or counted as account USIM0001's "
                "(trading refused for it): "
                f"{own.order_ref} (BUY 5 AAPL LMT) working in the journal, not at this broker; 1 finished today. "
                "Untouched: nothing sent or journaled for them, the journal keeps them as they were"))
            assert alerts_said(events, kind="order_reconciled") == []
            assert order_messages(live) == []

        async with running(paper, config) as (after, _):
            await eventually(lambda: after.book_settled, what="the book settled")

            assert set(after.orders.orders) == journaled
            assert status(after, own.order_ref) is S.SUBMITTED


async def test_paper_against_live_account_on_a_journal_with_fills_then_none_of_them_kept_as_the_accounts(
        live: SimGateway, tmp_path: Path) -> None:
    # The journal's fills (its account's) stayed in the refused run's memory, as if the refused account's: one still
    # without its commission was awaited from the live account's broker (said "no commission reported" of it), and
    # the executions were fetched from the journal's newest fill on.
    config = make_config(tmp_path, mode=Mode.PAPER, book_settle_s=0.2)
    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper,
                running(paper, config) as (before, _)):
        await eventually(lambda: "AAPL" in before.market.quotes, what="first quote")
        await filled(before, buy(5))
        paper.control.drop_messages("commission", -1)
        closing = await before.submit(sell(5))
        await eventually(lambda: status(before, closing.order_ref) is S.FILLED, what="sold, no commission")
        journaled = set(before.orders.fills)
    assert len(journaled) == 2
    live.received_frames.clear()

    async with running(live, config) as (refused, events):
        await eventually(lambda: refused.book_settled, what="the book settled")

        assert refused.refusal
        assert (refused.orders.fills, refused.orders.uncommissioned, refused.orders.last_fill_time) == ({}, set(), None)
        summary = summarize(refused)
        assert (summary["fills"], summary["realized_pnl"], summary["commissions"]) == (0, 0, 0)
        (said,) = alerts_said(events, kind="journal_orders_set_aside")
        assert (said.level, said.text) == (AlertLevel.INFO, (
            "2 orders and 2 fills of the paper journal set aside, not shown or counted as account USIM0001's (trading "
            "refused for it): 2 finished today. Untouched: nothing sent or journaled for them, the journal keeps them "
            "as they were"))
        assert order_messages(live) == []

    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper,
                running(paper, config) as (after, _)):
        await eventually(lambda: after.is_connected, what="connected")
        assert set(after.orders.fills) == journaled


async def test_paper_against_live_account_on_a_journal_with_a_position_then_its_book_is_unknown_until_seeded(
        live: SimGateway, tmp_path: Path) -> None:
    # From the refusal at the handshake to the seed at the first reconciliation, the book shown was the journal's
    # restored one (its position, cash and P&L: the paper account's), under the refused account's id.
    config = make_config(tmp_path, mode=Mode.PAPER, book_settle_s=0.2)
    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as paper,
                running(paper, config) as (before, _)):
        await eventually(lambda: "AAPL" in before.market.quotes, what="first quote")
        await filled(before, buy(5))
    live.control.delay_messages("open_orders_end", 60)  # the sync after the handshake held: the book not seeded
    live.received_frames.clear()
    engine = make_engine(live, config)
    starting = asyncio.ensure_future(engine.start())
    try:
        await eventually(lambda: bool(engine.refusal), what="refused at the handshake")
        account = engine.snapshot().account

        assert (account.account_id, account.known) == ("USIM0001", False)
        assert (account.positions, account.cash, account.realized_pnl_today, account.commissions_today) == ({}, 0, 0, 0)
        summary = summarize(engine)
        assert (summary["realized_pnl"], summary["commissions"]) == (0, 0)

        live.control.clear_faults()
        live.control.step(60)  # the open orders' end goes out
        await starting
        await eventually(lambda: engine.book_settled, what="the book settled")
        account = engine.snapshot().account
        assert (account.known, account.positions, account.cash) == (True, {}, round(live.cash, 2))
        assert order_messages(live) == []
    finally:
        await engine.stop()
