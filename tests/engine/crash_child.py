"""Child process of the crash-recovery test: start an engine, place a resting order, wait to be killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.engine.helpers import buy, make_config
from tui_trader.domain import OrderStatus, OrderType


async def main(port: int, journal_dir: str, limit: float) -> None:
    engine = Engine(make_config(Path(journal_dir)), make_broker("127.0.0.1", port, CLIENT_ID, timeout=3.0))
    await engine.start()
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    while engine.orders.orders[order.order_ref].status is not OrderStatus.SUBMITTED:
        await asyncio.sleep(0.01)
    assert engine.journal is not None
    await engine.journal.flush()
    print(order.order_ref, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
