"""The ib_async adapter: the only package (besides the simulator) that imports ib_async."""

from tui_trader.broker.ib.adapter import IbBroker

__all__ = ["IbBroker"]
