"""TraderApp: bindings, commands, the engine and bridge workers, crash handling, quit.

Screens own their panes and widgets render what they are given; this class only wires them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from tui_trader.domain.enums import AlertLevel, Mode
from tui_trader.engine.collector import freeze_startup_heap, thaw_startup_heap
from tui_trader.engine.handle import EngineHandle
from tui_trader.errors import EngineProcessDied, TraderError
from tui_trader.ui.bridge import Bridge
from tui_trader.ui.commands import TraderCommands
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.modals.quit import QuitChoice, QuitModal, protected_positions, unprotected_positions
from tui_trader.ui.modals.reset_kill import ResetKillModal
from tui_trader.ui.options import Clock, ConsoleOptions, system_clock
from tui_trader.ui.screens.help import HelpScreen
from tui_trader.ui.screens.main import MainScreen
from tui_trader.ui.screens.preflight import PreflightScreen
from tui_trader.ui.strip_cycles import install as install_strip_fix
from tui_trader.ui.widgets.status_bar import KillBanner

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.engine.process.proxy import EngineProxy


log = logging.getLogger(__name__)

KILL_REDRAW_S = 0.05
"""After Ctrl+K the status bar says HALTED at once; the banner and panes follow this much later,
once the kill's cancels have gone out (a full redraw would otherwise run before them)."""


class TraderApp(App[int]):
    """The operator console."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-trader"
    COMMANDS = App.COMMANDS | {TraderCommands}
    ALLOW_IN_MAXIMIZED_VIEW = "#top, Footer, #filter-input"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+k", "kill_switch", "KILL", id="kill-switch", priority=True,
                tooltip="Kill switch: HALT now, cancel every working order, verify"),
        Binding("ctrl+r", "reset_kill", "Reset kill", id="reset-kill",
                tooltip="Release the kill switch (asks for a typed reason)"),
        Binding("question_mark,f1", "help", "Help", id="help", key_display="?", tooltip="Show every key"),
        Binding("q", "quit_console", "Quit", id="quit", tooltip="Quit (asks about working orders)"),
        Binding("ctrl+q", "quit_console", "Quit", show=False, priority=True),  # Textual's own quit asks nothing
    ]
    """App-wide keys; Ctrl+K has priority so it works from inputs, modals and the palette."""

    def __init__(self, handle: EngineHandle, options: ConsoleOptions, clock: Clock) -> None:
        install_strip_fix()  # painted lines freed by reference counting, not the cyclic collector
        super().__init__()
        self.handle = handle
        self.options = options
        self.main = MainScreen(handle, options, clock)
        self.bridge = Bridge(handle, self.main)
        self._reported: BaseException | None = None
        self.engine_gone: EngineProcessDied | None = None
        """Why the engine process is gone, once it is: nothing can be asked of it any more."""

    def on_mount(self) -> None:
        if self.options.theme in self.available_themes:
            self.theme = self.options.theme
        self.push_screen(self.main)
        self.bridge.subscribe()
        self.run_worker(self.handle.start(), name="engine", exit_on_error=False)
        self.run_worker(self.bridge.pump_events(), name="bridge-events", exit_on_error=False)
        self.set_interval(self.options.refresh_interval, self.bridge.pull, name="refresh")
        if self.options.mode is Mode.LIVE:
            self.main.armed = False
            self.main.preflight = PreflightScreen(self.options)
            self.push_screen(self.main.preflight, self._preflight_done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that fails halts trading and says why; the console stays open."""
        if event.state is WorkerState.ERROR:
            self.crashed(event.worker.name, event.worker.error)
        elif event.state is WorkerState.SUCCESS and event.worker.name == "engine":
            # Textual's DOM, the engine's book and ib_async's tickers (in-process engine) live for
            # the session: frozen out of full passes (one paused the loop 50–90 ms), and the
            # young generations collected between frames, not inside them (collector.py).
            self.call_after_refresh(freeze_startup_heap)

    def on_unmount(self) -> None:
        thaw_startup_heap()

    def crashed(self, name: str, error: BaseException | None) -> None:
        """Engage the kill switch, record a critical alert and show the error.

        One failure surfacing in two workers (the engine process gone: its ``start`` and the
        bridge's event pump both raise it) is reported once.
        """
        if error is not None and error is self._reported:
            return
        self._reported = error
        text = f"{type(error).__name__}: {error}" if error else "unknown error"
        what = f"worker '{name}' crashed: "
        if isinstance(error, EngineProcessDied):  # no bug of the console's: what happened and what now, as it says
            self.engine_gone, what, text = error, "", error.message
        try:
            self.handle.kill(f"console {what}{text}" if what else text, by="console", operator=False)
            halted = True
        except Exception as exc:  # the engine itself may be what broke: say so, never hide it
            text += f"\n\nThe kill switch could not be engaged: {exc}"
            halted = False
        if not self.is_running:  # the console is closing (its panes already gone): the log says it
            log.critical("worker '%s' crashed while the console closed: %s", name, text)
            return
        self.main.console_alert(AlertLevel.CRITICAL, f"{what}{text}")
        title = getattr(error, "title", None) or f"The {name} worker failed"
        self.push_screen(ErrorModal(title, text, halted=halted))

    def action_kill_switch(self) -> None:
        """Engage the kill switch: the engine is HALTED before this returns."""
        self.handle.kill("operator pressed Ctrl+K", by="operator")
        banner = self.main.query_one(KillBanner)
        if banner.engaged_at is not None:
            banner.check_pending(self.main.clock())
        else:  # its cancels count from now: an engine that hung or died never announces the engagement
            banner.engage(self.main.clock())
        self.main.show_state_now()
        self.set_timer(KILL_REDRAW_S, self.main.request_refresh)

    def action_reset_kill(self) -> None:
        """Ask for a typed reason, then release the kill switch."""
        snap = self.main.snapshot
        if snap is None or not snap.kill_engaged:
            self.notify("The kill switch is not engaged.")
            return
        self.push_screen(ResetKillModal(self.handle, snap.kill_reason, unprotected_positions(snap)), self._reset_done)

    def _reset_done(self, reason: str | None) -> None:
        self.main.request_refresh()  # the engine raises the reset's alert

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen([*self.BINDINGS, *MainScreen.BINDINGS]))

    def action_quit_console(self) -> None:
        """Quit; with working orders (leave or cancel them?) or unprotected positions, ask first."""
        snap = self.main.snapshot
        working = sum(1 for o in snap.orders if o.status.is_working) if snap else 0
        unprotected = unprotected_positions(snap) if snap else ()
        if working or unprotected:
            protected = protected_positions(snap) if snap and working else ()
            self.push_screen(QuitModal(working, unprotected, protected, self.engine_gone is not None),
                             self._quit_chosen)
        else:
            self._quit_chosen("leave")

    def _quit_chosen(self, choice: QuitChoice | None) -> None:
        if choice in ("leave", "cancel"):
            self.run_worker(self._stop_and_exit(cancel=choice == "cancel"), name="shutdown", exit_on_error=False)

    async def _stop_and_exit(self, *, cancel: bool) -> None:
        if cancel:
            try:
                await self.handle.cancel_all()
            except TraderError as error:  # e.g. the engine process is gone: say so and stay open
                self.main.console_alert(
                    AlertLevel.CRITICAL, f"working orders NOT cancelled: {error.message}; the console stays open"
                )
                self.notify(f"Working orders were not cancelled: {error.message}", severity="error", timeout=10)
                return
        await self.handle.stop()
        self.exit(0)

    def _preflight_done(self, armed: bool | None) -> None:
        self.main.preflight = None
        if armed:
            try:
                self.handle.arm(self.handle.snapshot().account_id)
            except TraderError as error:
                self.main.console_alert(AlertLevel.CRITICAL, f"not armed: {error.message}")
                return
            self.main.armed = True
            self.main.console_alert(AlertLevel.WARNING, "LIVE trading armed by the operator")
            self.main.request_refresh()  # waiting approvals open now, not at the next pull
        else:
            self._quit_chosen("leave")


def create_app(
    handle: EngineHandle, *, settings: Settings | None = None, clock: Clock | None = None
) -> TraderApp:
    """Build the console around ``handle`` (tests pass a scripted handle and a frozen clock)."""
    return TraderApp(handle, ConsoleOptions.from_settings(settings), clock or system_clock)


def run_console(settings: Settings, engine: EngineProxy | None = None) -> int:
    """Run the console until it quits, with the engine in a child process (or, if configured, in this one).

    Args:
        settings: The effective settings.
        engine: The engine process, if already spawned (the CLI spawns it before importing the
            console, so it boots meanwhile); this function closes it when the console quits.

    Returns:
        The exit code.
    """
    if settings.ui.engine_in_process and engine is None:
        from tui_trader.engine.factory import create_engine

        app = create_app(create_engine(settings), settings=settings)
        app.run()
        return app.return_code or 0
    if engine is None:
        from tui_trader.engine.process.proxy import spawn_engine

        engine = spawn_engine(settings)
    try:
        app = create_app(engine, settings=settings)
        app.run()
    finally:
        engine.close()  # the engine stops (orders stay at the broker) and its process exits
    return app.return_code or 0
