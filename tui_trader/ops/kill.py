"""``tui-trader kill``: the out-of-band kill switch, for when the console is frozen or not running.

1. Latch the kill state in the journal (KillSwitchEngaged and an OperatorAction, committed), marked
   ``out_of_band`` so a running engine's :class:`~tui_trader.ops.kill_watch.KillStateWatcher`
   halts it within a second, and a later start begins HALTED.
2. If the gateway is reachable, connect with the kill's own client id (``kill_switch.kill_client_id``,
   or ``--client-id``) and send a global cancel:
   every working order on the account, from any client. Print what was cancelled and what, if
   anything, is still working; journal that as an OperatorAction too.

The ib_async adapter is loaded by name (only ``tui_trader.broker.ib`` may import ib_async).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import importlib
import math
import socket
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tui_trader.broker.base import BrokerOrderReport, ClientIdInUse
from tui_trader.domain.enums import Mode, TradingState
from tui_trader.domain.events import KillReport, KillSwitchEngaged, OperatorAction
from tui_trader.errors import UsageError
from tui_trader.ops.modes import add_mode_flags, settings_for
from tui_trader.store.journal import Journal
from tui_trader.store.lock import JournalInUse, JournalLock

if TYPE_CHECKING:
    from tui_trader.config import Settings

ADAPTER_MODULE = "tui_trader.broker.ib"
EXIT_OK, EXIT_REMAINING, EXIT_NOT_REACHED, EXIT_NOT_LATCHED, EXIT_OTHER_ENGINE, EXIT_CLIENT_ID_IN_USE = 0, 1, 3, 4, 5, 6
"""Latched and nothing left working; latched but orders still working; latched but the gateway was not
reached (what works at the broker is not known: 0 would read as "all clear" to a script); the journal could
not be written, so the kill is not latched (the global cancel is still sent; its outcome is printed); no
engine runs with this journal but one runs with another mode's, so the running engine was not told;
latched, the gateway reached but it refused the kill's client id as in use (IB error 326), so nothing was
cancelled: run it again with another id (``--client-id``)."""


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """Where the kill connects and how long it waits."""

    host: str
    port: int
    client_id: int
    account: str = ""
    connect_timeout_s: float = 5.0
    verify_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class CancelReport:
    """The outcome of the global cancel."""

    reachable: bool
    cancelled: tuple[BrokerOrderReport, ...] = ()
    remaining: tuple[BrokerOrderReport, ...] = ()
    error: str = ""
    client_id_in_use: int | None = None
    """The kill's client id the gateway refused as held by another API client (error 326): nothing was sent."""

    def as_kill_report(self) -> KillReport:
        """The outcome as the engine states its own kill's check (orders by orderRef): checked only when the
        gateway was reached, and then nothing is left working unless ``remaining`` says so."""
        return KillReport(tuple(map(_label, self.cancelled)), tuple(map(_label, self.remaining)),
                          checked=self.reachable)


def kill_state(by: str, reason: str, when: datetime) -> dict[str, Any]:
    """The latched kill state as the engine persists it, marked out of band."""
    return {"engaged": True, "by": by, "reason": reason, "engaged_at": when.isoformat(), "trigger": "manual",
            "auto": False, "out_of_band": True}


async def latch(journal_path: Path, by: str, reason: str, when: datetime) -> None:
    """Write the kill to the journal (events and latched state), committed before this returns."""
    journal = await Journal.open(journal_path)
    try:
        journal.append(KillSwitchEngaged(when, by, reason))
        journal.append(OperatorAction(when, by, "kill", reason, "", TradingState.HALTED.value))
        await journal.save_kill_state(kill_state(by, reason, when), when)
    finally:
        await journal.close()


async def record_cancel(journal_path: Path, by: str, reason: str, report: CancelReport) -> None:
    """Journal the global cancel's outcome as an operator action."""
    when = datetime.now(UTC)
    before = (f"{len(report.cancelled) + len(report.remaining)} working" if report.reachable
              else f"client id {report.client_id_in_use} in use at the gateway" if report.client_id_in_use is not None
              else "gateway unreachable")
    after = f"{len(report.remaining)} still working" if report.reachable else report.error
    journal = await Journal.open(journal_path)
    try:
        journal.append(OperatorAction(when, by, "global_cancel", reason, before, after))
        await journal.flush()
    finally:
        await journal.close()


async def global_cancel(target: GatewayTarget) -> CancelReport:
    """Connect with the kill's client id, cancel every working order on the account, verify."""
    adapter: Any = importlib.import_module(ADAPTER_MODULE)
    broker = adapter.IbBroker(target.host, target.port, target.client_id, target.account, target.connect_timeout_s)
    try:
        await asyncio.wait_for(broker.connect(), target.connect_timeout_s)
    except ClientIdInUse as exc:
        broker.disconnect()
        return CancelReport(False, error=str(exc), client_id_in_use=exc.client_id)
    except (ConnectionError, TimeoutError, OSError, RuntimeError) as exc:
        broker.disconnect()
        return CancelReport(False, error=f"{type(exc).__name__}: {exc}".strip(": "))
    try:
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


def target_for(settings: Settings, connect_timeout_s: float, client_id: int | None = None) -> GatewayTarget:
    """The gateway of ``settings`` and the kill's client id: ``client_id`` (``--client-id``) or the configured
    ``kill_switch.kill_client_id``; refused when it is the engine's."""
    chosen = "--client-id" if client_id is not None else "kill_switch.kill_client_id"
    client_id = settings.kill_switch.kill_client_id if client_id is None else client_id
    if client_id == settings.broker.client_id:
        raise UsageError(f"{chosen} ({client_id}) must differ from broker.client_id: "
                         "the kill must not take over the engine's session")
    host = settings.sim.host if settings.mode is Mode.SIM else settings.broker.host
    return GatewayTarget(host, settings.broker_port, client_id, settings.broker.account,
                         min(connect_timeout_s, settings.broker.connect_timeout), settings.broker.ack_timeout_s)


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


def _not_reached(target: GatewayTarget, report: CancelReport) -> str:
    """Why the global cancel was not sent: the gateway not reached, or its refusal of the kill's client id (it
    is up: "not reachable" sent the operator to check a gateway that was running)."""
    at = f"{target.host}:{target.port}"
    if report.client_id_in_use is None:
        return f"gateway {at} not reachable ({report.error})"
    return (f"the gateway at {at} refused the kill's client id {report.client_id_in_use}: it is in use (another "
            "API client connected with it, or a session the gateway has not dropped yet). Run the kill again with "
            "another id: tui-trader kill --client-id N (or set kill_switch.kill_client_id); not the engine's "
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


def build_parser() -> argparse.ArgumentParser:
    """The ``kill`` subcommand's parser."""
    parser = argparse.ArgumentParser(prog="tui-trader kill", description=(
        "Engage the kill switch from outside the console: latch it in the journal (a running engine halts "
        "within a second) and cancel every working order on the account through the gateway."),
        epilog="Exit status: 0 latched and nothing left working (or --no-cancel); 1 orders still working "
               "(listed); 3 the gateway was not reached, so orders at the broker were not cancelled; 4 the "
               "journal could not be written, so the kill is not latched (the global cancel was still sent); 5 no "
               "engine runs with this journal, but one runs with another mode's: that engine was not told; 6 the "
               "gateway refused the kill's client id as in use, so nothing was cancelled: run it again with "
               "--client-id.")
    parser.add_argument("--reason", required=True, help="why (journaled)")
    parser.add_argument("--config", type=Path, metavar="PATH", help="configuration file (TOML)")
    add_mode_flags(parser, "journal and gateway")
    parser.add_argument("--journal", type=Path, metavar="PATH", help="journal file (default: the configured one)")
    parser.add_argument("--by", default=None, help="who is killing (default: kill-cli:USER@HOST)")
    parser.add_argument("--no-cancel", action="store_true", help="only latch the journal; do not contact the gateway")
    parser.add_argument("--client-id", type=int, default=None, metavar="N",
                        help="API client id for the global cancel (default: kill_switch.kill_client_id)")
    parser.add_argument("--connect-timeout", type=float, default=5.0, metavar="S", help="gateway connect timeout")
    return parser


def run_kill(argv: Sequence[str]) -> int:
    """Entry point of ``tui-trader kill``; returns the exit code (1: orders still working, 3: gateway
    not reached, 4: not latched, 5: the running engine uses another mode's journal, 6: the kill's client id
    is in use at the gateway)."""
    args = build_parser().parse_args(list(argv))
    if not args.reason.strip():
        raise UsageError("--reason must say why")
    if not 0 < args.connect_timeout < math.inf:
        raise UsageError(f"--connect-timeout must be a positive number of seconds, not {args.connect_timeout}")
    if args.client_id is not None and not 0 <= args.client_id <= 2**31 - 1:
        raise UsageError(f"--client-id must be an API client id from 0 to 2147483647, not {args.client_id}")
    settings = settings_for(args.config, args.mode)
    return asyncio.run(out_of_band_kill(settings, args.reason.strip(), by=args.by, journal_path=args.journal,
                                        cancel=not args.no_cancel, connect_timeout_s=args.connect_timeout,
                                        client_id=args.client_id))


LATCH_HEAD_START_S = 1.0
"""How long the global cancel waits for the kill's latch in the journal before it goes anyway."""


async def out_of_band_kill(settings: Settings, reason: str, *, by: str | None = None,
                           journal_path: Path | None = None, cancel: bool = True, connect_timeout_s: float = 5.0,
                           client_id: int | None = None, console: Console | None = None,
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
        console: Where to print (default: stdout).
        on_report: Given the global cancel's report (the console shows its orders as the broker left them).
    """
    console = console or Console()
    by, path = by or default_operator(), journal_path or settings.journal_path
    # The latch goes first, so that a running engine halts before the global cancel; but a journal whose
    # lock another writer holds (a frozen engine inside a write) made it wait out SQLite's busy timeouts,
    # 15 s, before the cancel: after LATCH_HEAD_START_S the cancel goes, the latch still on its way.
    latching = asyncio.ensure_future(_latch_and_say(console, path, by, reason, new=not path.exists()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(latching), LATCH_HEAD_START_S)
    elsewhere = engines_elsewhere(settings, path)
    for mode, other in elsewhere:
        console.print(Text.assemble(("an engine runs with another journal: ", "bold red"), f"{other} ({mode.value}) "
                                    f"is in use, {path} is not. That engine was NOT told: run tui-trader kill "
                                    f"--{mode.value}."))
    if not cancel:
        latched = await latching
        return EXIT_NOT_LATCHED if not latched else EXIT_OTHER_ENGINE if elsewhere else EXIT_OK
    target = target_for(settings, connect_timeout_s, client_id)
    report = await global_cancel(target)
    latched = await latching
    if on_report is not None:
        on_report(report)
    if latched:
        await _record_cancel_and_say(console, path, by, reason, report)
    print_report(console, target, report, latched)
    if not latched:
        return EXIT_NOT_LATCHED
    if elsewhere:
        return EXIT_OTHER_ENGINE
    if report.client_id_in_use is not None:
        return EXIT_CLIENT_ID_IN_USE
    if not report.reachable:
        return EXIT_NOT_REACHED
    return EXIT_REMAINING if report.remaining else EXIT_OK


def engine_holds(journal: Path) -> bool:
    """Whether a running engine holds ``journal`` (its writer lock, :class:`JournalLock`)."""
    try:
        JournalLock.check(journal)
    except JournalInUse:
        return True
    except OSError:  # the lock file cannot be opened: not known, so not claimed
        return False
    return False


def engines_elsewhere(settings: Settings, journal: Path) -> list[tuple[Mode, Path]]:
    """When no engine holds ``journal``: the other modes' journals an engine holds now.

    Without a mode flag the kill takes the configured mode's journal; an operator running
    ``tui-trader --live`` with ``mode = "paper"`` configured latched the paper journal and
    cancelled at the paper gateway ("0 cancelled", exit 0) while the live engine traded on.
    """
    if engine_holds(journal):
        return []
    others = {settings.model_copy(update={"mode": mode}).journal_path: mode for mode in Mode}
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


async def _record_cancel_and_say(console: Console, path: Path, by: str, reason: str, report: CancelReport) -> None:
    """Journal the cancel's outcome; the kill is latched already, so a failure here only loses this record."""
    try:
        await record_cancel(path, by, reason, report)
    except (sqlite3.Error, OSError) as exc:
        console.print(Text(f"the global cancel's outcome was not journaled ({exc}); the kill stays latched.",
                           style="yellow"))
