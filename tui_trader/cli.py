"""Command line: parses flags and subcommands, builds Settings, then runs the console or the engine.

Every refusal (contradictory flags, bad configuration) prints one short panel on stderr and
exits with code 2 before anything else starts.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tui_trader import __version__
from tui_trader.errors import ConfigError, TraderError, UsageError, print_error
from tui_trader.help_format import HelpFormatter

EXIT_OK = 0
EXIT_USAGE = 2
SUBCOMMANDS = ("gateway-sim", "kill", "report", "check-config")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the main command (subcommands are dispatched before it)."""
    parser = argparse.ArgumentParser(
        prog="tui-trader",
        description="Operator console for automated trading on Interactive Brokers.",
        epilog="Subcommands: " + ", ".join(SUBCOMMANDS) + " (tui-trader SUBCOMMAND --help).",
        formatter_class=HelpFormatter,
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--sim", dest="mode", action="append_const", const="sim",
                       help="embedded IB Gateway simulator (default)")
    modes.add_argument("--paper", dest="mode", action="append_const", const="paper",
                       help="IB paper account (default port 4002)")
    modes.add_argument("--live", dest="mode", action="append_const", const="live",
                       help="IB live account: real money (default port 4001)")
    parser.add_argument("--dry-run", action="store_true", help="send nothing; journal what would be sent")
    parser.add_argument("--no-confirm", action="store_true", help="do not ask to approve each order (not in live)")
    parser.add_argument("--config", type=Path, metavar="PATH", help="configuration file (TOML)")
    parser.add_argument("--symbols", metavar="A,B", help="trade and watch only these symbols")
    parser.add_argument("--strategy", metavar="NAME",
                        help="run only this strategy (name or module:Class); one disabled in the configuration "
                             "is refused, not enabled")
    parser.add_argument("--host", help="gateway host")
    parser.add_argument("--port", type=int, help="gateway port")
    parser.add_argument("--client-id", type=int, help="API client id")
    parser.add_argument("--account", help="expected account id")
    parser.add_argument("--headless", action="store_true", help="run the engine without the console")
    parser.add_argument("--duration", type=float, metavar="S", help="headless: stop after S seconds (default 60)")
    parser.add_argument("--summary-json", type=Path, metavar="PATH", help="headless: write a JSON summary")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log file level")
    parser.add_argument("--version", action="version", version=f"tui-trader {__version__}")
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides (the highest-priority source) from parsed flags."""
    refuse_contradictions(args)
    out: dict[str, Any] = {}
    if args.mode:
        out["mode"] = args.mode[0]
    if args.dry_run:
        out["dry_run"] = True
    if args.no_confirm:
        out["confirm"] = False
    if args.headless:
        out["headless"] = True
    if args.log_level:
        out["log_level"] = args.log_level
    broker = {k: v for k, v in (("host", args.host), ("port", args.port), ("client_id", args.client_id),
                                ("account", args.account)) if v is not None}
    if broker:
        out["broker"] = broker
    return out


def refuse_contradictions(args: argparse.Namespace) -> None:
    """Raise UsageError for flag combinations that must never run."""
    mode = args.mode[0] if args.mode else None
    if args.mode and len(args.mode) > 1:
        raise UsageError("choose one mode: --sim, --paper or --live")
    if mode == "live" and args.no_confirm:
        raise UsageError("--live with --no-confirm is refused: every live order is approved by the operator")
    if mode == "live" and args.headless:
        raise UsageError("--live with --headless is refused: nobody would be there to approve orders")
    if not args.headless and (args.duration is not None or args.summary_json is not None):
        raise UsageError("--duration and --summary-json go with --headless")
    if args.duration is not None and not 0 < args.duration < math.inf:
        raise UsageError(f"--duration must be a positive number of seconds, not {args.duration}")


def apply_selection(settings: Any, symbols: str | None, strategy: str | None) -> Any:
    """Narrow the configured strategies to ``--strategy`` and their symbols to ``--symbols``.

    Raises:
        UsageError: An empty flag, or ``--strategy`` naming a configured strategy that is disabled (the flag
            narrows what runs: it does not override ``enabled = false``).
    """
    from tui_trader.config import StrategySettings

    chosen = list(settings.strategies)
    if strategy is not None:  # "" too: an empty flag is refused, not taken as no flag
        if not strategy.strip():
            raise UsageError(f"--strategy needs a strategy name (built-in or module:Class), got {strategy!r}")
        named = [s for s in chosen if s.name == strategy]
        if named and not any(s.enabled for s in named):  # the flag narrows the selection, it never enables
            raise UsageError(f"--strategy {strategy} is disabled in the configuration (enabled = false): "
                             "set enabled = true there to run it")
        chosen = named or [StrategySettings(name=strategy)]
    if symbols is not None:
        wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        if not wanted:
            raise UsageError(f"--symbols needs at least one symbol, got {symbols!r}")
        chosen = [s.model_copy(update={"symbols": wanted}) for s in chosen]
    return settings.model_copy(update={"strategies": chosen})


def run_main(argv: Sequence[str]) -> int:
    """The main command: console, or headless engine.

    For the console, the engine process is launched before anything heavy is imported here: it
    imports the engine while this process loads the settings, then gets them (``start_console``).
    """
    args = build_parser().parse_args(list(argv))
    overrides = overrides_from(args)
    launched = None if args.headless else launch_engine_process()
    try:
        from tui_trader.config import load_settings
        from tui_trader.ops.logs import configure_logging

        settings = load_settings(args.config, overrides)
        settings = apply_selection(settings, args.symbols, args.strategy)
        configure_logging(settings.state_dir, settings.log_level)
        if not settings.headless:  # said on the terminal, before the console starts (headless: the engine says it)
            from tui_trader.store.lock import JournalLock

            JournalLock.check(settings.journal_path)
        if settings.headless or settings.ui.engine_in_process:
            if launched is not None:
                launched.abandon()
                launched = None
            if settings.headless:
                from tui_trader.engine.runner import run_headless

                check_strategies(settings)  # nobody watches the alerts of a headless run: refuse to start
                return run_headless(settings, args.duration or 60.0, args.summary_json)
    except BaseException:
        if launched is not None:
            launched.abandon()
        raise
    return start_console(settings, launched)


def launch_engine_process() -> Any:
    """Start the engine process now (it imports while this one loads the settings); see ``start_console``."""
    from tui_trader.engine.process.launch import launch

    return launch()


CONSOLE_EVENTS = ("console", 10_000, False)
"""The console's event subscription (name, size, lossless): ``tui_trader.ui.bridge.Bridge.subscribe`` opens it;
the early spawn opens it first, so the events of the engine's start reach the console's panes."""


def start_console(settings: Any, launched: Any = None) -> int:
    """Hand the engine process its settings, then import and run the console.

    The engine process (``launched`` before the settings were loaded, or started here) imports,
    builds the engine, starts the simulator and subscribes quotes while this process imports
    Textual and lays out the first frame, instead of after.
    """
    engine = None
    if not settings.ui.engine_in_process:
        from tui_trader.engine.process.proxy import spawn_engine

        try:
            engine = spawn_engine(settings, start=True, subscriptions=(CONSOLE_EVENTS,), launched=launched)
        except BaseException:
            if launched is not None:
                launched.abandon()
            raise
    try:
        from tui_trader.ui.app import run_console
    except BaseException:
        if engine is not None:
            engine.close()
        raise
    return run_console(settings, engine)


def check_strategies(settings: Any) -> None:
    """Every configured (or ``--strategy``) strategy loads, else a configuration error naming why.

    Raises:
        ConfigError: A strategy name that is neither a built-in, an importable ``module:Class`` nor an
            installed entry point, or parameters its strategy refuses (an unknown name, a wrong kind,
            a value out of range).
    """
    from tui_trader.strategies.registry import problems

    found = [(i, p) for i, s in enumerate(settings.strategies, 1) for p in problems([(s.name, s.params)])]
    if found:
        raise ConfigError("\n".join(f"strategies (entry {i} of {len(settings.strategies)}): {p}" for i, p in found))


def run_check_config(argv: Sequence[str]) -> int:
    """``check-config``: validate the configuration and print the effective settings."""
    from tui_trader.config import Settings, load_settings
    from tui_trader.config.example import render_example

    parser = argparse.ArgumentParser(prog="tui-trader check-config", description=(
        "Validate a configuration (and load every configured strategy, checking its params) and print the "
        "effective settings, secrets masked."), formatter_class=HelpFormatter)
    parser.add_argument("--config", type=Path, metavar="PATH", help="configuration file (TOML)")
    parser.add_argument("--example", action="store_true", help="print a documented example file and exit")
    args = parser.parse_args(list(argv))
    if args.example:
        sys.stdout.write(render_example(Settings))
        return EXIT_OK
    settings = load_settings(args.config)
    check_strategies(settings)
    from rich.console import Console
    from rich.pretty import Pretty

    console = Console()
    console.print("[bold green]configuration is valid[/]; effective settings (secrets masked):")
    console.print(Pretty(settings.model_dump(mode="json")))
    return EXIT_OK


def not_available(name: str, issue: str) -> Callable[[Sequence[str]], int]:
    """A subcommand whose issue has not landed yet."""

    def run(argv: Sequence[str]) -> int:
        sys.stderr.write(f"tui-trader {name}: not available yet (it arrives with the {issue} issue)\n")
        return 1

    return run


def run_kill(argv: Sequence[str]) -> int:
    """``kill``: the out-of-band kill switch (journal latch and global cancel)."""
    from tui_trader.ops.kill_cli import run_kill as ops_kill

    return ops_kill(argv)


def run_report(argv: Sequence[str]) -> int:
    """``report``: trades, statistics and order traces from the journal."""
    from tui_trader.ops.report_cli import run_report as ops_report

    return ops_report(argv)


def run_gateway_sim(argv: Sequence[str]) -> int:
    """``gateway-sim``: the IB Gateway simulator as a standalone process."""
    from tui_trader.sim.cli import main as sim_main

    return sim_main(list(argv))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "gateway-sim": run_gateway_sim,
    "check-config": run_check_config,
    "kill": run_kill,
    "report": run_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tui-trader`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(args[0]) if args else None
    try:
        return command(args[1:]) if command else run_main(args)
    except TraderError as error:
        print_error(error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
