"""Alerts: what the operator must be told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tui_trader.domain.enums import AlertLevel


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert with its level, the component that raised it, and its text."""

    level: AlertLevel
    source: str
    text: str
    time: datetime
    kind: str = "general"
