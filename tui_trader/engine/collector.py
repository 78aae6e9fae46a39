"""Garbage collection between the event loop's steps, not inside the step that allocates the most.

CPython starts a collection from whichever allocation pushes the young generation past its
threshold (700 objects). In the engine that is, more often than anything else, the order path:
it allocates more than any other step (the order, its events, the journal's row, ib_async's
``Trade`` with its twenty-odd event objects), so a gen-0 pass (≈0.2 ms) or a gen-1 pass
(≈1.5 ms, up to 6 ms on a loaded machine) lands between a tick and the order it triggers far
more often than chance: in ``bench_tick_to_order`` at 0 background ticks/s, 63 of 300 engine
samples held a collection (5 a gen-1 one, which made the engine's p99 ≈ p50 + 1.5 ms) against
18 of 300 for the bare client.

:class:`LoopCollector` leaves the policy (which generation, how often) to CPython and moves only
the moment: a timer checks the young generation's count every few milliseconds and, once it is
past the usual threshold, lets the collection run in a loop step of its own, after the I/O
callbacks of the next loop iteration (what the current one wrote is answered first). The
threshold that triggers collections on allocation is raised tenfold meanwhile: a safety net for
a step that allocates a lot without yielding (start-up, a big reconciliation), so memory stays
bounded even when the timer cannot run. The cost: cyclic garbage may wait one period (10 ms)
longer to be freed; memory held by it is at most that of the usual threshold times the net.
"""

from __future__ import annotations

import asyncio
import gc

PERIOD_S = 0.01
"""How often the timer looks at the young generation's count (a check costs ≈1 µs)."""
SAFETY_NET = 10
"""The allocation-triggered threshold while the timer runs, as a multiple of the usual one."""


class _Trigger:
    """A fresh GC-tracked object: allocating one is how a collection is asked for (see ``collect_due``)."""

    __slots__ = ("__weakref__",)


class LoopCollector:
    """Runs CPython's automatic collections from a loop timer (see the module docstring).

    Args:
        period_s: Time between two checks of the young generation's count.
    """

    def __init__(self, period_s: float = PERIOD_S) -> None:
        self.period_s = period_s
        self._thresholds: tuple[int, int, int] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.collections = 0
        """Collections this collector started (for tests and diagnostics)."""

    @property
    def running(self) -> bool:
        """The timer is armed and the allocation threshold raised."""
        return self._thresholds is not None

    def start(self) -> None:
        """Raise the allocation threshold and arm the timer on the running loop (idempotent).

        Started again from another loop (the previous one ended without :meth:`stop`), it
        re-arms the timer there.
        """
        if self._thresholds is not None:
            if self._loop is not asyncio.get_running_loop():
                self._arm()
            return
        self._thresholds = gc.get_threshold()
        young, middle, old = self._thresholds
        if young:  # 0: automatic collection is off in this process, and stays off
            gc.set_threshold(young * SAFETY_NET, middle, old)
        self._arm()

    def stop(self) -> None:
        """Cancel the timer and restore the thresholds (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._loop = None, None
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def collect_due(self) -> bool:
        """Run the collection CPython would have run by now, if one is due; ``True`` when one ran."""
        if not self._due():
            return False
        # gc.collect(n) would pick the generation itself and skip CPython's rule that a full pass
        # waits until the long-lived objects grew by 25% (without it, full passes every 100
        # gen-0 ones would walk every object since start-up). So let CPython's own trigger
        # choose: with the threshold at 1, the next allocation of a tracked object starts the
        # automatic collection, exactly as the 701st allocation would have.
        current = gc.get_threshold()
        gc.set_threshold(1, current[1], current[2])
        try:
            _Trigger()
        finally:
            gc.set_threshold(*current)
        self.collections += 1
        return True

    def _due(self) -> bool:
        """A collection is due: the young generation is past the usual threshold."""
        if self._thresholds is None or not gc.isenabled():
            return False
        young = self._thresholds[0]
        return bool(young) and gc.get_count()[0] > young

    def _arm(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(self.period_s, self._tick)

    def _tick(self) -> None:
        self._arm()
        if self._due():
            # Not now: a timer runs after the I/O callbacks of its loop iteration, so an order
            # written by one of them is still unread (by the gateway, or by the simulator when it
            # shares the loop). A zero-delay timer runs after the next iteration's I/O callbacks.
            asyncio.get_running_loop().call_later(0, self.collect_due)


COLLECTOR = LoopCollector()
"""The process's collector: the engine's process, the headless runner and the console start it after start-up."""


def freeze_startup_heap() -> None:
    """Collect once, then keep what start-up built out of the collector's later passes; start :data:`COLLECTOR`.

    What a process builds while starting lives for the session: the engine's book, the journal's
    state, ib_async's tickers and contracts, the simulator when embedded; in the console also
    Textual's DOM and, once the first draws are done, its line caches, strips and styles.
    Without this a full (gen-2) collection walks all of it: 35–125 ms with the engine, an
    embedded simulator and a second client in one process, against 1.5–3 ms once frozen
    (`benchmarks/README.md`, tick-to-order); 6–11 ms of a console frame against 2.5–3 ms
    (``benchmarks/profile_console.py``). From then on the young generations are collected from
    a loop timer, between loop steps, rather than inside the step that allocates the most (the
    engine's order path, the console's frame). Called by the headless runner, the engine's
    process and the console (after start and again after its first draws; it may be called
    again: each call freezes what was built since). Needs the running loop.
    """
    gc.collect()
    gc.freeze()
    COLLECTOR.start()


def thaw_startup_heap() -> None:
    """Undo :func:`freeze_startup_heap`: collections on allocation again, the heap unfrozen."""
    COLLECTOR.stop()
    gc.unfreeze()
