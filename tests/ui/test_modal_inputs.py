"""The operator's keyboard paths through the dialogs: bad figures, bursts of keys, a held key, dialogs
over the approval. What goes wrong here sends an order nobody meant, or loses one somebody typed."""

from __future__ import annotations

from typing import Any

import pytest
from textual import events
from textual.app import App
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.snapshots import FlattenPreview
from tui_trader.errors import BrokerError
from tui_trader.ui.demo import FROZEN, normal_state, pending
from tui_trader.ui.modals.approval import ApprovalModal, LastAnswer
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.modals.flatten import FlattenModal
from tui_trader.ui.modals.order_ticket import TicketError, figure
from tui_trader.ui.modals.quit import QuitModal
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.scripted_engine import ScriptedEngine

from .conftest import Console, running, stepped_approval
from .test_console import typed_ticket, with_pending

NOT_PLAIN = "is not a plain number (digits and at most one decimal point)"


@pytest.mark.parametrize(("text", "said"), [
    ("1e3", f"quantity: '1e3' {NOT_PLAIN}"), ("1_000", f"quantity: '1_000' {NOT_PLAIN}"),
    ("nan", f"quantity: 'nan' {NOT_PLAIN}"), ("inf", f"quantity: 'inf' {NOT_PLAIN}"),
    ("1,000", f"quantity: '1,000' {NOT_PLAIN}"), ("0", "quantity: must be more than 0"),
    ("0.000", "quantity: must be more than 0"),
    ("-5", "quantity: must be positive, not -5"),
    ("+5", "quantity: type it without a sign"), ("1" + "0" * 400, "quantity: too large"), ("  ", "quantity: required"),
])
def test_figure_when_not_a_plain_positive_number_then_refused_saying_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(TicketError) as refused:
        figure(text, "quantity")

    assert str(refused.value) == said


@pytest.mark.parametrize(("text", "value"), [("10", 10.0), (" 212.50 ", 212.5), (".5", 0.5), ("7.", 7.0)])
def test_figure_when_digits_and_one_decimal_point_then_taken(text: str, value: float) -> None:
    assert figure(text, "limit") == value


async def test_order_ticket_when_a_figure_is_bad_then_not_sent_the_error_names_it_and_the_typing_stays() -> None:
    # Python's float took them all: "1e3" became 1,000 shares, and a limit of "nan" was submitted as a price.
    cases = [("quantity", "1e3", f"quantity: '1e3' {NOT_PLAIN}"), ("quantity", "nan", f"quantity: 'nan' {NOT_PLAIN}"),
             ("limit", "nan", f"limit: 'nan' {NOT_PLAIN}"), ("limit", "inf", f"limit: 'inf' {NOT_PLAIN}"),
             ("limit", "abc", f"limit: 'abc' {NOT_PLAIN}"), ("quantity", "-5", "quantity: must be positive, not -5")]
    async with running() as c:
        form = await typed_ticket(c, "MSFT", "10", "388.00")
        for field, text, said in cases:
            good = form.query_one(f"#ticket-{field}", Input).value
            form.query_one(f"#ticket-{field}", Input).value = text
            await c.settle()
            await c.pilot.press("ctrl+s")
            await c.settle()

            assert c.app.screen is form
            assert str(form.query_one("#ticket-error", Label).render()) == said
            assert form.query_one(f"#ticket-{field}", Input).value == text
            form.query_one(f"#ticket-{field}", Input).value = good
        assert not c.engine.called("submit")


async def burst(c: Console, *keys: str) -> None:
    """``keys`` as a terminal delivers a bounced or held key: all posted before any is handled."""
    for key in keys:
        c.app.post_message(events.Key(key, {"enter": "\r", "space": " "}.get(key, key)))
    await c.settle(6)


async def test_order_ticket_when_enter_comes_twice_in_one_burst_then_one_submit_and_the_console_stays() -> None:
    # Both Enters reached the ticket: the first submitted and closed it, the second closed the screen
    # under it (the main screen: the console went blank).
    async with running() as c:
        form = await typed_ticket(c, "MSFT", "10", "388.00")
        form.query_one("#ticket-limit", Input).focus()
        await c.settle()

        await burst(c, "enter", "enter")

        assert len(c.engine.called("submit")) == 1
        assert c.app.main in c.app.screen_stack


async def test_order_ticket_when_a_second_enter_lands_on_the_approval_it_opened_then_nothing_is_answered() -> None:
    # The second Enter of a double tap pressed the approval's focused Reject: the order just submitted was
    # rejected "by the operator". The delay runs on a clock stepped here (on the wall clock, a loaded machine
    # could take longer than the delay between the two Enters).
    clock = [100.0]
    async with running(options=ConsoleOptions(approve_delay_s=5.0), approval_clock=lambda: clock[0]) as c:
        form = await typed_ticket(c, "MSFT", "10", "388.00")
        form.query_one("#ticket-limit", Input).focus()
        await c.pilot.press("enter")
        await c.settle(4)
        assert isinstance(c.app.screen, ApprovalModal)

        clock[0] += 4.9  # the delay is not over yet
        await c.pilot.press("enter")
        await c.settle()

        assert isinstance(c.app.screen, ApprovalModal)
        assert not c.engine.called("reject")
        await c.pilot.press("n")  # an explicit n still rejects at once
        await c.settle()
        assert len(c.engine.called("reject")) == 1


async def test_approval_when_y_comes_in_a_burst_then_one_order_approved_and_the_console_stays() -> None:
    # With no approve wait configured, the third y of a burst approved the next order too, as it opened.
    async with running(with_pending("tt-200", "tt-201"), options=ConsoleOptions(approve_delay_s=0)) as c:
        await c.approve_ready()

        await burst(c, "y", "y", "y")

        assert c.engine.called("approve") == [("approve", "tt-200", "operator")]
        assert isinstance(c.app.screen, ApprovalModal)
        assert c.app.screen.order_ref == "tt-201"
        assert c.app.main.approval is c.app.screen


async def test_approval_when_y_is_held_past_the_answer_then_the_next_approval_waits_out_the_key_repeat() -> None:
    # The next approval opened as y approved the first; the keyboard repeated the held y 0.66 s later (X11),
    # past the half-second wait, and it approved an order the operator had not seen.
    clock = [100.0]
    answers: list[bool | None] = []
    last_answer = LastAnswer()  # the queue's, as the main screen hands it to every approval it opens
    async with running() as c:
        first = ApprovalModal(pending(FROZEN, "tt-200"), 1, FROZEN, approve_delay_s=0.5, monotonic=lambda: clock[0],
                              last_answer=last_answer)
        c.app.push_screen(first, answers.append)
        await c.settle()
        clock[0] += 2.0
        await c.pilot.press("y")
        await c.settle()
        second = ApprovalModal(pending(FROZEN, "tt-201"), 0, FROZEN, approve_delay_s=0.5, monotonic=lambda: clock[0],
                               last_answer=last_answer)
        c.app.push_screen(second, answers.append)
        await c.settle()

        clock[0] += 0.66
        await c.pilot.press("y")  # the first repeat of the held key
        for _ in range(10):
            clock[0] += 0.033
            await c.pilot.press("y")
        await c.settle()
        assert answers == [True]
        assert c.app.screen is second

        clock[0] += 1.0  # released, and quiet for the wait: now y is the operator's
        await c.pilot.press("y")
        await c.settle()
        assert answers == [True, True]


async def test_approval_when_shown_again_after_a_dialog_covered_it_then_approve_waits_again() -> None:
    # Flatten opened over a ready approval (from the command palette) and confirmed with y: a second y of
    # the same tap, landing on the approval shown again, approved the order under it.
    clock = [100.0]
    answers: list[bool | None] = []
    async with running() as c:
        modal = await stepped_approval(c, clock, answers)
        clock[0] += 2.0
        assert modal.ready
        c.app.main.action_flatten()
        await c.settle(3)
        assert isinstance(c.app.screen, FlattenModal)

        await c.pilot.press("y")  # confirms the flatten
        await c.settle()
        assert c.app.screen is modal
        await c.pilot.press("y")
        await c.settle()

        assert answers == []
        assert c.engine.called("flatten") == [("flatten", True), ("flatten", False)]
        clock[0] += 0.5
        await c.pilot.press("y")
        await c.settle()
        assert answers == [True]


class LateFrame:
    """The next frame that shows ``screen`` on top reaches the terminal ``late_s`` late (a slow machine, a slow
    SSH link): the stepped ``clock`` moves on as that frame is displayed."""

    def __init__(self, app: App[Any], screen: Screen[Any], clock: list[float], late_s: float) -> None:
        self.pending = True
        """The late frame has not come yet."""
        display = app._display

        def late(shown: Screen[Any], renderable: Any) -> None:
            if self.pending and shown is screen and renderable is not None:
                self.pending = False
                clock[0] += late_s
            display(shown, renderable)

        app._display = late  # type: ignore[method-assign]


async def test_approval_when_its_first_frame_comes_after_the_delay_then_approve_waits_from_that_frame() -> None:
    # The delay ran from the mount: on a slow machine or SSH link the first frame came later than the delay,
    # Approve was live before the order was on screen, and a y meant for something else approved it unseen.
    clock = [100.0]
    answers: list[bool | None] = []
    async with running() as c:
        modal = ApprovalModal(pending(FROZEN), 0, FROZEN, approve_delay_s=0.5, monotonic=lambda: clock[0])
        frame = LateFrame(c.app, modal, clock, late_s=5.0)
        c.app.push_screen(modal, answers.append)
        await c.settle()
        await modal.wait_for_refresh()
        assert not frame.pending

        await c.pilot.press("y")  # typed as the order appears
        await c.settle()

        assert answers == []
        assert modal.query_one("#approve", Button).disabled
        clock[0] += 0.5  # quiet for the delay since the order was on screen: now y approves
        await c.pilot.press("y")
        await c.settle()
        assert answers == [True]


async def test_approval_when_the_frame_showing_it_again_comes_late_then_approve_waits_from_that_frame() -> None:
    # Shown again after Ctrl+Q's question closed, the wait ran from the resume, not from the frame showing
    # the approval again: a late frame left Approve live over a screen that still showed the question.
    clock = [100.0]
    answers: list[bool | None] = []
    async with running() as c:
        modal = await stepped_approval(c, clock, answers)
        clock[0] += 2.0
        assert modal.ready
        await c.pilot.press("ctrl+q")
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)
        frame = LateFrame(c.app, modal, clock, late_s=5.0)

        await c.pilot.press("escape")  # stay: the approval is shown again, 5 s later on the terminal
        await c.settle()
        await modal.wait_for_refresh()
        assert not frame.pending
        assert c.app.screen is modal
        await c.pilot.press("y")
        await c.settle()

        assert answers == []
        clock[0] += 0.5
        await c.pilot.press("y")
        await c.settle()
        assert answers == [True]


async def test_approval_when_its_order_is_rejected_under_a_crash_error_modal_then_the_error_modal_stays() -> None:
    # A worker crash halts trading (the kill rejects the pending order) and shows why; the approval closing
    # itself closed the screen on top instead: the error vanished unseen, the dead approval stayed.
    async with running(with_pending("tt-200")) as c:
        assert isinstance(c.app.screen, ApprovalModal)
        c.app.crashed("bridge-events", RuntimeError("event pump failed"))
        await c.pull()
        await c.settle(3)

        assert isinstance(c.app.screen, ErrorModal)
        await c.pilot.press("escape")
        await c.settle(3)
        assert c.app.screen is c.app.main
        assert c.app.main.approval is None
        assert not c.engine.called("approve")


async def test_approval_when_its_order_expires_under_the_quit_question_then_the_question_stays() -> None:
    async with running(with_pending("tt-200")) as c:
        modal = c.app.screen
        assert isinstance(modal, ApprovalModal)
        await c.pilot.press("ctrl+q")  # a priority key: it opens over the approval
        await c.settle()
        assert isinstance(c.app.screen, QuitModal)

        c.engine.expire("tt-200")
        await c.pull()
        await c.settle(3)

        assert isinstance(c.app.screen, QuitModal)
        assert modal.query_one("#approve").disabled
        await c.pilot.press("escape")
        await c.settle(3)
        assert c.app.screen is c.app.main
        assert not c.engine.called("stop")


class FlattenRefused(ScriptedEngine):
    """A scripted engine whose flatten preview is refused (disconnected from the broker, say)."""

    async def flatten(self, preview: bool = True, symbol: str | None = None,
                      expected: tuple[OrderTicket, ...] | None = None) -> FlattenPreview:
        self.calls.append(("flatten", preview))
        raise BrokerError("cannot flatten while disconnected from the broker")


async def test_flatten_when_the_preview_is_refused_then_it_says_why_and_y_sends_nothing() -> None:
    # The preview ran in the modal's own worker: its failure told nobody, and the modal read
    # "Loading the preview…" for as long as it stayed open.
    async with running(engine=FlattenRefused(normal_state())) as c:
        await c.pilot.press("f")
        await c.settle(3)
        modal = c.app.screen
        assert isinstance(modal, FlattenModal)

        summary = str(modal.query_one("#flatten-summary", Static).render())
        assert summary == ("No preview: cannot flatten while disconnected from the broker. Nothing can be sent "
                           "from here; Esc closes.")
        await c.pilot.press("y")
        await c.settle()
        assert c.app.screen is modal
        assert c.engine.called("flatten") == [("flatten", True)]
