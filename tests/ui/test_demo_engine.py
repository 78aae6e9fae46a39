"""The scripted engine behind the demo console and the UI tests answers the whole EngineHandle."""

from __future__ import annotations

import pytest

from tui_trader.ui.demo import normal_state
from tui_trader.ui.scripted_engine import ScriptedEngine


def working(engine: ScriptedEngine, ref: str):
    return next(o for o in engine.state.orders if o.order_ref == ref)


async def test_modify_when_preview_passes_then_working_order_takes_new_figures() -> None:
    engine = ScriptedEngine(normal_state())
    verdict = await engine.modify("tt-100", quantity=40, limit_price=209.5)
    assert verdict.passed
    order = working(engine, "tt-100")
    assert (order.ticket.quantity, order.ticket.limit_price) == (40, 209.5)


async def test_modify_when_preview_denies_then_order_unchanged_and_reason_given() -> None:
    engine = ScriptedEngine(normal_state())
    verdict = await engine.modify("tt-100", quantity=900)  # 900 × 209.85 is past the 50,000 notional
    assert not verdict.passed
    assert verdict.reason
    assert working(engine, "tt-100").ticket.quantity == 50


async def test_modify_when_order_not_working_then_denied() -> None:
    engine = ScriptedEngine(normal_state())
    verdict = await engine.modify("tt-101", quantity=10)  # FILLED
    assert not verdict.passed
    assert "tt-101" in verdict.reason


async def test_resubmit_when_ref_unknown_then_error_names_it() -> None:
    engine = ScriptedEngine(normal_state())
    with pytest.raises(ValueError, match="tt-999"):
        await engine.resubmit("tt-999")
