"""The risk package is pure: importing it pulls in nothing beyond the domain and the standard library."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("asyncio", "textual", "ib_async", "pandas", "pydantic", "aiosqlite", "psutil", "sqlite3")


def test_importing_risk_loads_no_io_or_framework_modules() -> None:
    # Arrange
    probe = (
        "import sys, tui_trader.risk\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "own = sorted(m for m in sys.modules if m.startswith('tui_trader.') and not "
        "m.startswith(('tui_trader.risk', 'tui_trader.domain')))\n"
        "print(bad, own)\n"
    )
    # Act
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    # Assert
    assert out.strip() == "[] []"
