"""The engine under chaos, as a child process (so it can be SIGKILLed and restarted).

``python -m tests.chaos.engine_child CONFIG.json``: builds an :class:`Engine` with the real ib_async
adapter against the simulator on loopback, with strategies trading, and runs until SIGTERM. Every
100 ms it prints one JSON status line on stdout (trading state, kill switch, connection, orders in
flight). SIGUSR1 is the operator's explicit reset of the kill switch. On SIGTERM it writes a summary
JSON (the headless runner's summary plus cash and each order's status) and stops the engine cleanly
(exit code 0).

When the config names a ``webhook``, notifications go there (the harness's loopback server, which a
fault makes hang). When the config says ``"approve": "alternate"``, approvals are required and this process plays the
operator: it approves pending orders whose ref hashes even and rejects the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import SecretStr

from tui_trader.config.notifications import NotificationSettings, WebhookSettings
from tui_trader.config.sections import SizingSettings, StrategySettings
from tui_trader.domain import Mode, OrderStatus
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.engine.runner import summarize
from tui_trader.errors import TraderError
from tui_trader.risk.limits import RiskLimits

IN_FLIGHT = (OrderStatus.SENDING, OrderStatus.APPROVED, OrderStatus.PENDING_APPROVAL)


def engine_config(cfg: dict[str, Any]) -> EngineConfig:
    """Strategies on 5-second bars over five symbols; limits wide enough to keep trading under faults."""
    strategies = (
        StrategySettings(name="ema_cross", symbols=["AAPL", "SPY", "QQQ"], bar_size_s=5,
                         params={"fast": 3, "slow": 8}),
        StrategySettings(name="volume_breakout", symbols=["MSFT", "NVDA"], bar_size_s=5,
                         params={"lookback": 6, "volume_mult": 1.2}),
    )
    limits = RiskLimits(max_order_quantity=1000, max_order_notional=500_000, max_open_positions=20,
                        max_gross_exposure=3.0, max_leverage=3.0, require_quote=True, unknown_order_timeout_s=None,
                        disconnect_halt_after_s=None, require_liquid_hours=False)
    return EngineConfig(
        mode=Mode.SIM, approvals_required=cfg["approve"] != "none", approval_timeout_s=5.0,
        journal_path=Path(cfg["journal"]), strategies=strategies, limits=limits, warmup_bars=20,
        ack_timeout_s=3.0, reconnect_initial_s=0.1, reconnect_max_s=1.0, market_data_stale_s=3.0,
        tick_interval_s=0.1, trigger_file=Path(cfg["trigger_file"]), sizing=SizingSettings(method="fixed_quantity"),
    )


def status(engine: Engine) -> dict[str, Any]:
    """One status line."""
    orders = engine.orders.orders.values()
    return {"state": engine.trading_state.value, "kill": engine.risk.kill_state.engaged,
            "connected": engine.is_connected, "blocked": engine.entries_blocked_reason,
            "in_flight": sum(o.status in IN_FLIGHT for o in orders), "orders": len(engine.orders.orders),
            "commissioned": sum(f.commission is not None for f in engine.orders.fills.values())}


def summary(engine: Engine) -> dict[str, Any]:
    """The headless summary plus what the invariants need."""
    out = summarize(engine)
    out["cash"] = engine.portfolio.cash
    out["order_status"] = {ref: o.status.value for ref, o in engine.orders.orders.items()}
    out["blocks"] = {k: str(v) for k, v in engine.blocks.items()}
    return out


def reset(engine: Engine) -> None:
    """SIGUSR1: the operator's explicit, confirmed reset of the kill switch with a typed reason."""
    try:
        engine.reset_kill("chaos: explicit operator reset", by="chaos-operator", confirm_same_day=True)
    except TraderError as exc:
        sys.stderr.write(f"reset refused: {exc}\n")


async def operator(engine: Engine) -> None:
    """Approve orders whose ref hashes even, reject the others."""
    while True:
        for pending in engine.approvals.items():
            ref = pending.order.order_ref
            if hashlib.sha1(ref.encode()).digest()[0] % 2 == 0:
                engine.approve(ref, by="chaos-operator")
            else:
                engine.reject(ref, by="chaos-operator")
        await asyncio.sleep(0.02)


def attach_webhook(engine: Engine, url: str) -> None:
    """Notifications to a webhook on loopback (the harness can make it hang), wired as the factory does."""
    from tui_trader.engine.operations import attach_notifier

    notifications = NotificationSettings(
        webhook=WebhookSettings(enabled=True, url=SecretStr(url), levels=["INFO", "WARNING", "ERROR", "CRITICAL"]),
        batch_window_s=0.5, timeout_s=30.0, retries=2, retry_initial_s=0.5)
    attach_notifier(engine, SimpleNamespace(notifications=notifications))  # type: ignore[arg-type]


async def main(cfg: dict[str, Any]) -> None:
    """Run until SIGTERM, then write the summary and stop."""
    engine = Engine(engine_config(cfg), make_broker("127.0.0.1", cfg["port"], cfg["client_id"], timeout=3.0))
    if cfg.get("webhook"):
        attach_webhook(engine, cfg["webhook"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: reset(engine))
    await engine.start()
    helper = asyncio.create_task(operator(engine)) if cfg["approve"] == "alternate" else None
    while not stop.is_set():
        sys.stdout.write(json.dumps(status(engine)) + "\n")
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    if helper is not None:
        helper.cancel()
    engine.lapse_unsent("the run ended")  # as the headless runner does
    await engine.stop()
    # Made once stopped, as the headless runner makes its summary: a fill or a cancel that came while
    # the engine stopped is in it, as in the journal.
    result = summary(engine)
    await asyncio.to_thread(Path(cfg["summary"]).write_text, json.dumps(result, indent=2, default=str), "utf-8")


if __name__ == "__main__":
    config = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    logging.basicConfig(filename=config["log"], level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(config))
