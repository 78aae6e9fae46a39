"""Child process of the restart rate-memory test: send a bracket (three messages), say so, wait to be killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.engine.helpers import CLIENT_ID, buy, eventually, limits_for_tests, make_config
from tui_trader.domain import Bracket
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker

LIMITS = limits_for_tests(max_orders_per_minute=3, duplicate_window_s=60)
"""The child's and the restarted engine's limits: the bracket uses the whole minute's budget."""


async def main(port: int, journal_dir: str) -> None:
    """Run until killed; print the family's refs as soon as ``submit_nowait`` has placed it."""
    config = make_config(Path(journal_dir), limits=LIMITS)
    engine = Engine(config, make_broker("127.0.0.1", port, CLIENT_ID, timeout=3.0))
    await engine.start()
    await eventually(lambda: "AAPL" in engine.market.quotes and not engine.blocks, what="quotes, reconciled")
    mark = engine.market.mark("AAPL")
    order = engine.submit_nowait(buy(10, bracket=Bracket(stop_price=round(mark * 0.9, 2),
                                                         take_profit_price=round(mark * 1.1, 2))))
    print(*(o.order_ref for o in engine.family(order.order_ref)), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
