"""Pre-trade verdicts: what the risk gate decided and why, check by check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One pre-trade check: its value against its limit.

    ``headroom`` is how much more of the measured quantity the limit allows (``limit - value``
    for an upper bound); it is negative when the check failed. ``value`` and ``limit`` are
    ``None`` for checks without a number (an allow-list, say).
    """

    name: str
    passed: bool
    value: float | None = None
    limit: float | None = None
    headroom: float | None = None
    message: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """The result of the pre-trade gate for one ticket."""

    passed: bool
    checks: tuple[CheckResult, ...] = ()

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks that denied the order."""
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reason(self) -> str:
        """One line naming every failed check, or '' when passed."""
        return "; ".join(f"{c.name}: {c.message}" if c.message else c.name for c in self.failures)

    def check(self, name: str) -> CheckResult | None:
        """The result of the check called ``name``, if it ran."""
        return next((c for c in self.checks if c.name == name), None)
