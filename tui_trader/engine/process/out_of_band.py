"""The kill the engine process cannot run: the clock of a kill sent and not yet taken, and the out-of-band kill.

:meth:`EngineProxy.kill <tui_trader.engine.process.proxy.EngineProxy.kill>` writes one message
and returns; until a snapshot says the engine has run it, the proxy shows HALTED, and a kill not
taken within :attr:`~tui_trader.engine.process.proxy_core.ProxyCore.kill_timeout_s` declares
the process hung. With the engine process gone, hung, or its kill failed, the out-of-band kill
(:mod:`tui_trader.ops.kill`) runs from the console instead: the latch in the journal, then a
global cancel with the kill's own client id.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tui_trader.domain.events import KillChecked
from tui_trader.engine.process import views
from tui_trader.engine.process.proxy_core import ProxyCore

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.ops.kill import CancelReport

log = logging.getLogger(__name__)


class LatchNotWritten(RuntimeError):
    """The out-of-band kill ran but could not write its latch to the journal (its report says why): it failed, and
    the next kill asks the latch again (:meth:`OutOfBandKill._fallback_failed`)."""


@dataclass(frozen=True, slots=True)
class SentKill:
    """A kill written to the engine process: until a snapshot's ``applied`` reaches ``id``, it may not have run."""

    id: int
    reason: str
    by: str
    cancel: bool
    """Whether its out-of-band stand-in cancels (an operator's kill) or only latches (see :meth:`EngineProxy.kill`)."""
    sent_at: float
    """``time.monotonic()`` when it was written."""


class OutOfBandKill(ProxyCore):
    """The proxy's part that runs a kill the engine process did not: its clock, and the out-of-band kill."""

    # -- the kill sent to the engine process ---------------------------------------------------

    def _pending_kill(self) -> SentKill | None:
        """The kill sent to the engine process, unless a snapshot since says the engine has run it."""
        kill = self._kill
        return kill if kill is not None and self._applied < kill.id else None

    def _restart_kill_clock(self) -> None:
        """The engine process could not have read the sent kill until now: its :attr:`kill_timeout_s` starts again."""
        if self._kill is not None:
            self._kill = replace(self._kill, sent_at=time.monotonic())

    # -- the out-of-band fallback --------------------------------------------------------------

    def _kill_out_of_band(self, reason: str, by: str, *, cancel: bool = True) -> None:
        why = self.failure.message if self.failure else "the engine process cannot be reached"
        self._latest = views.halted(views.down(self._latest, why), reason, by)
        running = self.fallback if self.fallback is not None and not self.fallback.done() else None
        if running is not None and (self._fallback_asked is None or self._fallback_asked[2] or not cancel):
            return  # the kill under way does as much
        if not cancel and self._fallback_asked is not None and not self._fallback_failed():
            return  # latched already (the process's death latches): the console's crash handling adds nothing
        # An operator's Ctrl+K during the console's own latch-only kill (a crash's) still cancels: after it.
        self.fallback = asyncio.get_running_loop().create_task(_after(running, lambda: out_of_band(
            self.settings, reason, by, cancel=cancel, on_report=self._cancelled_out_of_band,
            gateway=self.gateway_seen)))
        self.fallback.add_done_callback(self._fallback_done)
        self._fallback_asked = (reason, by, cancel)

    def _fallback_failed(self) -> bool:
        """The last out-of-band kill ended in an error (its latch may not have been written) or said its latch was
        not written (:class:`LatchNotWritten`): asked again."""
        task = self.fallback
        return task is not None and task.done() and not task.cancelled() and task.exception() is not None

    def _cancelled_out_of_band(self, report: CancelReport) -> None:
        """The orders shown as the out-of-band global cancel left them, and its check said as the engine says
        its own kill's (a :class:`KillChecked` on the console's subscriptions): the engine can no longer say."""
        if report.reachable:
            self._latest = views.after_global_cancel(self._latest, {r.order_ref for r in report.cancelled},
                                                     {r.order_ref for r in report.remaining})
        check = KillChecked(datetime.now(UTC), report.as_kill_report())
        for sub in self._subs.values():
            sub.offer(check)  # after the failure too: queued events are read first

    def _fallback_done(self, task: asyncio.Task[str]) -> None:
        if task.cancelled():  # the console's loop ended under it: close() runs it again
            self.fallback_outcome = "out-of-band kill cut short by the console's exit"
            return
        error = task.exception()
        self.fallback_outcome = f"out-of-band kill failed: {error!r}" if error else f"out-of-band kill: {task.result()}"
        why = self.failure.message if self.failure else "the engine process cannot be reached"
        self._latest = views.down(self._latest, f"{why}; {self.fallback_outcome}")

    def _finish_out_of_band(self) -> None:
        """Run again the out-of-band kill that the end of the console's loop cancelled (bounded).

        The console exiting by another path than quit (Ctrl+Q, a signal, an exception) ends its
        loop without :meth:`stop`, and the loop's end cancels the kill under way: the latch or
        the global cancel the operator asked for would be lost. Both are safe to repeat.
        """
        task, asked = self.fallback, self._fallback_asked
        cut_short = task is not None and (task.cancelled() or (not task.done() and task.get_loop().is_closed()))
        if not cut_short or asked is None:
            return
        self._fallback_asked = None
        reason, by, cancel = asked
        log.warning("the console exited during the out-of-band kill: running it again before the console ends")
        try:
            outcome = asyncio.run(asyncio.wait_for(out_of_band(self.settings, reason, by, cancel=cancel,
                                                               gateway=self.gateway_seen),
                                                   self.fallback_exit_timeout_s))
        except Exception as exc:  # the console is ending: say it in the log, the only place left
            log.critical("out-of-band kill failed on exit: %r", exc)
            self.fallback_outcome = f"out-of-band kill failed: {exc!r}"
        else:
            self.fallback_outcome = f"out-of-band kill: {outcome}"


async def _after(first: asyncio.Task[str] | None, then: Callable[[], Coroutine[Any, Any, str]]) -> str:
    """``then()`` once ``first`` (if any) has ended, however it ended (made only then: a wait the console's exit
    cuts short leaves no coroutine never awaited)."""
    if first is not None:
        await asyncio.wait((first,))
    return await then()


async def out_of_band(settings: Settings, reason: str, by: str, *, cancel: bool = True,
                      on_report: Callable[[CancelReport], None] | None = None,
                      gateway: tuple[str, int] | None = None) -> str:
    """The out-of-band kill (:mod:`tui_trader.ops.kill`) with its report as one line of text; its global cancel
    goes to ``gateway`` (host, port) when given, the one the engine was connected to.

    Raises:
        LatchNotWritten: The journal could not be written: the kill said so and went on (its global cancel was
            sent), but it is not latched, so a next engine would not start HALTED.
    """
    from rich.console import Console

    from tui_trader.ops.kill import EXIT_NOT_LATCHED, out_of_band_kill

    host, port = gateway or (None, None)
    text = io.StringIO()
    code = await out_of_band_kill(settings, reason, by=by, cancel=cancel, console=Console(file=text, width=160),
                                  on_report=on_report, host=host, port=port)
    report = " ".join(text.getvalue().split())
    log.warning("out-of-band kill (exit %d): %s", code, report)
    if code == EXIT_NOT_LATCHED:
        raise LatchNotWritten(report)
    return report

