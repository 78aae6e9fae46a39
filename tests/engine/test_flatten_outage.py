"""A flatten in a market-data outage, and a flatten that is not sent: found by QA on a paper console holding
SPY 9 with its bracket, the market data stalled for 35 s. The flatten was denied for the stale quote
(``quote_age``), said only in an orders-pane row; the preview said nothing of the quote's age, and the
operator action recorded neither what was held nor what became of it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui_trader.domain import AlertLevel, OrderStatus, OrderType
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import alerts_said, bracket_buy, eventually, limits_for_tests, make_config, running, status

S = OrderStatus


def _journaled_actions(engine: Engine) -> list[tuple[str, str, str, str, str]]:
    assert engine.journal is not None
    with closing(sqlite3.connect(engine.journal.path)) as db:
        return db.execute("SELECT who, action, why, before, after FROM operator_actions").fetchall()


def _alerts(events: Subscription, kind: str) -> list[tuple[AlertLevel, str]]:
    return [(a.level, a.text) for a in alerts_said(events, kind=kind)]


async def test_flatten_when_the_market_data_stalled_then_the_preview_warns_and_the_market_exit_goes(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 9 AAPL with its stop; the quote 38 s old, older than max_quote_age_s (10 s).
    frozen: list[datetime] = []
    config = make_config(tmp_path, limits=limits_for_tests(max_quote_age_s=10.0))
    async with running(sim, config, clock=lambda: frozen[0] if frozen else datetime.now(UTC)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        stop = await bracket_buy(sim, engine, qty=9)
        sim.control.stall_market_data(True)
        frozen.append(engine.market.quotes["AAPL"].time + timedelta(seconds=38))

        # Act
        preview = await engine.flatten(preview=True)
        await engine.flatten(preview=False, expected=preview.tickets)

        # Assert: the market exit went, the stop first cancelled; the preview said the estimate is stale.
        await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="flat at the broker")
        assert status(engine, stop.order_ref) is S.CANCELLED
        assert preview.warnings == ("AAPL: quote 38 s old: the estimate may be stale",)
        (close,) = [o for o in engine.orders.orders.values() if o.ticket.strategy == "flatten"]
        assert close.ticket.order_type is OrderType.MKT
        assert not _alerts(events, "flatten_not_sent")
        await eventually(lambda: engine.journal is not None and engine.journal.backlog == 0, what="journaled")
        assert _journaled_actions(engine) == [("operator", "flatten", "flatten all positions", "AAPL LONG 9",
                                               f"AAPL SELL 9 sent ({close.order_ref})")]


async def test_flatten_when_the_gate_denies_its_order_then_an_alert_says_so_and_the_action_records_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 9 AAPL with its stop; then market orders no longer allowed.
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        stop = await bracket_buy(sim, engine, qty=9)
        engine.risk.set_limits(replace(engine.risk.limits, allowed_order_types=(OrderType.LMT, OrderType.STP)))
        events.drain()

        # Act
        await engine.flatten(preview=False)

        # Assert: not sent, said loudly, the stop kept, and the journal says what became of it.
        (close,) = [o for o in engine.orders.orders.values() if o.ticket.strategy == "flatten"]
        assert close.status is S.REJECTED
        why = "risk: order_type_allowed: MKT not allowed"
        assert _alerts(events, "flatten_not_sent") == [
            (AlertLevel.ERROR, f"flatten NOT sent for AAPL: {why}; the position 9 is still open")]
        assert status(engine, stop.order_ref) is S.SUBMITTED
        assert sim.positions()["AAPL"] == 9
        await eventually(lambda: engine.journal is not None and engine.journal.backlog == 0, what="journaled")
        assert _journaled_actions(engine) == [("operator", "flatten", "flatten all positions", "AAPL LONG 9",
                                               f"AAPL SELL 9 NOT sent ({close.order_ref}): {why}")]
