"""A journal started on an account another journal's run traded earlier the same day, with the same client id.

Two engines with two journals on one simulator, one after the other: the first's executions, which IB still reports
the whole day, are already in the positions the second's book starts from (a new journal's seed), or takes from the
broker (a journal restored). They are not its fills: not booked, not counted in its summary, not paired into trades
by its report; not on a restart either. Against the simulator over loopback, real journals.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.runner import summarize
from tui_trader.ops.reports import Period, build_report
from tui_trader.sim import SimGateway
from tui_trader.store.journal import Journal

from .helpers import alerts_said, buy, filled, kinds_of, long_at_the_broker, make_config, running, sell

EVER = Period(date(2000, 1, 1), date(2100, 1, 1))


def config_in(tmp_path: Path, name: str) -> EngineConfig:
    """An engine config whose journal is in its own directory ``name``."""
    (tmp_path / name).mkdir()
    return make_config(tmp_path / name)


def alerts(events: Subscription) -> dict[str, str]:
    """Kind (:func:`kinds_of`) → text of the alerts received so far (drains the subscription)."""
    return {k: a.text for a in alerts_said(events) for k in kinds_of(a)}


def broker_cost(sim: SimGateway, symbol: str) -> float:
    """The simulator's average cost of ``symbol`` (commissions in, as IB's)."""
    instrument = sim.instruments.by_symbol(symbol)
    assert instrument is not None
    return sim.account.positions[instrument.con_id].avg_cost


async def traded_earlier(sim: SimGateway, tmp_path: Path) -> set[str]:
    """Run A, on its own journal, buys 10 AAPL and sells 4 (the account holds 6); returns its execution ids."""
    async with running(sim, config_in(tmp_path, "a")) as (first, _):
        await filled(first, buy(10))
        await filled(first, sell(4))
    return {e.exec_id for e in sim.executions()}


async def report_of(config: EngineConfig) -> dict:
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        return await build_report(journal, EVER)
    finally:
        await journal.close()


async def test_new_journal_after_another_run_traded_today_then_its_executions_are_not_this_journals_fills(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: run A traded; its executions are the day's, reported to every executions request.
    earlier = await traded_earlier(sim, tmp_path)
    config = config_in(tmp_path, "b")

    # Act: run B on a new journal sells the 6 held, and makes a round trip in MSFT.
    async with running(sim, config) as (second, events):
        said = alerts(events)
        held, cost = second.portfolio.positions["AAPL"], broker_cost(sim, "AAPL")
        await filled(second, sell(6))
        await filled(second, buy(5, "MSFT"))
        await filled(second, sell(5, "MSFT"))
        blocked = dict(second.blocks)
    summary = summarize(second)
    own = [e for e in sim.executions() if e.exec_id not in earlier]

    # Assert: the book began at the broker's 6 at its cost; A's two executions said once, booked nowhere.
    assert (held.quantity, held.avg_cost) == (6, pytest.approx(cost))
    assert said["executions_before_book"] == ("2 executions from before this journal began (earlier today) left "
                                              "out: already in the broker's positions the book starts from")
    assert not {"unknown_fill", "fill_recovered", "position_mismatch"} & set(said)
    assert "unknown_fill" not in blocked
    assert summary["fills"] == len(own) == 3
    assert summary["commissions"] == pytest.approx(sum(e.commission for e in own), abs=0.01)
    assert summary["realized_pnl"] == pytest.approx(sum(e.realized_pnl for e in own), abs=0.01)
    assert summary["positions"] == summary["broker_positions"] == {}
    report = await report_of(config)
    trades = {(t["symbol"], t["strategy"], t["direction"], t["quantity"]) for t in report["trades"]}
    assert trades == {("AAPL", "held at journal start", "LONG", 6), ("MSFT", "manual", "LONG", 5)}
    assert report["open_positions"] == []
    assert report["summary"]["fills"] == 3
    assert report["summary"]["net_pnl"] == pytest.approx(summary["realized_pnl"], abs=0.01)


async def test_new_journal_restarted_after_another_run_traded_today_then_its_executions_stay_out(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: run A traded; run B began a new journal after it (and traded nothing, or one fill).
    earlier = await traded_earlier(sim, tmp_path)
    config = config_in(tmp_path, "b")
    async with running(sim, config):
        pass
    # Act / Assert: restarted with no fill journaled, every execution of the day is fetched: A's stay out.
    async with running(sim, config) as (again, events):
        said = alerts(events)
        assert not {"unknown_fill", "fill_recovered", "executions_before_book", "position_mismatch"} & set(said)
        assert again.portfolio.quantity("AAPL") == 6
        await filled(again, buy(1, "MSFT"))
    # Restarted with a fill journaled (the fetch reaches back a few minutes before it, over A's): out too.
    async with running(sim, config) as (third, events):
        said = alerts(events)
        assert not {"unknown_fill", "fill_recovered", "position_mismatch"} & set(said)
        assert (third.portfolio.quantity("AAPL"), third.portfolio.quantity("MSFT")) == (6, 1)
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        assert not earlier & await journal.known_exec_ids()
    finally:
        await journal.close()


async def test_journal_restarted_after_another_journal_traded_today_then_one_alert_and_the_brokers_book(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: run B bought 3 MSFT on its journal; then runs on other journals, same client id, traded.
    config = config_in(tmp_path, "b")
    async with running(sim, config) as (first, _):
        await filled(first, buy(3, "MSFT"))
        own, ours = {f.exec_id for f in first.session_fills()}, first.portfolio.cash
    await traded_earlier(sim, tmp_path)
    async with running(sim, config_in(tmp_path, "a2")) as (other, _):
        await filled(other, buy(2, "MSFT"))
    cash = sim.account.cash

    # Act: B starts again on its journal.
    async with running(sim, config) as (again, events):
        said = alerts_said(events)
        blocked = dict(again.blocks)
        held = {s: p.quantity for s, p in again.portfolio.open_positions().items()}
        book_cash = again.portfolio.cash
    summary = summarize(again)

    # Assert: the others' three executions said in one WARNING, booked nowhere; the book is the broker's, entries
    # not blocked.
    assert [(a.level, a.kind, a.text) for a in said if a.source == "reconcile" or a.kind == "unknown_fill"] == [
        (AlertLevel.WARNING, "executions_not_this_journals", "3 executions today of orders this journal does not know "
         "(another journal, or another program with client id 11?): not booked as this journal's fills; taken from "
         f"the broker: AAPL 0 → 6, MSFT 3 → 5, cash {ours:.2f} → {cash:.2f}")]
    assert not blocked
    assert held == {"AAPL": 6, "MSFT": 5}
    assert book_cash == pytest.approx(cash)
    assert summary["fills"] == 0
    assert summary["positions"] == summary["broker_positions"] == {"AAPL": 6, "MSFT": 5}
    # Restarted again the same day: their executions, fetched again, are left out without a word.
    async with running(sim, config) as (third, events):
        assert [a.kind for a in alerts_said(events) if a.source == "reconcile"] == []
        assert {s: p.quantity for s, p in third.portfolio.open_positions().items()} == {"AAPL": 6, "MSFT": 5}
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        assert await journal.known_exec_ids() == own
    finally:
        await journal.close()


async def test_journal_restarted_after_another_journal_and_another_client_traded_then_the_rest_is_a_mismatch(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: run B's journal; run A on another, same client id, bought 2 MSFT; TWS (client id 99) bought 5 AAPL.
    config = config_in(tmp_path, "b")
    async with running(sim, config):
        pass
    async with running(sim, config_in(tmp_path, "a")) as (other, _):
        await filled(other, buy(2, "MSFT"))
    await long_at_the_broker(sim, 5)

    # Act: B starts again on its journal.
    async with running(sim, config) as (again, events):
        said = {k: a for a in alerts_said(events) for k in kinds_of(a)}
        held = {s: p.quantity for s, p in again.portfolio.open_positions().items()}

    # Assert: A's execution explains MSFT; nothing explains AAPL, IB reporting no other client's executions: a mismatch.
    assert said["executions_not_this_journals"].text.startswith(
        "1 execution today of orders this journal does not know (another journal, or another program with client id "
        "11?): not booked as this journal's fills; taken from the broker: MSFT 0 → 2, cash ")
    assert said["position_mismatch"].text.startswith(
        "kill switch engaged by risk:position_mismatch (position_mismatch): position mismatch with the broker: AAPL: "
        "ours 0, broker 5. ")
    assert held == {"AAPL": 5, "MSFT": 2}
