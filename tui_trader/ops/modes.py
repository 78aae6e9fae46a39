"""The mode flags the operations commands share: ``--sim``, ``--paper``, ``--live`` pick the mode's
journal (and gateway), as the console's flags do; without one, the configured mode."""

from __future__ import annotations

import argparse

from tui_trader.domain.enums import Mode


def add_mode_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--sim | --paper | --live`` into ``args.mode`` (None: the configured mode); ``what``: "journal", say."""
    modes = parser.add_mutually_exclusive_group()
    for mode in Mode:
        modes.add_argument(f"--{mode.value}", dest="mode", action="store_const", const=mode.value,
                           help=f"the {mode.value} {what} (default: the configured mode)")
