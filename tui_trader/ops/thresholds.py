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
    sustain: int | None = None
    """Samples in a row a level of this metric must hold before it is alerted, rising or falling (``None``: the
    tracker's): the system CPU, which other processes share, holds a minute where the loop lag holds seconds."""


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A metric moved from one level to another (INFO means back to normal)."""

    metric: str
    previous: AlertLevel
    level: AlertLevel
    value: float
    limit: float | None
    unit: str = ""
    peak: float | None = None
    """The highest value of the samples that held the level (a rise over several samples), when not ``value``."""
    samples: int = 1
    """How many samples in a row held the level before it was alerted."""
    left_limit: float | None = None
    """Falling: the limit of the level left (``previous``'s)."""

    @property
    def text(self) -> str:
        """One line for the operator: the value that crossed the limit, not only the last one (the last sample
        of a sustained rise may sit below the limit, within the hysteresis band: "cpu 76.1% reached the warning
        limit 80%" read as a false alarm)."""
        unit = self.unit
        if self.level is OK:
            return f"{self.metric} back to normal: {self.value:.1f}{unit}"
        if self.level.rank < self.previous.rank:  # falling: "59.8% reached the warning limit 80%" read as a rise
            left = f" {self.left_limit:g}{unit}" if self.left_limit is not None else ""
            return (f"{self.metric} back under the {self.previous.value.lower()} limit{left}: "
                    f"{self.value:.1f}{unit} now")
        reached = f"reached the {self.level.value.lower()} limit {self.limit:g}{unit}"
        if self.peak is None or self.peak == self.value:
            return f"{self.metric} {self.value:.1f}{unit} {reached}"
        return (f"{self.metric} {reached} for {self.samples} samples in a row: {self.peak:.1f}{unit} at the highest, "
                f"{self.value:.1f}{unit} now")


def _limit(threshold: Threshold, level: AlertLevel) -> float | None:
    """``threshold``'s limit of ``level`` (WARNING's for INFO, which has none)."""
    return threshold.crit if level is AlertLevel.CRITICAL else threshold.warn


def _rank(level: AlertLevel) -> int:
    return level.rank


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
    return min(banded, previous, key=_rank)


def _raw_level(value: float, t: Threshold, band_pct: float) -> AlertLevel:
    factor = 1 - band_pct / 100
    if t.crit is not None and value >= t.crit * factor:
        return AlertLevel.CRITICAL
    if t.warn is not None and value >= t.warn * factor:
        return AlertLevel.WARNING
    return OK


class LevelTracker:
    """Remembers each metric's level and reports only changes.

    The level shown (:meth:`level`, the pane's colour) follows every sample at once. An alert
    waits until the new level has held for ``sustain`` samples in a row (a metric's own
    :attr:`Threshold.sustain` first), and so does "back to normal", below the limit by the
    hysteresis band throughout: a machine whose CPU swings between 60 % and 95 % every other
    second (a shared VPS) would otherwise alert on every swing. A streak that rises (or falls)
    through several levels alerts the one it held throughout.

    Args:
        thresholds: The metrics watched.
        hysteresis_pct: See :func:`classify`.
        sustain: Samples in a row a level must hold before it is alerted (1: at once).
    """

    def __init__(self, thresholds: list[Threshold], hysteresis_pct: float, sustain: int = 1) -> None:
        self._thresholds = {t.metric: t for t in thresholds}
        self._levels: dict[str, AlertLevel] = {}
        """The level last alerted, per metric."""
        self._shown: dict[str, AlertLevel] = {}
        self._streaks: dict[str, tuple[bool, AlertLevel, int, float]] = {}
        """Per metric: rising?, the level held throughout, samples so far, the highest value among them."""
        self._hysteresis = hysteresis_pct
        self._sustain = max(sustain, 1)

    def update(self, metric: str, value: float | None, spans_sustain: bool = False) -> LevelChange | None:
        """Feed one sample; returns the change of level to alert, if any (``None`` values are skipped).

        ``spans_sustain``: the sample needs no sustain (a loop stall measured once it ends, as long as the
        sustain or at the critical limit: see ``HealthMonitor``), so a rise to its level is alerted at once.
        """
        threshold = self._thresholds.get(metric)
        if threshold is None or value is None:
            return None
        alerted = self._levels.get(metric, OK)
        # The level alerted holds its band as the level shown does: a fall is alerted once every sample of it was
        # under the band, not only the one that took the colour down (50, 78, 50 ... with the limit at 80 and the
        # band to 76 has not left the warning), and the pane shows the warning the alert said while it stands.
        level = classify(value, threshold, max(self._shown.get(metric, OK), alerted, key=_rank), self._hysteresis)
        self._shown[metric] = level
        if level is alerted:
            self._streaks.pop(metric, None)
            return None
        rising = level.rank > alerted.rank
        same_way, held, count, peak = self._streaks.get(metric, (rising, level, 0, value))
        if same_way is not rising:
            held, count, peak = level, 0, value
        held = min(held, level, key=_rank) if rising else max(held, level, key=_rank)
        peak = max(peak, value)
        sustain = max(threshold.sustain or self._sustain, 1)
        if spans_sustain and rising:
            held, count = level, sustain
        if count + 1 < sustain:
            self._streaks[metric] = (rising, held, count + 1, peak)
            return None
        self._streaks.pop(metric, None)
        self._levels[metric] = held
        return LevelChange(metric, alerted, held, value, _limit(threshold, held), threshold.unit,
                           peak if rising else None, min(count + 1, sustain),
                           None if rising else _limit(threshold, alerted))

    def level(self, metric: str) -> AlertLevel:
        """The level of ``metric``'s latest sample (INFO when normal), alerted yet or not."""
        return self._shown.get(metric, OK)

    def add(self, threshold: Threshold) -> None:
        """Watch one more metric (market-data age per symbol appears as symbols do)."""
        self._thresholds.setdefault(threshold.metric, threshold)
