"""Headless runs: the engine without the console for a fixed duration, then a JSON summary.

``tui-trader --headless --sim --duration S --summary-json PATH`` calls :func:`run_headless`.
SIGINT/SIGTERM end the run early (the summary is still written).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_trader.engine.collector import freeze_startup_heap, thaw_startup_heap
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine

if TYPE_CHECKING:
    from tui_trader.config import Settings

log = logging.getLogger(__name__)


def run_headless(settings: Settings, duration_s: float, summary_json: Path | None) -> int:
    """Run the engine for ``duration_s`` seconds and write the summary; returns the exit code."""
    return asyncio.run(_run(settings, duration_s, summary_json))


async def _run(settings: Settings, duration_s: float, summary_json: Path | None) -> int:
    engine = create_engine(settings)
    stop = asyncio.Event()
    _install_signals(stop)
    await engine.start()
    freeze_startup_heap()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration_s)
        engine.lapse_unsent("the run ended")
    finally:
        await engine.stop()
        thaw_startup_heap()  # as the console does on quitting: the process may go on (tests run it in-process)
    # Made once stopped: a fill that came while the engine stopped (an order sent just before the end) is
    # in the book and the journal, so in the summary too.
    summary = summarize(engine)
    if summary_json is not None:
        await asyncio.to_thread(write_summary, summary_json, summary)
    log.info("headless run done: %s", summary)
    return 0


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write the summary as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def summarize(engine: Engine) -> dict[str, Any]:
    """The run's summary: state, orders by final status, fills, positions, P&L, alerts (made after
    :meth:`Engine.stop` it is final: nothing is booked after the disconnect)."""
    portfolio = engine.portfolio
    session_fills = engine.session_fills()
    broker_positions = engine.broker_positions_at_stop
    if broker_positions is None:  # still running
        broker_positions = engine.broker_quantities()
    positions = {s: p.quantity for s, p in sorted(portfolio.open_positions().items())}
    return {
        "mode": engine.config.mode.value,
        "dry_run": engine.config.dry_run,
        "account": engine.account_id,
        "trading_state": engine.trading_state.value,
        "kill_engaged": engine.risk.kill_state.engaged,
        "orders": dict(Counter(o.status.value for o in engine.orders.orders.values())
                       + Counter({s.value: n for s, n in engine.orders.forgotten.items()})),
        "fills": len(session_fills),
        "positions": positions,
        "broker_positions": dict(sorted(broker_positions.items())),
        "positions_match": positions == broker_positions,
        "realized_pnl": round(portfolio.realized_pnl, 6),
        "unrealized_pnl": round(portfolio.unrealized_pnl, 6),
        "commissions": round(portfolio.commissions, 6),
        "alerts": dict(engine.alert_counts),
        "reconnects": engine.reconnects,
        "entries_blocked": engine.entries_blocked_reason,
    }
