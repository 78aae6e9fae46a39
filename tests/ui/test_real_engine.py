"""Pilot tests of the console around the REAL engine on an in-process simulator.

The scripted engine proves the console's wiring; these prove it against what the operator will
run: ``Engine`` → ib_async → ``SimGateway`` on an ephemeral port, a temp journal, and the
simulator's ledger as the witness of what reached the wire. Waits are bounded polls
(``eventually``), never sleeps; the root conftest fails a test on any ib_async decoder error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ib_async
from engine.helpers import limits_for_tests, make_config, make_engine, outside_client
from textual.widgets import Checkbox, Input, Label, Select, Static

from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.orders import Bracket, OrderTicket
from tui_trader.engine.engine import Engine
from tui_trader.risk.limits import CancelScope
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.account import MARGIN_RATE
from tui_trader.ui.app import create_app
from tui_trader.ui.modals.approval import ApprovalModal
from tui_trader.ui.modals.flatten import FlattenModal
from tui_trader.ui.modals.order_ticket import OrderTicketModal
from tui_trader.ui.modals.quit import QuitModal
from tui_trader.ui.modals.reset_kill import ResetKillModal
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.status_bar import KillBanner, StatusBar

from .piloted import PilotedConsole

SYMBOLS = ("AAPL", "MSFT")


@dataclass
class RealConsole(PilotedConsole):
    """The console, the engine behind it, the simulator and the pilot."""

    engine: Engine = field(kw_only=True)

    def resting_limit(self, symbol: str = "AAPL") -> OrderTicket:
        """A buy limit 3% under the bid: it rests at the simulator until cancelled."""
        price = round(self.engine.market.quotes[symbol].bid * 0.97, 2)
        return OrderTicket(symbol, Side.BUY, 5, OrderType.LMT, limit_price=price, strategy="manual")

    async def ticket(self) -> OrderTicketModal:
        """The order ticket, opened with ``n``."""
        await self.pilot.press("n")
        await self.pilot.pause()
        assert isinstance(self.app.screen, OrderTicketModal)
        return self.app.screen

    def working_at_sim(self, refs: list[str]) -> list[str]:
        """Which of ``refs`` the simulator still has working."""
        return [o.order_ref for o in self.gw.orders() if o.order_ref in refs and o.working]


@asynccontextmanager
async def real_console(tmp_path: Path, **config: Any) -> AsyncIterator[RealConsole]:
    """Run the console on a started engine connected to a fresh simulator."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, symbols=SYMBOLS, **config))
        app = create_app(engine)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                console = RealConsole(app, gw, pilot, engine=engine)
                await console.until(lambda: engine.started and set(SYMBOLS) <= set(engine.market.quotes),
                                    "engine started with quotes")
                # The order ticket knows the symbols the console's snapshot has quotes for: one opened before
                # the console has pulled a snapshot with them would subscribe them again before sending.
                await console.until(lambda: set(SYMBOLS) <= set(app.main.snapshot.quotes if app.main.snapshot else ()),
                                    "the console's snapshot with the quotes")
                yield console
        finally:
            await engine.stop()


async def test_real_engine_when_started_then_quotes_appear_in_the_watchlist(tmp_path: Path) -> None:
    async with real_console(tmp_path) as c:
        await c.until(lambda: set(SYMBOLS) <= set(c.rows("watchlist-table")), "quotes in the watchlist")
        last = c.engine.market.quotes["AAPL"].last
        c.gw.control.set_price("AAPL", round(last + 1.25, 2))
        await c.until(lambda: c.rows("watchlist-table")["AAPL"][1] == f"{last + 1.25:,.2f}",
                      "the new AAPL price on screen")
        assert c.app.main.query_one(StatusBar).trading_state is TradingState.ACTIVE


async def test_real_engine_order_ticket_when_approved_with_y_then_reaches_sim_and_fills(tmp_path: Path) -> None:
    async with real_console(tmp_path, approvals_required=True) as c:
        form = await c.ticket()
        form.query_one("#ticket-symbol", Input).value = "MSFT"
        form.query_one("#ticket-quantity", Input).value = "7"
        ask = c.engine.market.quotes["MSFT"].ask
        form.query_one("#ticket-limit", Input).value = f"{ask + 1:.2f}"  # marketable: fills at once
        await c.pilot.pause()
        await c.pilot.press("ctrl+s")
        await c.until(lambda: isinstance(c.app.screen, ApprovalModal), "the approval modal")
        assert not c.gw.order_refs(), "nothing may reach the wire before approval"
        modal = c.app.screen
        await c.until(lambda: modal.ready, "Approve to take y (its delay over)")
        await c.pilot.press("y")
        await c.until(lambda: len(c.gw.order_refs()) == 1, "the order at the simulator")
        (received,) = [r for r in c.gw.received_orders() if not r.what_if]
        assert (received.symbol, received.action, received.qty) == ("MSFT", "BUY", 7)
        await c.until(lambda: c.gw.positions().get("MSFT") == 7, "the fill at the simulator")
        await c.until(lambda: "MSFT" in c.rows("positions-table"), "the position on screen")
        assert c.rows("positions-table")["MSFT"][2] == "7"
        bar = c.app.main.query_one(StatusBar)
        await c.until(lambda: "last fill BUY 7 MSFT" in bar.fill_text, "the fill in the status bar")


async def test_real_engine_order_ticket_for_a_symbol_no_strategy_trades_then_quoted_watched_and_sent(
        tmp_path: Path) -> None:
    async with real_console(tmp_path) as c:
        form = await c.ticket()
        form.query_one("#ticket-quantity", Input).value = "3"
        form.query_one("#ticket-limit", Input).value = f"{c.gw.quote('NVDA').ask + 1:.2f}"  # marketable
        form.query_one("#ticket-symbol", Input).focus()
        await c.pilot.press(*"nvda", "tab")
        await c.until(lambda: "NVDA" in c.engine.market.quotes, "NVDA subscribed and quoted")
        await c.until(lambda: str(form.query_one("#ticket-error", Label).render()) == "", "the preview passing")
        await c.until(lambda: "NVDA" in c.rows("watchlist-table"), "NVDA in the watchlist")
        await c.pilot.press("ctrl+s")
        await c.until(lambda: c.gw.positions().get("NVDA") == 3, "the fill at the simulator")


async def test_real_engine_order_ticket_submitted_before_its_symbol_is_quoted_then_not_sent_and_said_when_quotes_are_in(
        tmp_path: Path) -> None:
    async with real_console(tmp_path, approvals_required=False) as c:
        form = await c.ticket()
        form.query_one("#ticket-symbol", Input).value = "NVDA"  # typed, not left: no subscription yet
        form.query_one("#ticket-quantity", Input).value = "3"
        form.query_one("#ticket-limit", Input).value = f"{c.gw.quote('NVDA').ask + 1:.2f}"  # marketable
        await c.pilot.press("ctrl+s")
        error = form.query_one("#ticket-error", Label)  # "Not sent: subscribing to NVDA's quotes; ...", then:
        await c.until(lambda: "NVDA's quotes are in" in str(error.render()), "the quotes said to be in")
        assert str(error.render()) == "NVDA's quotes are in. Not sent yet: submit again (ctrl+s) to send it."
        assert c.app.screen is form
        assert not c.gw.order_refs(), "nothing sent before the operator submits again"
        await c.pilot.press("ctrl+s")
        await c.until(lambda: c.gw.positions().get("NVDA") == 3, "the fill at the simulator")


async def test_real_engine_trailing_stops_then_the_stop_column_says_at_least_their_start(tmp_path: Path) -> None:
    # The broker moves a trailing stop in the position's favour without telling the client: the
    # column showed the start as if it were the stop in force.
    async with real_console(tmp_path) as c:
        long_stop = round(c.engine.market.quotes["AAPL"].ask * 0.99, 2)
        short_stop = round(c.engine.market.quotes["MSFT"].bid * 1.01, 2)
        for symbol, side, stop in (("AAPL", Side.BUY, long_stop), ("MSFT", Side.SELL, short_stop)):
            await c.engine.submit(OrderTicket(symbol, side, 5, OrderType.MKT, strategy="manual",
                                              bracket=Bracket(stop_price=stop, trail_percent=1.0)))
        await c.until(lambda: {s: r[9] for s, r in c.rows("positions-table").items() if s in SYMBOLS}
                      == {"AAPL": f"≥{long_stop:,.2f}", "MSFT": f"≤{short_stop:,.2f}"}, "both trailing stops on screen")
        trails = {o.order_ref: o for o in c.engine.orders.working()}
        assert {o.order_type for o in c.gw.orders() if o.working} == {"TRAIL"}
        assert len(trails) == 2
        shown = {o.ticket.symbol: f"{'≥' if o.ticket.side is Side.SELL else '≤'}{o.ticket.stop_price:,.2f}"
                 for o in trails.values()}
        assert shown == {"AAPL": f"≥{long_stop:,.2f}", "MSFT": f"≤{short_stop:,.2f}"}
        await c.until(lambda: {k: r[6] for k, r in c.rows("orders-table").items() if k in trails}
                      == {ref: shown[o.ticket.symbol] for ref, o in trails.items()}, "both in the orders pane")


async def test_real_engine_ctrl_k_with_working_order_then_halted_and_cancelled_at_sim(tmp_path: Path) -> None:
    async with real_console(tmp_path) as c:
        order = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([order.order_ref]), "the limit order working at the simulator")
        await c.pilot.press("ctrl+k")
        bar = c.app.main.query_one(StatusBar)
        assert c.engine.trading_state is TradingState.HALTED
        await c.until(lambda: not c.working_at_sim([order.order_ref]), "the cancel at the simulator")
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "cancelled 1 " in str(banner.render()), "the banner's cancelled count")
        assert bar.trading_state is TradingState.HALTED
        assert bar.has_class("-halted")
        assert banner.display
        assert c.engine.orders.orders[order.order_ref].status is OrderStatus.CANCELLED


async def test_real_engine_cancel_or_modify_of_an_order_the_engine_let_go_then_an_alert_not_a_crash(
        tmp_path: Path) -> None:
    # The engine's KeyError for a ref it no longer held was no TraderError: the console took it for a crashed
    # worker, engaged the kill switch and showed the crash modal.
    async with real_console(tmp_path) as c:
        def said(ref: str) -> bool:
            return any(f"No such order: no order {ref}" in a.text for a in c.app.main.query_one(AlertsPane).alerts)

        c.app.main.action_cancel_order("gone-1")
        await c.until(lambda: said("gone-1"), "the cancel's alert")
        c.app.main.command("modify gone-2", lambda: c.engine.modify("gone-2", quantity=3))
        await c.until(lambda: said("gone-2"), "the modify's alert")
        assert c.engine.trading_state is TradingState.ACTIVE
        assert not c.engine.risk.kill_state.engaged


async def test_real_engine_kill_when_the_brokers_answer_is_held_then_verifying_until_it_comes(
        tmp_path: Path) -> None:
    # The banner said "verified" as soon as the engine's own orders showed cancelled, before the broker
    # had answered what still works (a leftover would have shown one round trip later).
    async with real_console(tmp_path) as c:
        order = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([order.order_ref]), "the limit order working at the simulator")
        c.gw.control.delay_messages("open_orders_end", 1.0)  # held until the simulated clock moves
        await c.pilot.press("ctrl+k")
        banner = c.app.main.query_one(KillBanner)
        await c.until(lambda: "cancelled 1 · remaining 0" in str(banner.render()), "the cancel on the banner")
        assert "remaining 0 · verifying… ·" in str(banner.render())
        c.gw.control.step(1.0)
        await c.until(lambda: "remaining 0 · verified ·" in str(banner.render()), "the broker's answer")

        await c.pilot.press("ctrl+k")  # again, while engaged: cancels sent again, no new engagement announced
        assert "remaining 0 · verifying… ·" in str(banner.render())
        c.gw.control.step(1.0)
        await c.until(lambda: "remaining 0 · verified ·" in str(banner.render()), "the second check's answer")


async def test_real_engine_cancel_all_when_the_broker_does_not_answer_then_not_verified_is_said(
        tmp_path: Path) -> None:
    # "cancel all: cancelled 1, remaining 0" read as done while the broker had not said what still works.
    async with real_console(tmp_path) as c:
        order = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([order.order_ref]), "the limit order working at the simulator")
        c.gw.control.drop_messages("open_orders_end")  # the check's open-orders request goes unanswered
        await c.pilot.press("X")
        pane = c.app.main.query_one(AlertsPane)
        await c.until(lambda: any("cancel all:" in a.text for a in pane.alerts), "the cancel-all line")
        (line,) = [a for a in pane.alerts if "cancel all:" in a.text]
        assert line.level is AlertLevel.WARNING
        assert line.text == ("cancel all: cancelled 1, remaining 0, NOT VERIFIED: the broker could not be asked "
                             "what still works")


async def test_real_engine_trailing_bracket_when_approval_asked_then_the_plan_says_trailing(tmp_path: Path) -> None:
    async with real_console(tmp_path, approvals_required=True) as c:
        stop = round(c.engine.market.quotes["AAPL"].ask * 0.99, 2)
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 5, OrderType.MKT, strategy="manual",
                                          bracket=Bracket(stop_price=stop, trail_percent=1.0)))
        await c.until(lambda: isinstance(c.app.screen, ApprovalModal), "the approval modal")
        plan = str(c.app.screen.query_one("#approval-plan", Static).render())
        assert f"bracket: trailing stop 1% behind the price, starting at {stop:,.2f}" in plan
        assert "(GTC: kept overnight)" in plan  # the stop and target stay at the broker past the close


async def test_real_engine_order_ticket_what_if_then_margin_and_commission_from_the_broker_and_nothing_placed(
        tmp_path: Path) -> None:
    async with real_console(tmp_path) as c:
        form = await c.ticket()
        form.query_one("#ticket-symbol", Input).value = "AAPL"
        form.query_one("#ticket-quantity", Input).value = "5"
        form.query_one("#ticket-type", Select).value = "MKT"
        await c.pilot.pause()
        ask = c.gw.quote("AAPL").ask
        await c.pilot.press("ctrl+t")
        line = form.query_one("#ticket-what-if", Label)
        await c.until(lambda: "margin" in str(line.render()), "the broker's what-if")
        assert f"margin +{MARGIN_RATE * 5 * ask:,.2f}" in str(line.render())
        commission = c.gw.engine.commissions.order_total(5, 5 * ask, False)
        assert f"commission {commission:,.2f}" in str(line.render())
        assert [r.what_if for r in c.gw.received_orders()] == [True]  # asked, never placed
        assert not c.gw.order_refs()


async def test_real_engine_approval_when_the_broker_answers_its_what_if_then_the_modal_shows_margin_and_commission(
        tmp_path: Path) -> None:
    async with real_console(tmp_path, approvals_required=True, approval_timeout_s=60.0) as c:
        ask = c.gw.quote("AAPL").ask
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 5, OrderType.MKT, strategy="manual"))
        await c.until(lambda: isinstance(c.app.screen, ApprovalModal), "the approval modal")

        def shown(part: str) -> str:
            return str(c.app.screen.query_one(part, Static).render())

        margin = MARGIN_RATE * 5 * ask
        await c.until(lambda: f"what-if margin +{margin:,.2f}" in shown("#approval-drift"), "the what-if's margin")
        commission = c.gw.engine.commissions.order_total(5, 5 * ask, False)
        assert f"commission ≈ {commission:,.2f}" in shown("#approval-plan")
        assert not c.gw.order_refs(), "a what-if is not an order"


async def test_real_engine_approval_when_the_price_moves_while_it_waits_then_the_modal_shows_drift_and_checks_as_of_now(
        tmp_path: Path) -> None:
    # The drift line read "+0.00% (198.38 → 198.38)" however far the price went, and the checks were
    # the ones from when the order was queued.
    async with real_console(tmp_path, approvals_required=True, approval_timeout_s=60.0) as c:
        # A strategy's order: a ticket has no signal to drift from (its modal says the price now instead).
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 5, OrderType.MKT, strategy="ema_cross"))
        await c.until(lambda: isinstance(c.app.screen, ApprovalModal), "the approval modal")
        c.gw.control.set_price("AAPL", 210.00)  # bid 209.99, ask 210.01

        def notional_row() -> str:
            rows = {row.key: row.cells for row in c.app.screen.query_one("#approval-checks", LineTable).rows}
            return rows["order_notional"][1]

        drift = c.app.screen.query_one("#approval-drift", Static)
        await c.until(lambda: "→ 210.00)" in str(drift.render()), "the drift to the price now")
        await c.until(lambda: notional_row() == "$1,050.05", "the notional at the ask now (5 x 210.01)")
        assert not c.gw.order_refs()


async def test_real_engine_ib_servers_unreachable_2110_then_connectivity_degraded_and_warned_until_1102(
        tmp_path: Path) -> None:
    # 2110 (the gateway's link to IB's servers broken) was an INFO line; the connectivity pane went on
    # saying CONNECTED while nothing sent could reach the exchange.
    async with real_console(tmp_path) as c:
        alerts = c.app.main.query_one(AlertsPane)
        c.gw.control.server_link_broken()
        await c.until(lambda: c.rows("connectivity-table")["state"][1] == "DEGRADED", "the link DEGRADED")
        table = c.app.main.query_one("#connectivity-table", LineTable)
        (ib_row,) = [row for row in table.rows if row.key == "ib"]
        assert ib_row.cells == ("IB servers", "UNREACHABLE (2110)")
        assert ib_row.cell_role(1) == "warn"
        await c.until(lambda: any(a.kind == "ib_link_broken" for a in alerts.alerts), "the 2110 alert")
        assert [a.level for a in alerts.alerts if a.kind == "ib_link_broken"] == [AlertLevel.WARNING]

        c.gw.control.connectivity_restored()  # 1102
        await c.until(lambda: c.rows("connectivity-table")["state"][1] == "CONNECTED", "the link CONNECTED")
        assert "ib" not in c.rows("connectivity-table")
        await c.until(lambda: any(a.kind == "ib_link_restored" for a in alerts.alerts), "the restore said")
        assert [a.level for a in alerts.alerts if a.kind == "ib_link_restored"] == [AlertLevel.INFO]


async def test_real_engine_kill_then_reset_then_one_alert_line_each(tmp_path: Path) -> None:
    # Seen in a --sim run: one Ctrl+K put two CRITICAL lines in the alerts pane (the engine's, and one
    # the console made of the same event), and a reset two more.
    async with real_console(tmp_path) as c:
        pane = c.app.main.query_one(AlertsPane)

        def kill_lines() -> list[tuple[AlertLevel, str, str]]:
            return [(a.level, a.source, a.text.split(":")[0]) for a in pane.alerts if "kill switch" in a.text]

        await c.pilot.press("ctrl+k")
        await c.until(lambda: "verified" in str(c.app.main.query_one(KillBanner).render()), "the kill verified")
        assert kill_lines() == [(AlertLevel.CRITICAL, "kill_switch", "kill switch engaged by operator (manual)")]

        await c.pilot.press("ctrl+r")
        await c.until(lambda: isinstance(c.app.screen, ResetKillModal), "the reset modal")
        await c.pilot.press(*"feed checked")
        c.app.screen.query_one(Checkbox).value = True  # the same day's reset is confirmed
        await c.pilot.click("#reset")
        await c.until(lambda: c.engine.trading_state is TradingState.ACTIVE and len(kill_lines()) > 1, "the reset")
        assert kill_lines()[1:] == [(AlertLevel.WARNING, "kill_switch", "kill switch released by operator")]


async def test_real_engine_kill_when_the_broker_keeps_another_clients_order_then_the_banner_says_still_working(
        tmp_path: Path) -> None:
    # The banner counted only the orders the engine tracks: "remaining 0 · verified" while the broker
    # still held an order the global cancel did not reach.
    async with (real_console(tmp_path, limits=limits_for_tests(kill_cancel_scope=CancelScope.GLOBAL)) as c,
                outside_client(c.gw) as (outsider, aapl)):
        trade = outsider.placeOrder(aapl, ib_async.LimitOrder("BUY", 3, round(c.gw.quote("AAPL").bid * 0.97, 2)))
        await c.until(lambda: any(o.working and o.client_id == 99 for o in c.gw.orders()), "the outside order")
        c.gw.control.ignore_global_cancel()
        await c.pilot.press("ctrl+k")
        banner = c.app.main.query_one(KillBanner)
        ref = f"broker#{trade.order.orderId}"
        await c.until(lambda: f"STILL WORKING: {ref}" in str(banner.render()), "the leftover on the banner")
        assert "remaining 1 " in str(banner.render())


async def test_real_engine_quit_with_working_orders_when_cancel_chosen_then_cancelled_at_sim(
        tmp_path: Path) -> None:
    async with real_console(tmp_path) as c:
        refs = [(await c.engine.submit(c.resting_limit(s))).order_ref for s in SYMBOLS]
        await c.until(lambda: len(c.working_at_sim(refs)) == 2, "two orders working at the simulator")
        await c.until(lambda: c.app.main.snapshot is not None
                      and sum(o.status.is_working for o in c.app.main.snapshot.orders) == 2,
                      "the console sees both working orders")
        await c.pilot.press("q")
        await c.until(lambda: isinstance(c.app.screen, QuitModal), "the quit question")
        await c.pilot.press("c")
        await c.until(lambda: c.app.return_code == 0, "the console exits")
        assert not c.working_at_sim(refs)


async def test_real_engine_quit_after_the_kill_cancelled_a_positions_stop_then_asks_naming_the_position(
        tmp_path: Path) -> None:
    async with real_console(tmp_path) as c:
        ask = c.engine.market.quotes["AAPL"].ask
        ticket = OrderTicket("AAPL", Side.BUY, 4, OrderType.MKT, bracket=Bracket(stop_price=round(ask * 0.95, 2)),
                             strategy="manual")
        await c.engine.submit(ticket)

        def stop_shown() -> float | None:
            snap = c.app.main.snapshot
            pos = snap.account.positions.get("AAPL") if snap is not None else None
            return pos.stop_price if pos is not None and pos.quantity == 4 else -1.0

        await c.until(lambda: (stop_shown() or 0) > 0, "the protected position on screen")
        await c.pilot.press("q")  # its stop works at the broker: only that order is asked about
        await c.until(lambda: isinstance(c.app.screen, QuitModal), "the quit question")
        assert not c.app.screen.query("#quit-unprotected")
        # Cancelling the working orders would cancel that stop: said (it read "their brackets protect open positions").
        working = str(c.app.screen.query_one("#quit-working", Static).render())
        assert "Cancelling them cancels the stops of AAPL LONG 4 too: those stay open without one." in working
        await c.pilot.press("escape")
        await c.pilot.press("ctrl+k")  # cancels the stop: the position is left bare
        await c.until(lambda: stop_shown() is None, "the position shown without its stop")
        await c.pilot.press("q")
        await c.until(lambda: isinstance(c.app.screen, QuitModal), "the quit question")
        text = str(c.app.screen.query_one("#quit-unprotected", Static).render())
        assert "No protective stop works at the broker for: AAPL LONG 4." in text
        assert c.gw.positions()["AAPL"] == 4
        await c.pilot.press("l")
        await c.until(lambda: c.app.return_code == 0, "the console exits")


async def test_real_engine_trace_key_on_filled_order_then_timeline_from_the_journal_and_export(
        tmp_path: Path) -> None:
    from tui_trader.ui.modals.export_trace import ExportTraceModal
    from tui_trader.ui.screens.trace import TraceScreen

    async with real_console(tmp_path) as c:  # no approval needed: the --no-confirm path
        ask = c.engine.market.quotes["AAPL"].ask
        ticket = OrderTicket("AAPL", Side.BUY, 4, OrderType.LMT, limit_price=round(ask + 1, 2), strategy="manual")
        order = await c.engine.submit(ticket)
        await c.until(lambda: c.engine.orders.orders[order.order_ref].status is OrderStatus.FILLED, "the fill")
        await c.until(lambda: order.order_ref in c.rows("orders-table"), "the order on screen")
        c.app.main.action_trace_order(order.order_ref)
        await c.until(lambda: isinstance(c.app.screen, TraceScreen) and c.app.screen.trace is not None,
                      "the trace on screen")
        screen = c.app.screen
        assert isinstance(screen, TraceScreen)
        steps = [row.cells[1] for row in screen.query_one("#trace-table", LineTable).rows]
        assert {"sizing", "risk check", "status", "fill", "position"} <= set(steps)
        assert steps.index("risk check") < steps.index("fill") < steps.index("position")
        await c.pilot.press("e")
        await c.until(lambda: isinstance(c.app.screen, ExportTraceModal), "the export question")
        await c.pilot.press("f3", "enter")
        await c.until(lambda: screen.exported is not None, "the trace written")
        assert screen.exported is not None
        assert screen.exported.parent == (tmp_path / "journal.sqlite").parent.resolve()
        assert screen.exported.suffix == ".csv"


async def test_real_engine_modify_key_on_a_working_limit_then_re_placed_at_the_sim_with_the_new_figures(
        tmp_path: Path) -> None:
    # The console could only cancel a working order: moving a limit (or a stop) meant cancel and retype.
    from tui_trader.ui.modals.modify_order import ModifyOrderModal

    async with real_console(tmp_path) as c:
        order = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([order.order_ref]), "the limit working at the simulator")
        await c.until(lambda: c.rows("orders-table").get(order.order_ref, ())[7:8] == ("SUBMITTED",),
                      "the order working on screen")
        await c.pilot.press("3", "e")
        await c.until(lambda: isinstance(c.app.screen, ModifyOrderModal), "the modify form")
        form = c.app.screen
        assert form.order.order_ref == order.order_ref
        new_limit = round((order.ticket.limit_price or 0) - 0.5, 2)
        form.query_one("#modify-quantity", Input).value = "8"
        form.query_one("#modify-limit", Input).value = f"{new_limit}"
        await c.pilot.pause()
        assert str(form.query_one("#modify-change", Label).render()) == (
            f"quantity 5 → 8 · limit {order.ticket.limit_price:,.2f} → {new_limit:,.2f}")
        await c.pilot.press("ctrl+s")
        await c.until(lambda: [(o.total_qty, o.lmt_price) for o in c.gw.orders() if o.order_ref == order.order_ref]
                      == [(8, new_limit)], "the new figures at the simulator")
        assert [o.order_ref for o in c.gw.orders()].count(order.order_ref) == 1  # re-placed under its id, not anew
        await c.until(lambda: any(f"modify {order.order_ref}: quantity 5 → 8" in a.text
                                  for a in c.app.main.query_one(AlertsPane).alerts), "said in the alerts")


async def test_real_engine_modify_until_the_broker_echoes_it_then_the_orders_pane_shows_what_it_holds_as_modifying(
        tmp_path: Path) -> None:
    # The pane drew a modify's new figures the moment it was sent, as if the broker held them already.
    async with real_console(tmp_path) as c:
        order = await c.engine.submit(c.resting_limit())
        ref, limit = order.order_ref, order.ticket.limit_price or 0
        await c.until(lambda: c.rows("orders-table").get(ref, ())[7:8] == ("SUBMITTED",), "the order working")
        new_limit = round(limit - 0.5, 2)
        c.gw.control.delay_messages("open_order", 1.0)  # the echo comes when the simulated clock moves on

        await c.engine.modify(ref, quantity=8, limit_price=new_limit)

        await c.until(lambda: [(o.total_qty, o.lmt_price) for o in c.gw.orders() if o.order_ref == ref]
                      == [(8, new_limit)], "the new figures at the simulator")
        await c.until(lambda: c.rows("orders-table")[ref][7] == "MODIFYING", "the modify pending")
        assert c.rows("orders-table")[ref][4:7] == ("5→8", "LMT", f"{limit:,.2f}→{new_limit:,.2f}")
        c.gw.control.step(1.0)
        await c.until(lambda: c.rows("orders-table")[ref][7] == "SUBMITTED", "the modify confirmed")
        assert c.rows("orders-table")[ref][4:7] == ("8", "LMT", f"{new_limit:,.2f}")


async def test_real_engine_modify_racing_a_fill_refused_with_104_then_the_orders_pane_shows_it_filled_as_it_was(
        tmp_path: Path) -> None:
    # IB's 104 ("can't modify a filled order") came before the fill: the adapter took it for a cancel's race, the
    # engine said the order "works on", reconciled before the fill came and said the fill again as recovered.
    async with real_console(tmp_path) as c:
        order = await c.engine.submit(c.resting_limit())
        ref, limit = order.order_ref, order.ticket.limit_price or 0
        await c.until(lambda: c.rows("orders-table").get(ref, ())[7:8] == ("SUBMITTED",), "the order working")
        for kind in ("execution", "order_status", "commission", "position", "portfolio", "account_value"):
            c.gw.control.delay_messages(kind, 2.0)  # the fill is heard after the refusal
        c.gw.control.delay_messages("error", 1.0)
        c.gw.control.set_quote("AAPL", round(limit - 0.02, 2), limit, 500, 500)
        await c.until(lambda: [o.status for o in c.gw.orders() if o.order_ref == ref] == ["Filled"], "filled")
        said_before = len(c.app.main.query_one(AlertsPane).alerts)

        await c.engine.modify(ref, quantity=8)

        await c.until(lambda: c.rows("orders-table")[ref][4:5] == ("5→8",), "the modify pending")
        c.gw.control.step(1.0)
        await c.until(lambda: c.rows("orders-table")[ref][4] == "5", "the refusal: back to what the broker held")
        c.gw.control.step(1.0)
        await c.until(lambda: c.rows("orders-table")[ref][7] == "FILLED", "the fill")
        assert c.rows("orders-table")[ref][4:7] == ("5", "LMT", f"{limit:,.2f}")
        said = [(a.kind, a.text) for a in c.app.main.query_one(AlertsPane).alerts][said_before:]
        assert [kind for kind, _ in said] == ["modify_refused"]  # once: no reconciliation racing the fill
        assert said[0][1].endswith(f"(104: Can't modify a filled order); it filled at 5 lmt {limit:g} first")


async def test_real_engine_modify_of_a_short_held_for_a_locate_then_the_orders_pane_still_says_locating(
        tmp_path: Path) -> None:
    # The modify's own step hid the broker's hold: the row read MODIFYING, and the echo said the hold again.
    async with real_console(tmp_path) as c:
        c.gw.control.locate_shorts()
        limit = round(c.engine.market.quotes["AAPL"].ask + 1, 2)
        order = await c.engine.submit(OrderTicket("AAPL", Side.SELL, 5, OrderType.LMT, limit_price=limit))
        ref = order.order_ref
        await c.until(lambda: c.engine.orders.orders[ref].broker_hold, "the short held")
        c.gw.control.delay_messages("open_order", 1.0)  # the echo comes when the simulated clock moves on

        await c.engine.modify(ref, quantity=8)

        await c.until(lambda: c.rows("orders-table").get(ref, ())[4:5] == ("5→8",), "the modify pending")
        assert c.rows("orders-table")[ref][7] == "LOCATING"
        c.gw.control.step(1.0)
        await c.until(lambda: c.rows("orders-table")[ref][4] == "8", "the modify confirmed")
        assert c.rows("orders-table")[ref][7] == "LOCATING"
        assert [a.kind for a in c.app.main.query_one(AlertsPane).alerts].count("order_held") == 1


async def test_real_engine_modify_denied_by_risk_then_said_and_the_order_unchanged_at_the_sim(
        tmp_path: Path) -> None:
    from tui_trader.ui.modals.modify_order import ModifyOrderModal

    async with real_console(tmp_path, limits=limits_for_tests(max_order_quantity=10)) as c:
        order = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.working_at_sim([order.order_ref]), "the limit working at the simulator")
        await c.until(lambda: c.rows("orders-table").get(order.order_ref, ())[7:8] == ("SUBMITTED",),
                      "the order working on screen")
        c.app.main.action_modify_order(order.order_ref)
        await c.until(lambda: isinstance(c.app.screen, ModifyOrderModal), "the modify form")
        c.app.screen.query_one("#modify-quantity", Input).value = "50"
        await c.pilot.pause()
        await c.pilot.press("ctrl+s")
        await c.until(lambda: any(a.text.startswith(f"modify {order.order_ref} not sent: order_quantity")
                                  for a in c.app.main.query_one(AlertsPane).alerts), "the denial in the alerts")
        assert [o.total_qty for o in c.gw.orders() if o.order_ref == order.order_ref] == [5]


async def test_real_engine_flatten_when_a_fill_changes_the_position_under_its_preview_then_nothing_sent_and_said(
        tmp_path: Path) -> None:
    # The preview showed SELL 10; a resting buy of 90 filled while the dialog was open, and y sent SELL 100.
    async with real_console(tmp_path) as c:
        ask = c.engine.market.quotes["AAPL"].ask
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=round(ask + 1, 2)))
        await c.until(lambda: c.engine.portfolio.quantity("AAPL") == 10, "10 held")
        low = round(ask * 0.98, 2)
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 90, OrderType.LMT, limit_price=low))
        await c.pilot.press("f")
        await c.until(lambda: isinstance(c.app.screen, FlattenModal) and c.app.screen.preview is not None,
                      "the flatten preview")
        c.gw.control.set_price("AAPL", round(low - 0.5, 2))
        await c.until(lambda: c.engine.portfolio.quantity("AAPL") == 100, "100 held under the preview")

        await c.pilot.press("y")

        pane = c.app.main.query_one(AlertsPane)
        await c.until(lambda: any("Flatten not sent" in a.text for a in pane.alerts), "the refusal")
        (line,) = [a.text for a in pane.alerts if "Flatten not sent" in a.text]
        assert line == ("Flatten not sent: the positions changed since the preview: it showed SELL 10 AAPL, now it "
                        "would be SELL 100 AAPL. Nothing was sent: flatten again to see the orders as they are")
        assert not [r for r in c.gw.received_orders() if r.action == "SELL"]
        assert c.gw.positions()["AAPL"] == 100


async def test_real_engine_position_when_a_plain_buy_grows_it_past_its_stop_then_shown_partly_covered_and_asked_at_quit(
        tmp_path: Path) -> None:
    # A bracket of 10 with its stop, then a plain buy of 90: the pane showed the stop as protecting the 100,
    # and the quit dialog did not name the 90 without one.
    async with real_console(tmp_path) as c:
        ask = c.engine.market.quotes["AAPL"].ask
        stop = round(ask * 0.9, 2)
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT, bracket=Bracket(stop_price=stop)))
        await c.until(lambda: c.engine.portfolio.positions.get("AAPL") is not None
                      and c.engine.portfolio.positions["AAPL"].stop_price == stop, "10 held with its stop")
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 90, OrderType.MKT))
        await c.until(lambda: c.engine.portfolio.quantity("AAPL") == 100, "100 held")

        await c.until(lambda: c.rows("positions-table").get("AAPL", ("",) * 10)[9] == f"10@{stop:,.2f}",
                      "the stop shown for the 10 it covers")
        await c.pilot.press("q")
        await c.until(lambda: isinstance(c.app.screen, QuitModal), "the quit dialog")
        assert c.app.screen.unprotected == ("AAPL LONG 100 (a stop for 10 only)",)



async def test_real_engine_position_when_bought_before_the_quote_moves_then_valued_at_once_then_drawn_live(
        tmp_path: Path) -> None:
    # A position bought before any quote moved had no mark: the pane said "+0.00" of open P&L (and its cost
    # as its market value). The engine now values it at the quote as it fills; a later quote moves it live.
    async with real_console(tmp_path) as c:
        await c.engine.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT))
        await c.until(lambda: "AAPL" in c.rows("positions-table"), "10 held, shown")
        held = c.engine.portfolio.positions["AAPL"]
        assert held.market_price == c.engine.market.mark("AAPL")
        await c.until(lambda: c.rows("positions-table")["AAPL"][5:7]
                      == (f"{held.market_value:,.2f}", f"{held.unrealized_pnl:+,.2f}"), "valued at the quote")

        last = c.engine.market.quotes["AAPL"].last
        c.gw.control.set_price("AAPL", round(last + 1.25, 2))
        pos = c.engine.portfolio.positions
        await c.until(lambda: pos["AAPL"].market_price > held.market_price + 1 and c.rows("positions-table")["AAPL"][6]
                      == f"{pos['AAPL'].unrealized_pnl:+,.2f}", "its open P&L at the new mark")
        (row,) = [r for r in c.app.main.query_one("#positions-table", LineTable).rows if r.key == "AAPL"]
        assert (row.cell_role(4), row.cell_role(6)) == ("", "pos")
        assert "mark not live" not in str(c.app.main.query_one("#positions-pane").border_subtitle)


async def test_real_engine_bracket_entry_partly_filled_then_its_stop_shown_held_and_the_part_filled_unprotected(
        tmp_path: Path) -> None:
    # A bracket of 100 with 30 filled: the simulator holds the stop inactive (PreSubmitted) until the entry has
    # filled in full, yet the orders pane said SUBMITTED and the positions pane showed the 30 protected by it.
    async with real_console(tmp_path) as c:
        quote = c.engine.market.quotes["AAPL"]
        c.gw.control.set_quote("AAPL", quote.bid, quote.ask, 100, 30)
        stop = round(quote.ask * 0.9, 2)
        entry = await c.engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.MKT,
                                                  bracket=Bracket(stop_price=stop)))
        await c.until(lambda: c.engine.portfolio.quantity("AAPL") == 30, "30 of the 100 filled")
        (child,) = c.engine.orders.children(entry.order_ref)
        assert [o.status for o in c.gw.orders() if o.order_ref == child.order_ref] == ["PreSubmitted"]

        positions = c.app.main.query_one("#positions-table", LineTable)
        await c.until(lambda: c.rows("orders-table").get(child.order_ref, ("",) * 8)[7] == "HELD", "the stop held")
        await c.until(lambda: c.rows("positions-table").get("AAPL", ("",) * 10)[9] == f"0@{stop:,.2f}",
                      "no stop working for the 30")
        assert next(r for r in positions.rows if r.key == "AAPL").cell_role(9) == "warn"
        await c.pilot.press("q")
        await c.until(lambda: isinstance(c.app.screen, QuitModal), "the quit dialog")
        assert c.app.screen.unprotected == ("AAPL LONG 30 (its stop not active yet)",)
        await c.pilot.press("escape")

        c.gw.control.set_quote("AAPL", quote.bid, quote.ask, 100, 100)  # the other 70 fill: the stop goes live
        await c.until(lambda: c.rows("positions-table").get("AAPL", ("",) * 10)[9] == f"{stop:,.2f}",
                      "the stop protecting the 100")
        assert [o.status for o in c.gw.orders() if o.order_ref == child.order_ref] == ["Submitted"]
        assert c.rows("orders-table")[child.order_ref][7] == "SUBMITTED"
        assert next(r for r in positions.rows if r.key == "AAPL").cell_role(9) == ""
