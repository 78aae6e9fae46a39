"""Pure threshold logic with hysteresis: which level a measured value is at, and when to alert.

A value rises to WARNING or CRITICAL as soon as it reaches the threshold, but falls back only
once it is ``hysteresis_pct`` percent below it, so a value hovering at a limit yields one alert,
not a storm. No I/O, no clock: the health monitor feeds it samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_trader.domain.enums import AlertLevel

OK = AlertLevel.INFO


@dataclass(frozen=True, slots=True)
class Threshold:
    """Warning and critical limits of one metric (``None`` turns a level off)."""

    metric: str
    warn: float | None
    crit: float | None
    unit: str = ""


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A metric moved from one level to another (INFO means back to normal)."""

    metric: str
    previous: AlertLevel
    level: AlertLevel
    value: float
    limit: float | None
    unit: str = ""

    @property
    def text(self) -> str:
        """One line for the operator."""
        unit = self.unit
        if self.level is OK:
            return f"{self.metric} back to normal: {self.value:.1f}{unit}"
        return f"{self.metric} {self.value:.1f}{unit} reached the {self.level.value.lower()} limit {self.limit:g}{unit}"


def classify(value: float, threshold: Threshold, previous: AlertLevel, hysteresis_pct: float) -> AlertLevel:
    """The level of ``value`` given the level it was at before.

    Args:
        value: The measured value.
        threshold: The metric's warning and critical limits.
        previous: The level of the previous sample (INFO: normal).
        hysteresis_pct: How far below a limit (in percent of it) a value must fall to leave its level.

    Returns:
        INFO (normal), WARNING or CRITICAL.
    """
    raw = _raw_level(value, threshold, 0.0)
    if raw.rank >= previous.rank:
        return raw
    # Falling: a level is left only once the value is below its limit lowered by the band.
    banded = _raw_level(value, threshold, hysteresis_pct)
    return min(banded, previous, key=lambda level: level.rank)


def _raw_level(value: float, t: Threshold, band_pct: float) -> AlertLevel:
    factor = 1 - band_pct / 100
    if t.crit is not None and value >= t.crit * factor:
        return AlertLevel.CRITICAL
    if t.warn is not None and value >= t.warn * factor:
        return AlertLevel.WARNING
    return OK


class LevelTracker:
    """Remembers each metric's level and reports only changes.

    Args:
        thresholds: The metrics watched.
        hysteresis_pct: See :func:`classify`.
    """

    def __init__(self, thresholds: list[Threshold], hysteresis_pct: float) -> None:
        self._thresholds = {t.metric: t for t in thresholds}
        self._levels: dict[str, AlertLevel] = {}
        self._hysteresis = hysteresis_pct

    def update(self, metric: str, value: float | None) -> LevelChange | None:
        """Feed one sample; returns the change of level, if any (``None`` values are skipped)."""
        threshold = self._thresholds.get(metric)
        if threshold is None or value is None:
            return None
        previous = self._levels.get(metric, OK)
        level = classify(value, threshold, previous, self._hysteresis)
        if level is previous:
            return None
        self._levels[metric] = level
        limit = threshold.crit if level is AlertLevel.CRITICAL else threshold.warn
        return LevelChange(metric, previous, level, value, limit, threshold.unit)

    def level(self, metric: str) -> AlertLevel:
        """The current level of ``metric`` (INFO when normal)."""
        return self._levels.get(metric, OK)

    def add(self, threshold: Threshold) -> None:
        """Watch one more metric (market-data age per symbol appears as symbols do)."""
        self._thresholds.setdefault(threshold.metric, threshold)
