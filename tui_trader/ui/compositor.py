"""A compositor whose partial updates render each widget only where something changed.

Textual's ``Compositor.render_partial_update`` crops to the bounding box of all dirty regions.
On the main screen they are spread from the status bar (top) to the orders and P&L tables
(bottom), so the box is the whole screen and every visible widget renders every one of its
lines again each frame: the containers and the panes with nothing new (≈20 widgets at 200x60)
cost 0.05–0.10 ms each from their line caches, about a quarter of a frame's compositor time
(``benchmarks/profile_console.py``), for lines the update then throws away (only lines holding
a dirty span are sent).

:class:`DirtyBandCompositor` keeps Textual's algorithm and changes only which lines are asked
for: a widget is rendered over the band of its rows that some dirty region overlaps, and not
at all when none does. What reaches the terminal is the same, because every cell an update
sends lies in a dirty region, and so in the band of every widget covering that cell, the
front-most included. Full updates (first paint, resize, the SVG snapshots) are Textual's own.

This subclasses a private Textual class (``_get_renders`` and ``render_partial_update`` of
Textual 8): ``tests/ui/test_compositor.py`` compares its updates with Textual's, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.strip import Strip


class DirtyBandCompositor(Compositor):
    """Textual's compositor, rendering only the dirty band of each widget in partial updates."""

    def __init__(self) -> None:
        super().__init__()
        self._updating: list[Region] | None = None
        """The dirty regions of the partial update in progress (``None`` outside one)."""

    def render_partial_update(self) -> ChopsUpdate | None:
        """Textual's partial update, with the dirty regions kept for :meth:`_get_renders`."""
        self._updating = list(self._dirty_regions)
        try:
            return super().render_partial_update()
        finally:
            self._updating = None

    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
        """Each widget's lines within its dirty band (in a partial update), else Textual's renders."""
        dirty = self._updating
        if dirty is None:
            yield from super()._get_renders(crop)
            return
        for widget, (region, clip) in self.visible_widgets.items():
            band = dirty_band(region.intersection(clip), dirty)
            if band is not None:
                # The band is the widget's clip for this render: the chops are painted from
                # region ∩ clip, one strip per line, exactly as Textual does for a clipped widget.
                x, y, width, height = band
                yield region, band, widget.render_lines(Region(x - region.x, y - region.y, width, height))


def dirty_band(visible: Region, dirty: list[Region]) -> Region | None:
    """The rows of ``visible`` (full width) from the first to the last that a dirty region overlaps.

    ``None`` when no dirty region overlaps ``visible`` (which is then not rendered at all).
    """
    top, bottom = visible.bottom, visible.y
    for region in dirty:
        if visible.overlaps(region):
            top, bottom = min(top, region.y), max(bottom, region.bottom)
    if top >= bottom:
        return None
    top, bottom = max(top, visible.y), min(bottom, visible.bottom)
    return Region(visible.x, top, visible.width, bottom - top)
