"""The headless runner and the factory: --headless --sim trades and writes a consistent summary."""

from __future__ import annotations

import json
from pathlib import Path

from tui_trader.config import Settings
from tui_trader.domain import Mode
from tui_trader.engine.runner import run_headless


def test_headless_sim_run_trades_and_summary_agrees_with_the_broker(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path,
                        sim={"port": 0, "seed": 7})
    out = tmp_path / "summary.json"
    assert run_headless(settings, 12.0, out) == 0
    summary = json.loads(out.read_text())
    for key in ("mode", "account", "trading_state", "kill_engaged", "orders", "fills", "positions",
                "realized_pnl", "unrealized_pnl", "commissions", "alerts", "reconnects"):
        assert key in summary
    assert summary["mode"] == "sim"
    assert summary["account"].startswith("DU")
    assert summary["fills"] > 0
    assert summary["positions"] == summary["broker_positions"]
    assert summary["commissions"] > 0
