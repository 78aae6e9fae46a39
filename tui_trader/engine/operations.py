"""Operations services run beside the engine: the health monitor and the notifier.

The factory attaches them for real runs; engine tests that do not need them leave them out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tui_trader.domain.alerts import Alert
from tui_trader.engine.engine import Engine
from tui_trader.ops.health import HealthMonitor
from tui_trader.ops.notify.notifier import Notifier

if TYPE_CHECKING:
    from tui_trader.config import Settings

NOTIFIER_QUEUE = 1_000


def attach_health(engine: Engine, settings: Settings) -> HealthMonitor:
    """Sample CPU, memory, the journal's disk, loop lag, journal queue, broker round trip, data age."""

    def raise_alert(alert: Alert) -> None:
        engine.alert(alert.level, alert.source, alert.text, kind=alert.kind)

    monitor = HealthMonitor(
        settings.health, settings.journal_path, raise_alert,
        journal_queue=lambda: engine.journal.backlog if engine.journal is not None else 0,
        round_trip=_round_trip(engine),
        quote_times=lambda: {symbol: quote.time for symbol, quote in engine.market.quotes.items()},
    )
    def start() -> None:
        engine.spawn(monitor.run(), "health-monitor")

    engine.health_source = lambda: monitor.info
    engine.add_service(start)
    return monitor


def _round_trip(engine: Engine) -> Callable[[], Awaitable[object]]:
    async def probe() -> object:
        if not engine.broker.is_connected:
            raise ConnectionError("not connected")
        return await engine.broker.current_time()

    return probe


def attach_notifier(engine: Engine, settings: Settings) -> Notifier:
    """Route engine events to the configured channels (a lossy subscription: never blocks the engine)."""
    notifier = Notifier.from_settings(settings.notifications)
    engine.add_service(
        lambda: notifier.start(engine.subscribe("notifier", maxsize=NOTIFIER_QUEUE)),
        lambda: notifier.stop(grace_s=2.0),
    )
    return notifier


def attach_operations(engine: Engine, settings: Settings) -> Engine:
    """Both services; returns ``engine`` for chaining in the factory."""
    attach_health(engine, settings)
    attach_notifier(engine, settings)
    return engine
