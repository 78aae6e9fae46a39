"""Render the console's main states and modals to ``screenshots/*.svg`` (and PNG where possible).

The scenes are the deterministic ones the snapshot tests use (frozen time, scripted engine)::

    .venv/bin/python scripts/screenshots.py            # every scene at 160x48
    .venv/bin/python scripts/screenshots.py normal     # one scene

PNGs are made with ``rsvg-convert`` (``apt-get install librsvg2-bin``) when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual._doc import take_svg_screenshot  # noqa: E402

from tests.ui.scenes import MAIN_STATES, MODALS, scene  # noqa: E402

OUT = ROOT / "screenshots"
PNG = {"normal", "halted", "approval", "stalled"}
SIZE = (160, 48)


def render(name: str, size: tuple[int, int] = SIZE) -> Path:
    """Write ``screenshots/<name>.svg`` (and ``.png`` for the README's scenes)."""
    app, before = scene(name)
    svg = take_svg_screenshot(app=app, terminal_size=size, run_before=before, title=f"tui-trader · {name}")
    # Every run of cells is a <text> element; one that starts with padding (a right-aligned
    # figure after a coloured cell) begins with non-breaking spaces, which librsvg drops unless
    # whitespace is preserved: the PNGs showed "SELL70" where the terminal shows "SELL     70".
    svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    path = OUT / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    converter = shutil.which("rsvg-convert")
    if name in PNG and converter:
        subprocess.run([converter, str(path), "-o", str(path.with_suffix(".png"))], check=True)
    return path


def main(argv: list[str]) -> int:
    """Render the scenes named in ``argv`` (all by default)."""
    OUT.mkdir(exist_ok=True)
    names = argv or [*MAIN_STATES, *MODALS]
    for name in names:
        sys.stdout.write(f"{render(name).relative_to(ROOT)}\n")
    render("normal", (80, 24)).rename(OUT / "normal-80x24.svg")
    render("normal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
