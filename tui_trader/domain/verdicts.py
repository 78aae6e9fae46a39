"""Pre-trade verdicts: what the risk gate decided and why, check by check."""

from __future__ import annotations

import math
from dataclasses import dataclass

ATTACHED_UNITS = ("%", "s", "x", "x equity")
"""Units written right after the number (``25.77%``, ``0.26s``, ``1.5x equity``); others after a space."""


def figure(value: float | None, unit: str = "") -> str:
    """A check's figure as the operator reads it, in a denial message and in the check tables alike:
    ``$2,500.00``, ``25.77%``, ``1,200 qty``, ``0.00496x equity``, ``∞s`` (no quote), ``—`` (unknown).

    Two decimals at 1 and above, three significant digits below (an order of 0.5% of equity is
    not ``0.00x``).
    """
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}∞{unit if unit in ('%', 's') else ''}"
    if unit == "$":
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    number = f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.3g}"
    if unit in ATTACHED_UNITS:
        return f"{number}{unit}"
    if number == "1" and len(unit) > 1 and unit.endswith("s"):
        unit = unit[:-1]  # "1 position", "1 trade"
    return f"{number} {unit}".rstrip()


@dataclass(frozen=True)
class CheckResult:
    """One pre-trade check: its value against its limit.

    ``headroom`` is how much more of the measured quantity the limit allows (``limit - value``
    for an upper bound); it is negative when the check failed. ``value`` and ``limit`` are
    ``None`` for checks without a number (an allow-list, say).

    The gate builds some twenty of these per order before it goes on the wire, so ``__init__``
    is written out: it fills the instance's ``__dict__`` (0.3 µs) where the generated one of a
    frozen dataclass calls ``object.__setattr__`` once per field (0.75 µs, and a slotted class
    cannot fill its slots without a call per field either). The rest is the frozen dataclass's
    own: assigning or deleting a field raises ``FrozenInstanceError``, and equality, hashing,
    ``repr``, ``dataclasses.replace``, pickling and the journal's JSON are unchanged.
    """

    name: str
    passed: bool
    value: float | None = None
    limit: float | None = None
    headroom: float | None = None
    message: str = ""
    unit: str = ""

    def __init__(self, name: str, passed: bool, value: float | None = None, limit: float | None = None,
                 headroom: float | None = None, message: str = "", unit: str = "") -> None:
        # The parameters and their defaults are the fields' (a test holds them equal).
        fields = self.__dict__
        fields["name"] = name
        fields["passed"] = passed
        fields["value"] = value
        fields["limit"] = limit
        fields["headroom"] = headroom
        fields["message"] = message
        fields["unit"] = unit


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


def check_line(check: CheckResult) -> str:
    """One check in a line of text (an order's trace): ``order_notional: pass value $4,964.75 / limit
    $50,000.00, headroom $45,035.25``."""
    verdict = "pass" if check.passed else "FAIL"
    numbers = (f" value {figure(check.value, check.unit)} / limit {figure(check.limit, check.unit)}"
               if check.value is not None and check.limit is not None else "")
    headroom = f", headroom {figure(check.headroom, check.unit)}" if check.headroom is not None else ""
    return f"{check.name}: {verdict}{numbers}{headroom}" + (f" ({check.message})" if check.message else "")
