"""The log files: in the state directory, rotated, and readable by their owner only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import cast

import pytest

from tui_trader.domain import OrderStatus, OrderType
from tui_trader.ops.logs import CancelIsNoError, configure_logging
from tui_trader.sim import ManualClock, SimGateway

from .conftest import eventually
from .engines import buy, make_engine


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers (pytest's own among them): put them back (and take its
    filter off ib_async's logger)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)
    wrapper = logging.getLogger("ib_async.wrapper")
    for added in [f for f in wrapper.filters if isinstance(f, CancelIsNoError)]:
        wrapper.removeFilter(added)


@pytest.mark.usefixtures("root_handlers")
def test_logs_when_written_and_rotated_then_every_file_and_their_directory_are_the_owners_only(
        tmp_path: Path) -> None:
    # They were created with the umask's modes (0644, 0755): every user of a shared VPS could read the
    # account's orders, fills and alerts that the 0600 journal beside them keeps from them.
    path = configure_logging(tmp_path / "state", "INFO", name="tui-trader.log")
    handler = cast(RotatingFileHandler, logging.getLogger().handlers[0])
    handler.maxBytes = 300
    for n in range(20):
        logging.getLogger("tui_trader.test").info("order tt-%d filled: BUY 10 AAPL @ 198.63", n)

    logs = tmp_path / "state" / "logs"
    modes = {p.name: p.stat().st_mode & 0o777 for p in logs.iterdir()}
    assert path == logs / "tui-trader.log"
    assert {"tui-trader.log", "tui-trader.log.1", "tui-trader.log.5"} <= set(modes)  # rotated, five kept
    assert set(modes.values()) == {0o600}
    assert logs.stat().st_mode & 0o777 == 0o700


@pytest.mark.usefixtures("root_handlers")
def test_logs_left_readable_by_an_earlier_version_then_made_the_owners_only(tmp_path: Path) -> None:
    # An install from before logs were private keeps its 0755 directory and 0644 log: only new ones were 0600.
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True, mode=0o755)
    logs.chmod(0o755)
    old = logs / "tui-trader.log"
    old.write_text("order tt-1 filled: BUY 10 AAPL @ 198.63\n")
    old.chmod(0o644)

    configure_logging(tmp_path / "state", "INFO", name="tui-trader.log")

    assert old.stat().st_mode & 0o777 == 0o600
    assert logs.stat().st_mode & 0o777 == 0o700


@pytest.mark.usefixtures("root_handlers")
async def test_logs_when_an_order_is_cancelled_then_its_202_is_info_and_a_rejection_stays_an_error(
        tmp_path: Path) -> None:
    # Every cancel we asked for (and every OCA sibling's) was logged "ERROR ib_async.wrapper: Error 202 … Order
    # Canceled": 14 in a 12-minute run, among which a real error was hard to find.
    path = configure_logging(tmp_path / "state", "INFO")
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)
        await engine.start()
        try:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
            far = round(engine.market.quotes["AAPL"].bid * 0.9, 2)
            order = await engine.submit(buy(1, order_type=OrderType.LMT, limit_price=far))
            await eventually(lambda: engine.orders.get(order.order_ref).status is OrderStatus.SUBMITTED)
            await engine.cancel(order.order_ref)
            await eventually(lambda: engine.orders.get(order.order_ref).status is OrderStatus.CANCELLED)
            sim.control.reject_next()
            rejected = await engine.submit(buy(1, order_type=OrderType.LMT, limit_price=far))
            await eventually(lambda: engine.orders.get(rejected.order_ref).status is OrderStatus.REJECTED)
        finally:
            await engine.stop()

    lines = path.read_text(encoding="utf-8").splitlines()
    cancels = [ln for ln in lines if "Error 202," in ln]
    assert cancels, lines
    assert all(" INFO    ib_async.wrapper: Error 202," in ln for ln in cancels), cancels
    assert any(" ERROR   ib_async.wrapper: Error 201," in ln for ln in lines), lines
