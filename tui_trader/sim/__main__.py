"""``python -m tui_trader.sim`` runs the standalone simulator."""

from __future__ import annotations

import sys

from tui_trader.sim.cli import main

raise SystemExit(main(sys.argv[1:]))
