"""The IB Gateway simulator: the TWS API wire protocol (server version 178) on loopback.

``SimGateway`` runs in the caller's event loop; ``tui_trader.sim.cli.main`` runs it standalone.
"""

from __future__ import annotations

from tui_trader.sim.clock import Clock, ManualClock, RealClock
from tui_trader.sim.control import Control
from tui_trader.sim.gateway import SimGateway

__all__ = ["Clock", "Control", "ManualClock", "RealClock", "SimGateway"]
