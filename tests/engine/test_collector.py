"""The loop collector: CPython's collections, run from a timer step instead of on allocation."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tui_trader.engine.collector import SAFETY_NET, LoopCollector


@contextmanager
def generations_collected() -> Iterator[list[int]]:
    """The generation of every collection that starts inside the block."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)


def test_start_raises_the_allocation_threshold_and_stop_restores_it() -> None:
    before = gc.get_threshold()

    async def run() -> tuple[int, int, int]:
        collector = LoopCollector()
        collector.start()
        collector.start()  # idempotent: not raised twice
        during = gc.get_threshold()
        collector.stop()
        return during

    during = asyncio.run(run())
    assert during == (before[0] * SAFETY_NET, before[1], before[2])
    assert gc.get_threshold() == before


def test_a_due_collection_runs_from_the_collector_not_from_the_allocation() -> None:
    async def run() -> tuple[list[int], list[int], bool]:
        collector = LoopCollector(period_s=3600)  # the test calls the check itself
        collector.start()
        try:
            gc.collect()
            with generations_collected() as on_allocation:
                keep = [{"n": i} for i in range(gc.get_threshold()[0] // SAFETY_NET + 100)]
            with generations_collected() as by_collector:
                ran = collector.collect_due()
            idle = collector.collect_due()  # nothing allocated since: nothing due
            del keep
            return on_allocation, by_collector, ran and not idle
        finally:
            collector.stop()

    on_allocation, by_collector, ran_once = asyncio.run(run())
    assert on_allocation == []  # past the usual threshold, below the safety net: no collection yet
    assert len(by_collector) == 1
    assert ran_once


def test_the_timer_collects_while_the_loop_runs() -> None:
    async def run() -> int:
        collector = LoopCollector(period_s=0.001)
        collector.start()
        try:
            keep = []
            while not collector.collections:
                keep.extend({"n": i} for i in range(200))
                await asyncio.sleep(0.002)
            return collector.collections
        finally:
            collector.stop()

    assert asyncio.run(asyncio.wait_for(run(), 30)) >= 1


def test_started_again_from_a_new_loop_it_collects_there() -> None:
    collector = LoopCollector(period_s=0.001)

    async def first() -> None:
        collector.start()  # the loop ends without stop(): its timer dies with it

    async def second() -> int:
        collector.start()
        keep = []
        while not collector.collections:
            keep.extend({"n": i} for i in range(200))
            await asyncio.sleep(0.002)
        return collector.collections

    try:
        asyncio.run(first())
        assert asyncio.run(asyncio.wait_for(second(), 30)) >= 1
    finally:
        collector.stop()
