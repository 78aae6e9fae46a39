"""Pilot tests of the console: every binding and modal, Ctrl+K from every focus, approvals."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from textual.command import CommandPalette
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static

from tui_trader.domain.enums import AlertLevel, ConnectionState, Mode, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.events import ConnectionChanged, KillChecked, KillReport
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.domain.verdicts import CheckResult, check_line
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.risk.results import upper_bound
from tui_trader.ui.demo import FROZEN, disconnected_state, halted_events, halted_state, normal_state, pending
from tui_trader.ui.messages import SnapshotPulled
from tui_trader.ui.modals.approval import ApprovalModal, check_row
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.modals.flatten import FlattenModal
from tui_trader.ui.modals.order_ticket import OrderTicketModal
from tui_trader.ui.modals.quit import QuitModal
from tui_trader.ui.modals.reset_kill import ResetKillModal
from tui_trader.ui.modals.strategies import StrategyModal
from tui_trader.ui.options import ConsoleOptions, RiskLimits
from tui_trader.ui.screens.help import HelpScreen
from tui_trader.ui.scripted_engine import ScriptedEngine
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.status_bar import KillBanner, StatusBar

from .conftest import Console, Updates, running, screen_lines, stepped_approval


def with_pending(*refs: str):
    """The normal state with one pending approval per ref."""
    items = tuple(pending(FROZEN, ref=r) for r in refs)
    return replace(normal_state(), pending_approvals=items, orders=(*normal_state().orders,
                                                                     *(p.order for p in items)))


async def assert_halted(c: Console) -> None:
    """kill() was called once, the status bar says HALTED and the banner follows (bounded wait)."""
    assert len(c.engine.called("kill")) == 1
    bar = c.app.main.query_one(StatusBar)
    assert bar.trading_state is TradingState.HALTED
    assert bar.has_class("-halted")
    banner = c.app.main.query_one(KillBanner)
    # the banner comes with the refresh that follows the kill's cancels
    await c.eventually(lambda: banner.display, "the kill banner shown")


async def test_main_screen_when_started_then_shows_state_and_panes() -> None:
    async with running() as c:
        assert c.engine.called("start")
        bar = c.app.main.query_one(StatusBar)
        assert bar.trading_state is TradingState.ACTIVE
        assert bar.verdict == "LIVE"
        positions = c.app.main.query_one("#positions-table", LineTable)
        assert [r.key for r in positions.rows][-1] == "__total__"
        orders = c.app.main.query_one("#orders-table", LineTable)
        statuses = [r.cells[7] for r in orders.rows]
        assert statuses.index("FILLED") > max(i for i, s in enumerate(statuses) if s in ("SUBMITTED", "PARTIAL"))


async def test_account_not_known_yet_then_equity_and_day_pnl_are_shown_as_unknown_not_as_zero() -> None:
    # A --paper console that never reached its gateway said "Equity 0.00  Day +0.00".
    state = normal_state()
    unknown = replace(state, account=AccountSnapshot(time=state.time, known=False))
    async with running(unknown) as c:
        bar = c.app.main.query_one(StatusBar)
        assert bar.texts["equity"].strip() == "Equity —"
        assert bar.texts["day-pnl"].strip() == "Day —"
        pnl = {row.key: row.cells for row in c.app.main.query_one("#pnl-table", LineTable).rows}
        assert pnl["equity"][2] == "—"
        assert pnl["unknown"][:2] == ("Account", "not known yet")


async def test_ctrl_k_from_main_screen_then_halts() -> None:
    async with running() as c:
        await c.pilot.press("ctrl+k")
        await c.settle()
        await assert_halted(c)
        assert not c.engine.working_refs()


async def test_ctrl_k_from_order_ticket_input_then_halts() -> None:
    async with running() as c:
        await c.pilot.press("n")
        await c.settle()
        assert isinstance(c.app.screen, OrderTicketModal)
        assert isinstance(c.app.focused, Input)
        await c.pilot.press("ctrl+k")
        await c.settle()
        await assert_halted(c)


async def test_ctrl_k_from_approval_modal_then_halts_and_closes_the_approval() -> None:
    async with running(with_pending("tt-200")) as c:
        assert isinstance(c.app.screen, ApprovalModal)
        await c.pilot.press("ctrl+k")
        await c.settle(3)
        await assert_halted(c)
        assert not c.engine.called("approve")
        assert not isinstance(c.app.screen, ApprovalModal)


async def test_ctrl_k_from_command_palette_then_halts() -> None:
    async with running() as c:
        await c.pilot.press("ctrl+p")
        await c.settle()
        assert isinstance(c.app.screen, CommandPalette)
        await c.pilot.press("ctrl+k")
        await c.settle()
        await assert_halted(c)


async def test_approval_when_y_pressed_then_approves_with_focus_starting_on_reject() -> None:
    async with running(with_pending("tt-200")) as c:
        modal = c.app.screen
        assert isinstance(modal, ApprovalModal)
        assert c.app.focused is modal.query_one("#reject", Button)
        checks = modal.query_one(LineTable).rows
        assert len(checks) == 9
        assert checks[0].cells[2] == "1,000 qty"
        await c.approve_ready()
        await c.pilot.press("y")
        await c.settle()
        assert c.engine.called("approve") == [("approve", "tt-200", "operator")]


async def test_approval_when_y_pressed_as_the_modal_opens_then_ignored_until_the_approve_delay_is_over() -> None:
    # The modal opens over whatever the operator is typing (a symbol into the order ticket, say):
    # a 'y' meant for that screen must not send the order. The delay runs on a clock stepped here: on the
    # wall clock, a loaded machine slower than the delay between the modal opening and the 'y' approved it.
    clock = [100.0]
    async with running(with_pending("tt-200", "tt-201"), options=ConsoleOptions(approve_delay_s=5.0),
                       approval_clock=lambda: clock[0]) as c:
        first = c.app.screen
        assert isinstance(first, ApprovalModal)
        assert first.query_one("#approve", Button).disabled
        clock[0] += 4.9  # the delay is not over yet
        await c.pilot.press("y")
        await c.pilot.click("#approve")
        await c.settle()
        assert not c.engine.called("approve")
        assert c.app.screen is first
        await c.pilot.press("n")  # Reject works at once: it keeps the order off the market
        await c.settle(3)
        assert c.engine.called("reject") == [("reject", "tt-200", "operator")]

        second = c.app.screen
        assert isinstance(second, ApprovalModal)
        assert second.order_ref == "tt-201"
        assert second.query_one("#approve", Button).disabled
        clock[0] += 5.0  # quiet for the delay: Approve is enabled, and y approves
        await c.pull()
        assert not second.query_one("#approve", Button).disabled
        await c.pilot.press("y")
        await c.settle()
        assert c.engine.called("approve") == [("approve", "tt-201", "operator")]


async def test_approval_when_keys_keep_coming_then_approve_waits_until_none_came_for_the_delay() -> None:
    # Seen in a console session: an approval opened under an operator typing a limit price into the
    # order ticket; the 'y' typed a second later (past a fixed half-second delay) approved it.
    clock = [100.0]
    answers: list[bool | None] = []
    async with running() as c:
        modal = await stepped_approval(c, clock, answers)
        for key in "199":  # typing goes on past the delay: each key starts the wait again
            clock[0] += 0.3
            await c.pilot.press(key)
        clock[0] += 0.3
        await c.pilot.press("y")
        await c.settle()
        assert answers == []
        assert c.app.screen is modal
        clock[0] += 0.5  # quiet for the delay: now y approves
        await c.pilot.press("y")
        await c.settle()
        assert answers == [True]


async def test_approval_when_n_or_escape_then_rejects_each() -> None:
    async with running(with_pending("tt-200", "tt-201")) as c:
        title = c.app.screen.query_one("#approval-title", Label)
        assert "1 more waiting" in str(title.render())
        await c.pilot.press("n")
        await c.settle(3)
        assert isinstance(c.app.screen, ApprovalModal)
        assert c.app.screen.order_ref == "tt-201"
        await c.pilot.press("escape")
        await c.settle()
        assert [call[1] for call in c.engine.called("reject")] == ["tt-200", "tt-201"]


async def test_approval_when_it_expires_then_modal_closes_without_an_answer() -> None:
    async with running(with_pending("tt-200")) as c:
        c.engine.expire("tt-200")
        await c.pull()
        assert not isinstance(c.app.screen, ApprovalModal)
        assert not c.engine.called("approve")
        assert not c.engine.called("reject")
        assert c.engine.state.orders[-1].status is OrderStatus.EXPIRED


async def test_halted_demo_when_drawn_then_banner_counts_the_orders_the_kill_cancelled() -> None:
    working = [o.order_ref for o in normal_state().orders if o.status.is_working]
    engine = ScriptedEngine(halted_state(), start_events=halted_events())
    async with running(engine=engine) as c:
        await c.pull()
        text = str(c.app.main.query_one(KillBanner).render())
        assert working
        assert f"cancelled {len(working)} · remaining 0 · verified" in text
        assert "(by operator)" in text


async def test_halted_with_an_order_in_unknown_state_then_the_banner_says_unknown_not_still_working() -> None:
    # A --sim run killed on an order its broker had never heard of read "STILL WORKING: tt28b4c5-1".
    state = halted_state()
    ref = state.orders[0].order_ref
    orders = (state.orders[0].with_status(OrderStatus.UNKNOWN, FROZEN, "no ack"), *state.orders[1:])
    engine = ScriptedEngine(replace(state, orders=orders), start_events=halted_events())
    async with running(engine=engine) as c:
        await c.pull()
        text = str(c.app.main.query_one(KillBanner).render())
        assert f"remaining 1 · STATE UNKNOWN: {ref} ·" in text
        assert "STILL WORKING" not in text


@pytest.mark.parametrize(("connection", "verification", "said"), [
    (ConnectionState.CONNECTED, None, "verifying…"),
    (ConnectionState.DISCONNECTED, None, "NOT VERIFIED: disconnected"),
    (ConnectionState.CONNECTED, KillChecked(FROZEN, KillReport(checked=False)),
     "NOT VERIFIED: the broker did not answer"),
], ids=["asking", "disconnected", "unanswered"])
async def test_halted_demo_when_the_broker_has_not_said_what_works_then_the_banner_does_not_say_verified(
        connection: ConnectionState, verification: KillChecked | None, said: str) -> None:
    # A latched kill restored on start (no engagement in this run) and a kill whose check went unanswered
    # read "verified" when the engine tracked no working order.
    state = halted_state()
    state = replace(state, connection=replace(state.connection, state=connection))
    engine = ScriptedEngine(state, start_events=[verification] if verification else [])
    async with running(engine=engine) as c:
        await c.pull()
        text = str(c.app.main.query_one(KillBanner).render())
        assert f"remaining 0 · {said} ·" in text
        assert "verified ·" not in text.replace("NOT VERIFIED", "")
        assert "(by operator)" in text  # from the snapshot: no engagement in this run told it


async def test_halted_when_a_superseded_kills_check_comes_last_then_the_banner_keeps_the_latest_kills() -> None:
    # An automatic trip's check published after a later Ctrl+K's replaced it on the banner: "verified" (the trip
    # asked for its own orders only) over the Ctrl+K's "the broker did not answer".
    latest = KillChecked(FROZEN, KillReport(checked=False))
    superseded = KillChecked(FROZEN, KillReport(checked=True), superseded=True)
    engine = ScriptedEngine(halted_state(), start_events=[latest, superseded])
    async with running(engine=engine) as c:
        await c.pull()
        text = str(c.app.main.query_one(KillBanner).render())
        assert "remaining 0 · NOT VERIFIED: the broker did not answer ·" in text


async def test_reset_kill_when_reason_typed_and_same_day_confirmed_then_resets() -> None:
    async with running(halted_state()) as c:
        await c.pilot.press("ctrl+r")
        await c.settle()
        assert isinstance(c.app.screen, ResetKillModal)
        await c.pilot.press(*"checked the feed")
        await c.pilot.press("enter")
        await c.settle()
        assert "Refused" in str(c.app.screen.query_one("#reset-error", Label).render())
        c.app.screen.query_one(Checkbox).value = True
        await c.pilot.click("#reset")
        await c.settle()
        assert c.engine.called("reset_kill")[-1] == ("reset_kill", "checked the feed", "operator", True)
        assert c.app.main.query_one(StatusBar).trading_state is TradingState.ACTIVE


async def test_reset_kill_when_reason_too_short_then_refuses_without_calling() -> None:
    async with running(halted_state()) as c:
        await c.pilot.press("ctrl+r", "o", "k", "enter")
        await c.settle()
        assert isinstance(c.app.screen, ResetKillModal)
        assert not c.engine.called("reset_kill")


async def test_flatten_when_confirmed_after_preview_then_sends() -> None:
    async with running() as c:
        await c.pilot.press("f")
        await c.settle(3)
        modal = c.app.screen
        assert isinstance(modal, FlattenModal)
        assert len(modal.query_one(LineTable).rows) == 5
        assert c.engine.called("flatten") == [("flatten", True)]
        await c.pilot.press("y")
        await c.settle(3)
        assert c.engine.called("flatten")[-1] == ("flatten", False)


async def test_flatten_symbol_when_confirmed_then_the_engine_flattens_that_symbol_only() -> None:
    async with running() as c:
        c.app.main.action_flatten("AMD")
        await c.settle(3)
        modal = c.app.screen
        assert isinstance(modal, FlattenModal)
        assert [r.cells[0] for r in modal.query_one(LineTable).rows] == ["AMD"]
        await c.pilot.press("y")
        await c.settle(3)
        assert c.engine.called("flatten") == [("flatten", True, "AMD"), ("flatten", False, "AMD")]
        assert not c.engine.called("submit")


async def test_flatten_when_escape_then_sends_nothing() -> None:
    async with running() as c:
        await c.pilot.press("f")
        await c.settle(3)
        await c.pilot.press("escape")
        await c.settle()
        assert c.engine.called("flatten") == [("flatten", True)]


async def test_quit_with_working_orders_when_cancel_chosen_then_cancels_and_exits() -> None:
    async with running() as c:
        await c.pilot.press("q")
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)
        await c.pilot.press("c")
        await c.settle(3)
        assert c.engine.called("cancel_all")
        assert c.engine.called("stop")
        assert c.app.return_code == 0


async def test_quit_with_working_orders_when_leave_chosen_then_exits_without_cancelling() -> None:
    async with running() as c:
        await c.pilot.press("q", "l")
        await c.settle(3)
        assert not c.engine.called("cancel_all")
        assert c.engine.called("stop")


async def test_quit_with_ctrl_q_then_asks_as_q_does() -> None:
    # Textual's own Ctrl+Q exited at once: no question about working orders, no engine stop.
    async with running() as c:
        await c.pilot.press("ctrl+q")
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)
        await c.pilot.press("escape")
        await c.settle()
        assert not c.engine.called("stop")
        assert c.app.is_running


async def test_quit_when_escape_then_stays() -> None:
    async with running() as c:
        await c.pilot.press("q", "escape")
        await c.settle()
        assert not c.engine.called("stop")


def flat_and_halted() -> EngineSnapshot:
    """After Ctrl+K with nothing held: no working order, no position."""
    snap = halted_state()
    return replace(snap, account=replace(snap.account, positions={}))


async def test_quit_without_working_orders_or_positions_then_exits_directly() -> None:
    async with running(flat_and_halted()) as c:
        await c.pilot.press("q")
        await c.settle(3)
        assert c.engine.called("stop")


async def test_quit_with_an_unprotected_position_then_asks_naming_it_and_quits_only_when_told() -> None:
    snap = halted_state()  # the kill cancelled every working order, the positions' stops with them
    assert not snap.account.working_orders
    held = ", ".join(f"{p.symbol} {'LONG' if p.quantity > 0 else 'SHORT'} {abs(p.quantity):,.0f}"
                     for p in snap.account.positions.values() if p.quantity)
    assert held.count(",") == 4
    async with running(snap) as c:
        await c.pilot.press("q")
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)
        assert str(c.app.screen.query_one(".dialog-title", Label).render()) == "Quit with unprotected positions?"
        text = str(c.app.screen.query_one("#quit-unprotected", Static).render())
        assert f"No protective stop works at the broker for: {held}." in text
        assert not c.app.screen.query("#cancel"), "nothing to cancel: no working order"
        await c.pilot.press("c")  # no cancel without working orders: still asking
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)
        await c.pilot.press("l")
        await c.settle(3)
        assert not c.engine.called("cancel_all")
        assert c.engine.called("stop")


async def typed_ticket(c: Console, symbol: str, quantity: str, limit: str) -> OrderTicketModal:
    """The order ticket opened with ``n`` and filled in."""
    await c.pilot.press("n")
    await c.settle()
    form = c.app.screen
    assert isinstance(form, OrderTicketModal)
    form.query_one("#ticket-symbol", Input).value = symbol
    form.query_one("#ticket-quantity", Input).value = quantity
    form.query_one("#ticket-limit", Input).value = limit
    await c.settle()
    return form


async def test_order_ticket_when_submitted_then_goes_through_approval() -> None:
    async with running() as c:
        form = await typed_ticket(c, "MSFT", "10", "388.00")
        assert len(form.query_one(LineTable).rows) == 2
        await c.pilot.press("ctrl+s")
        await c.settle(4)
        ticket = c.engine.called("submit")[0][1]
        assert (ticket.symbol, ticket.quantity, ticket.limit_price) == ("MSFT", 10, 388.0)  # type: ignore[attr-defined]
        await c.pull()
        assert isinstance(c.app.screen, ApprovalModal)


async def test_order_ticket_when_risk_denies_it_then_submit_keeps_it_open_as_typed_with_the_reason() -> None:
    # Submitted, a denied ticket became a rejected order and the form was gone: one field to fix
    # meant typing it all again.
    async with running() as c:
        form = await typed_ticket(c, "MSFT", "500", "388.00")  # 500 x 388 is over the 50,000 notional limit
        await c.pilot.press("ctrl+s")
        await c.settle()
        assert c.app.screen is form
        assert not c.engine.called("submit")
        error = str(form.query_one("#ticket-error", Label).render())
        assert error == "Not sent: order_notional: order too large. Change the order, or Esc to discard it."
        assert form.query_one("#ticket-quantity", Input).value == "500"
        form.query_one("#ticket-quantity", Input).value = "50"
        await c.settle()
        await c.pilot.press("ctrl+s")
        await c.settle(4)
        assert [call[1].quantity for call in c.engine.called("submit")] == [50]  # type: ignore[attr-defined]


async def test_order_ticket_when_the_symbol_has_no_quote_then_subscribed_on_leaving_the_field() -> None:
    # A ticket for a symbol no strategy trades could only be denied "no quote: not one of this session's symbols".
    async with running() as c:
        form = await typed_ticket(c, "", "10", "100.00")
        assert c.app.focused is form.query_one("#ticket-symbol", Input)
        await c.pilot.press(*"zzzz", "tab")
        await c.settle(3)
        error = form.query_one("#ticket-error", Label)
        assert str(error.render()) == "symbol: ZZZZ: no such stock at the broker (SMART, USD)"
        await c.pilot.press("ctrl+s")
        await c.settle(3)
        assert not c.engine.called("submit")
        assert str(error.render()) == "symbol: ZZZZ: no such stock at the broker (SMART, USD)"
        await c.pilot.press("shift+tab")  # back to the symbol
        assert c.app.focused is form.query_one("#ticket-symbol", Input)
        form.query_one("#ticket-symbol", Input).value = ""
        await c.pilot.press(*"intc", "tab")
        await c.settle(3)
        assert c.engine.called("watch") == [("watch", "ZZZZ"), ("watch", "ZZZZ"), ("watch", "INTC")]
        assert str(error.render()) == ""  # quoted now: the preview passes it
        await c.pilot.press("ctrl+s")
        await c.settle(4)
        assert [call[1].symbol for call in c.engine.called("submit")] == ["INTC"]  # type: ignore[attr-defined]


async def test_order_ticket_when_invalid_then_stays_open_with_error() -> None:
    async with running() as c:
        await c.pilot.press("n")
        await c.settle()
        await c.pilot.press("ctrl+s")
        await c.settle()
        assert isinstance(c.app.screen, OrderTicketModal)
        assert "quantity" in str(c.app.screen.query_one("#ticket-error", Label).render())
        assert not c.engine.called("submit")


async def test_cancel_selected_order_then_cancels_it() -> None:
    async with running() as c:
        await c.pilot.press("3")
        table = c.app.main.query_one("#orders-table", LineTable)
        assert c.app.focused is table
        ref = table.rows[0].key
        await c.pilot.press("x")
        await c.settle(3)
        assert c.engine.called("cancel") == [("cancel", ref)]


async def test_cancel_all_then_cancels_every_working_order() -> None:
    async with running() as c:
        await c.pilot.press("X")
        await c.settle(3)
        assert c.engine.called("cancel_all")
        assert not c.engine.working_refs()


async def test_pause_strategy_when_chosen_then_pauses_it() -> None:
    async with running() as c:
        await c.pilot.press("p")
        await c.settle()
        assert isinstance(c.app.screen, StrategyModal)
        await c.pilot.press("enter")
        await c.settle()
        assert c.engine.called("pause_strategy") == [("pause_strategy", "ema_cross", True)]


async def test_pause_strategy_when_one_is_disabled_then_it_says_so_and_cannot_be_chosen() -> None:
    # A plugin that raised in on_bar read "running → pause (disabled: it raised …)"; choosing it "paused" it.
    async with running() as c:
        first = c.engine.state.strategies[0]
        disabled = replace(first, disabled_reason="it raised ZeroDivisionError('boom')")
        c.engine.state = replace(c.engine.state, strategies=(disabled, *c.engine.state.strategies[1:]))
        await c.pull()
        await c.pilot.press("p")
        await c.settle()
        options = c.app.screen.query_one("#strategy-list", OptionList)
        label = str(options.get_option_at_index(0).prompt)
        assert label.endswith("DISABLED: it raised ZeroDivisionError('boom')")
        assert "running" not in label
        assert options.get_option_at_index(0).disabled
        await c.pilot.press("enter")  # the highlight starts on the first strategy that can be chosen
        await c.settle()
        assert [call[1] for call in c.engine.called("pause_strategy")] == [c.engine.state.strategies[1].name]


async def test_reducing_toggle_then_turns_on_and_off() -> None:
    async with running() as c:
        await c.pilot.press("r")
        await c.settle()
        assert c.app.main.query_one(StatusBar).trading_state is TradingState.REDUCING
        await c.pilot.press("r")
        await c.settle()
        assert [call[1] for call in c.engine.called("reduce_only")] == [True, False]


async def test_filter_orders_then_only_matching_rows_show() -> None:
    async with running() as c:
        await c.pilot.press("3", "slash", *"aapl")
        await c.settle()
        rows = c.app.main.query_one("#orders-table", LineTable).rows
        assert rows
        assert all(r.cells[2] == "AAPL" for r in rows)
        await c.pilot.press("enter")
        assert not c.app.main.query_one("#filter-input").display


async def test_focus_cycle_and_maximise_panes() -> None:
    async with running() as c:
        await c.pilot.press("1")
        assert c.app.focused is not None
        assert c.app.focused.id == "watchlist-table"
        await c.pilot.press("tab")
        assert c.app.focused.id == "positions-table"
        await c.pilot.press("m")
        await c.settle()
        assert c.app.main.maximized is not None
        await c.pilot.press("m")
        assert c.app.main.maximized is None


@pytest.mark.parametrize(("key", "pane", "title", "content"), [
    ("1", "watchlist", "1 Watchlist", "AAPL"),
    ("5", "pnl", "5 P&L and risk", "Loss used"),
    ("6", "connectivity", "6 Connectivity", "Gateway"),
    ("7", "health", "7 Health", "Loop lag"),
])
async def test_compact_layout_when_hidden_pane_focused_then_opens_maximised(
        key: str, pane: str, title: str, content: str) -> None:
    # QA at 80x24: these keys showed a maximised pane that was still display: none, an empty hatched screen.
    async with running(size=(80, 24)) as c:
        assert c.app.main.has_class("-compact")
        assert not any(title in line for line in screen_lines(c.app))
        await c.pilot.press(key)
        await c.settle()
        assert c.app.main.maximized is not None
        assert c.app.main.maximized.id == f"{pane}-pane"
        lines = screen_lines(c.app)
        assert title in lines[1]  # the pane's border, under the status bar
        assert any(line.startswith(f"│{content}") for line in lines[2:12]), "\n".join(lines)


async def test_help_lists_every_binding_id() -> None:
    async with running() as c:
        await c.pilot.press("question_mark")
        await c.settle()
        assert isinstance(c.app.screen, HelpScreen)
        keys = {r.key for r in c.app.screen.query_one(LineTable).rows}
        assert {"kill-switch", "new-order", "cancel-order", "cancel-all", "flatten", "pause-strategy",
                "toggle-reducing", "filter", "maximize-pane", "help", "quit", "reset-kill"} <= keys


async def test_worker_crash_then_error_modal_and_trading_halted() -> None:
    engine = ScriptedEngine(normal_state())
    engine.fail_start = RuntimeError("gateway handshake failed")
    async with running(engine=engine) as c:
        await c.settle(3)
        assert isinstance(c.app.screen, ErrorModal)
        assert "gateway handshake failed" in c.app.screen.message
        await assert_halted(c)


async def test_worker_crash_while_the_console_closes_then_halted_and_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    # Seen as a flaky CI failure: a child engine died as its console closed; the event pump's failure came
    # after the panes were gone and the crash alert raised NoMatches out of the closing app.
    engine = ScriptedEngine(normal_state())
    async with running(engine=engine) as c:
        app = c.app

    app.crashed("bridge-events", RuntimeError("engine process stopped"))

    assert [call[0] for call in engine.called("kill")] == ["kill"]
    assert "worker 'bridge-events' crashed while the console closed: RuntimeError: engine process stopped" \
        in caplog.text


async def test_palette_offers_dynamic_commands() -> None:
    from tui_trader.ui.commands import dynamic_commands

    async with running() as c:
        names = [name for name, _, _ in dynamic_commands(c.app)]
        assert "Cancel order #tt-100 (BUY 50 AAPL)" in names
        assert any(n.startswith("Flatten AMD") for n in names)
        assert "Pause strategy ema_cross" in names


async def test_live_mode_when_preflight_armed_by_typing_account_then_approvals_open() -> None:
    from tui_trader.ui.screens.preflight import PreflightScreen

    state = replace(with_pending("tt-200"), mode=Mode.LIVE, account_id="U7654321")
    async with running(state, options=ConsoleOptions(mode=Mode.LIVE)) as c:
        assert isinstance(c.app.screen, PreflightScreen)
        await c.pilot.press(*"U765432")
        await c.settle()
        assert c.app.screen.query_one("#arm", Button).disabled
        await c.pilot.press("1", "enter")
        await c.settle(3)
        assert isinstance(c.app.screen, ApprovalModal)
        assert c.engine.called("arm") == [("arm", "U7654321", "operator")]


async def test_preflight_when_a_snapshot_lands_after_its_widgets_are_removed_then_nothing_raises() -> None:
    # Seen as a flaky failure at the end of a console test: the app shut down with the preflight up,
    # its widgets were removed, and a pull drawn after that raised NoMatches (LineTable) in the app.
    from tui_trader.ui.options import ConsoleOptions
    from tui_trader.ui.screens.preflight import PreflightScreen

    state = replace(normal_state(), mode=Mode.LIVE, account_id="U7654321")
    async with running(state, options=ConsoleOptions(mode=Mode.LIVE)) as c:
        preflight = c.app.screen
        assert isinstance(preflight, PreflightScreen)
        await preflight.remove_children()
        await c.pull()
        assert c.app.main.preflight is preflight  # still drawn to on each pull
    assert c.app.return_code in (None, 0)


def test_preflight_when_the_kill_is_latched_then_it_says_who_engaged_it_and_why() -> None:
    from tui_trader.ui.freshness import assess
    from tui_trader.ui.screens.preflight import session_findings

    state = halted_state()
    fresh = assess(state, FROZEN, ConsoleOptions())
    found = {name: (text, level) for name, text, level in session_findings(state, fresh)}
    assert found["Kill switch"] == ("ENGAGED by operator: operator pressed Ctrl+K", "warn")


@pytest.mark.parametrize(("limits", "expected"), [
    (RiskLimits(), ("daily loss 2.00% · drawdown 5.00% · trades/day 100 · gross ≤ 1.0× equity", "ok")),
    (RiskLimits(daily_loss_pct=None, daily_loss=1_500, max_drawdown_pct=None),
     ("daily loss 1,500 · drawdown OFF · trades/day 100 · gross ≤ 1.0× equity", "warn")),
    (RiskLimits(daily_loss=2_000, max_daily_trades=None),
     ("daily loss 2.00% or 2,000 · drawdown 5.00% · trades/day ∞ · gross ≤ 1.0× equity", "ok")),
])
def test_preflight_risk_limits_when_a_loss_limit_is_off_then_it_says_off_as_a_warning(
        limits: RiskLimits, expected: tuple[str, str]) -> None:
    # A loss limit turned off with "" read "daily loss —" in the live preflight, marked ok.
    from tui_trader.ui.screens.preflight import limit_findings

    assert limit_findings(ConsoleOptions(mode=Mode.LIVE, limits=limits)) == [("Risk limits", *expected)]


@pytest.mark.parametrize(("account_id", "expected"), [
    ("", ("unknown: the gateway has not reported the account", "FAIL")),
    ("DU1234567", ("PAPER (DU…) — not a live account", "FAIL")),
    ("U7654321", ("live", "ok")),
])
def test_preflight_account_type_when_account_reported_or_not_then_only_a_reported_live_id_is_ok(
        account_id: str, expected: tuple[str, str]) -> None:
    # Seen with --live and no gateway: "Account type: live — ok" beside "Account id: unknown — FAIL".
    from tui_trader.ui.options import ConsoleOptions
    from tui_trader.ui.screens.preflight import account_findings

    state = replace(normal_state(), mode=Mode.LIVE, account_id=account_id)
    found = {name: (text, level) for name, text, level in account_findings(state, ConsoleOptions(mode=Mode.LIVE))}
    assert found["Account type"] == expected


async def test_live_mode_when_paper_account_then_preflight_cannot_arm() -> None:
    from tui_trader.ui.options import ConsoleOptions
    from tui_trader.ui.screens.preflight import PreflightScreen

    state = replace(normal_state(), mode=Mode.LIVE, account_id="DU1234567")
    async with running(state, options=ConsoleOptions(mode=Mode.LIVE)) as c:
        assert isinstance(c.app.screen, PreflightScreen)
        assert c.app.screen.account_id == "DU1234567"  # the findings were drawn before typing
        await c.pilot.press(*"DU1234567", "enter")
        await c.settle()
        assert isinstance(c.app.screen, PreflightScreen)
        assert c.app.screen.query_one("#arm", Button).disabled
        assert "A check FAILED" in str(c.app.screen.query_one("#preflight-error", Label).render())
        assert not c.app.main.armed
        assert c.engine.called("arm") == []


async def test_connection_changes_when_alerted_then_leveled_by_state_not_all_warnings() -> None:
    # Found in a --sim run: every start added five WARNING alerts (connecting, connected, farms OK).
    # The console says the start's connect and the link made; the rest (a farm, a lost link) the engine's alerts say.
    s = ConnectionState
    events = [ConnectionChanged(FROZEN, s.CONNECTING, "", s.DISCONNECTED),
              ConnectionChanged(FROZEN, s.CONNECTED, "account DU1", s.CONNECTING),
              ConnectionChanged(FROZEN, s.DEGRADED, "2103: Market data farm connection is broken", s.CONNECTED),
              ConnectionChanged(FROZEN, s.DISCONNECTED, "connectivity lost (1100)", s.DEGRADED),
              ConnectionChanged(FROZEN, s.CONNECTING, "", s.DISCONNECTED),
              ConnectionChanged(FROZEN, s.DEGRADED, "account DU1", s.CONNECTING)]
    async with running(engine=ScriptedEngine(normal_state(), start_events=events)) as c:
        await c.pull()
        alerts = [a for a in c.app.main.query_one(AlertsPane).alerts if a.text.startswith("connection ")]
        assert [(a.level, a.text.split()[1]) for a in alerts] == [
            (AlertLevel.INFO, "CONNECTING"), (AlertLevel.INFO, "CONNECTED"), (AlertLevel.WARNING, "DEGRADED")]


def test_check_rows_when_a_figure_is_not_finite_then_no_inf_or_nan_is_shown() -> None:
    # A ticket for a symbol without a quote showed "quote_age: infs over the limit of 10s … -infs" and "nan%".
    no_quote = check_row(CheckResult("quote_age", False, math.inf, 10, -math.inf, "no quote", "s"))
    assert no_quote.cells == ("quote_age: no quote", "∞s", "10s", "-∞s", "FAIL")
    unknown = check_row(CheckResult("price_collar_pct", False, math.nan, 5, math.nan, "cannot be measured", "%"))
    assert unknown.cells[1:4] == ("—", "5%", "—")


def test_check_rows_when_units_then_money_is_prefixed_and_words_are_spaced() -> None:
    # Seen in a --sim run: "4,965$", "1positions  10positions  9positions"; later "0.00x equity" for an
    # order of half a percent of equity.
    rows = [check_row(CheckResult("order_notional", True, 4964.75, 50_000, 45_035.25, unit="$")),
            check_row(CheckResult("open_positions", True, 1, 10, 9, unit="positions")),
            check_row(CheckResult("quote_age", True, 0.26, 10, 9.74, unit="s")),
            check_row(CheckResult("daily_loss", False, -1_250, 1_000, -2_250, "over", unit="$")),
            check_row(CheckResult("gross_exposure", True, 0.004961, 1, 0.995039, unit="x equity"))]
    assert [r.cells[1:4] for r in rows] == [("$4,964.75", "$50,000.00", "$45,035.25"),
                                            ("1 position", "10 positions", "9 positions"),
                                            ("0.26s", "10s", "9.74s"), ("-$1,250.00", "$1,000.00", "-$2,250.00"),
                                            ("0.00496x equity", "1x equity", "0.995x equity")]


def test_check_figures_when_a_check_denies_then_its_message_table_row_and_trace_line_read_the_same() -> None:
    # The trace read "value 0.041 / limit 1, headroom 0.959x equity" and "headroom 77trades".
    check = upper_bound("gross_exposure", 1.2575, 1.0, "x equity")
    row = check_row(check)
    assert check.message == "1.26x equity over the limit of 1x equity"
    assert row.cells[1:3] == ("1.26x equity", "1x equity")
    assert check_line(check) == ("gross_exposure: FAIL value 1.26x equity / limit 1x equity, headroom -0.258x equity "
                                 "(1.26x equity over the limit of 1x equity)")
    assert check_line(upper_bound("daily_trades", 23, 100, "trades")).endswith("headroom 77 trades")


def expected_order_refs(snapshot_orders: tuple[Order, ...]) -> list[str]:
    """Working and pending orders first, then settled ones; newest first in each; ties as given."""
    by_time = sorted(snapshot_orders, key=lambda o: o.created_at, reverse=True)
    settled = sorted(by_time, key=lambda o: o.status.is_final and not o.status.is_working)
    return [o.order_ref for o in settled]


async def test_snapshot_pulled_before_a_command_refresh_when_handled_after_it_then_not_drawn_over_it() -> None:
    # Seen as a flaky CI failure of the test below: the refresh timer's pull, queued before a command's
    # own refresh, was handled after it and drew the older state (after Ctrl+K: ACTIVE again for a beat).
    state = normal_state(n_orders=14)
    async with running(state, size=(200, 60)) as c:
        stale = SnapshotPulled(c.engine.snapshot(), time.monotonic())  # the timer's pull, still in the queue
        working = next(o for o in state.orders if o.status is OrderStatus.SUBMITTED)
        orders = tuple(replace(o, status=OrderStatus.FILLED) if o is working else o for o in state.orders)
        c.engine.state = replace(c.engine.state, orders=orders)
        c.app.main.request_refresh()
        c.app.main.post_message(stale)
        await c.settle()
        table = c.app.main.query_one("#orders-table", LineTable)
        assert [r.key for r in table.rows] == expected_order_refs(orders)
        drawn = c.app.main.snapshot
        assert drawn is not None
        assert drawn.orders == orders


async def test_orders_pane_when_orders_change_then_working_first_newest_first() -> None:
    state = normal_state(n_orders=14)
    tied = replace(state.orders[3], order_ref="tt-tie", created_at=state.orders[5].created_at)
    state = replace(state, orders=(*state.orders, tied))
    async with running(state, size=(200, 60)) as c:
        table = c.app.main.query_one("#orders-table", LineTable)
        assert [r.key for r in table.rows] == expected_order_refs(state.orders)
        working = next(o for o in state.orders if o.status is OrderStatus.SUBMITTED)
        filled = replace(working, status=OrderStatus.FILLED)
        orders = tuple(filled if o is working else o for o in state.orders)
        c.engine.state = replace(c.engine.state, orders=orders)
        await c.pull()
        assert [r.key for r in table.rows] == expected_order_refs(orders)
        assert [r.key for r in table.rows] != expected_order_refs(state.orders)  # the fill moved it down
        subtitle = str(c.app.main.query_one("#orders-pane").border_subtitle)
        assert f"{sum(o.status.is_working for o in orders)} working" in subtitle


async def test_approval_while_the_order_ticket_is_open_then_it_waits_for_the_ticket_and_opens_after() -> None:
    # Seen in a console session: an approval opened over the ticket as a symbol was typed, took the keys,
    # and the 'n' of "INTC" rejected a strategy's order.
    async with running() as c:
        await c.pilot.press("n")
        await c.settle()
        ticket = c.app.screen
        c.engine.state = with_pending("tt-200")
        await c.pull()
        assert c.app.screen is ticket
        await c.pilot.press(*"intc")
        await c.settle()
        assert ticket.query_one("#ticket-symbol", Input).value == "intc"
        assert not c.engine.called("reject")
        (said,) = [n.message for n in c.app._notifications if "waits for approval" in n.message]
        assert said.startswith("BUY 100 AAPL waits for approval: it opens when this dialog closes (expires in ")
        await c.pilot.press("escape")
        await c.pull()
        assert isinstance(c.app.screen, ApprovalModal)
        assert c.app.screen.order_ref == "tt-200"


async def test_two_modals_over_the_main_screen_when_the_account_changes_then_the_screen_behind_both_is_redrawn(
        ) -> None:
    # Textual redraws a screen seen through one modal, not one seen through two: with the ticket open
    # and a dialog on top, the panes and the status bar behind both stood still until one closed.
    async with running() as c:
        await c.pilot.press("n")
        await c.settle()
        c.app.push_screen(ErrorModal("Engine", "a dialog over the ticket"))
        await c.settle()
        assert [type(s) for s in c.app.screen_stack[-2:]] == [OrderTicketModal, ErrorModal]
        updates = Updates(c.app)
        state = c.engine.state
        c.engine.state = replace(state, account=replace(state.account, equity=123_456.78))
        await c.pull()
        await c.settle(3)
        assert any("123,456.78" in text for text in updates.text)


def test_modification_when_the_form_changes_nothing_or_too_little_then_it_says_which_field() -> None:
    from tui_trader.ui.modals.modify_order import Modification, build_modification
    from tui_trader.ui.modals.order_ticket import TicketError

    ticket = OrderTicket("AAPL", Side.SELL, 25, OrderType.STP_LMT, limit_price=199.5, stop_price=200.4)
    order = Order("tt-1", ticket, OrderStatus.PARTIALLY_FILLED, FROZEN, FROZEN, broker_id=7, filled_quantity=10)
    same = {"quantity": "25", "limit": "199.5", "stop": "200.4"}
    for fields, error in (({**same}, "nothing changed"),
                          ({**same, "quantity": "10"}, "quantity: must be more than the 10 already filled"),
                          ({**same, "quantity": "x"}, "quantity: 'x' is not a plain number"),
                          ({**same, "stop": ""}, "stop: required for this order type"),
                          ({**same, "limit": "-1"}, "limit: must be positive, not -1")):
        with pytest.raises(TicketError, match=error):
            build_modification(order, fields)
    change = build_modification(order, {**same, "stop": "199.8"})
    assert change == Modification(stop_price=199.8)
    assert change.describe(order) == "stop 200.40 → 199.80"


async def test_modify_key_when_the_order_is_not_working_at_the_broker_then_no_form_and_it_says_why() -> None:
    from tui_trader.ui.modals.modify_order import ModifyOrderModal

    async with running(normal_state()) as c:
        done = next(o for o in c.app.main.snapshot.orders if o.status is OrderStatus.FILLED)
        c.app.main.action_modify_order(done.order_ref)
        await c.pilot.pause()
        assert not isinstance(c.app.screen, ModifyOrderModal)
        assert c.engine.called("modify") == []


def test_connectivity_last_error_when_connected_again_then_kept_with_its_time_but_not_as_a_fault() -> None:
    # The row kept "connection refused …" in red, with no time, through hours of a healthy session.
    from tui_trader.engine.snapshots import ConnectionInfo
    from tui_trader.ui.widgets.connectivity import link_rows

    failed = ConnectionInfo("127.0.0.1", 4002, 17, ConnectionState.DISCONNECTED, last_error="connection refused",
                            last_error_at=datetime(2026, 11, 23, 14, 3, 7, tzinfo=UTC))
    for conn, role in ((failed, "neg"), (replace(failed, state=ConnectionState.CONNECTED), "")):
        (row,) = [r for r in link_rows(conn, "UTC", FROZEN) if r.key == "err"]
        assert row.cells == ("Last error", "14:03:07 connection refused")
        assert row.cell_role(1) == role


async def test_connectivity_farms_when_disconnected_then_their_last_status_is_said_as_past_not_ok() -> None:
    # The engine keeps the farms' last reports until the next connection opens: while the link was down
    # the pane listed "farm usfarm  OK (2104)" in the healthy colour, under "State DISCONNECTED".
    async with running(disconnected_state()) as c:
        rows = {r.key: r for r in c.app.main.query_one("#connectivity-table", LineTable).rows}
        farm = rows["farm:usfarm"]
        assert farm.cells == ("farm usfarm", "was OK (2104)")
        assert farm.cell_role(1) == "dim"
        c.engine.state = normal_state()
        await c.pull()
        rows = {r.key: r for r in c.app.main.query_one("#connectivity-table", LineTable).rows}
        assert rows["farm:usfarm"].cells == ("farm usfarm", "OK (2104)")
        assert rows["farm:usfarm"].cell_role(1) == "pos"
