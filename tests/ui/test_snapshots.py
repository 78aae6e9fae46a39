"""SVG snapshots of the main screen's states and of every modal, at 80x24 and 160x48.

Time is frozen and the data deterministic; regenerate with ``pytest tests/ui --snapshot-update``
and look at the pictures before committing them.
"""

from __future__ import annotations

import pytest

from .conftest import SIZES
from .scenes import MAIN_STATES, MODALS, scene


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", MAIN_STATES)
def test_main_screen(snap_compare, name: str, size: tuple[int, int]) -> None:
    app, before = scene(name)
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", MODALS)
def test_modal(snap_compare, name: str, size: tuple[int, int]) -> None:
    app, before = scene(name)
    assert snap_compare(app, terminal_size=size, run_before=before)
