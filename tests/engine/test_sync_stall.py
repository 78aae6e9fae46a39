"""A gateway that answers the handshake, then never ends the contract details the sync asks for.

ib_async's ``qualifyContractsAsync`` has no timeout: the start stayed CONNECTING for good, with no alert and no retry
(still there 12 s past a 3 s connect timeout). Each request of the sync is bounded by the broker timeout now: an
unanswered one is a sync that failed, said once and retried, as a dropped one is.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, ConnectionState
from tui_trader.domain.alerts import Alert
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.errors import BrokerError
from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, make_config, make_engine

TIMEOUT_S = 0.3
"""The broker timeout of these tests (each sync request's bound)."""


def stalling_engine(sim: SimGateway, tmp_path: Path) -> Engine:
    """An engine on ``sim`` with a short broker timeout, ``sim`` holding back the end of every contract details."""
    sim.control.delay_messages("contract_details_end", 3600)
    return make_engine(sim, make_config(tmp_path), timeout=TIMEOUT_S)


async def test_start_when_the_gateway_never_ends_the_contract_details_then_sync_failed_said_once_and_retried(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = stalling_engine(sim, tmp_path)
    events = engine.subscribe("test", lossless=True)
    caplog.set_level(logging.INFO, logger="tui_trader.engine")
    wording = re.compile(rf"connected to {sim.host}:{sim.port} but the sync failed: subscribing market data: no "
                         rf"answer within {TIMEOUT_S:g} s; trying again in \d+\.\d s")

    def said_in_the_log() -> list[str]:
        return [r.getMessage() for r in caplog.records if "sync failed" in r.getMessage()]

    try:
        await asyncio.wait_for(engine.start(), 5)  # it hung here, in CONNECTING, for good
        await eventually(lambda: len(said_in_the_log()) >= 2, what="the start's attempt and a retry")
        sim.control.clear_faults()
        await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="connected at a retry")
    finally:
        await engine.stop()
    failed = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "connect_failed"]
    assert [(a.level, a.source) for a in failed] == [(AlertLevel.ERROR, "broker")]  # once, not at every retry
    assert wording.fullmatch(failed[0].text)
    assert all(wording.search(text) for text in said_in_the_log()[:2])


async def test_watch_when_the_gateway_never_ends_the_contract_details_then_a_broker_error_says_no_answer(
        sim: SimGateway, tmp_path: Path) -> None:
    engine = make_engine(sim, make_config(tmp_path), timeout=TIMEOUT_S)
    try:
        await asyncio.wait_for(engine.start(), 5)
        assert engine.connection.state is ConnectionState.CONNECTED
        sim.control.delay_messages("contract_details_end", 3600)

        with pytest.raises(BrokerError) as refused:
            await asyncio.wait_for(engine.watch("NVDA"), 5)  # it waited for good
    finally:
        await engine.stop()
    assert refused.value.message == f"NVDA: the broker gave no contract details (no answer within {TIMEOUT_S:g} s)"
    assert engine.subscribed_symbols == ("AAPL", "MSFT")


async def test_new_trading_day_when_the_gateway_never_ends_the_contract_details_then_the_refresh_failure_is_said(
        tmp_path: Path) -> None:
    # The day's refresh of the trading hours waited for good, in a task nobody watches: nothing said.
    clock = ManualClock(datetime(2024, 3, 5, 15, 0, tzinfo=UTC))  # Tuesday 10:00 New York
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as sim:
        engine = make_engine(sim, make_config(tmp_path), clock=clock.now, timeout=TIMEOUT_S)
        events = engine.subscribe("test", lossless=True)
        try:
            await asyncio.wait_for(engine.start(), 5)
            hours = engine.market.instruments["AAPL"].liquid_sessions
            clock.advance(24 * 3600)  # Wednesday, the same connection
            sim.control.delay_messages("contract_details_end", 3600)

            engine.tick()

            said: list[Alert] = []

            def refresh_failed() -> bool:
                said.extend(e.alert for e in events.drain() if isinstance(e, AlertRaised))
                return any(a.kind == "hours_refresh_failed" for a in said)

            await eventually(refresh_failed, timeout=5, what="the refresh failure said")
        finally:
            await engine.stop()
    (failed,) = [a for a in said if a.kind == "hours_refresh_failed"]
    assert (failed.level, failed.text) == (AlertLevel.WARNING, "trading hours not refreshed for the new day: no answer "
                                           f"within {TIMEOUT_S:g} s; the hours read before are kept")
    assert engine.market.instruments["AAPL"].liquid_sessions == hours  # kept
