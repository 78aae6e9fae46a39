"""An engine on the simulator for the operations tests (the same shape the engine tests use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_trader.config.sections import SizingSettings
from tui_trader.domain import Mode, OrderTicket, OrderType, Side
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.risk.limits import RiskLimits
from tui_trader.sim import SimGateway

ENGINE_CLIENT = 11


def make_engine(sim: SimGateway, tmp_path: Path, **changes: Any) -> Engine:
    """An engine without approvals, with a temp journal, trading AAPL and MSFT on ``sim``."""
    limits = RiskLimits(max_order_quantity=1000, max_order_notional=500_000, max_open_positions=10,
                        max_gross_exposure=2.0, max_leverage=2.0, require_quote=True,
                        unknown_order_timeout_s=None, disconnect_halt_after_s=None)
    config = EngineConfig(mode=Mode.SIM, approvals_required=False, journal_path=tmp_path / "journal.sqlite",
                          symbols=("AAPL", "MSFT"), ack_timeout_s=2.0, limits=limits, reconnect_initial_s=0.05,
                          reconnect_max_s=0.2, market_data_stale_s=3600, warmup_bars=20, tick_interval_s=0.05,
                          sizing=SizingSettings(method="fixed_quantity")).with_(**changes)
    return Engine(config, make_broker(sim.host, sim.port, ENGINE_CLIENT, timeout=3.0))


def buy(qty: float, symbol: str = "AAPL", **kw: Any) -> OrderTicket:
    """A buy ticket (market unless ``order_type`` is given)."""
    return OrderTicket(symbol, Side.BUY, qty, kw.pop("order_type", OrderType.MKT), **kw)


def sell(qty: float, symbol: str = "AAPL", **kw: Any) -> OrderTicket:
    """A sell ticket."""
    return OrderTicket(symbol, Side.SELL, qty, kw.pop("order_type", OrderType.MKT), **kw)
