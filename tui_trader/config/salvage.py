"""What can still be read of a configuration that does not load: the mode and where the journal is.

``tui-trader kill`` must latch the kill switch even when the configuration has an error (a typo made while an
engine runs, editing the file for the next run). It reads from the file and the environment only the settings
that say which journal that is (``mode``, ``state_dir``, ``journal.path``), each one only when it reads as a valid
value on its own, with the environment before the file as :func:`~tui_trader.config.load_settings` has it. Nothing
that says where the gateway is counts: a global cancel is not sent to a port guessed from a broken file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trader.config import find_config_file, read_toml
from tui_trader.config.sections import ENV_PREFIX, default_state_dir
from tui_trader.domain.enums import Mode
from tui_trader.errors import ConfigError


@dataclass(frozen=True, slots=True)
class JournalWhereabouts:
    """The journal a configuration that did not load names, as far as it can be read (None: not read)."""

    mode: Mode | None
    state_dir: Path | None
    journal: Path | None
    """``journal.path``: one file for every mode."""

    def journal_of(self, mode: Mode) -> Path:
        """``mode``'s journal: ``journal.path``, else ``journal-<mode>.sqlite`` in the state directory (the
        configured one if it could be read, else the default)."""
        if self.journal is not None:
            return self.journal
        return (self.state_dir or default_state_dir()) / f"journal-{mode.value}.sqlite"


def journal_whereabouts(config: Path | None) -> JournalWhereabouts:
    """Read ``mode``, ``state_dir`` and ``journal.path`` from the environment and the file ``config`` (or the one
    found by the documented search order), each as far as it reads."""
    try:
        found = find_config_file(config)
        data = read_toml(found) if found is not None else {}
    except ConfigError:  # not there, not readable, not TOML: the environment and the defaults are all there is
        data = {}
    mode = _value(data, "mode")
    return JournalWhereabouts(Mode(mode) if mode in {m.value for m in Mode} else None,
                              _path(_value(data, "state_dir")), _path(_value(data, "journal", "path")))


def _value(data: dict[str, Any], *keys: str) -> Any:
    """``TUI_TRADER_<KEYS>`` if set, else the file's value at ``keys`` (None when neither has one)."""
    env = os.environ.get(ENV_PREFIX + "__".join(keys).upper())
    if env is not None:
        return env
    node: Any = data
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _path(value: Any) -> Path | None:
    return Path(value) if isinstance(value, str) and value.strip() else None
