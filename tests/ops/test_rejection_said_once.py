"""A broker's rejection of an order is one record, said once: the engine on the simulator, its real journal, and a
webhook on loopback fed by the notifier on the engine's bus.

The rejection came as two updates of the order to REJECTED (the move without the broker's error, then the error as
an update from nowhere): ``report --section rejections`` counted it twice under two reasons, the webhook got two
notices (the first with no word of why), and the alerts pane said nothing (only the orders pane's row did).
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from tui_trader.config.notifications import NotificationSettings, WebhookSettings
from tui_trader.domain import AlertLevel, OrderStatus
from tui_trader.domain import events as ev
from tui_trader.ops.notify import Notifier
from tui_trader.ops.reports import Period, build_report
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

from .conftest import eventually
from .engines import make_engine, sell
from .servers import HttpServer

MARGIN = "Order rejected - reason:Insufficient margin"


async def test_order_the_broker_rejects_then_one_update_one_alert_one_notice_and_one_rejection_in_the_report(
        http: HttpServer, tmp_path: Path) -> None:
    # Arrange: a webhook that hears every rejection and warning; the broker's next order rejected (201).
    notifier = Notifier.from_settings(NotificationSettings(
        webhook=WebhookSettings(enabled=True, url=SecretStr(http.url + "/hook"), levels=["WARNING", "ERROR"],
                                kinds=["rejections"]), batch_window_s=0.05))
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, tmp_path)
        events = engine.subscribe("test", lossless=True)
        notifier.start(engine.subscribe("notifier", lossless=True))
        await engine.start()
        try:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
            sim.control.reject_next(201, MARGIN)

            # Act
            order = await engine.submit(sell(10))
            ref = order.order_ref
            await eventually(lambda: engine.orders.orders[ref].status is OrderStatus.REJECTED, what="rejected")
            await notifier.stop(grace_s=5.0)  # what the bus holds routed, and delivered
        finally:
            await engine.stop()
    published = events.drain()

    # Assert: one move to REJECTED, carrying the broker's code and words; no second update of it.
    rejected = [e for e in published if isinstance(e, ev.OrderUpdated) and e.order.order_ref == ref
                and e.order.status is OrderStatus.REJECTED]
    assert [(e.previous, e.order.last_error) for e in rejected] == [(OrderStatus.SENDING, f"201: {MARGIN}")]
    # One alert in the alerts pane, as a trader reads it.
    said = [(e.alert.level, e.alert.text) for e in published
            if isinstance(e, ev.AlertRaised) and e.alert.kind == "order_rejected"]
    assert said == [(AlertLevel.WARNING, f"broker rejected SELL 10 AAPL ({ref}): 201 Insufficient margin")]
    # One notice, that alert.
    lines = [line for r in http.requests for line in r.json()["text"].splitlines()]
    assert [line.split("] ", 1)[1] for line in lines] == [
        f"orders: broker rejected SELL 10 AAPL ({ref}): 201 Insufficient margin"]
    # One rejection in the report, under the broker's code and words.
    day = rejected[0].time.astimezone(ZoneInfo("America/New_York")).date()
    journal = await Journal.open(tmp_path / "journal.sqlite")
    try:
        report = await build_report(journal, Period(day, day))
    finally:
        await journal.close()
    assert report["rejections"] == {f"201: {MARGIN}": 1}
