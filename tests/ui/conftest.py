"""Console test helpers: a running app around a scripted engine with frozen time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot

from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.app import TraderApp, create_app
from tui_trader.ui.demo import FROZEN, normal_state, pending
from tui_trader.ui.modals.approval import ApprovalModal
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.scripted_engine import ScriptedEngine

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
"""The two terminal sizes the console is checked at: a small VPS terminal over SSH, and a roomy one."""


@dataclass
class Console:
    """A running console: the app, its scripted engine and the pilot."""

    app: TraderApp
    engine: ScriptedEngine
    pilot: Pilot[int]

    async def settle(self, times: int = 2) -> None:
        """Let queued messages (snapshots, events, screen changes) run."""
        for _ in range(times):
            await self.pilot.pause()

    async def eventually(self, predicate: Callable[[], object], what: str = "", within: float = 10.0) -> None:
        """Let the console run (a pilot pause at a time: its messages handled, the screen redrawn) until
        ``predicate()`` holds; fail after ``within`` seconds (loop time: generous, reached only when broken).

        For a state the console comes to and stays in; what it must not do is asserted once it got there.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            if loop.time() > deadline:
                pytest.fail(f"condition not met within {within}s: {what or predicate}")
            await self.pilot.pause()

    async def approve_ready(self) -> None:
        """Wait (bounded) until the approval modal on screen takes ``y`` (its approve delay is over)."""
        screen = self.app.screen
        await self.eventually(lambda: getattr(screen, "ready", False), f"{screen!r} taking y")

    async def pull(self) -> None:
        """Pull a snapshot now and let the screen draw it."""
        self.app.main.request_refresh()
        await self.settle()


def screen_lines(app: App[Any]) -> list[str]:
    """The text of every line of the screen on top, as the terminal shows it (after the last refresh)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


class Updates:
    """The screen updates sent to the driver: the lines each touched, and their text."""

    def __init__(self, app: App[Any]) -> None:
        self.lines: list[set[int]] = []
        self.text: list[str] = []
        display = app._display

        def record(screen: Any, renderable: Any) -> None:
            if renderable is not None:
                spans = getattr(renderable, "spans", None)
                self.lines.append({y for y, _, _ in spans} if spans is not None else set(range(app.size.height)))
                self.text.append(renderable.render_segments(app.console))
            display(screen, renderable)

        app._display = record  # type: ignore[method-assign]

    def touched(self) -> set[int]:
        """Every line any update touched."""
        return set().union(*self.lines)


def build_app(engine: ScriptedEngine, options: ConsoleOptions | None = None,
              approval_clock: Callable[[], float] | None = None) -> TraderApp:
    """An app with the frozen clock (and ``options``, and the approvals' clock, when given)."""
    app = create_app(engine, clock=lambda: FROZEN)
    if options is not None:
        app.options = options
        app.main.options = options
    if approval_clock is not None:
        app.main.approval_clock = approval_clock
    return app


@asynccontextmanager
async def running(
    state: EngineSnapshot | None = None,
    *,
    engine: ScriptedEngine | None = None,
    size: tuple[int, int] = (120, 40),
    options: ConsoleOptions | None = None,
    approval_clock: Callable[[], float] | None = None,
) -> AsyncIterator[Console]:
    """Run the console on a scripted engine until the block ends.

    A test that presses keys while an approval's delay runs passes ``approval_clock`` and steps it: on the
    wall clock, a loaded machine can take longer than the delay between two keys.
    """
    engine = engine or ScriptedEngine(state or normal_state())
    app = build_app(engine, options, approval_clock)
    async with app.run_test(size=size) as pilot:
        console = Console(app, engine, pilot)
        await console.pull()
        yield console


async def stepped_approval(c: Console, clock: list[float], answers: list[bool | None]) -> ApprovalModal:
    """An approval (a 0.5 s delay on ``clock``, stepped by hand) pushed over the console and drawn; its answers go
    to ``answers``."""
    modal = ApprovalModal(pending(FROZEN), 0, FROZEN, approve_delay_s=0.5, monotonic=lambda: clock[0])
    c.app.push_screen(modal, answers.append)
    await c.settle()
    return modal
