"""Headless runs: the engine without the console for a fixed duration, then a JSON summary.

``tui-trader --headless --sim --duration S --summary-json PATH`` calls :func:`run_headless`. The run ends S
seconds after it began, whatever the connection is doing then; SIGINT/SIGTERM end it early, and so does a
start that finds nothing to trade (the summary is written in every case).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_trader.domain.money import money
from tui_trader.engine import core
from tui_trader.engine.collector import freeze_startup_heap, thaw_startup_heap
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine

if TYPE_CHECKING:
    from tui_trader.config import Settings
    from tui_trader.engine.snapshots import ConnectionInfo

log = logging.getLogger(__name__)


def run_headless(settings: Settings, duration_s: float, summary_json: Path | None) -> int:
    """Run the engine for ``duration_s`` seconds and write the summary; returns the exit code."""
    return asyncio.run(_run(settings, duration_s, summary_json))


NEVER_CONNECTED = 3
"""Exit code of a headless run that never reached the broker (no gateway there, say)."""
NO_ANSWER = "no answer before the run ended (is the gateway running, its API enabled?)"
"""Why a run never connected when no connect failed: the first was still waiting for an answer at the end."""
NOTHING_TO_TRADE = 4
"""Exit code of a headless run whose strategies could trade none of their symbols (none known to the broker)."""


async def _run(settings: Settings, duration_s: float, summary_json: Path | None) -> int:
    ends_at = asyncio.get_running_loop().time() + duration_s
    engine = create_engine(settings)
    book_at_start = (0.0, 0.0)

    def note_book_at_start() -> None:  # a service starts once the journal has restored the book, before
        nonlocal book_at_start         # the fills this run books (those done while nobody ran included)
        book_at_start = book_totals(engine)

    engine.add_service(note_book_at_start)
    stop = asyncio.Event()
    _install_signals(stop)
    engine.add_tick_hook(lambda _: stop.set() if engine.nothing_to_trade else None)
    alerts = StderrAlerts()
    starting = asyncio.ensure_future(engine.start())
    try:
        # Inside: a start that fails after the journal opened is stopped too, else aiosqlite's thread
        # (not a daemon) kept the process from exiting after the error.
        await _serve(engine, starting, stop, ends_at)
    finally:
        await engine.stop()  # a connect or warm-up still under way is given up
        await asyncio.wait({starting})
        thaw_startup_heap()  # as the console does on quitting: the process may go on (tests run it in-process)
        alerts.close()
    starting.result()  # a start that failed after the run's end raises too
    # Made once stopped: a fill that came while the engine stopped (an order sent just before the end) is
    # in the book and the journal, so in the summary too.
    summary = summarize(engine, book_at_start)
    if summary_json is not None:
        await asyncio.to_thread(write_summary, summary_json, summary)
    log.info("headless run done: %s", summary)
    sys.stdout.write(outcome(summary, engine.connection) + "\n")
    sys.stdout.flush()
    if summary["never_connected"]:
        return NEVER_CONNECTED
    return NOTHING_TO_TRADE if summary["nothing_to_trade"] else 0


async def _serve(engine: Engine, starting: asyncio.Future[None], stop: asyncio.Event, ends_at: float) -> None:
    """Wait for the start (a failed one raises here), then the end of the run: ``ends_at`` (loop time), a signal or
    nothing to trade. The duration counts from the run's beginning: a start still connecting (a gateway that
    accepts and never answers holds a connect for its whole timeout) is no longer waited out before it."""
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopped}, timeout=max(ends_at - loop.time(), 0),
                           return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            return
        starting.result()
        freeze_startup_heap()
        await asyncio.wait({stopped}, timeout=max(ends_at - loop.time(), 0))
        engine.lapse_unsent("the run ended")
    finally:
        stopped.cancel()


def outcome(summary: dict[str, Any], connection: ConnectionInfo) -> str:
    """The run in one line, for the terminal that started it."""
    orders = ", ".join(f"{n} {status}" for status, n in sorted(summary["orders"].items())) or "none"
    unsent = [f"{n} {what}" for what, n in (("denied by risk", summary["denied"]),
                                            ("dry run", summary["dry_run_orders"])) if n]
    if unsent:
        orders += f" ({', '.join(unsent)})"
    if summary["never_connected"]:
        positions = f"never connected to {connection.host}:{connection.port}: {summary['never_connected']}"
    elif summary["nothing_to_trade"]:
        positions = f"nothing to trade: {summary['nothing_to_trade']}"
    elif summary["positions_match"]:
        positions = "positions match the broker's"
    else:
        positions = f"positions {summary['positions']} DO NOT MATCH the broker's {summary['broker_positions']}"
    return (f"tui-trader headless {summary['mode']}{' dry run' if summary['dry_run'] else ''}"
            f"{' account ' + summary['account'] if summary['account'] else ''}: {summary['trading_state']}; "
            f"orders {orders}; fills {summary['fills']}; realized {summary['realized_pnl']:,.2f}, "
            f"unrealized {summary['unrealized_pnl']:,.2f}; {positions}")


class StderrAlerts(logging.StreamHandler):
    """Nobody watches a console: the alerts the engine logs (``EngineCore.alert``) at WARNING and above
    go to stderr as they happen, whatever the log file's level. :meth:`close` detaches it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(message)s", "%H:%M:%S"))
        self._level = ALERTS.level
        ALERTS.setLevel(min(ALERTS.getEffectiveLevel(), logging.WARNING))
        ALERTS.addHandler(self)

    def close(self) -> None:
        ALERTS.removeHandler(self)
        ALERTS.setLevel(self._level)
        super().close()


ALERTS = logging.getLogger(core.__name__)
"""Where :meth:`EngineCore.alert` logs every alert."""


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write the summary as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def book_totals(engine: Engine) -> tuple[float, float]:
    """The book's realized P&L (net) and commissions, over every run of its journal."""
    return engine.portfolio.realized_pnl, engine.portfolio.commissions


def summarize(engine: Engine, book_at_start: tuple[float, float] = (0.0, 0.0)) -> dict[str, Any]:
    """The run's summary: state, orders by final status, fills, positions, P&L, alerts (made after
    :meth:`Engine.stop` it is final: nothing is booked after the disconnect).

    ``book_at_start`` is :func:`book_totals` as the journal restored them: the realized P&L and
    commissions are the run's, as its fills are (the book goes on from run to run); positions and
    unrealized P&L are the book's at the end.
    """
    portfolio = engine.portfolio
    realized, commissions = book_totals(engine)
    realized, commissions = realized - book_at_start[0], commissions - book_at_start[1]
    session_fills = engine.session_fills()
    broker_positions = engine.broker_positions_at_stop
    if broker_positions is None:  # still running
        broker_positions = engine.broker_quantities()
    positions = {s: p.quantity for s, p in sorted(portfolio.open_positions().items())}
    return {
        "mode": engine.config.mode.value,
        "dry_run": engine.config.dry_run,
        "account": engine.account_id,
        "trading_state": engine.trading_state.value,
        "kill_engaged": engine.risk.kill_state.engaged,
        "orders": dict(Counter(o.status.value for o in engine.orders.orders.values())
                       + Counter({s.value: n for s, n in engine.orders.forgotten.items()})),
        "denied": engine.unsent_counts["denied"],
        "dry_run_orders": engine.unsent_counts["dry_run"],
        "fills": len(session_fills),
        "positions": positions,
        "broker_positions": dict(sorted(broker_positions.items())),
        "positions_match": positions == broker_positions,
        "realized_pnl": money(realized),
        "unrealized_pnl": money(portfolio.unrealized_pnl),
        "commissions": money(commissions),
        "alerts": dict(engine.alert_counts),
        "reconnects": engine.reconnects,
        "entries_blocked": engine.entries_blocked_reason,
        "never_connected": "" if engine.account_id else engine.connection.last_error_reason or NO_ANSWER,
        "nothing_to_trade": engine.nothing_to_trade,
    }
