"""Alerts: what the operator must be told."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tui_trader.domain.enums import AlertLevel

LOST_LINK = "disconnect"
"""The kind of the broker's alert for a link that was up and went down (the engine raises it; the notifications send
the connection change behind it instead, :func:`~tui_trader.ops.notify.notice.notice_for`)."""


def listed(words: Sequence[str]) -> str:
    """Words as an alert says them together: ``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert with its level, the component that raised it, and its text."""

    level: AlertLevel
    source: str
    text: str
    time: datetime
    kind: str = "general"
