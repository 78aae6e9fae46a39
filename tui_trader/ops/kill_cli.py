"""``tui-trader kill`` on the command line: its flags, a configuration that does not load, and ib_async's log.

The kill is the switch for when everything else is broken, the configuration included: one that does not load
(a typo made while an engine runs, editing it for the next run) is said as check-config says it, and the kill
goes on with what can be known for certain. It latches the journal it can find (``--journal``, else the mode's
journal in the state directory the configuration names, if that much of it reads, else in the default one). The
global cancel goes only where the gateway is known for certain: ``--host`` and ``--port`` given, or the gateway
the engine running with that journal said it is connected to (in the kill's mode); never at a port guessed from
the defaults, which may be another gateway's. The choice is the one a kill with the settings makes
(:func:`tui_trader.ops.kill.target_for`), with what the configuration says as far as it reads: its client ids too
(the kill's must not be the engine's), and no configured gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from tui_trader.config.salvage import Salvaged, salvage
from tui_trader.config.sections import BrokerSettings, KillSwitchSettings, default_state_dir
from tui_trader.domain.enums import Mode
from tui_trader.errors import ConfigError, UsageError, print_error
from tui_trader.help_format import HelpFormatter
from tui_trader.ops.kill import CLIENT_ID_RETRIES, MAX_CLIENT_ID, KillSetup, execute, gateway_chooser, out_of_band_kill
from tui_trader.ops.logs import LOG_FORMAT, PrivateRotatingFileHandler, cancels_are_no_errors, private_log_file
from tui_trader.ops.modes import add_mode_flags, settings_for

LOG_NAME = "kill.log"


def build_parser() -> argparse.ArgumentParser:
    """The ``kill`` subcommand's parser."""
    parser = argparse.ArgumentParser(prog="tui-trader kill", description=(
        "Engage the kill switch from outside the console: latch it in the journal (a running engine halts "
        "within a second) and cancel every working order on the account through the gateway."),
        epilog="Exit status: 0 latched and nothing left working (or --no-cancel); 1 orders still working "
               "(listed); 3 the gateway was not reached, so orders at the broker were not cancelled; 4 the "
               "journal could not be written, so the kill is not latched (the global cancel was still sent); 5 no "
               "engine runs with this journal, but one runs with another mode's: that engine was not told; 6 the "
               f"gateway refused the kill's client id as in use (each of the {1 + CLIENT_ID_RETRIES} it tried, when "
               "it chose them itself: see --client-id), so nothing was cancelled: run it again with --client-id N; "
               "7 where the gateway is was not known for certain (the configuration did not load, --host/--port "
               "were not given and no engine of this mode runs with the journal to say which gateway it is "
               "connected to; a --sim engine that has not said where its simulator listens; the engine running "
               "with the journal is of another mode), so no global cancel was sent; 8 the gateway is logged into "
               "an account the kill must not touch (--paper on a live account, or not the configured one), so "
               "nothing was sent there.",
        formatter_class=HelpFormatter)
    parser.add_argument("--reason", required=True, help="why (journaled)")
    parser.add_argument("--config", type=Path, metavar="PATH", help="configuration file (TOML)")
    add_mode_flags(parser, "journal and gateway")
    parser.add_argument("--journal", type=Path, metavar="PATH", help="journal file (default: the configured one)")
    parser.add_argument("--by", default=None, help="who is killing (default: kill-cli:USER@HOST)")
    parser.add_argument("--no-cancel", action="store_true", help="only latch the journal; do not contact the gateway")
    parser.add_argument("--host", default=None, help=(
        "gateway host (default: the one the engine running with the journal is connected to, else the "
        "configured one); only with --port"))
    parser.add_argument("--port", type=int, default=None, metavar="N", help=(
        "gateway port (default: the one the engine running with the journal is connected to, if it runs in this "
        "mode, else the configured one; --sim: only the former). With a configuration that does not load and no "
        "engine of this mode running, the global cancel is sent only with --host and --port"))
    parser.add_argument("--client-id", type=int, default=None, metavar="N",
                        help="API client id for the global cancel (default: kill_switch.kill_client_id; when that "
                             "is the running engine's, the kill chooses the next free ids itself, trying up to "
                             f"{1 + CLIENT_ID_RETRIES} while the gateway refuses each as in use)")
    parser.add_argument("--connect-timeout", type=float, default=5.0, metavar="S", help="gateway connect timeout")
    return parser


def run_kill(argv: Sequence[str]) -> int:
    """Entry point of ``tui-trader kill``; returns the exit code (see :data:`tui_trader.ops.kill.EXIT_OK` and
    the codes after it)."""
    args = build_parser().parse_args(list(argv))
    refuse_bad_flags(args)
    try:
        settings = settings_for(args.config, args.mode)
    except ConfigError as error:
        where = salvage(args.config)
        with ib_async_logged_in(where.state_dir or default_state_dir()):
            return asyncio.run(kill_without_settings(error, where, args))
    with ib_async_logged_in(settings.state_dir):
        return asyncio.run(out_of_band_kill(settings, args.reason.strip(), by=args.by, journal_path=args.journal,
                                            cancel=not args.no_cancel, connect_timeout_s=args.connect_timeout,
                                            client_id=args.client_id, host=args.host, port=args.port))


def refuse_bad_flags(args: argparse.Namespace) -> None:
    """Raise UsageError for a flag that cannot be right, before anything is done."""
    if not args.reason.strip():
        raise UsageError("--reason must say why")
    if not 0 < args.connect_timeout < math.inf:
        raise UsageError(f"--connect-timeout must be a positive number of seconds, not {args.connect_timeout}")
    if args.client_id is not None and not 0 <= args.client_id <= MAX_CLIENT_ID:
        raise UsageError(f"--client-id must be an API client id from 0 to 2147483647, not {args.client_id}")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be a port from 1 to 65535, not {args.port}")
    if args.host is not None and not args.host.strip():
        raise UsageError("--host must name the gateway's host")


async def kill_without_settings(error: ConfigError, where: Salvaged, args: argparse.Namespace) -> int:
    """The kill when the configuration did not load: ``error`` said (as check-config says it), the journal
    ``where`` names latched, and the global cancel only where the gateway is known for certain."""
    console = Console()
    print_error(error)
    mode = Mode(args.mode) if args.mode else where.mode or Mode.SIM
    journal = args.journal or where.journal_of(mode)
    gateway = gateway_chooser(setup_without_settings(mode, where), journal, client_id=args.client_id,
                              host=args.host, port=args.port, connect_timeout_s=args.connect_timeout)
    console.print(Text.assemble(("the configuration did not load", "bold red"), f" (the error above): the kill goes "
                                f"on with what is known without it: the {mode.value} journal {journal} "
                                f"({_whence(args, where)})."))
    journals = {m: where.journal_of(m) for m in Mode}
    return await execute(journal, journals, args.reason.strip(), by=args.by,
                         gateway=None if args.no_cancel else gateway, console=console)


def setup_without_settings(mode: Mode, where: Salvaged) -> KillSetup:
    """The kill's setup from a configuration that did not load: the client ids as far as it reads (else the
    defaults), the broker's default timeouts, and no configured gateway (not known for certain)."""
    broker = BrokerSettings()
    engine_id, engine_from = _salvaged(where.client_id, broker.client_id, "broker.client_id")
    kill_id, kill_from = _salvaged(where.kill_client_id, KillSwitchSettings().kill_client_id,
                                   "kill_switch.kill_client_id")
    return KillSetup(mode, engine_id, kill_id, None, "", broker.connect_timeout, broker.ack_timeout_s,
                     engine_from, kill_from)


def _salvaged(value: int | None, default: int, name: str) -> tuple[int, str]:
    """A client id read from the configuration that did not load, else the default, and which it is."""
    if value is None:
        return default, f"{name}, the default, as the configuration did not load"
    return value, f"{name}, as the configuration that did not load has it"


def _whence(args: argparse.Namespace, where: Salvaged) -> str:
    """Where the journal's path came from, in a few words."""
    if args.journal is not None:
        return "--journal"
    if where.journal is not None:
        return "journal.path, as far as the configuration reads"
    mode = f"--{args.mode}" if args.mode else "the configured mode" if where.mode else "the default mode"
    state = "the configured state_dir" if where.state_dir else "the default state directory"
    return f"{mode}, {state}"


@contextlib.contextmanager
def ib_async_logged_in(state_dir: Path) -> Iterator[None]:
    """ib_async's own log lines go to ``<state_dir>/logs/kill.log`` while the kill runs, not to the terminal.

    Without a handler, Python printed its warnings and errors on stderr ("API connection failed:
    ConnectionRefusedError...", "Make sure API port on TWS/IBG is open") after the kill's own message. The root
    logger is left as it is (tests run this in their process); what is changed here is put back after.
    """
    logger = logging.getLogger("ib_async")
    cancels_are_no_errors()  # the global cancel's: what the kill asked for
    handler = private_log_file(state_dir, LOG_NAME, delay=True, kind=_KillLog)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate, logger.level = saved


class _KillLog(PrivateRotatingFileHandler):
    """``logs/kill.log``, rotated as every log; a line that cannot be written is lost, never the kill."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """Dropped: the kill's own output says what matters; a traceback on stderr would not help."""
