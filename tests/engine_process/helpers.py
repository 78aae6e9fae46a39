"""Helpers for the engine-process tests: the child's engine factory and a running proxy.

The simulator runs in the test process (so the test sees the wire: what the simulator
received, what is working there); the engine runs in a child process, built by
:func:`engine_on_test_sim` from the settings the proxy carries, and reaches the simulator
through ib_async over loopback like any client.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from engine.helpers import make_config

from tui_trader.config import Settings
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.engine.process.proxy import EngineProxy, spawn_engine
from tui_trader.sim import SimGateway

ENGINE_CLIENT_ID = 21
KILL_CLIENT_ID = 55
IB_FAULT = re.compile(r"ERROR\s+ib_async\.Decoder|ib_async\S*: .*timed out")


def engine_on_test_sim(settings: Settings) -> Engine:
    """Runs in the child: the test engine config, connected to the test's simulator.

    ``settings.confirm`` decides whether orders wait for approval; the journal is the one the
    out-of-band kill writes (``settings.journal_path``).
    """
    config = make_config(settings.state_dir, approvals_required=settings.approvals_required,
                         journal_path=settings.journal_path)
    return Engine(config, make_broker(settings.sim.host, settings.sim.port, settings.broker.client_id, timeout=5))


def settings_for(gw: SimGateway, tmp_path: Path, **changes: Any) -> Settings:
    """Settings naming the test simulator, a temp state dir and the kill's own client id."""
    values: dict[str, Any] = dict(mode="sim", state_dir=tmp_path, sim={"port": gw.port}, confirm=False,
                                  broker={"client_id": ENGINE_CLIENT_ID},
                                  kill_switch={"kill_client_id": KILL_CLIENT_ID})
    return Settings(**(values | changes))


def settings_for_port(port: int, state_dir: str) -> Settings:
    """:func:`settings_for` from plain values (for a console started as a separate process)."""
    return Settings(mode="sim", state_dir=Path(state_dir), sim={"port": port}, confirm=False,
                    broker={"client_id": ENGINE_CLIENT_ID}, kill_switch={"kill_client_id": KILL_CLIENT_ID})


def child_ib_faults(settings: Settings) -> list[str]:
    """ib_async decoder errors and request timeouts the child logged (the root conftest cannot see them)."""
    log = settings.state_dir / "logs" / "engine.log"
    return [line for line in log.read_text().splitlines() if IB_FAULT.search(line)] if log.exists() else []


@asynccontextmanager
async def engine_process(gw: SimGateway, tmp_path: Path, **changes: Any) -> AsyncIterator[EngineProxy]:
    """A proxy whose child engine is started and connected to ``gw``; closed (and checked) at the end."""
    settings = settings_for(gw, tmp_path, **changes)
    proxy = spawn_engine(settings, engine_on_test_sim, snapshot_hz=10)
    try:
        yield proxy
    finally:
        proxy.close()
    if faults := child_ib_faults(settings):
        pytest.fail("the engine process logged ib_async faults:\n" + "\n".join(faults))
