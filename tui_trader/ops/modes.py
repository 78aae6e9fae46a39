"""The mode flags the operations commands share: ``--sim``, ``--paper``, ``--live`` pick the mode's
journal (and gateway), as the console's flags do; without one, the configured mode."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tui_trader.domain.enums import Mode

if TYPE_CHECKING:
    from tui_trader.config import Settings


def add_mode_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--sim | --paper | --live`` into ``args.mode`` (None: the configured mode); ``what``: "journal", say."""
    modes = parser.add_mutually_exclusive_group()
    for mode in Mode:
        modes.add_argument(f"--{mode.value}", dest="mode", action="store_const", const=mode.value,
                           help=f"the {mode.value} {what} (default: the configured mode)")


def settings_for(config: Path | None, mode: str | None) -> Settings:
    """The settings from ``config``, in ``mode`` when a mode flag gave one (else the configured mode)."""
    from tui_trader.config import load_settings

    return load_settings(config, {"mode": mode} if mode else {})
