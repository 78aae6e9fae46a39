"""Several simulated hours of strategies trading through seeded random faults; then the books must agree.

Deselected by default (``-m slow`` runs it). The simulator's manual clock is stepped five seconds at a
time; after each step a round trip on the engine's own connection guarantees the engine has seen
everything the simulator sent before it, so the run is paced by the engine, not by sleeps.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.engine.runner import summarize
from tui_trader.sim import ManualClock, SimGateway

from .helpers import CLIENT_ID, eventually, limits_for_tests, make_config, make_engine, strategy

S = OrderStatus
HOURS, STEP_S, SEED = 3, 5, 20240305
Fault = Callable[[SimGateway], None]


def _faults() -> dict[str, Fault]:
    return {
        "disconnect": lambda gw: gw.control.drop_sessions(CLIENT_ID),
        "connectivity_lost": lambda gw: gw.control.connectivity_lost(),
        "farm_broken": lambda gw: gw.control.send_error(2103),
        "farm_ok": lambda gw: gw.control.send_error(2104),
        "reject_next": lambda gw: gw.control.reject_next(),
        "late_status": lambda gw: gw.control.delay_messages("order_status", 3),
        "status_on_time": lambda gw: gw.control.delay_messages("order_status", 0),
    }


def fault_schedule(seed: int, steps: int, every: int = 40) -> dict[int, str]:
    """Step number → fault name: about one fault per ``every`` steps, reproducible from ``seed``."""
    rng, names = random.Random(seed), sorted(_faults())
    return {step: rng.choice(names) for step in range(every, steps, every) if rng.random() < 0.8}


async def settle(engine: Engine) -> None:
    """Wait until the engine is connected and has processed everything the gateway sent.

    The round trip can be lost when the connection drops under it: then wait for the reconnect
    and try again (bounded by the timeouts of ``eventually`` and ``wait_for``).
    """
    for _ in range(10):
        await eventually(lambda: engine.is_connected and "reconciling" not in engine.blocks, timeout=20,
                         what="connected and reconciled")
        try:
            await asyncio.wait_for(engine.broker.ib.reqCurrentTimeAsync(), 2.0)  # type: ignore[attr-defined]
        except (TimeoutError, ConnectionError):
            continue
        return
    pytest.fail("no round trip with the gateway after ten reconnects")


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_hours_of_trading_with_random_faults_then_journal_summary_and_ledger_agree_exactly(
        tmp_path: Path) -> None:
    gw = SimGateway(port=0, clock=ManualClock(), seed=SEED % 1000, always_open=True)
    limits = limits_for_tests(max_daily_trades=None, max_daily_trades_per_strategy=None, daily_loss_limit_pct=None,
                              max_drawdown_pct=None, max_losing_streak=None, max_orders_per_minute=None)
    config = make_config(tmp_path, limits=limits, warmup_bars=40,
                         strategies=(strategy("ema_cross", ("AAPL", "MSFT"), fast=3, slow=8),))
    steps = HOURS * 3600 // STEP_S
    schedule, faults = fault_schedule(SEED, steps), _faults()
    async with gw:
        engine = make_engine(gw, config)
        await engine.start()
        for step in range(steps):
            if step in schedule:
                faults[schedule[step]](gw)
            gw.control.step(STEP_S)
            await settle(engine)
        gw.control.clear_faults()
        gw.control.step(STEP_S)
        await settle(engine)
        await eventually(lambda: not engine.orders.with_status(S.SENDING, S.UNKNOWN) and not engine.blocks,
                         timeout=20, what="quiescent")
        # A fill never heard live (one that arrived before ib_async knew its order again, after a
        # reconnect) is fetched once the positions have disagreed for two checks (2 s apart).
        await eventually(lambda: not engine.position_diffs(), timeout=20, what="positions agree with the broker's")
        summary = summarize(engine)
        assert engine.journal is not None
        await engine.journal.flush()
        journal_fills = await engine.journal.fills()
        await engine.stop()

    ledger = {e.exec_id: e for e in gw.executions() if e.client_id == CLIENT_ID}
    assert len(ledger) > 20, "the strategies should have traded"
    journaled = [f.exec_id for f in journal_fills]
    missing = [(e, engine.orders.get(e.order_ref)) for k, e in ledger.items() if k not in journaled]
    # Once (2026-11-23) one execution was missing while the positions agreed: say which, and the engine's order.
    assert sorted(journaled) == sorted(ledger), f"not journaled (execution, the engine's order): {missing}"
    assert {f.exec_id: f.commission for f in journal_fills} == {k: e.commission for k, e in ledger.items()}
    assert summary["fills"] == len(ledger)
    assert summary["commissions"] == pytest.approx(sum(e.commission for e in ledger.values()))
    assert summary["positions"] == summary["broker_positions"] == {s: q for s, q in gw.positions().items() if q}
    assert engine.portfolio.cash == pytest.approx(gw.cash)
    assert gw.duplicate_order_refs() == []
    assert summary["reconnects"] >= 1
