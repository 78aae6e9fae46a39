"""An automatic trip that halts trading, on the operator's phone: the kill switch's critical alert is the trip's only
alert, and it reaches a channel that listens to the kill switch, to the trigger's kind (``risk``; ``system`` for a
journal failure) or to both, once. The engine on the simulator with its real journal, and the notifier on its bus
sending to Telegram and a webhook on loopback.

A channel configured with ``kinds = ["risk"]`` heard nothing of a daily-loss halt: the trip had become the kill
switch's alert alone, of the ``kill_switch`` kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from engine.helpers import (
    allow_journal_writes,
    buy,
    journal_fails,
    limits_for_tests,
    make_config,
    refuse_journal_writes,
    running,
    status,
)
from pydantic import SecretStr

from tui_trader.config.notifications import NotificationKind, NotificationSettings, TelegramSettings, WebhookSettings
from tui_trader.domain import OrderStatus
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.ops.notify import Notifier
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import ManualClock, SimGateway

from .conftest import eventually
from .servers import HttpServer
from .test_notify import NOW, TOKEN
from .test_notify_recovery import alert, channel, offered


def _notifier(http: HttpServer, telegram: list[NotificationKind], webhook: list[NotificationKind]) -> Notifier:
    """Telegram listening to ``telegram``'s kinds, the webhook to ``webhook``'s, at their default levels."""
    return Notifier.from_settings(NotificationSettings(
        telegram=TelegramSettings(enabled=True, token=SecretStr(TOKEN), chat_id="42", base_url=http.url,
                                  kinds=telegram),
        webhook=WebhookSettings(enabled=True, url=SecretStr(http.url + "/hook"), kinds=webhook),
        batch_window_s=0.05))


def _lines(http: HttpServer, path: str) -> list[str]:
    """The notice lines the requests to ``path`` carried."""
    return [line for r in http.requests if r.path == path for line in r.json()["text"].splitlines()]


def _telegram(http: HttpServer) -> list[str]:
    return _lines(http, f"/bot{TOKEN}/sendMessage")


def _webhook(http: HttpServer) -> list[str]:
    return _lines(http, "/hook")


def _criticals(events: list[object]) -> list[Alert]:
    return [e.alert for e in events if isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL]


def _the_kill_switch_said_it_once(http: HttpServer, published: list[object], trip: str, why: str) -> None:
    """Each channel got the kill switch's critical alert of ``trip``, once, and it was the one critical alert."""
    for lines in (_telegram(http), _webhook(http)):
        (said,) = [line for line in lines if "[CRITICAL]" in line]
        assert f"kill switch engaged by risk:{trip} ({trip}): {why}" in said
    (kill,) = _criticals(published)
    assert (kill.source, kill.kind, kill.trip) == ("kill_switch", "kill", trip)


@asynccontextmanager
async def _notifying(sim: SimGateway, tmp_path: Path, notifier: Notifier, **limits: object,
                     ) -> AsyncIterator[tuple[Engine, list[object]]]:
    """A running engine whose events ``notifier`` routes; yields it and the events it published (filled in as the
    notifier stops, with what it delivered, on the way out)."""
    published: list[object] = []
    async with running(sim, make_config(tmp_path, limits=limits_for_tests(**limits))) as (engine, events):
        notifier.start(engine.subscribe("notifier", lossless=True))
        try:
            yield engine, published
        finally:
            await notifier.stop(grace_s=5.0)  # what the bus holds routed, and delivered
            published.extend(events.drain())


async def test_daily_loss_halt_then_a_risk_channel_hears_it_and_one_of_both_kinds_hears_it_once(
        http: HttpServer, tmp_path: Path) -> None:
    # Arrange: Telegram listens to risk only, the webhook to risk and the kill switch.
    notifier = _notifier(http, telegram=["risk"], webhook=["risk", "kill_switch"])
    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim,
                _notifying(sim, tmp_path, notifier, daily_loss_limit=3_000) as (engine, published)):
        sim.control.set_price("AAPL", 100.0)
        await eventually(lambda: (q := engine.market.quotes.get("AAPL")) is not None and q.mark == 100.0, what="100")
        entry = await engine.submit(buy(100))
        await eventually(lambda: status(engine, entry.order_ref) is OrderStatus.FILLED, what="entry filled")

        # Act: a loss of about 4,000 on a limit of 3,000.
        sim.control.set_price("AAPL", 60.0)
        await eventually(lambda: engine.risk.kill_state.engaged, what="daily loss tripped")
        assert engine.risk.kill_state.trigger is KillTrigger.DAILY_LOSS

    # Assert: each channel got the kill switch's critical alert, once; it was the one critical alert.
    _the_kill_switch_said_it_once(http, published, "daily_loss", "daily_loss limit reached")


async def test_journal_failure_halt_then_a_system_channel_hears_it_and_one_of_both_kinds_hears_it_once(
        http: HttpServer, tmp_path: Path) -> None:
    # Two critical messages went out for one failure: the journal's "journal write failed: disk full" (system) and the
    # kill switch's engagement by it (kill_switch); a channel of both kinds got both.
    notifier = _notifier(http, telegram=["system"], webhook=["system", "kill_switch"])
    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim,
                _notifying(sim, tmp_path, notifier) as (engine, published)):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        refuse_journal_writes(tmp_path / "journal.sqlite")
        try:
            # Act
            await journal_fails(engine)
            await eventually(lambda: engine.risk.kill_state.engaged, what="halted")
        finally:
            allow_journal_writes(tmp_path / "journal.sqlite")
        assert engine.risk.kill_state.trigger is KillTrigger.JOURNAL_FAILURE

    # Assert: each channel got the kill switch's critical alert, once; it was the one critical alert.
    _the_kill_switch_said_it_once(http, published, "journal_failure", "journal write failed: disk full")


def test_channel_told_a_risk_trip_then_takes_the_kill_switchs_release_though_it_listens_to_risk_only() -> None:
    # Told that trading halted, a risk channel would otherwise never hear that it resumed.
    tripped = "kill switch engaged by risk:drawdown (drawdown): …"
    trip = AlertRaised(NOW, Alert(AlertLevel.CRITICAL, "kill_switch", tripped, NOW, kind="kill", trip="drawdown"))
    released = alert(AlertLevel.WARNING, "kill_switch", "kill switch released by bob: checked", "kill_reset")
    manual = alert(AlertLevel.CRITICAL, "kill_switch", "kill switch engaged by bob (manual): …", "kill")

    assert offered(channel(kinds=frozenset({"risk"})), manual, released) == []
    assert offered(channel(kinds=frozenset({"risk"})), trip, released) == [
        f"kill_switch: {tripped}",
        "kill_switch: kill switch released by bob: checked"]
