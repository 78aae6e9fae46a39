"""Pilot tests of the console around the engine in a CHILD PROCESS (what ``tui-trader`` runs by default).

The simulator runs in the test process (the witness of the wire); the engine runs in a child
process behind :class:`~tui_trader.engine.process.proxy.EngineProxy`, connected to it over
loopback through ib_async. Waits are bounded polls, never sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.helpers import buy
from engine_process.helpers import engine_process
from textual.widgets import Static

from tui_trader.domain.enums import AlertLevel, OrderType, TradingState
from tui_trader.domain.events import KillSwitchEngaged
from tui_trader.engine.process.proxy import EngineProxy
from tui_trader.engine.process.wire import Call
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal
from tui_trader.ui.app import create_app
from tui_trader.ui.modals.approval import ApprovalModal
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.modals.quit import QuitModal
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.status_bar import KillBanner, StatusBar

from .piloted import PilotedConsole

WAIT_S = PilotedConsole.wait_s
"""Upper bound of the waits on the proxy's fallback, as of every poll."""


@dataclass
class ChildConsole(PilotedConsole):
    """The console, the proxy it holds, the simulator and the pilot."""

    proxy: EngineProxy = field(kw_only=True)

    async def rest_limit(self) -> str:
        """Submit (through the proxy) a buy limit 3% under the bid; wait until it works at the simulator."""
        price = round(self.proxy.snapshot().quotes["AAPL"].bid * 0.97, 2)
        order = await self.proxy.submit(buy(5, order_type=OrderType.LMT, limit_price=price, strategy="manual"))
        await self.until(lambda: order.order_ref in self.working_at_sim(), "the limit order working at the simulator")
        return order.order_ref

    def working_at_sim(self) -> list[str]:
        """The orderRefs the simulator has working."""
        return [o.order_ref for o in self.gw.orders() if o.working]


@asynccontextmanager
async def child_console(tmp_path: Path, **settings: Any) -> AsyncIterator[ChildConsole]:
    """Run the console around a child-process engine connected to a fresh simulator."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw, \
            engine_process(gw, tmp_path, **settings) as proxy:
        app = create_app(proxy, settings=proxy.settings)
        async with app.run_test(size=(160, 48)) as pilot:
            console = ChildConsole(app, gw, pilot, proxy=proxy)
            await console.until(lambda: {"AAPL", "MSFT"} <= set(console.rows("watchlist-table")),
                                "quotes from the child in the watchlist")
            yield console


async def test_child_engine_ctrl_k_with_working_order_then_halted_at_once_and_cancelled_at_sim(
        tmp_path: Path) -> None:
    async with child_console(tmp_path) as c:
        ref = await c.rest_limit()

        await c.pilot.press("ctrl+k")

        bar = c.app.main.query_one(StatusBar)
        assert bar.trading_state is TradingState.HALTED  # drawn from the proxy, before the child answers
        await c.until(lambda: ref not in c.working_at_sim(), "the cancel at the simulator")
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "cancelled 1 " in str(banner.render()), "the banner's cancelled count (from the child)")
        assert bar.has_class("-halted")


async def test_child_engine_modify_until_the_broker_echoes_it_then_the_pane_shows_it_modifying_then_confirmed(
        tmp_path: Path) -> None:
    # The modification pending crosses from the engine process in its snapshots.
    async with child_console(tmp_path) as c:
        ref = await c.rest_limit()
        c.gw.control.delay_messages("open_order", 1.0)  # the echo comes when the simulated clock moves on

        await c.proxy.modify(ref, quantity=8)

        def drawn() -> tuple[str, str]:
            """The order's quantity and status as the pane draws them."""
            cells = c.rows("orders-table").get(ref, ("",) * 8)
            return cells[4], cells[7]

        await c.until(lambda: [o.total_qty for o in c.gw.orders() if o.order_ref == ref] == [8], "8 at the simulator")
        await c.until(lambda: drawn() == ("5→8", "MODIFYING"), "the modify pending")
        c.gw.control.step(1.0)
        await c.until(lambda: drawn() == ("8", "SUBMITTED"), "the modify confirmed")


async def test_child_engine_killed_when_console_runs_then_error_modal_latch_only_until_ctrl_k_cancels(
        tmp_path: Path) -> None:
    # Found by QA: "console worker 'bridge-events' crashed: EngineProcessDied: the engine process was killed by
    # signal 9" on the modal, the alert, the banner and in the journal; the banner's "STILL WORKING" for orders the
    # broker was not asked about (both stops had filled at the gateway); the quit dialog offering "Cancel them (c)",
    # which then said the orders were not cancelled.
    async with child_console(tmp_path) as c:
        ref = await c.rest_limit()

        os.kill(c.proxy.pid, signal.SIGKILL)

        await c.until(lambda: isinstance(c.app.screen, ErrorModal), "the error modal")
        modal = c.app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.error_title == "Engine process stopped"
        said = ("the engine process died (killed by signal 9): latching the kill switch; orders at the broker are "
                "as they were — restart tui-trader to reconnect and check them (logs: ")
        assert modal.message.startswith(said)
        alerts = [a.text for a in c.app.main.query_one(AlertsPane).alerts if a.level is AlertLevel.CRITICAL]
        assert [t for t in alerts if t.startswith(said)]
        assert not [t for t in alerts if "EngineProcessDied" in t or "crashed" in t]
        assert c.proxy.fallback is not None  # the process's death latched the kill: out of band
        await asyncio.wait_for(c.proxy.fallback, WAIT_S)
        assert "latched" in c.proxy.fallback_outcome
        assert ref in c.working_at_sim()  # latched only: the broker keeps the orders (protective stops)
        reason = ("latched when the engine process died (killed by signal 9); orders at the broker were left as they "
                  "were")
        assert await latches(c.proxy.settings.journal_path) == [("console", reason)]  # once, in those words
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "working: " in str(banner.render()).lower(), "the order named on the banner")
        text = str(banner.render())
        assert text.startswith(f"KILL SWITCH ENGAGED — {reason} (by console) · cancelled 0 · remaining 1 · NOT "
                               f"VERIFIED: disconnected · last known working: {ref} ·")

        await c.pilot.press("escape")  # the error modal closed
        await c.pilot.press("q")
        await c.until(lambda: isinstance(c.app.screen, QuitModal), "the quit dialog")
        dialog = c.app.screen
        assert isinstance(dialog, QuitModal)
        assert not dialog.query("#cancel")  # the engine that would cancel them is gone
        assert "cannot be cancelled from here" in str(dialog.query_one("#quit-working", Static).render())
        await c.pilot.press("c")
        assert c.app.screen is dialog
        await c.pilot.press("escape")

        await c.pilot.press("ctrl+k")  # the operator's kill cancels, out of band
        assert c.proxy.fallback is not None
        await asyncio.wait_for(c.proxy.fallback, WAIT_S)
        assert ref not in c.working_at_sim()
        await c.until(lambda: "cancelled 1 · remaining 0 · verified ·" in str(banner.render()),
                      "the banner says what the operator's out-of-band kill did, as the broker verified it")
        await c.until(lambda: c.app.main.query_one(StatusBar).verdict in ("DISCONNECTED", "STALLED"),
                      "the status bar says the data is not live")
        assert c.app.main.query_one(StatusBar).trading_state is TradingState.HALTED


async def test_child_engine_hung_when_operator_presses_ctrl_k_then_cancelled_out_of_band_and_banner_says_so(
        tmp_path: Path) -> None:
    async with child_console(tmp_path) as c:
        ref = await c.rest_limit()
        os.kill(c.proxy.pid, signal.SIGSTOP)  # alive, never reads the kill

        await c.pilot.press("ctrl+k")

        await c.until(lambda: isinstance(c.app.screen, ErrorModal), "the engine process declared hung")
        modal = c.app.screen
        assert isinstance(modal, ErrorModal)
        assert "did not take the kill switch" in modal.message
        assert c.proxy.fallback is not None
        await asyncio.wait_for(c.proxy.fallback, WAIT_S)
        assert ref not in c.working_at_sim()  # the operator's Ctrl+K cancelled, out of band
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "cancelled 1 · remaining 0 · verified ·" in str(banner.render()),
                      "the banner says what the out-of-band kill did, as the broker verified it")
        assert "STILL WORKING" not in str(banner.render())
        assert "NOT VERIFIED" not in str(banner.render())


async def test_child_engine_dies_while_a_submit_awaits_its_answer_then_the_alert_names_it_and_says_unknown(
        tmp_path: Path) -> None:
    async with child_console(tmp_path) as c:
        os.kill(c.proxy.pid, signal.SIGSTOP)  # it reads nothing more: the submit waits for its answer
        c.app.main._submit_ticket(buy(5, strategy="manual"))  # what the order ticket's OK does
        await c.until(lambda: c.proxy._pending, "the submit sent to the engine process")

        os.kill(c.proxy.pid, signal.SIGKILL)

        await c.until(lambda: isinstance(c.app.screen, ErrorModal), "the crash handling, as for any death")
        unknown = ("submit AAPL: the engine process died before answering; whether it was carried out is unknown"
                   " — check the orders at the broker")
        await c.until(lambda: unknown in [a.text for a in c.app.main.query_one(AlertsPane).alerts],
                      "the alert naming the command whose outcome is unknown")
        assert len([s for s in c.app.screen_stack if isinstance(s, ErrorModal)]) == 1  # one death, one modal


async def test_child_engine_dies_after_an_approval_was_sent_then_the_alert_says_its_outcome_is_unknown(
        tmp_path: Path) -> None:
    # The approval may have sent the order: "engine process stopped" alone read as if nothing had happened.
    async with child_console(tmp_path, confirm=True) as c:
        order = await c.proxy.submit(buy(3, strategy="manual"))
        await c.until(lambda: isinstance(c.app.screen, ApprovalModal), "the approval modal")
        os.kill(c.proxy.pid, signal.SIGSTOP)  # it reads nothing more: the approval waits for its answer
        sent, send = threading.Event(), c.proxy._send

        def witnessed(message: Any) -> None:
            send(message)
            if isinstance(message, Call) and message.name == "approve":
                sent.set()

        c.proxy._send = witnessed  # type: ignore[method-assign]

        def kill_once_sent() -> None:
            if sent.wait(WAIT_S):
                os.kill(c.proxy.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_sent)
        killer.start()
        c.app.main._answer(order.order_ref, True)  # the operator's y: a synchronous call, answered by the death
        killer.join()

        assert sent.is_set()
        alerts = [a for a in c.app.main.query_one(AlertsPane).alerts if a.text.startswith("engine.approve was sent")]
        assert [a.level for a in alerts] == [AlertLevel.CRITICAL]
        assert "whether it was carried out is unknown" in alerts[0].text
        assert alerts[0].text.endswith("— check the orders at the broker")


async def test_child_engine_resolved_the_approval_before_the_operator_rejects_then_said_and_console_stays(
        tmp_path: Path) -> None:
    async with child_console(tmp_path, confirm=True) as c:
        order = await c.proxy.submit(buy(3, strategy="manual"))
        await c.until(lambda: isinstance(c.app.screen, ApprovalModal), "the approval modal")
        modal = c.app.screen
        assert isinstance(modal, ApprovalModal)
        await c.proxy.cancel(order.order_ref)  # the engine rejects it, as an expiry or the kill switch would

        modal.action_reject()  # the operator's n, before the next pull closes the modal (no refresh in between)
        await c.pilot.pause()

        assert c.app.return_code is None  # the console is still up (the engine's KeyError used to close it)
        texts = [a.text for a in c.app.main.query_one(AlertsPane).alerts]
        assert f"reject of {order.order_ref} not taken: the order no longer waited for approval (now REJECTED)" \
            in texts
        assert order.order_ref not in c.gw.order_refs()


async def test_child_engine_quit_when_no_working_orders_then_child_stops_and_exits(tmp_path: Path) -> None:
    async with child_console(tmp_path) as c:
        await c.pilot.press("q")

        await c.until(lambda: c.app.return_code == 0, "the console exits")
        assert c.proxy.process.poll() == 0


async def latches(journal_path: Path) -> list[tuple[str, str]]:
    """Who latched the kill switch in the journal, and why, in order."""
    journal = await Journal.open(journal_path)
    try:
        return [(e.by, e.reason) for e in await journal.events(["KillSwitchEngaged"])
                if isinstance(e, KillSwitchEngaged)]
    finally:
        await journal.close()


def test_cli_early_spawn_opens_the_subscription_the_bridge_asks_for() -> None:
    # ``tui-trader`` opens the console's subscription when it spawns the engine (before Textual is
    # imported); the bridge must ask for the same one, or the events of the engine's start are lost.
    from tui_trader.cli import CONSOLE_EVENTS
    from tui_trader.ui.bridge import CONSOLE_QUEUE

    assert CONSOLE_EVENTS == ("console", CONSOLE_QUEUE, False)
