"""Risk limits: every number the pre-trade gate, the post-trade monitors and the kill switch obey.

Every limit is off when it is ``None``. Percentages named ``*_pct`` are in percent (``5.0`` is
5 %); fields named ``*_fraction`` or ``max_gross_exposure`` are plain fractions (``0.25`` is 25 %).
The config layer builds ``RiskLimits(**fields)``; strings are accepted for the enum fields and
lists for the tuple fields, and are normalised in ``__post_init__``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from tui_trader.domain import OrderType


class TriggerAction(StrEnum):
    """What an automatic trigger does when it fires."""

    ALERT = "ALERT"
    REDUCING = "REDUCING"
    HALTED = "HALTED"
    HALT_AND_FLATTEN = "HALT_AND_FLATTEN"

    @property
    def rank(self) -> int:
        """Severity order: ALERT < REDUCING < HALTED < HALT_AND_FLATTEN."""
        return list(TriggerAction).index(self)


class CancelScope(StrEnum):
    """Which working orders the kill switch cancels."""

    OWN = "own"
    GLOBAL = "global"


class CollarReference(StrEnum):
    """Reference price of the price collar."""

    MID = "mid"
    FAR = "far"


_ENUM_FIELDS: dict[str, type[StrEnum]] = {"collar_reference": CollarReference, "kill_cancel_scope": CancelScope}
_WARNINGS = (0.5, 0.8)
_MONITOR_WARNINGS = ("daily_loss_warnings", "drawdown_warnings", "losing_streak_warnings",
                     "holding_time_warnings", "trade_count_warnings")  # fmt: skip


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Every configurable limit; ``None`` switches a check off."""

    # --- order size -------------------------------------------------------------------------
    max_order_quantity: float | None = None
    """Largest quantity of a single order (shares/contracts)."""
    max_order_notional: float | None = None
    """Largest value of a single order (quantity x price, account currency)."""
    # --- position and book ------------------------------------------------------------------
    max_position_notional: float | None = None
    """Largest absolute value held in one symbol, counting working and in-flight orders."""
    max_position_quantity: float | None = None
    """Largest absolute quantity held in one symbol, counting working and in-flight orders."""
    max_open_positions: int | None = None
    """Most symbols with a position or a working entry order at once."""
    max_gross_exposure: float | None = None
    """Largest gross exposure (sum of absolute values, worst case of working orders) as a fraction of equity."""
    max_leverage: float | None = None
    """Hard cap on leverage: worst-case gross exposure over equity, as a multiple (2.0 = 2x)."""
    min_cash_fraction: float | None = None
    """Fraction of equity that must stay in cash after every working buy order fills."""
    # --- prices and market data -------------------------------------------------------------
    price_collar_pct: float | None = None
    """Deny a limit/stop price farther than this percent from the collar reference."""
    price_collar_ticks: float | None = None
    """Deny a limit/stop price farther than this many ticks from the collar reference."""
    collar_reference: CollarReference = CollarReference.MID
    """Collar reference: "mid" of the quote or the "far" side (ask for buys, bid for sells)."""
    max_spread_pct: float | None = None
    """Deny a market order when the quote's spread exceeds this percent of the mid."""
    max_quote_age_s: float | None = None
    """Deny an order when the symbol's quote is older than this many seconds."""
    require_quote: bool = True
    """Deny an order when the symbol has no usable quote (missing, one-sided without last, or crossed)."""
    # --- message and trade rates ------------------------------------------------------------
    max_orders_per_second: float | None = None
    """Token bucket: submits, modifies and cancels per second (IB disconnects above 50 msg/s)."""
    max_orders_per_minute: float | None = None
    """Token bucket: submits, modifies and cancels per minute."""
    max_daily_trades: int | None = None
    """Most executions per trading day for the account, working orders counted as one each."""
    max_daily_trades_per_strategy: int | None = None
    """Most executions per trading day for one strategy, working orders counted as one each."""
    duplicate_window_s: float | None = None
    """Deny an order identical (symbol, side, quantity, price) to one sent within this many seconds."""
    # --- what and when ----------------------------------------------------------------------
    allowed_symbols: tuple[str, ...] | None = None
    """Symbols that may be traded; None allows all."""
    allowed_order_types: tuple[OrderType, ...] | None = None
    """Order types that may be sent; None allows all."""
    no_entry_before_close_min: float | None = None
    """No new entries in the last this many minutes of the session."""
    no_entry_after_open_min: float | None = None
    """No new entries in the first this many minutes of the session."""
    require_liquid_hours: bool = False
    """Deny orders outside the instrument's liquid hours (trading hours when the ticket is outside_rth)."""
    trading_day_time_zone: str = "America/New_York"
    """Time zone whose calendar date defines the trading day (daily counters, same-day resets)."""
    # --- post-trade monitors ----------------------------------------------------------------
    warning_thresholds: tuple[float, ...] = _WARNINGS
    """Fractions of a post-trade limit at which a warning alert is raised, once per day each."""
    daily_loss_limit: float | None = None
    """Largest loss of the day (realized plus unrealized), in account currency."""
    daily_loss_limit_pct: float | None = None
    """Largest loss of the day in percent of start-of-day equity."""
    daily_loss_action: TriggerAction = TriggerAction.HALTED
    """What the daily loss limit does when hit."""
    daily_loss_warnings: tuple[float, ...] | None = None
    """Fractions of the daily loss limit at which a warning alert is raised; None uses warning_thresholds."""
    max_drawdown: float | None = None
    """Largest drop of equity from its high-water mark, in account currency (the mark is all-time; the
    operator's release of a drawdown trip restarts it at the equity then)."""
    max_drawdown_pct: float | None = None
    """Largest drop of equity from its high-water mark, in percent of the mark."""
    drawdown_action: TriggerAction = TriggerAction.HALTED
    """What the drawdown limit does when hit."""
    drawdown_warnings: tuple[float, ...] | None = None
    """Fractions of the drawdown limit at which a warning alert is raised; None uses warning_thresholds."""
    max_losing_streak: int | None = None
    """Number of consecutive losing trades that trips the loss-streak monitor."""
    losing_streak_action: TriggerAction = TriggerAction.ALERT
    """What the loss-streak monitor does when hit (the cooldown applies regardless)."""
    losing_streak_warnings: tuple[float, ...] | None = None
    """Fractions of the losing streak at which a warning alert is raised; None uses warning_thresholds."""
    cooldown_s: float | None = None
    """After the losing streak is hit, no new entries for this many seconds after the last loss."""
    max_holding_s: float | None = None
    """Longest time a position may stay open, in seconds."""
    holding_time_action: TriggerAction = TriggerAction.ALERT
    """What the holding-time monitor does when a position is held too long."""
    holding_time_warnings: tuple[float, ...] | None = None
    """Fractions of the holding time at which a warning alert is raised; None uses warning_thresholds."""
    trade_count_action: TriggerAction = TriggerAction.HALTED
    """What reaching max_daily_trades does (RTS 6: disable until a person re-enables)."""
    trade_count_warnings: tuple[float, ...] | None = None
    """Fractions of max_daily_trades at which a warning alert is raised; None uses warning_thresholds."""
    # --- kill switch and automatic triggers -------------------------------------------------
    kill_cancel_scope: CancelScope = CancelScope.OWN
    """Kill switch cancels this client's orders ("own") or every order on the account ("global")."""
    unknown_order_timeout_s: float | None = 30.0
    """An order in UNKNOWN state longer than this many seconds fires the unknown-order trigger."""
    unknown_order_action: TriggerAction = TriggerAction.HALTED
    """What the unknown-order trigger does."""
    disconnect_halt_after_s: float | None = 300.0
    """A broker disconnection longer than this many seconds fires the disconnect trigger."""
    disconnect_action: TriggerAction = TriggerAction.HALTED
    """What the disconnect trigger does."""
    journal_failure_action: TriggerAction = TriggerAction.HALTED
    """What a failed journal write does (DESIGN: a failed write halts trading)."""
    position_mismatch_action: TriggerAction = TriggerAction.HALTED
    """What a position mismatch with the broker does."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            normalised = _normalise(f.name, value)
            if normalised is not value:
                object.__setattr__(self, f.name, normalised)
            _validate(f.name, normalised)
        for name in _MONITOR_WARNINGS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.warning_thresholds)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Every field name, in declaration order (what the config layer may pass)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(
        cls, risk: Mapping[str, Any], kill_switch: Mapping[str, Any] | None = None, **overrides: Any
    ) -> RiskLimits:
        """Build the limits from the config's ``[risk]`` and ``[kill_switch]`` sections (as dicts).

        ``[risk]`` keys are field names. ``[kill_switch]`` keys are mapped: ``scope``,
        ``disconnect_after_s``, ``on_disconnect`` ("none" | "reducing" | "halted"),
        ``unknown_order_timeout_s``, ``halt_on_position_mismatch``. Its other keys belong to
        the engine and operations (``trigger_file``, the out-of-band kill's client id) and are
        left to them; the config layer has already refused misspelt keys.
        """
        names = set(cls.field_names())
        unknown = sorted(set(risk) - names)
        if unknown:
            raise ValueError(f"unknown risk limit(s): {', '.join(unknown)}")
        values = {**dict(risk), **_kill_switch_fields(kill_switch or {}), **overrides}
        return cls(**values)


_KILL_SWITCH_KEYS = {"scope": "kill_cancel_scope", "disconnect_after_s": "disconnect_halt_after_s",
                     "unknown_order_timeout_s": "unknown_order_timeout_s"}  # fmt: skip


def _kill_switch_fields(section: Mapping[str, Any]) -> dict[str, Any]:
    """Map the config's ``[kill_switch]`` section onto RiskLimits fields."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key in _KILL_SWITCH_KEYS:
            out[_KILL_SWITCH_KEYS[key]] = value
        elif key == "on_disconnect":
            out["disconnect_action"] = TriggerAction.ALERT if value == "none" else value
        elif key == "halt_on_position_mismatch":
            out["position_mismatch_action"] = TriggerAction.HALTED if value else TriggerAction.ALERT
    return out


def _normalise(name: str, value: Any) -> Any:
    """Coerce config values (strings, lists) into the field's type."""
    if name in _ENUM_FIELDS:
        return _ENUM_FIELDS[name](str(value).lower())
    if name.endswith("_action"):
        return value if isinstance(value, TriggerAction) else TriggerAction(str(value).upper())
    if name == "allowed_order_types" and value is not None:
        return tuple(v if isinstance(v, OrderType) else OrderType(str(v).upper()) for v in value)
    if name == "allowed_symbols" and value is not None:
        return tuple(str(v).upper() for v in value)
    if (name.endswith("_warnings") and value is not None) or name == "warning_thresholds":
        return tuple(sorted(float(v) for v in value))
    return value


def _validate(name: str, value: Any) -> None:
    """Refuse negative, NaN or out-of-range limits: a typo must not switch a check off silently."""
    if name.endswith("_warnings") or name == "warning_thresholds":
        if value is not None and any(not 0 < v < 1 for v in value):
            raise ValueError(f"{name}: warning thresholds must lie strictly between 0 and 1")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name}: must be a non-negative number, got {value}")
    if name == "min_cash_fraction" and value > 1:
        raise ValueError(f"{name}: must be a fraction between 0 and 1, got {value}")
