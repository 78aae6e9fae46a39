"""What the console needs from the settings, as one frozen value with safe defaults.

The console reads settings only here, so tests can build an app without a settings file and
the panes never reach into pydantic models while they render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tui_trader.domain.enums import Mode

if TYPE_CHECKING:
    from tui_trader.config import Settings

Clock = Callable[[], datetime]
"""A source of timezone-aware "now"; tests pass a frozen one."""


def system_clock() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A warning and a critical level for one health figure (``None``: that level is off)."""

    warn: float | None
    crit: float | None

    def level(self, value: float | None) -> str:
        """``""``, ``"warn"`` or ``"crit"`` for ``value`` against the bare limits (no hysteresis)."""
        if value is None:
            return ""
        if self.crit is not None and value >= self.crit:
            return "crit"
        return "warn" if self.warn is not None and value >= self.warn else ""

    @classmethod
    def optional(cls, warn: float | None, crit: float | None) -> Thresholds | None:
        """Both limits, or ``None`` when neither is set (the figure is shown without limits)."""
        return None if warn is None and crit is None else cls(warn, crit)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits the P&L pane draws headroom gauges against (``None``: no limit)."""

    daily_loss: float | None = None
    daily_loss_pct: float | None = 2.0
    max_daily_trades: int | None = 100
    max_gross_exposure: float | None = 1.0
    max_drawdown: float | None = None
    max_drawdown_pct: float | None = 5.0


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    """Console settings with defaults matching the documented configuration defaults."""

    mode: Mode = Mode.SIM
    dry_run: bool = False
    refresh_hz: float = 4.0
    theme: str = "textual-dark"
    heartbeat_stale_s: float = 3.0
    market_data_stale_s: float = 15.0
    approval_timeout_s: float = 30.0
    approve_delay_s: float = 0.5
    """The approval modal's Approve works only this long after the modal is drawn (see :class:`ApprovalModal`)."""
    expected_account: str = ""
    cpu: Thresholds = field(default_factory=lambda: Thresholds(80, 95))
    mem: Thresholds = field(default_factory=lambda: Thresholds(80, 95))
    process_rss_mb: Thresholds | None = None
    """The process's memory limits (off unless configured)."""
    disk: Thresholds = field(default_factory=lambda: Thresholds(85, 95))
    loop_lag_ms: Thresholds = field(default_factory=lambda: Thresholds(100, 500))
    journal_queue: Thresholds = field(default_factory=lambda: Thresholds(1_000, 10_000))
    limits: RiskLimits = field(default_factory=RiskLimits)

    @property
    def refresh_interval(self) -> float:
        """Seconds between snapshot pulls, with the rate clamped to 4–10 Hz."""
        return 1.0 / min(max(self.refresh_hz, 4.0), 10.0)

    @classmethod
    def from_settings(cls, settings: Settings | None) -> ConsoleOptions:
        """Read the console's options from ``settings`` (defaults when ``None``)."""
        if settings is None:
            return cls()
        health, risk = settings.health, settings.risk
        return cls(
            mode=settings.mode,
            dry_run=settings.dry_run,
            refresh_hz=settings.ui.refresh_hz,
            theme=settings.ui.theme,
            heartbeat_stale_s=health.heartbeat_stale_s,
            market_data_stale_s=health.market_data_stale_s,
            approval_timeout_s=settings.approvals.timeout_s,
            approve_delay_s=settings.approvals.approve_delay_s,
            expected_account=settings.broker.account,
            cpu=Thresholds(health.cpu_warn_pct, health.cpu_crit_pct),
            mem=Thresholds(health.mem_warn_pct, health.mem_crit_pct),
            process_rss_mb=Thresholds.optional(health.process_rss_warn_mb, health.process_rss_crit_mb),
            disk=Thresholds(health.disk_warn_pct, health.disk_crit_pct),
            loop_lag_ms=Thresholds(health.loop_lag_warn_ms, health.loop_lag_crit_ms),
            journal_queue=Thresholds(health.journal_queue_warn, health.journal_queue_crit),
            limits=_limits(risk),
        )


def _limits(risk: Any) -> RiskLimits:
    return RiskLimits(
        daily_loss=risk.daily_loss_limit,
        daily_loss_pct=risk.daily_loss_limit_pct,
        max_daily_trades=risk.max_daily_trades,
        max_gross_exposure=risk.max_gross_exposure,
        max_drawdown=risk.max_drawdown,
        max_drawdown_pct=risk.max_drawdown_pct,
    )
