"""How a money figure is written for a tool to read: the headless summary, the report's JSON and CSV."""

from __future__ import annotations

MONEY_DECIMALS = 6
"""Decimals of a money figure written for a tool: every cent, and a commission's fraction of one (IB
reports commissions to 4 decimals), but none of the binary noise of a sum of floats."""


def money(value: float) -> float:
    """``value`` to :data:`MONEY_DECIMALS` decimals: a P&L summed from fills reads ``-8.94``, not
    ``-8.940000000000083``. One rule for every file and tool, so their figures agree digit for digit."""
    return round(value, MONEY_DECIMALS)
