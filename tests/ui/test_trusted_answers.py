"""The approval and the ticket as the operator reads them before answering, at 80x24 and 160x48: everything
needed to answer on screen, whose order it is, what an exit closes, and keys landing where they were typed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from textual import events
from textual.widgets import Input, Label, Static

from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import OrderTicket
from tui_trader.domain.verdicts import CheckResult
from tui_trader.engine.snapshots import EngineSnapshot, PendingApproval
from tui_trader.ui.demo import FROZEN, make_order, normal_state, pending
from tui_trader.ui.modals.approval import ApprovalModal
from tui_trader.ui.modals.order_ticket import OrderTicketModal
from tui_trader.ui.options import ConsoleOptions

from .conftest import SIZES, Console, running, screen_lines
from .test_console import typed_ticket, with_pending
from .test_modal_inputs import burst

CHARACTERS = {"tab": "\t", "full_stop": "."}



def typed_at_once(c: Console, *keys: str) -> None:
    """``keys`` as a terminal delivers a fast typist's burst: all posted before any is handled."""
    for key in keys:
        c.app.post_message(events.Key(key, CHARACTERS.get(key, key)))


def waiting(state: EngineSnapshot, *items: PendingApproval) -> EngineSnapshot:
    """``state`` with ``items`` waiting for approval (and their orders tracked)."""
    return replace(state, pending_approvals=(*state.pending_approvals, *items),
                   orders=(*state.orders, *(p.order for p in items)))


def approval_of(ticket: OrderTicket, ref: str) -> PendingApproval:
    """The demo's pending approval, for ``ticket``."""
    item = pending(FROZEN, ref=ref)
    order = make_order(ref, ticket, OrderStatus.PENDING_APPROVAL, item.requested_at)
    return replace(item, order=order)


@pytest.mark.parametrize("size", SIZES)
async def test_approval_when_drawn_then_expiry_buttons_headroom_status_bar_and_its_own_keys_are_on_screen(
        size: tuple[int, int]) -> None:
    # At 80x24 the modal ended after the what-if line: no expiry, no buttons, no Headroom column; it covered
    # the status bar, and the footer under it offered "n Order" (n rejects here).
    async with running(with_pending("tt-200", "tt-201"), size=size) as c:
        assert isinstance(c.app.screen, ApprovalModal)
        lines = screen_lines(c.app)

        assert lines[0].split()[:3] == ["SIM", "DUSIM0042", "ACTIVE"]  # the status bar: mode, account, state
        assert any("expires in 24s — no answer means deny" in line for line in lines)
        assert any("Reject (n)" in line and "Approve (y)" in line for line in lines)
        assert any("Headroom" in line for line in lines)
        assert lines[-1].split() == ["^k", "KILL", "y", "Approve", "n", "Reject"]  # the modal's keys, not "n Order"


@pytest.mark.parametrize("size", SIZES)
async def test_approval_asked_minutes_ago_and_released_at_arming_then_its_countdown_says_how_long_ago(
        size: tuple[int, int]) -> None:
    # Asked while live trading was not armed, an approval gets the whole timeout from the arming: "expires in
    # 119s" alone read as a signal just made when it was minutes old.
    item = pending(FROZEN, ref="tt-200")
    held = replace(item, requested_at=FROZEN - timedelta(minutes=3, seconds=5),
                   expires_at=FROZEN + timedelta(seconds=119))
    async with running(waiting(normal_state(), held), size=size) as c:
        countdown = str(c.app.screen.query_one("#approval-countdown", Label).render())

        assert countdown == "asked 3m05s ago · expires in 119s — no answer means deny"
        assert any("asked 3m05s ago" in line for line in screen_lines(c.app))


async def test_approval_asked_just_now_then_its_countdown_says_only_when_it_expires() -> None:
    async with running(waiting(normal_state(), pending(FROZEN, ref="tt-200"))) as c:
        countdown = str(c.app.screen.query_one("#approval-countdown", Label).render())

        assert countdown.startswith("expires in ")


EXTRA_CHECKS = ("ticket_valid", "symbol_allowed", "order_type_allowed", "quote", "trading_hours", "bracket",
                "trading_state", "cash_fraction", "close_window", "open_window", "cooldown", "daily_trades_strategy",
                "duplicate", "max_positions", "losing_streak", "the_last_check")


def with_every_check() -> EngineSnapshot:
    """One approval with as many checks as the engine's gate reports (some 25)."""
    item = pending(FROZEN, ref="tt-200")
    checks = (*item.verdict.checks, *(CheckResult(name, True) for name in EXTRA_CHECKS))
    return waiting(normal_state(), replace(item, verdict=replace(item.verdict, checks=checks)))


@pytest.mark.parametrize("size", SIZES)
async def test_approval_when_the_body_does_not_fit_then_page_down_shows_every_check_and_the_drift(
        size: tuple[int, int]) -> None:
    # The gate reports some 25 checks: the table stopped at 14 (the rest out of reach, the focus on Reject),
    # and at 80x24 the modal was cut after the what-if line.
    async with running(with_every_check(), size=size) as c:
        for _ in range(4):
            await c.pilot.press("pagedown")
        await c.settle()
        lines = screen_lines(c.app)

        assert any("the_last_check" in line for line in lines)
        assert any("drift since signal +0.12%" in line for line in lines)
        assert any("expires in" in line for line in lines)
        assert any("Reject (n)" in line and "Approve (y)" in line for line in lines)
        await c.pilot.press("pageup")  # and back up
        await c.settle()
        assert any("the_last_check" in line for line in screen_lines(c.app)) == (size[1] > 40)


@pytest.mark.parametrize("size", SIZES)
async def test_approval_when_n_answers_the_last_one_in_a_burst_or_held_then_no_ticket_opens(
        size: tuple[int, int]) -> None:
    # n rejects in the modal and opens a ticket on the main screen: the rest of a burst (or a held key's
    # repeats) that came after the queue was empty opened a new-order ticket.
    clock = [100.0]
    async with running(with_pending("tt-200"), size=size, options=ConsoleOptions(approve_delay_s=0.5),
                       approval_clock=lambda: clock[0]) as c:
        await burst(c, "n", "n", "n")
        clock[0] += 0.5  # the key still held: its repeats keep coming
        await c.pilot.press("n")
        clock[0] += 0.5
        await c.pilot.press("n")
        await c.settle()

        assert c.engine.called("reject") == [("reject", "tt-200", "operator")]
        assert c.app.screen is c.app.main
        clock[0] += 1.0  # let go, and pressed again a second later: that n opens a ticket
        await c.pilot.press("n")
        await c.settle()
        assert isinstance(c.app.screen, OrderTicketModal)


@pytest.mark.parametrize("size", SIZES)
async def test_ticket_when_submitted_while_a_strategy_order_waits_then_its_own_approval_opens_first(
        size: tuple[int, int]) -> None:
    # The strategy's approval (queued while the ticket was typed) opened first, with "1 more waiting", and
    # the y meant for the ticket approved the strategy's order.
    async with running(size=size, options=ConsoleOptions(approve_delay_s=0)) as c:
        await typed_ticket(c, "MSFT", "10", "388.00")
        c.engine.state = waiting(c.engine.state, pending(FROZEN, ref="tt-200", symbol="QQQ"))
        await c.pull()
        await c.pilot.press("ctrl+s")
        await c.eventually(lambda: isinstance(c.app.screen, ApprovalModal), "an approval open")

        modal = c.app.screen
        assert isinstance(modal, ApprovalModal)
        assert modal.pending.order.ticket.symbol == "MSFT"
        title = str(modal.query_one("#approval-title", Label).render())
        assert title == "APPROVE ORDER tt-301 (MSFT) · YOUR TICKET · 1 more waiting"
        await c.approve_ready()
        await c.pilot.press("y")
        await c.eventually(lambda: c.app.screen is not modal and isinstance(c.app.screen, ApprovalModal),
                           "the next approval open")
        assert c.engine.called("approve") == [("approve", "tt-301", "operator")]
        assert isinstance(c.app.screen, ApprovalModal)
        title = str(c.app.screen.query_one("#approval-title", Label).render())
        assert title == "APPROVE ORDER tt-200 (QQQ) · strategy ema_cross"


@pytest.mark.parametrize("size", SIZES)
async def test_approval_of_a_strategy_exit_then_says_the_position_it_closes_and_no_bracket_line(
        size: tuple[int, int]) -> None:
    # An exit read "bracket: none (no protective stop)" and never said it closes the position.
    exit_order = OrderTicket("AMD", Side.SELL, 150, OrderType.MKT, strategy="ema_cross", reason="EMA(9) crossed below",
                             signal_price=116.60, reduce_only=True)
    async with running(waiting(normal_state(), approval_of(exit_order, "tt-210")), size=size) as c:
        plan = str(c.app.screen.query_one("#approval-plan", Static).render())

        assert plan.splitlines()[:2] == ["SELL 150 AMD MKT DAY", "closes LONG 150 AMD"]
        assert "bracket" not in plan
        assert any("closes LONG 150 AMD" in line for line in screen_lines(c.app))


@pytest.mark.parametrize("size", SIZES)
async def test_approval_of_a_manual_ticket_then_no_drift_since_signal_only_the_price_now(
        size: tuple[int, int]) -> None:
    # A ticket has no signal: its "drift since signal" compared the price with the mark when it was submitted.
    ticket = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=212.40, signal_price=212.10,
                         reason="manual ticket")
    async with running(waiting(normal_state(), approval_of(ticket, "tt-220")), size=size) as c:
        modal = c.app.screen
        assert isinstance(modal, ApprovalModal)
        drift = str(modal.query_one("#approval-drift", Static).render())

        assert drift == "price now 212.36 · what-if margin +5,310.00"
        assert "YOUR TICKET" in str(modal.query_one("#approval-title", Label).render())


@pytest.mark.parametrize("size", SIZES)
async def test_ticket_when_keys_come_in_one_burst_then_each_lands_in_the_field_it_was_typed_for(
        size: tuple[int, int]) -> None:
    # 10<Tab><Tab>398.5 typed at once made the quantity 10398.5: the keys after a Tab were routed to the
    # field focused before it.
    async with running(size=size) as c:
        form = await typed_ticket(c, "MSFT", "", "")
        form.query_one("#ticket-quantity", Input).focus()
        await c.settle()

        typed_at_once(c, "1", "0", "tab", "tab", "3", "9", "8", "full_stop", "5")

        summary = "BUY 10 MSFT LMT limit 398.50 · notional ≈ 3,985.00"
        await c.eventually(lambda: any(summary in line for line in screen_lines(c.app)), "the burst's ticket drawn")
        assert form.query_one("#ticket-quantity", Input).value == "10"
        assert form.query_one("#ticket-limit", Input).value == "398.5"
        assert str(form.query_one("#ticket-summary", Label).render()) == summary
        assert any(summary in line for line in screen_lines(c.app))
        assert any("Submit (ctrl+s)" in line for line in screen_lines(c.app))


@pytest.mark.parametrize("size", SIZES)
async def test_ticket_quantity_when_a_key_would_make_it_no_plain_number_then_the_key_is_refused(
        size: tuple[int, int]) -> None:
    async with running(size=size) as c:
        form = await typed_ticket(c, "MSFT", "", "388")
        form.query_one("#ticket-quantity", Input).focus()
        await c.pilot.press("1", "e", "3", "full_stop", "5", "full_stop", "1", "2", "3", "4")
        await c.settle()

        assert form.query_one("#ticket-quantity", Input).value == "13.5123"
        assert str(form.query_one("#ticket-summary", Label).render()).startswith("BUY 13.5123 MSFT LMT limit 388.00")
