"""Deterministic scenes shared by the snapshot tests and ``scripts/screenshots.py``.

Each scene is a scripted engine state plus what to do before the picture is taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from textual.pilot import Pilot
from textual.widgets import Input

from tui_trader.domain.enums import Mode
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.app import TraderApp, create_app
from tui_trader.ui.demo import (
    FROZEN,
    ScriptedEngine,
    disconnected_state,
    halted_events,
    halted_state,
    normal_state,
    pending,
    prime_histories,
    stalled_state,
    storm_alerts,
)
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.options import ConsoleOptions

Before = Callable[[Pilot[int]], Awaitable[None]]


def with_approvals() -> EngineSnapshot:
    """Three orders waiting for approval."""
    base = normal_state()
    items = tuple(pending(FROZEN, ref=f"tt-20{i}", seconds_left=24 - 5 * i) for i in range(3))
    return replace(base, pending_approvals=items)


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
    "approval": (with_approvals, (), _none, READY),
    "reset_kill": (halted_state, ("ctrl+r", *"feed checked, resuming"), halted_events, None),
    "flatten": (normal_state, ("f",), _none, None),
    "order_ticket": (normal_state, ("n", "tab", "tab", *"100", "tab", "tab", *"210.50"), _none, None),
    "quit": (normal_state, ("q",), _none, None),
    "error": (halted_state, (), halted_events, None),
    "help": (normal_state, ("question_mark",), _none, None),
    "strategies": (normal_state, ("p",), _none, None),
    "preflight": (lambda: replace(normal_state(), mode=Mode.LIVE, account_id="U7654321"), (), _none, LIVE),
    "order_trace": (normal_state, ("3", *["down"] * 5, "t"), _none, None),  # tt-107, filled
    "trace_export": (normal_state, ("3", *["down"] * 5, "t", "e"), _none, None),
}
MAIN_STATES = ("normal", "halted", "disconnected", "stalled", "alert_storm")
MODALS = ("approval", "reset_kill", "flatten", "order_ticket", "quit", "error", "help", "strategies", "preflight",
          "order_trace", "trace_export")
