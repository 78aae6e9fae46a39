"""``tui-trader kill``: the out-of-band kill switch, for when the console is frozen or not running.

1. Latch the kill state in the journal (KillSwitchEngaged and an OperatorAction, committed), marked
   ``out_of_band`` so a running engine's :class:`~tui_trader.ops.kill_watch.KillStateWatcher`
   halts it within a second, and a later start begins HALTED.
2. If the gateway is reachable, connect with the kill's own client id (``kill_switch.kill_client_id``,
   or ``--client-id``) and send a global cancel:
   every working order on the account, from any client. Print what was cancelled and what, if
   anything, is still working; journal that as an OperatorAction too. The gateway is ``--host``/``--port`` if
   given, else the one the engine running with the journal said it is connected to, if it runs in the kill's mode
   (:mod:`~tui_trader.ops.gateway_endpoint`), else the configured one (``--sim``: none, the simulator is the
   engine's). Where that is not known for certain, nothing is sent, and it says why, in the journal too
   (:mod:`~tui_trader.ops.kill_journal`).

The command line (and a configuration that does not load) is :mod:`tui_trader.ops.kill_cli`. The ib_async
adapter is loaded by name (only ``tui_trader.broker.ib`` may import ib_async).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib
import socket
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tui_trader.broker.base import BrokerOrderReport, ClientIdInUse, account_problem
from tui_trader.domain.enums import Mode
from tui_trader.domain.events import KillReport
from tui_trader.errors import UsageError
from tui_trader.ops import gateway_endpoint
from tui_trader.ops.gateway_endpoint import GatewayEndpoint, NotKnown
from tui_trader.ops.kill_journal import LATCH_ONLY, client_ids, latch, not_sent, record_cancel, sent
from tui_trader.store.lock import probe

if TYPE_CHECKING:
    from tui_trader.config import Settings

ADAPTER_MODULE = "tui_trader.broker.ib"
EXIT_OK, EXIT_REMAINING, EXIT_NOT_REACHED, EXIT_NOT_LATCHED, EXIT_OTHER_ENGINE, EXIT_CLIENT_ID_IN_USE = 0, 1, 3, 4, 5, 6
EXIT_GATEWAY_UNKNOWN, EXIT_ACCOUNT_REFUSED = 7, 8
"""Latched and nothing left working; latched but orders still working; latched but the gateway was not
reached (what works at the broker is not known: 0 would read as "all clear" to a script); the journal could
not be written, so the kill is not latched (the global cancel is still sent; its outcome is printed); no
engine runs with this journal but one runs with another mode's, so the running engine was not told;
latched, the gateway reached but it refused the kill's client id as in use (IB error 326; each of the ids it
tried, when the kill chose its id itself), so nothing was cancelled: run it again with another id (``--client-id``);
latched, but where the gateway is was not known for certain (a configuration that did not load and no
``--host``/``--port``; a ``--sim`` engine that has not said where its simulator listens; the engine running with the
journal is of another mode), so no global cancel was sent; latched, the gateway reached but logged into an account
the kill must not touch (``--paper`` on a live account, or not the configured one:
:func:`~tui_trader.broker.base.account_problem`), so nothing was sent."""
MAX_CLIENT_ID = 2**31 - 1
"""The highest API client id."""
CLIENT_ID_RETRIES = 5
"""How many more ids a kill that chose its client id itself tries, each refused as in use (error 326) in turn."""


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """Where the kill connects and how long it waits."""

    host: str
    port: int
    client_id: int
    account: str = ""
    connect_timeout_s: float = 5.0
    verify_timeout_s: float = 10.0
    whence: str = ""
    """Why this gateway, when that is worth saying before the cancel goes (the running engine's, not the
    configured one; the configured one, as the engine of this journal runs in another mode)."""
    mode: Mode = Mode.SIM
    """The kill's mode: ``--paper``'s cancel never goes to a live account (the engine refuses one the same way)."""
    spare_client_ids: tuple[int, ...] = ()
    """The ids the kill goes as in turn while the gateway refuses ``client_id`` as in use: only when the kill chose
    that id itself (the configured one was the running engine's), never the engine's; an id the operator chose is
    theirs (``--client-id``, ``kill_switch.kill_client_id``), and its refusal is said instead."""


@dataclass(frozen=True, slots=True)
class CancelReport:
    """The outcome of the global cancel."""

    reachable: bool
    cancelled: tuple[BrokerOrderReport, ...] = ()
    remaining: tuple[BrokerOrderReport, ...] = ()
    error: str = ""
    client_ids_in_use: tuple[int, ...] = ()
    """The kill's client ids the gateway refused as held by other API clients (error 326), as tried: nothing was
    sent."""
    account_refused: str = ""
    """Why the account the gateway is logged into is not the kill's to cancel on (nothing was sent)."""

    def as_kill_report(self) -> KillReport:
        """The outcome as the engine states its own kill's check (orders by orderRef): checked only when the
        gateway was reached, and then nothing is left working unless ``remaining`` says so."""
        return KillReport(tuple(map(_label, self.cancelled)), tuple(map(_label, self.remaining)),
                          checked=self.reachable)


@dataclass(frozen=True, slots=True)
class NotSent:
    """Why no global cancel was sent, and the exit code that says so."""

    why: str
    code: int


Gateway = Callable[[], "GatewayTarget | NotSent"]
"""Where the global cancel goes, or why it does not: asked after the latch's head start (a refusal of the
kill's client id as the engine's comes after the latch)."""


async def global_cancel(target: GatewayTarget) -> CancelReport:
    """Connect with the kill's client id, cancel every working order on the account, verify."""
    adapter: Any = importlib.import_module(ADAPTER_MODULE)
    broker = adapter.IbBroker(target.host, target.port, target.client_id, target.account, target.connect_timeout_s)
    try:
        await asyncio.wait_for(broker.connect(), target.connect_timeout_s)
    except ClientIdInUse as exc:
        broker.disconnect()
        return CancelReport(False, error=str(exc), client_ids_in_use=(exc.client_id,))
    except (ConnectionError, TimeoutError, OSError, RuntimeError) as exc:
        broker.disconnect()
        return CancelReport(False, error=f"{type(exc).__name__}: {exc}".strip(": "))
    try:
        # The engine refuses to trade an account its mode or configuration does not name; so does its kill: a global
        # cancel there would cancel orders (a live account's stops) this command was never meant to touch.
        problem = account_problem(broker.account_id, broker.managed_accounts(), target.account, target.mode)
        if problem:
            return CancelReport(False, error=f"trading refused: {problem}", account_refused=problem)
        return await _cancel_and_verify(broker, target.verify_timeout_s)
    finally:
        broker.disconnect()


async def _cancel_and_verify(broker: Any, verify_timeout_s: float) -> CancelReport:
    before = _working(await broker.open_orders(all_clients=True))
    broker.global_cancel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + verify_timeout_s
    remaining = before
    while remaining and loop.time() < deadline:
        await asyncio.sleep(0.2)
        remaining = _working(await broker.open_orders(all_clients=True))
    left = {_key(r) for r in remaining}
    return CancelReport(True, tuple(r for r in before if _key(r) not in left), tuple(remaining))


def _working(reports: list[BrokerOrderReport]) -> list[BrokerOrderReport]:
    return [r for r in reports if r.status is None or r.status.is_working]


def _label(report: BrokerOrderReport) -> str:
    """Its orderRef, or its broker id (an order placed outside tui-trader has no ref), as the engine names it."""
    return report.order_ref or f"broker#{report.broker_id}"


def _key(report: BrokerOrderReport) -> tuple[int, int, int]:
    return (report.perm_id, report.client_id, report.broker_id)


@dataclass(frozen=True, slots=True)
class KillSetup:
    """What a kill knows before its command line and the running engine: the settings' values, or, with a
    configuration that did not load, what of it reads (:func:`tui_trader.ops.kill_cli.setup_without_settings`)."""

    mode: Mode
    engine_client_id: int
    """The engine's API client id (``broker.client_id``): the kill never connects with it."""
    kill_client_id: int
    """The kill's own (``kill_switch.kill_client_id``), unless ``--client-id`` names another."""
    configured: tuple[str, int] | None
    """The configured gateway, host and port; None when it is not known for certain (the configuration did not
    load: a port guessed from the defaults may be another gateway's)."""
    account: str = ""
    connect_timeout_s: float = 10.0
    verify_timeout_s: float = 10.0
    engine_client_id_from: str = "broker.client_id"
    kill_client_id_from: str = "kill_switch.kill_client_id"
    """Where the two ids came from, as the refusal of one as the other names them."""


def setup_of(settings: Settings) -> KillSetup:
    """The kill's setup from loaded ``settings``: their client ids and gateway (``--sim``: the simulator's host)."""
    broker = settings.broker
    host = settings.sim.host if settings.mode is Mode.SIM else broker.host
    return KillSetup(settings.mode, broker.client_id, settings.kill_switch.kill_client_id,
                     (host, settings.broker_port), broker.account, broker.connect_timeout, broker.ack_timeout_s)


NOT_KNOWN = ("the configuration did not load, so where the gateway is is not known for certain (a port guessed "
             "from the defaults may be another gateway's)")
GIVE_BOTH = "To send it, run the kill again with the gateway's --host and --port."


def gateway_chooser(setup: KillSetup, journal: Path, *, client_id: int | None = None, host: str | None = None,
                    port: int | None = None, connect_timeout_s: float = 5.0) -> Gateway:
    """Where the global cancel of a kill with ``setup`` on ``journal`` goes, asked after the latch's head start
    (:func:`target_for`); ``--host`` without ``--port`` is refused now, before anything is done."""
    _refuse_host_without_port(setup.mode, host, port)

    def gateway() -> GatewayTarget | NotSent:
        return target_for(setup, journal, client_id, host=host, port=port, connect_timeout_s=connect_timeout_s)

    return gateway


def target_for(setup: KillSetup, journal: Path, client_id: int | None = None, *, host: str | None = None,
               port: int | None = None, connect_timeout_s: float = 5.0) -> GatewayTarget | NotSent:
    """Where the global cancel goes, with the kill's client id (``client_id``, ``--client-id``, else the setup's;
    never the engine's: :func:`_kill_client_ids`), or why it is not sent.

    ``host`` and ``port`` (the command line's) win, a missing one taken from the configured gateway (none known:
    not sent). Without them: the gateway the engine running with ``journal`` said it is connected to, when it runs
    in this mode (:mod:`~tui_trader.ops.gateway_endpoint`); else the configured one, but for ``--sim`` (its
    simulator is the engine's, and one on the configured port is another run's) and when none is known.
    """
    found = gateway_endpoint.running(journal, setup.mode)
    engine = found if isinstance(found, GatewayEndpoint) else None
    kill_ids, avoided = _kill_client_ids(setup, client_id, engine)
    target = GatewayTarget("", 0, kill_ids[0], setup.account, min(connect_timeout_s, setup.connect_timeout_s),
                           setup.verify_timeout_s, whence=avoided, mode=setup.mode, spare_client_ids=kill_ids[1:])
    configured = setup.configured
    if host is not None or port is not None:
        if host is not None and port is not None:
            return replace(target, host=host, port=port)
        if configured is None:
            return NotSent(f"{NOT_KNOWN}, and only one of --host and --port was given. {GIVE_BOTH}",
                           EXIT_GATEWAY_UNKNOWN)
        return replace(target, host=host or configured[0], port=port or configured[1])
    if isinstance(found, GatewayEndpoint):
        return replace(target, host=found.host, port=found.port, whence=_said(_engine_said(found, journal), avoided))
    if setup.mode is Mode.SIM:
        return _simulator_unknown(found, "give the simulator's " + ("--host and --port" if configured is None
                                                                    else "port: --port N"))
    if configured is None:
        return NotSent(f"{NOT_KNOWN}, and {found.why}. {GIVE_BOTH}", EXIT_GATEWAY_UNKNOWN)
    target = replace(target, host=configured[0], port=configured[1])
    if not found.engine_runs:
        return target
    return replace(target, whence=f"{found.why}: the global cancel goes to the configured gateway "
                                  f"{target.host}:{target.port}")


def _kill_client_ids(setup: KillSetup, client_id: int | None,
                     engine: GatewayEndpoint | None) -> tuple[tuple[int, ...], str]:
    """The kill's client id and the spare ids it may go as instead, and what to say of them ('' when nothing): never
    the engine's, which would take over the engine's session (IB drops the one it had), or be refused as in use and
    cancel nothing.

    ``client_id`` (``--client-id``), else the setup's kill client id. The configured engine's id (``setup``) is
    refused (UsageError), and so is ``--client-id`` naming the id the engine running with the journal said it
    connects with (``engine``: it may have been started with ``--client-id``, which the configuration does not
    know). The configured kill id that is the running engine's is not the operator's choice: the kill takes the
    next free id instead, and says so, rather than send nothing at the moment the kill is needed; and as that id may
    be another API client's, the next ones after it too (:data:`CLIENT_ID_RETRIES`).
    """
    chosen = "--client-id" if client_id is not None else setup.kill_client_id_from
    wanted = setup.kill_client_id if client_id is None else client_id
    if wanted == setup.engine_client_id:
        raise UsageError(f"the kill's client id ({chosen}: {wanted}) must differ from the engine's "
                         f"({setup.engine_client_id_from}: {setup.engine_client_id}): the kill must not take over "
                         "the engine's session; run it again with another: --client-id N")
    if engine is None or engine.client_id != wanted:
        return (wanted,), ""
    running = f"the engine running with this journal (process {engine.pid}) connects with client id {wanted}"
    if client_id is not None:
        raise UsageError(f"the kill's client id (--client-id: {wanted}) must differ from the engine's: {running}; "
                         "the kill must not take over the engine's session; run it again with another: --client-id N")
    others = tuple(islice(_free_client_ids(wanted, {setup.engine_client_id, wanted}), 1 + CLIENT_ID_RETRIES))
    return others, f"{running}, the kill's own ({chosen}): the global cancel goes as client {others[0]} instead"


def _free_client_ids(near: int, taken: set[int]) -> Iterator[int]:
    """The API client ids that are not ``taken``, nearest ``near`` first: those after it, then (at the top of the
    range) those before it."""
    return (i for i in chain(range(near + 1, MAX_CLIENT_ID + 1), range(near - 1, 0, -1)) if i not in taken)


def _said(*parts: str) -> str:
    """What the kill says before the cancel goes: the parts that say something, one sentence each."""
    return ". ".join(part for part in parts if part)


def _refuse_host_without_port(mode: Mode, host: str | None, port: int | None) -> None:
    """``--host`` and no ``--port``: refused (UsageError), in every mode, before anything is done.

    With ``--sim`` the port was the one the running engine's simulator said, and ``--host`` was dropped without a
    word: the cancel went to another host than the operator named. Any port put beside a host named on the
    command line is a guess for that host (the configured one may be another gateway's there, the running
    engine's is its own host's): a global cancel at a gateway guessed cancels another account's orders."""
    if host is not None and port is None:
        where = ("the simulator the running engine said it listens on, host and port" if mode is Mode.SIM else
                 "the gateway the running engine said it is connected to, else the configured one, host and port")
        raise UsageError(f"--host without --port: without them the cancel goes to {where}; to name another "
                         "gateway, give both --host and --port")


def _simulator_unknown(found: NotKnown, remedy: str) -> NotSent:
    """Why no cancel is sent for ``--sim`` when where the engine's simulator listens is not known: no engine runs
    with the journal (so neither does its simulator: nothing to cancel, exit 0), or it has not said, or it runs in
    another mode (7; ``remedy``: what to give on the command line)."""
    if not found.engine_runs:
        return NotSent(f"{found.why}, so neither does its simulator (one on the configured port would be another "
                       "run's)", EXIT_OK)
    if found.other_mode is not None:
        return NotSent(found.why, EXIT_GATEWAY_UNKNOWN)
    return NotSent(f"{found.why}. Run the kill again in a moment, or {remedy}", EXIT_GATEWAY_UNKNOWN)


def _engine_said(found: GatewayEndpoint, journal: Path) -> str:
    """Where the cancel goes, as the engine running with ``journal`` said it."""
    return (f"the engine running with this journal (process {found.pid}) said it is connected to "
            f"{found.host}:{found.port} ({gateway_endpoint.endpoint_path(journal).name})")


def default_operator() -> str:
    """``kill-cli:<user>@<host>``."""
    return f"kill-cli:{getpass.getuser()}@{socket.gethostname()}"


def print_report(console: Console, target: GatewayTarget, report: CancelReport, latched: bool = True) -> None:
    """What the global cancel did, as a table."""
    if not report.reachable:
        where = ("the kill is latched in the journal: a running engine halts, a new one starts HALTED" if latched
                 else "the kill is NOT latched either")
        console.print(Text(f"{_not_reached(target, report)}; {where}. Orders already at the broker were NOT "
                           "cancelled by this command.", style="yellow"))
        return
    console.print(f"global cancel sent to {target.host}:{target.port} as client {target.client_id}: "
                  f"{len(report.cancelled)} cancelled, {len(report.remaining)} still working")
    for title, rows in (("cancelled", report.cancelled), ("STILL WORKING", report.remaining)):
        if rows:
            console.print(_orders_table(title, rows))


def print_not_sent(console: Console, not_sent: NotSent) -> None:
    """Why no global cancel was sent."""
    style = "yellow" if not_sent.code != EXIT_OK else ""
    console.print(Text.assemble(("global cancel NOT sent: ", f"bold {style}".strip()), (not_sent.why, style)))


def _not_reached(target: GatewayTarget, report: CancelReport) -> str:
    """Why the global cancel was not sent: the gateway not reached, or its refusal of the kill's client id (it
    is up: "not reachable" sent the operator to check a gateway that was running)."""
    at = f"{target.host}:{target.port}"
    if report.account_refused:
        return (f"the gateway at {at} is logged into an account this kill must not cancel on: {report.account_refused}"
                "; nothing was sent there. Cancel in TWS, or run the kill in the account's mode (--live / --paper)")
    if not report.client_ids_in_use:
        return f"gateway {at} not reachable ({report.error})"
    each = "each" if len(report.client_ids_in_use) > 1 else "it"
    return (f"the gateway at {at} refused the kill's {client_ids(report.client_ids_in_use)}: {each} is in use "
            "(another API client connected with it, or a session the gateway has not dropped yet). Run the kill again "
            "with another id: tui-trader kill --client-id N (or set kill_switch.kill_client_id); not the engine's "
            "broker.client_id")


def _orders_table(title: str, rows: Sequence[BrokerOrderReport]) -> Table:
    """The orders, their type in the broker's words (``MIT``, not ``OTHER``: one the engine does not model)."""
    table = Table(title=title)
    for column in ("broker id", "client", "orderRef", "symbol", "side", "qty", "type", "limit", "stop"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r.broker_id), str(r.client_id), r.order_ref, r.symbol, r.side.value, f"{r.quantity:g}",
                      r.raw_order_type or r.order_type.value, _price(r.limit_price), _price(r.stop_price))
    return table


def _price(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


LATCH_HEAD_START_S = 1.0
"""How long the global cancel waits for the kill's latch in the journal before it goes anyway."""


async def out_of_band_kill(settings: Settings, reason: str, *, by: str | None = None,
                           journal_path: Path | None = None, cancel: bool = True, connect_timeout_s: float = 5.0,
                           client_id: int | None = None, host: str | None = None, port: int | None = None,
                           console: Console | None = None,
                           on_report: Callable[[CancelReport], None] | None = None) -> int:
    """Latch the kill in the journal, then global-cancel at the gateway; returns the exit code.

    Args:
        settings: Where the journal and the gateway are.
        reason: Why (journaled).
        by: Who (default: ``kill-cli:USER@HOST``).
        journal_path: The journal (default: the one ``settings`` names).
        cancel: Contact the gateway and cancel every working order.
        connect_timeout_s: Longest wait for the gateway connection.
        client_id: The API client id of the global cancel (default: ``kill_switch.kill_client_id``).
        host: The gateway's host, if given (default: the configured one).
        port: The gateway's port, if given (default: the one the running engine of this mode said it is
            connected to, else the configured one; ``--sim``: only the former).
        console: Where to print (default: stdout).
        on_report: Given the global cancel's report (the console shows its orders as the broker left them).
    """
    path = journal_path or settings.journal_path
    gateway = gateway_chooser(setup_of(settings), path, client_id=client_id, host=host, port=port,
                              connect_timeout_s=connect_timeout_s)
    journals = {mode: settings.model_copy(update={"mode": mode}).journal_path for mode in Mode}
    return await execute(path, journals, reason, by=by, gateway=gateway if cancel else None, console=console,
                         on_report=on_report)


async def execute(path: Path, journals: dict[Mode, Path], reason: str, *, by: str | None, gateway: Gateway | None,
                  console: Console | None = None, on_report: Callable[[CancelReport], None] | None = None) -> int:
    """The kill: latch ``path``, say an engine running with another of ``journals`` (every mode's), then the
    global cancel where ``gateway`` says (None: ``--no-cancel``); returns the exit code."""
    console = console or Console()
    by = by or default_operator()
    # The latch goes first, so that a running engine halts before the global cancel; but a journal whose
    # lock another writer holds (a frozen engine inside a write) made it wait out SQLite's busy timeouts,
    # 15 s, before the cancel: after LATCH_HEAD_START_S the cancel goes, the latch still on its way.
    latching = asyncio.ensure_future(_latch_and_say(console, path, by, reason, new=_is_new(path)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(latching), LATCH_HEAD_START_S)
    elsewhere = engines_elsewhere(journals, path)
    for mode, other in elsewhere:
        console.print(Text.assemble(("an engine runs with another journal: ", "bold red"), f"{other} ({mode.value}) "
                                    f"is in use, {path} is not. That engine was NOT told: run tui-trader kill "
                                    f"--{mode.value}."))
    try:
        target = gateway() if gateway is not None else NotSent(LATCH_ONLY, EXIT_OK)
    except UsageError as refused:  # the kill's client id is the engine's: the latch on its way is still awaited
        if await latching:
            await _record_cancel_and_say(console, path, by, reason, not_sent(refused.message))
        raise
    if isinstance(target, GatewayTarget) and target.whence:
        console.print(Text(target.whence))
    if isinstance(target, NotSent):
        latched = await latching
        if gateway is not None:
            print_not_sent(console, target)
        if latched:
            await _record_cancel_and_say(console, path, by, reason, not_sent(target.why))
        return EXIT_NOT_LATCHED if not latched else EXIT_OTHER_ENGINE if elsewhere else target.code
    target, report = await _cancel_as_a_free_id(console, target)
    latched = await latching
    if on_report is not None:
        on_report(report)
    if latched:
        await _record_cancel_and_say(console, path, by, reason, sent(report))
    print_report(console, target, report, latched)
    if not latched:
        return EXIT_NOT_LATCHED
    if elsewhere:
        return EXIT_OTHER_ENGINE
    if report.client_ids_in_use:
        return EXIT_CLIENT_ID_IN_USE
    if report.account_refused:
        return EXIT_ACCOUNT_REFUSED
    if not report.reachable:
        return EXIT_NOT_REACHED
    return EXIT_REMAINING if report.remaining else EXIT_OK


async def _cancel_as_a_free_id(console: Console, target: GatewayTarget) -> tuple[GatewayTarget, CancelReport]:
    """The global cancel as ``target``'s client id, and while the gateway refuses an id as in use, as each of its
    spare ids in turn (saying which): the target it went as last, and its report, naming every id refused."""
    refused: tuple[int, ...] = ()
    for client_id in (target.client_id, *target.spare_client_ids):
        if refused:
            console.print(Text(f"client id {refused[-1]} is in use at the gateway too: the global cancel goes as "
                               f"client {client_id} instead"))
        target = replace(target, client_id=client_id)
        report = await global_cancel(target)
        if not report.client_ids_in_use:
            return target, report
        refused += report.client_ids_in_use
    return target, replace(report, client_ids_in_use=refused)


def _is_new(journal: Path) -> bool:
    return not journal.exists()


def engine_holds(journal: Path) -> bool:
    """Whether a running engine holds ``journal`` (its writer lock, :class:`JournalLock`); looking creates nothing."""
    try:
        held, _ = probe(journal)
    except OSError:  # the lock file cannot be opened: not known, so not claimed
        return False
    return held


def engines_elsewhere(journals: dict[Mode, Path], journal: Path) -> list[tuple[Mode, Path]]:
    """When no engine holds ``journal``: the other modes' ``journals`` an engine holds now.

    Without a mode flag the kill takes the configured mode's journal; an operator running
    ``tui-trader --live`` with ``mode = "paper"`` configured latched the paper journal and
    cancelled at the paper gateway ("0 cancelled", exit 0) while the live engine traded on.
    """
    if engine_holds(journal):
        return []
    others = {path: mode for mode, path in journals.items()}
    return [(mode, path) for path, mode in others.items() if path != journal and engine_holds(path)]


async def _latch_and_say(console: Console, path: Path, by: str, reason: str, new: bool) -> bool:
    """Latch first (a running engine halts before the global cancel), but never instead of it.

    A journal that cannot be written (a frozen engine stuck inside a write holds its lock past the
    busy timeout; a path that cannot be opened) raised out of the command before the cancel, the one
    step that still reaches the broker: it is said, and the cancel goes ahead.
    """
    try:
        await latch(path, by, reason, datetime.now(UTC))
    except (sqlite3.Error, OSError) as exc:
        console.print(Text.assemble(("kill switch NOT latched", "bold red"), f": the journal {path} could not be "
                                    f"written ({exc}). A running engine is not told and a new one does not start "
                                    "HALTED: stop the engine (its process) before it trades again."))
        return False
    # Text, not markup: the operator's reason is printed as typed ("[x]" or ":X:" are not markup or emoji).
    console.print(Text.assemble(("kill switch latched", "bold red"), f" in {path} by {by}: {reason}"))
    if new:  # a mistyped --journal or mode: "latched" would be true of a file no running engine reads
        console.print(Text.assemble(("no journal was there: ", "bold yellow"), "this one is new, so no engine has "
                                    "run with it; an engine started with it starts HALTED. A running engine "
                                    "uses another journal: check --journal and the mode."))
    return True


async def _record_cancel_and_say(console: Console, path: Path, by: str, reason: str,
                                 outcome: tuple[str, str]) -> None:
    """Journal the cancel's outcome (sent or not); the kill is latched already, so a failure here only loses this
    record."""
    try:
        await record_cancel(path, by, reason, outcome)
    except (sqlite3.Error, OSError) as exc:
        console.print(Text(f"the global cancel's outcome was not journaled ({exc}); the kill stays latched.",
                           style="yellow"))
