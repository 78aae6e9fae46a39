"""Child process of the restart-in-SENDING test: send a resting order, say so once it is on the wire, wait to be killed.

The parent holds the simulator's acknowledgements back, so the journal has the order in SENDING
(committed before the send) and nothing after it when the SIGKILL lands.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.engine.helpers import CLIENT_ID, buy, make_config
from tui_trader.domain import OrderType
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker


async def main(port: int, journal_dir: str, limit: float) -> None:
    """Run until killed; print the order's ref as soon as ``submit_nowait`` has placed it."""
    engine = Engine(make_config(Path(journal_dir)), make_broker("127.0.0.1", port, CLIENT_ID, timeout=3.0))
    await engine.start()
    order = engine.submit_nowait(buy(10, order_type=OrderType.LMT, limit_price=limit))
    print(order.order_ref, order.status.value, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
