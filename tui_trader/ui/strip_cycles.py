"""Keep Textual's ``Strip.divide`` from making every painted line a reference cycle.

When the compositor cuts a line that needs no cut (a widget between two adjacent cuts, which
is most lines of most widgets), ``Strip.divide`` (Textual 8) returns ``[self]`` and stores that
list in the strip's own ``_divide_cache``: strip → cache → list → strip. Reference counting can
then never free the strip, its seven caches and its segments; only the cyclic collector can.
In ``profile_console --real`` (200x60, 10,000 ticks/s) every bit of the console's cyclic
garbage was such a strip: about 44 a frame, 700 objects, so a young collection every 0.4 frame,
an older one every 4 frames (2-4 ms, collecting 2,000-4,000 objects) and a full one every
4-5 s (7-15 ms, 10,000-12,000 objects), inside whichever frame allocated last: the frame
p99.

:func:`install` wraps ``Strip.divide`` so that this one case returns a fresh ``[self]`` that
is not cached (the list is the only thing the cache saved). Every other cut is Textual's own
code. Idempotent; the output of ``divide`` is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.strip import Strip

_textual_divide = Strip.divide


def _divide(self: Strip, cuts: Iterable[int]) -> Sequence[Strip]:
    """``Strip.divide`` without the self-referencing cache entry of an uncut strip."""
    cell_length = self.cell_length
    cuts = [cut for cut in cuts if cut <= cell_length]  # as Textual filters them
    if cuts == [cell_length]:
        return [self]
    return _textual_divide(self, cuts)


def install() -> None:
    """Replace ``Strip.divide`` with :func:`_divide` (once per process)."""
    if Strip.divide is not _divide:
        Strip.divide = _divide  # type: ignore[method-assign]
