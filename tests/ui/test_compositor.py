"""The main screen's compositor sends the terminal exactly what Textual's would, rendering less;
and the console's collections run between frames.

Each test sets the same dirty regions on the running main screen's compositor twice, once for
Textual's own partial update and once for :class:`DirtyBandCompositor`'s, and compares the
terminal bytes the two encode.
"""

from __future__ import annotations

import gc
import random
from typing import Any

from textual._compositor import Compositor
from textual.geometry import Region

from tests.ui.conftest import Console, running
from tui_trader.engine.collector import COLLECTOR
from tui_trader.ui.compositor import DirtyBandCompositor, dirty_band

SIZE = (200, 60)
A_FRAME = [  # what a frame at 10,000 ticks/s dirtied (benchmarks/profile_console.py --real)
    Region(0, 0, 200, 1), Region(0, 46, 133, 1), Region(1, 3, 64, 20), Region(1, 25, 131, 1),
    Region(1, 26, 131, 20), Region(1, 49, 64, 1), Region(1, 53, 64, 1), Region(67, 3, 132, 4),
    Region(67, 8, 132, 1), Region(67, 10, 132, 12),
]


def encoded(c: Console, regions: list[Region], *, textual: bool) -> str:
    """The partial update for ``regions``, as terminal bytes, by Textual's algorithm or ours."""
    compositor = c.app.main._compositor
    compositor._dirty_regions = set(regions)
    update = Compositor.render_partial_update(compositor) if textual else compositor.render_partial_update()
    assert update is not None
    return update.render_segments(c.app.console)


def random_regions(rng: random.Random, count: int) -> list[Region]:
    """``count`` regions anywhere on the screen, one line to a third of it high."""
    regions = []
    for _ in range(count):
        x, y = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
        regions.append(Region(x, y, rng.randint(1, SIZE[0] - x), rng.randint(1, max(1, min(20, SIZE[1] - y)))))
    return regions


async def test_main_screen_when_drawn_then_uses_the_band_compositor() -> None:
    async with running(size=SIZE) as c:
        assert isinstance(c.app.main._compositor, DirtyBandCompositor)


async def test_partial_update_when_regions_spread_then_same_bytes_as_textual() -> None:
    rng = random.Random(6)
    async with running(size=SIZE) as c:
        cases = [A_FRAME, [Region(0, 0, 200, 1)], [Region(150, 30, 5, 2)], [Region(0, 0, 200, 59)]]
        cases += [random_regions(rng, rng.randint(1, 12)) for _ in range(40)]
        for regions in cases:
            assert encoded(c, regions, textual=False) == encoded(c, regions, textual=True), regions


async def test_partial_update_when_top_and_bottom_dirty_then_only_widgets_under_them_render() -> None:
    top_and_bottom = [Region(0, 0, 200, 1), Region(0, 58, 10, 1)]  # the status bar; the P&L pane's border
    async with running(size=SIZE) as c:
        rendered: list[str] = []
        for widget in c.app.main.walk_children(with_self=True):
            widget.render_lines = counting(widget, rendered)  # type: ignore[method-assign]
        encoded(c, top_and_bottom, textual=False)
        assert set(rendered) == {"main-screen", "top", "status-bar", "panes", "pnl-pane"}
        rendered.clear()
        encoded(c, top_and_bottom, textual=True)  # Textual crops to the box around both: every widget
        assert {"alerts-pane", "alerts-table", "watchlist-table", "KeyFooter"} <= set(rendered)


def counting(widget: Any, rendered: list[str]) -> Any:
    """``widget.render_lines``, recording the widget's id on each call."""
    render = widget.render_lines

    def render_lines(crop: Region) -> Any:
        rendered.append(widget.id or type(widget).__name__)
        return render(crop)
    return render_lines


def test_dirty_band_when_regions_overlap_then_rows_from_first_to_last() -> None:
    visible = Region(10, 5, 20, 10)
    assert dirty_band(visible, [Region(0, 0, 5, 100)]) is None  # beside it
    assert dirty_band(visible, [Region(12, 7, 1, 1), Region(0, 11, 100, 2)]) == Region(10, 7, 20, 6)
    assert dirty_band(visible, [Region(0, 0, 100, 100)]) == visible


async def test_console_when_started_then_collects_between_frames_until_it_quits() -> None:
    async with running(size=(80, 24)) as c:
        await c.settle(3)
        assert COLLECTOR.running  # the young generations collected from a loop timer, between frames
        assert gc.get_freeze_count() > 0
    assert not COLLECTOR.running
    assert gc.get_freeze_count() == 0
