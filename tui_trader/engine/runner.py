"""Headless runs: the engine without the console for a fixed duration, then a JSON summary.

``tui-trader --headless --sim --duration S --summary-json PATH`` calls :func:`run_headless`. The run ends S
seconds after it began, whatever the connection is doing then; SIGINT/SIGTERM end it early, and so does a
start that finds nothing to trade: no strategy enabled, or none of their symbols known to the broker (the
summary is written in every case). Alerts (WARNING and up) go to stderr as they happen, and so does one line as
the first connect begins, one as the first link is made, and the INFO alert that ends what one on stderr said (an
entry block lifted, the lost link back, a farm back, the schedule's REDUCING over: :class:`StderrFollow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_trader.domain.alerts import condition_of
from tui_trader.domain.enums import LINK_UP, AlertLevel, Mode
from tui_trader.domain.events import AlertRaised, ConnectionChanged, Event
from tui_trader.domain.money import money
from tui_trader.engine import core
from tui_trader.engine.collector import freeze_startup_heap, thaw_startup_heap
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.engine.recovery import SYNC_FAILED

if TYPE_CHECKING:
    from tui_trader.config import Settings, StrategySettings
    from tui_trader.engine.snapshots import ConnectionInfo

log = logging.getLogger(__name__)


def run_headless(settings: Settings, duration_s: float, summary_json: Path | None) -> int:
    """Run the engine for ``duration_s`` seconds and write the summary; returns the exit code."""
    return asyncio.run(headless_run(settings, duration_s, summary_json))


NEVER_CONNECTED = 3
"""Exit code of a headless run whose link to the broker never came up (no gateway there, say, or every sync after
the connect failed)."""
NO_ANSWER = "no answer before the run ended (is the gateway running, its API enabled?)"
"""Why a run never connected when no connect failed: the first was still waiting for an answer at the end."""
NOTHING_TO_TRADE = 4
"""Exit code of a headless run whose strategies could trade nothing: none enabled, or none of their symbols
known to the broker."""
TRADING_REFUSED = 5
"""Exit code of a headless run that refused to trade the connected account (``--paper`` on a live account, or not
the configured one): nothing was sent, and a supervisor must hear it."""


async def headless_run(settings: Settings, duration_s: float, summary_json: Path | None) -> int:
    """:func:`run_headless` in a running loop (SIGINT and SIGTERM end it early); returns the exit code."""
    ends_at = asyncio.get_running_loop().time() + duration_s
    engine = create_engine(settings)
    stop = StopSignal()
    stop.install()
    engine.add_tick_hook(lambda _: stop.set() if engine.nothing_to_trade else None)
    alerts = StderrAlerts()
    follow = StderrFollow(engine, alerts)
    steps = StartSteps(engine, alerts, settings.broker.connect_timeout)
    engine.add_service(steps.before_connect)
    starting = asyncio.ensure_future(engine.start())
    try:
        # Inside: a start that fails after the journal opened is stopped too, else aiosqlite's thread
        # (not a daemon) kept the process from exiting after the error.
        await _serve(engine, starting, stop, ends_at)
    finally:
        await engine.stop()  # a connect or warm-up still under way is given up
        await asyncio.wait({starting})
        thaw_startup_heap()  # as the console does on quitting: the process may go on (tests run it in-process)
        follow.flush()
        alerts.close()
    starting.result()  # a start that failed after the run's end raises too
    # Made once stopped: a fill that came while the engine stopped (an order sent just before the end) is
    # in the book and the journal, so in the summary too.
    summary = summarize(engine, steps.no_answer(stop.by))
    if summary_json is not None:
        await asyncio.to_thread(write_summary, summary_json, summary)
    log.info("headless run done: %s", summary)
    sys.stdout.write(outcome(summary, engine.connection) + "\n")
    sys.stdout.flush()
    if summary["never_connected"]:
        return NEVER_CONNECTED
    if summary["trading_refused"]:
        return TRADING_REFUSED
    return NOTHING_TO_TRADE if summary["nothing_to_trade"] else 0


class StopSignal(asyncio.Event):
    """Set by SIGINT or SIGTERM (:meth:`install`), or by the runner; :attr:`by` names the signal that set it."""

    by = ""

    def install(self) -> None:
        """Set this event on SIGINT and SIGTERM, in the running loop (where the platform allows)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self.by = self.by or sig.name
        self.set()


class StartSteps:
    """What a headless start says on stderr as it goes, and how far it got before the first connect.

    :meth:`before_connect` is an engine service: the engine starts its services once the journal is open
    (and, in ``--sim``, the embedded simulator listens), right before its first connect.
    """

    def __init__(self, engine: Engine, alerts: StderrAlerts, connect_timeout_s: float) -> None:
        self.engine = engine
        self.alerts = alerts
        self.connect_timeout_s = connect_timeout_s
        self.connecting = False
        """The first connect has begun."""

    def before_connect(self) -> None:
        """Say that nothing is to be traded when no strategy is enabled (the run stops once started), then that
        the first connect begins: a gateway that accepts and never answers holds it for the whole timeout, and
        nothing else was said meanwhile (the run looked hung). Only the first: each later attempt is logged."""
        idle = no_strategy_enabled(self.engine.config.strategies)
        if idle:
            self.engine.say_nothing_to_trade(idle)
        self.connecting = True
        where = f"{self.engine.connection.host}:{self.engine.connection.port}"
        self.alerts.say("broker", f"connecting to {where} (timeout {self.connect_timeout_s:g} s)...")

    def no_answer(self, stopped_by: str) -> str:
        """Why the run never connected if no connect failed (``stopped_by``: the signal that ended it, if one did).

        In ``--sim`` not the gateway's fault: the embedded simulator answers at once, the run ended first. Nor when
        the operator stopped the run while the connect waited (a SIGINT a moment into it), or while the sync after
        it was under way (the gateway had answered).
        """
        ended = f"stopped by {stopped_by}" if stopped_by else "the run ended"
        if self.engine.config.mode is Mode.SIM:
            return f"{ended} while {'connecting to' if self.connecting else 'starting'} the simulator"
        if not self.connecting:
            return f"{ended} before the connect began"
        if self.engine.account_id:  # read once the gateway answered the connect
            return f"{ended} during the sync after the connect"
        return f"{ended} before the connect was answered" if stopped_by else NO_ANSWER


def no_strategy_enabled(strategies: Sequence[StrategySettings]) -> str:
    """Why the strategies of a run can trade nothing before it connects (none enabled); "" when one is."""
    names = list(dict.fromkeys(s.name for s in strategies if not s.enabled))
    if any(s.enabled for s in strategies):
        return ""
    return f"no strategy is enabled ({', '.join(names)}: enabled = false)" if names else "no strategy is configured"


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
        positions = f"{never_connected_lead(summary)} {connection.host}:{connection.port}: {summary['never_connected']}"
    elif summary["nothing_to_trade"]:
        positions = f"nothing to trade: {summary['nothing_to_trade']}"
    elif summary["positions_match"]:
        positions = "positions match the broker's"
    else:
        positions = f"positions {summary['positions']} DO NOT MATCH the broker's {summary['broker_positions']}"
    refused = f" (trading refused: {summary['trading_refused']})" if summary["trading_refused"] else ""
    return (f"tui-trader headless {summary['mode']}{' dry run' if summary['dry_run'] else ''}"
            f"{' account ' + summary['account'] if summary['account'] else ''}: {summary['trading_state']}{refused}; "
            f"orders {orders}; fills {summary['fills']}; realized {summary['realized_pnl']:,.2f}, "
            f"unrealized {summary['unrealized_pnl']:,.2f}; {positions}")


def never_connected_lead(summary: dict[str, Any]) -> str:
    """How the outcome line leads in to why the link never came up: "never connected to" unless the gateway answered
    the connect (its account read, or a sync after it that failed), where that read as a contradiction ("never
    connected to H:P: connected, but the sync failed: …")."""
    answered = summary["account"] or summary["never_connected"].startswith(SYNC_FAILED)
    return "no working link to" if answered else "never connected to"


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

    def say(self, source: str, text: str) -> None:
        """Say on stderr, as an INFO line in the alerts' form, what the run is doing (and log it)."""
        log.info("%s: %s", source, text)
        self.show(source, text)

    def show(self, source: str, text: str) -> None:
        """Print an INFO line in the alerts' form on stderr (logged elsewhere, if at all)."""
        self.handle(ALERTS.makeRecord(ALERTS.name, logging.INFO, __file__, 0, "%s: %s", (source, text), None))

    def close(self) -> None:
        ALERTS.removeHandler(self)
        ALERTS.setLevel(self._level)
        super().close()


ALERTS = logging.getLogger(core.__name__)
"""Where :meth:`EngineCore.alert` logs every alert."""


class StderrFollow:
    """What a headless run says on stderr besides the alerts at WARNING and up, read from the engine's events: the
    first link made (the answer to the "connecting to" line) and the INFO alerts that end a condition an alert on
    stderr said began (:func:`~tui_trader.domain.alerts.condition_of`, which the notifications read too: a farm back,
    a halt over, a health figure back to normal). Without them stderr ended with "could not connect … trying again in
    17 s" after the link was back, or with "new entries blocked: …" lifted a millisecond later; the console shows
    both.

    Reads its own subscription, opened before the engine starts (so no alert of the start is missed), in an engine
    task; :meth:`flush` says what is still queued once the engine stopped.
    """

    def __init__(self, engine: Engine, alerts: StderrAlerts) -> None:
        self.engine, self.alerts = engine, alerts
        self._events = engine.subscribe("stderr", maxsize=10_000)
        self._said: set[str] = set()
        """The conditions alerts on stderr (WARNING and up) said began, until an alert says they are over."""
        self._linked = False
        engine.spawn(self._follow(), "stderr-follow")

    async def _follow(self) -> None:
        while True:
            self.on_event(await self._events.get())

    def flush(self) -> None:
        """Say what the events still queued call for."""
        for event in self._events.drain():
            self.on_event(event)

    def on_event(self, event: Event) -> None:
        """Note an alert said on stderr; show a lift of one, or the first link made."""
        if isinstance(event, AlertRaised):
            alert = event.alert
            condition, ends = condition_of(alert)
            if not condition:
                return
            if not ends:
                if alert.level.rank >= AlertLevel.WARNING.rank:
                    self._said.add(condition)
            elif condition in self._said:
                self._said.discard(condition)
                if alert.level is AlertLevel.INFO:  # one at WARNING and up is on stderr already
                    self.alerts.show(alert.source, alert.text)  # the engine logged it
        elif isinstance(event, ConnectionChanged) and event.state in LINK_UP and not self._linked:
            self._linked = True
            where = f"{self.engine.connection.host}:{self.engine.connection.port}"
            self.alerts.say("broker", f"connected to {where}: {event.detail}".removesuffix(": "))


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write the summary as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def summarize(engine: Engine, no_answer: str = NO_ANSWER) -> dict[str, Any]:
    """The run's summary: state, orders by final status, fills, positions, P&L, alerts (made after
    :meth:`Engine.stop` it is final: nothing is booked after the disconnect).

    The realized P&L and commissions are the run's, as its fills are: the book's beyond those it was taken up with
    (:attr:`~tui_trader.engine.reconcile_book.BookSettlement.book_at_start`; the book goes on from run to run);
    positions and unrealized P&L are the book's at the end. ``no_answer`` is why the run never connected when no
    connect failed (:meth:`StartSteps.no_answer`).
    """
    portfolio = engine.portfolio
    realized = portfolio.realized_pnl - engine.book_at_start[0]
    commissions = portfolio.commissions - engine.book_at_start[1]
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
        "trading_refused": engine.refusal,
        "kill_engaged": engine.risk.kill_state.engaged,
        # The run's orders: not those that had finished before it (the day's, shown after a restart).
        "orders": dict(Counter(o.status.value for o in engine.orders.orders.values()
                               if o.order_ref not in engine.orders.earlier)
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
        "never_connected": "" if engine.ever_linked else engine.connection.last_error_reason or no_answer,
        "nothing_to_trade": engine.nothing_to_trade,
    }
