"""RiskLimits: normalisation of config values, validation, and the config mapping."""

from __future__ import annotations

import pytest

from tui_trader.domain import OrderType
from tui_trader.risk import CancelScope, CollarReference, RiskLimits, TriggerAction


def test_limits_when_built_from_config_strings_then_normalised() -> None:
    limits = RiskLimits(collar_reference="far", daily_loss_action="halt_and_flatten",
                        allowed_order_types=["lmt", "STP LMT"], allowed_symbols=["aapl"],
                        kill_cancel_scope="GLOBAL", warning_thresholds=[0.8, 0.5])  # fmt: skip

    assert limits.collar_reference is CollarReference.FAR
    assert limits.daily_loss_action is TriggerAction.HALT_AND_FLATTEN
    assert limits.allowed_order_types == (OrderType.LMT, OrderType.STP_LMT)
    assert limits.allowed_symbols == ("AAPL",)
    assert limits.kill_cancel_scope is CancelScope.GLOBAL
    assert limits.warning_thresholds == (0.5, 0.8)


def test_limits_when_monitor_warnings_unset_then_shared_thresholds_apply() -> None:
    limits = RiskLimits(warning_thresholds=(0.7,), drawdown_warnings=(0.9,))

    assert limits.daily_loss_warnings == (0.7,)
    assert limits.drawdown_warnings == (0.9,)


@pytest.mark.parametrize(
    "bad",
    [{"max_order_quantity": -1}, {"price_collar_pct": float("nan")}, {"min_cash_fraction": 1.5},
     {"warning_thresholds": (0.5, 1.0)}, {"daily_loss_action": "explode"}],
    ids=["negative", "nan", "fraction", "threshold", "action"],
)  # fmt: skip
def test_limits_when_value_invalid_then_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=r".+"):
        RiskLimits(**bad)


def test_limits_when_from_config_sections_then_kill_switch_keys_mapped() -> None:
    risk = {"max_order_quantity": 1000, "daily_loss_action": "halted", "warning_thresholds": (0.5, 0.8)}
    kill = {"scope": "global", "on_disconnect": "reducing", "disconnect_after_s": 30.0,
            "unknown_order_timeout_s": 20.0, "halt_on_position_mismatch": False, "trigger_file": None}  # fmt: skip

    limits = RiskLimits.from_config(risk, kill)

    assert limits.max_order_quantity == 1000
    assert limits.kill_cancel_scope is CancelScope.GLOBAL
    assert limits.disconnect_action is TriggerAction.REDUCING
    assert limits.disconnect_halt_after_s == 30.0
    assert limits.unknown_order_timeout_s == 20.0
    assert limits.position_mismatch_action is TriggerAction.ALERT


def test_limits_when_from_config_with_unknown_key_then_refused() -> None:
    with pytest.raises(ValueError, match="max_ordr_quantity"):
        RiskLimits.from_config({"max_ordr_quantity": 5})


def test_limits_field_names_are_snake_case_and_complete() -> None:
    names = RiskLimits.field_names()

    assert all(n == n.lower() for n in names)
    assert {"max_order_quantity", "kill_cancel_scope", "max_holding_s"} <= set(names)
