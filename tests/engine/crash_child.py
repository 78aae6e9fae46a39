"""Child process of the crash-recovery test: start an engine, place a resting order, wait to be killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.engine.helpers import CLIENT_ID, buy, make_config
from tui_trader.domain import OrderStatus, OrderType
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker


async def main(port: int, journal_dir: str, limit: float) -> None:
    """Run until killed; print the resting order's ref once it is acknowledged and journaled."""
    engine = Engine(make_config(Path(journal_dir)), make_broker("127.0.0.1", port, CLIENT_ID, timeout=3.0))
    await engine.start()
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    while engine.orders.orders[order.order_ref].status is not OrderStatus.SUBMITTED:
        engine.order_changed.clear()
        await engine.order_changed.wait()
    assert engine.journal is not None
    await engine.journal.flush()
    print(order.order_ref, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
