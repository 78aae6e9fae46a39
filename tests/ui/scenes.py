"""Deterministic scenes shared by the snapshot tests and ``scripts/screenshots.py``.

Each scene is a scripted engine state plus what to do before the picture is taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from textual.pilot import Pilot
from textual.widgets import Input

from tui_trader.domain.enums import Mode, OrderStatus, OrderType, Side
from tui_trader.domain.orders import OrderTicket, StatusChange, hold_note
from tui_trader.engine.snapshots import EngineSnapshot, PendingModification
from tui_trader.ui.app import TraderApp, create_app
from tui_trader.ui.demo import (
    FROZEN,
    disconnected_state,
    halted_events,
    halted_state,
    make_order,
    normal_state,
    pending,
    prime_histories,
    protected_state,
    stalled_state,
    storm_alerts,
)
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.scripted_engine import ScriptedEngine

Before = Callable[[Pilot[int]], Awaitable[None]]


def with_approvals() -> EngineSnapshot:
    """Three orders waiting for approval."""
    base = normal_state()
    items = tuple(pending(FROZEN, ref=f"tt-20{i}", seconds_left=24 - 5 * i) for i in range(3))
    return replace(base, pending_approvals=items)


def with_modifying() -> EngineSnapshot:
    """Orders the broker has not confirmed as shown: a modify of an entry and of AAPL's protective stop
    unanswered (the figures the broker holds, then the ones asked), and a short sale held for a locate."""
    base = normal_state()
    entry = next(o for o in base.orders if o.order_ref == "tt-100")
    entry_asked = replace(entry.ticket, quantity=80, limit_price=round(entry.ticket.limit_price - 0.5, 2))  # type: ignore[operator]
    stop_held = OrderTicket("AAPL", Side.BUY, 100, OrderType.STP, stop_price=220.48, reduce_only=True,
                            strategy="ema_cross")
    stop = make_order("tt-110", replace(stop_held, stop_price=218.00), OrderStatus.SUBMITTED, FROZEN)
    short = make_order("tt-111", OrderTicket("GOOGL", Side.SELL, 40, OrderType.LMT, limit_price=163.10,
                                             strategy="manual"), OrderStatus.SUBMITTED, FROZEN)
    short = replace(short, history=(StatusChange(OrderStatus.SUBMITTED, FROZEN, hold_note("locate")),))
    orders = tuple(replace(o, ticket=entry_asked) if o is entry else o for o in base.orders) + (stop, short)
    working = (*base.account.working_orders, replace(stop, ticket=stop_held), short)
    return replace(base, orders=orders, account=replace(base.account, working_orders=working),
                   modifications={"tt-100": PendingModification(entry.ticket, entry_asked),
                                  "tt-110": PendingModification(stop_held, stop.ticket)})


def scene(name: str) -> tuple[TraderApp, Before]:
    """The app and the pre-screenshot steps of scene ``name``."""
    state, keys, events, options = SCENES[name]
    engine = ScriptedEngine(state(), start_events=events())
    app = create_app(engine, clock=lambda: FROZEN)
    if options is not None:
        app.options = options
        app.main.options = options

    async def before(pilot: Pilot[int]) -> None:
        await pilot.pause()
        # Draw once before seeding: otherwise, when the refresh timer's first pull comes late (a
        # loaded machine), that draw appends the quotes and an equity sample after the seeded
        # histories and the sparklines differ.
        app.main.request_refresh()
        prime_histories(app, engine.state)
        app.main.request_refresh()
        await pilot.pause()
        if name == "error":
            app.push_screen(ErrorModal("The engine worker failed", "RuntimeError: gateway handshake failed "
                                       "(no reply to startApi within 10 s)", halted=True))
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        for screen in app.screen_stack:
            for box in screen.query(Input):
                box.cursor_blink = False  # a blinking cursor would make the picture time-dependent
        for _ in range(8):
            await pilot.pause(0.02)
        app.main.request_refresh()
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return app, before


def _none() -> list:
    return []


LIVE = ConsoleOptions(mode=Mode.LIVE, expected_account="U7654321")
READY = ConsoleOptions(approve_delay_s=0)
"""The approval as the operator sees it once Approve works (the picture must not depend on when it is taken)."""

SCENES: dict[str, tuple[Callable[[], EngineSnapshot], tuple[str, ...], Callable[[], list], ConsoleOptions | None]] = {
    "normal": (normal_state, (), _none, None),
    "halted": (halted_state, (), halted_events, None),
    "disconnected": (disconnected_state, (), _none, None),
    "stalled": (stalled_state, (), _none, None),
    "alert_storm": (normal_state, (), lambda: storm_alerts(FROZEN), None),
    "modifying": (with_modifying, (), _none, None),
    "approval": (with_approvals, (), _none, READY),
    "reset_kill": (halted_state, ("ctrl+r", *"feed checked, resuming"), halted_events, None),
    "flatten": (normal_state, ("f",), _none, None),
    "order_ticket": (normal_state, ("n", "tab", "tab", *"100", "tab", "tab", *"210.50"), _none, None),
    "quit": (protected_state, ("q",), _none, None),  # four positions' stops working, one without
    "error": (halted_state, (), halted_events, None),
    "help": (normal_state, ("question_mark",), _none, None),
    "strategies": (normal_state, ("p",), _none, None),
    "preflight": (lambda: replace(normal_state(), mode=Mode.LIVE, account_id="U7654321"), (), _none, LIVE),
    "order_trace": (normal_state, ("3", *["down"] * 5, "t"), _none, None),  # tt-107, filled
    "trace_export": (normal_state, ("3", *["down"] * 5, "t", "e"), _none, None),
}
MAIN_STATES = ("normal", "halted", "disconnected", "stalled", "alert_storm", "modifying")
MODALS = ("approval", "reset_kill", "flatten", "order_ticket", "quit", "error", "help", "strategies", "preflight",
          "order_trace", "trace_export")
