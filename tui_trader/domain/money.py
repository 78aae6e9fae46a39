"""How a money figure is written for a tool to read: the headless summary, the report's JSON and CSV, the trace's
export."""

from __future__ import annotations

import math
from typing import Any

MONEY_DECIMALS = 6
"""Decimals of a money figure written for a tool: every cent, and a commission's fraction of one (IB
reports commissions to 4 decimals), but none of the binary noise of a sum of floats."""


def money(value: float) -> float:
    """``value`` to :data:`MONEY_DECIMALS` decimals: a P&L summed from fills reads ``-8.94``, not
    ``-8.940000000000083``. One rule for every file and tool, so their figures agree digit for digit."""
    return round(value, MONEY_DECIMALS)


def tool_figure(value: float) -> float | None:
    """A figure as a file for tools writes it: :func:`money`, and ``None`` (JSON's null, CSV's empty cell) for NaN and
    the infinities, which JSON has no number for (``json.dumps`` writes ``NaN`` / ``Infinity``, which strict readers,
    ``jq`` among them, refuse)."""
    return money(value) if math.isfinite(value) else None


def tool_figures(value: Any) -> Any:
    """``value`` with every float in it (in dicts, lists and tuples, a tuple as a list) as :func:`tool_figure` writes
    it: the one rule of the report's JSON and CSV and of the order trace's export."""
    if isinstance(value, dict):
        return {k: tool_figures(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tool_figures(v) for v in value]
    return tool_figure(value) if isinstance(value, float) else value
