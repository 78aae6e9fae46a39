"""The heap trimmer: when it trims, and that a trim gives free pages of the C heap back."""

from __future__ import annotations

import ctypes
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from tui_trader.ops.memory import HeapTrimmer

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
needs_glibc = pytest.mark.skipif(not HeapTrimmer().available, reason="the C library has no malloc_trim")


@needs_glibc
def test_first_call_then_schedules_and_trims_once_per_interval() -> None:
    trimmer = HeapTrimmer(every=timedelta(minutes=10))

    done = [trimmer.maybe_trim(T0 + timedelta(minutes=m)) for m in (0, 5, 10, 11, 19, 20)]

    assert done == [False, False, True, False, False, True]
    assert trimmer.trims == 2


@needs_glibc
def test_clock_goes_back_then_the_next_trim_is_rescheduled_from_there() -> None:
    trimmer = HeapTrimmer(every=timedelta(minutes=10))
    trimmer.maybe_trim(T0)

    assert not trimmer.maybe_trim(T0 - timedelta(hours=1))  # a restart's clock, a test's: due 10 min on
    assert not trimmer.maybe_trim(T0 - timedelta(minutes=55))
    assert trimmer.maybe_trim(T0 - timedelta(minutes=50))


@needs_glibc
def test_fragmented_heap_then_a_trim_returns_its_free_pages_to_the_system() -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 40 MB in 4 KiB blocks (below the mmap threshold: they live in the heap); keep every 16th, so the
    # top of the heap stays in use and only a trim inside the heap can give the rest back.
    blocks = [libc.malloc(4096) for _ in range(10_000)]
    for i, block in enumerate(blocks):
        ctypes.memset(block, 1, 4096)
        if i % 16:
            libc.free(block)
    rss_before = psutil.Process().memory_info().rss
    trimmer = HeapTrimmer(every=timedelta(minutes=10))
    trimmer.maybe_trim(T0)

    assert trimmer.maybe_trim(T0 + timedelta(minutes=10))
    released = rss_before - psutil.Process().memory_info().rss
    for block in blocks[::16]:
        libc.free(block)
    assert released > 20 * 2**20
