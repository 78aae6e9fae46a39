"""Give the C heap's free pages back to the system (glibc ``malloc_trim``), at most every few minutes.

Why: over a trading session the engine's process grows although what it holds does not. The soak
(``benchmarks/bench_soak.py``, see ``benchmarks/README.md``) shows glibc's heap holding 28–30 MB in
use for the whole session while its *free* space climbs from ≈ 1.5 MB to ≈ 12 MB: bursts of large
transient allocations (ib_async re-slices its receive buffer once per message, decodes every open
and completed order of a ``reqOpenOrders`` / ``reqCompletedOrders`` answer into 150-field objects,
pandas builds each bar's frames) leave free chunks between live ones, and glibc returns only the top
of the heap on ``free``. ``malloc_trim(0)`` also releases whole free pages inside the heap
(``madvise(MADV_DONTNEED)``): the memory is reused at the next burst instead of staying resident.

It does not hide growth: nothing that is in use is released, and Python's own small-object arenas
(pymalloc) are not touched. On a C library without ``malloc_trim`` (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

TRIM_EVERY = timedelta(minutes=10)
"""Engine-clock time between two trims (each held the loop 0.3–1.2 ms in the soak, see the README)."""


def _load_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


class HeapTrimmer:
    """Calls ``malloc_trim(0)`` when :data:`TRIM_EVERY` has passed since the last call.

    Args:
        every: Time between trims (engine clock).
    """

    def __init__(self, every: timedelta = TRIM_EVERY) -> None:
        self.every = every
        self.trims = 0
        """Trims done (tests and benchmarks read it)."""
        self.last_ms = 0.0
        """How long the last trim held the loop, in milliseconds."""
        self._trim = _load_trim()
        self._due: datetime | None = None

    @property
    def available(self) -> bool:
        """True when the C library can trim (glibc)."""
        return self._trim is not None

    def maybe_trim(self, now: datetime) -> bool:
        """Trim if one is due at ``now`` (the first call only schedules the first trim)."""
        if self._trim is None:
            return False
        if self._due is None or self._due - now > self.every:  # first call, or the clock went back
            self._due = now + self.every
        if now < self._due:
            return False
        self._due = now + self.every
        started = time.perf_counter()
        self._trim(0)
        self.last_ms = (time.perf_counter() - started) * 1000
        self.trims += 1
        log.debug("malloc_trim: %.1f ms", self.last_ms)
        return True
