"""The engine's own configuration value, derived from :class:`tui_trader.config.Settings`.

Tests build an :class:`EngineConfig` directly; the factory derives it from the settings so the
engine does not depend on every detail of the settings' shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_trader.config.sections import ScheduleSettings, SizingSettings, StrategySettings
from tui_trader.domain.enums import Mode
from tui_trader.risk.limits import RiskLimits

if TYPE_CHECKING:
    from tui_trader.config import Settings

@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything the engine needs to know, in one frozen value."""

    mode: Mode = Mode.SIM
    dry_run: bool = False
    approvals_required: bool = True
    approval_timeout_s: float = 30.0
    ack_timeout_s: float = 10.0
    cut_retry_delays_s: tuple[float, ...] = (0.5, 1.0, 2.0)
    """A protective order's cut to its position that the broker refused for its moment only (IB still
    processing the order, 2102) is sent again after each of these waits in turn, sized again from the
    position each time; refused once more after the last, it is said CRITICAL and left (the order works on
    larger than the position: cancelled, the position would have no stop at all)."""
    cut_recheck_s: float = 30.0
    """How often, while connected, a protective order whose cut gave up (and is still larger than its position)
    is cut again (its failure said once: a try that fails again at the same sizes says nothing more)."""
    expected_account: str = ""
    readonly: bool = False
    journal_path: Path | None = None
    journal_batch_size: int = 200
    journal_flush_interval_ms: float = 50.0
    market_data_type: int = 1
    delayed_fallback: bool = False
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 30.0
    market_data_stale_s: float = 15.0
    halt_on_position_mismatch: bool = True
    book_settle_s: float = 3.0
    """How long a difference between the book and the broker's positions (at the first reconciliation
    after a start, also cash) may take to go away, updates still on their way, before a reconciliation
    adopts it (at the start) or calls it a mismatch (while running)."""
    book_checkpoint_s: float = 30.0
    """How often, at most, the book is journaled while its equity, high-water mark or trading day
    moves (a crash then loses at most this much of the peak and the marks; not on every quote)."""
    trigger_file: Path | None = None
    kill_poll_s: float = 0.25
    strategies: tuple[StrategySettings, ...] = ()
    sizing: SizingSettings = field(default_factory=SizingSettings)
    symbols: tuple[str, ...] = ()
    limits: RiskLimits = field(default_factory=RiskLimits)
    warmup_bars: int = 120
    tick_interval_s: float = 0.25
    time_zone: str = "America/New_York"
    max_holding_s: float | None = None
    exchange_hours: bool = False
    """Whether the instruments' hours (the broker's contract details) say when their markets trade: the snapshot
    then carries each symbol's market phase, and a closed market's quotes are not late. :func:`config_from_settings`
    turns it on for a gateway, not for ``--sim``, whose embedded simulator trades around the clock whatever hours it
    reports (as :func:`limits_from_settings` turns the hours checks off); off, every market is taken as open."""

    @property
    def all_symbols(self) -> tuple[str, ...]:
        """Every symbol any enabled strategy trades, plus the extra symbols, in order."""
        seen: dict[str, None] = dict.fromkeys(self.symbols)
        for spec in self.strategies:
            if spec.enabled:
                seen.update(dict.fromkeys(s.upper() for s in spec.symbols))
        return tuple(seen)

    def with_(self, **changes: Any) -> EngineConfig:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


def limits_from_settings(settings: Settings) -> RiskLimits:
    """RiskLimits from the ``[risk]`` and ``[kill_switch]`` sections."""
    overrides: dict[str, Any] = {}
    if settings.mode is Mode.SIM:
        # The simulator trades around the clock; wall-clock exchange hours would silence --sim
        # on evenings and weekends, which is not what a first run should look like.
        overrides.update(require_liquid_hours=False, no_entry_before_close_min=None,
                         no_entry_after_open_min=None)
    return RiskLimits.from_config(settings.risk.model_dump(), settings.kill_switch.model_dump(), **overrides)


def schedule_from_settings(settings: Settings) -> ScheduleSettings:
    """The ``[schedule]`` section as the engine follows it.

    In ``--sim`` the embedded simulator trades around the clock and never restarts, so the
    windows that wait on IB's clock (the gateway's nightly restart, REDUCING or flattening before
    the exchange close) are off, as the hours checks are in :func:`limits_from_settings`: on the
    wall clock they would silence --sim every evening. The daily summary at the close stays.
    """
    if settings.mode is not Mode.SIM:
        return settings.schedule
    return settings.schedule.model_copy(update={"gateway_restart": None, "reduce_before_close_min": None,
                                                "flatten_before_close_min": None})


def config_from_settings(settings: Settings) -> EngineConfig:
    """The engine configuration for ``settings``."""
    broker, kill = settings.broker, settings.kill_switch
    return EngineConfig(
        mode=settings.mode, dry_run=settings.dry_run, approvals_required=settings.approvals_required,
        approval_timeout_s=settings.approvals.timeout_s, ack_timeout_s=broker.ack_timeout_s,
        book_settle_s=broker.book_settle_s,
        expected_account=broker.account, readonly=broker.readonly, journal_path=settings.journal_path,
        journal_batch_size=settings.journal.batch_size,
        journal_flush_interval_ms=settings.journal.flush_interval_ms,
        market_data_type=broker.market_data_type, delayed_fallback=broker.delayed_fallback,
        reconnect_initial_s=broker.reconnect_initial_s, reconnect_max_s=broker.reconnect_max_s,
        market_data_stale_s=settings.health.market_data_stale_s,
        halt_on_position_mismatch=kill.halt_on_position_mismatch, trigger_file=kill.trigger_file,
        kill_poll_s=kill.kill_poll_s,
        strategies=tuple(settings.strategies), sizing=settings.sizing,
        limits=limits_from_settings(settings), max_holding_s=settings.risk.max_holding_s,
        exchange_hours=settings.mode is not Mode.SIM,
    )
