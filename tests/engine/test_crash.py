"""SIGKILL of the engine and restart: open orders adopted, fills while down recorded once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tui_trader.domain import OrderStatus
from tui_trader.sim import SimGateway

from .helpers import eventually, make_config, make_engine, status

ROOT = Path(__file__).resolve().parents[2]


async def test_sigkill_then_restart_adopts_open_order_and_records_fill_once(
        sim: SimGateway, tmp_path: Path) -> None:
    limit = round(sim.quote("AAPL").bid - 1.0, 2)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.crash_child", str(sim.port), str(tmp_path), str(limit),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    ref = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    sim.control.set_price("AAPL", limit - 0.5)  # fills while the engine is down

    engine = make_engine(sim, make_config(tmp_path))
    await engine.start()
    await eventually(lambda: status(engine, ref) is OrderStatus.FILLED, what="fill recovered after crash")
    assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 10
    assert sim.duplicate_order_refs() == []
    assert engine.journal is not None
    await engine.journal.flush()
    fills = [f for f in await engine.journal.fills() if f.order_ref == ref]
    assert sum(f.quantity for f in fills) == 10
    await engine.stop()
