"""What can still be read of a configuration that does not load: the mode, where the journal is, the client ids.

``tui-trader kill`` must latch the kill switch even when the configuration has an error (a typo made while an
engine runs, editing the file for the next run). It reads from the file and the environment only the settings
that say which journal that is (``mode``, ``state_dir``, ``journal.path``) and the client ids the kill must tell
apart (``broker.client_id``, the engine's, which the kill must not connect with; ``kill_switch.kill_client_id``,
the kill's), each one only when it reads as a valid value on its own, with the environment before the file as
:func:`~tui_trader.config.load_settings` has it, and read from the environment as the settings read it
(``TUI_TRADER_JOURNAL='{"path": ...}'`` as well as ``TUI_TRADER_JOURNAL__PATH``, the names in any case). Nothing
that says where the gateway is counts: a global cancel is not sent to a port guessed from a broken file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError

from tui_trader.config import Settings, find_config_file, journal_file, read_toml
from tui_trader.config.sections import BrokerSettings, KillSwitchSettings, Section, default_state_dir
from tui_trader.domain.enums import Mode
from tui_trader.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Salvaged:
    """What a configuration that did not load says, as far as it can be read (None: not read)."""

    mode: Mode | None
    state_dir: Path | None
    journal: Path | None
    """``journal.path``: one file for every mode."""
    client_id: int | None = None
    """``broker.client_id``: the engine's."""
    kill_client_id: int | None = None
    """``kill_switch.kill_client_id``: the kill's."""

    def journal_of(self, mode: Mode) -> Path:
        """``mode``'s journal: ``journal.path``, else ``journal-<mode>.sqlite`` in the state directory (the
        configured one if it could be read, else the default)."""
        return journal_file(self.state_dir or default_state_dir(), mode, self.journal)


def salvage(config: Path | None) -> Salvaged:
    """Read ``mode``, ``state_dir``, ``journal.path`` and the client ids from the environment and the file
    ``config`` (or the one found by the documented search order), each as far as it reads."""
    try:
        found = find_config_file(config)
        data = read_toml(found) if found is not None else {}
    except ConfigError:  # not there, not readable, not TOML: the environment and the defaults are all there is
        data = {}
    env = _environment()
    mode = _value(env, data, "mode")
    return Salvaged(Mode(mode) if mode in {m.value for m in Mode} else None,
                    _path(_value(env, data, "state_dir")), _path(_value(env, data, "journal", "path")),
                    _valid(BrokerSettings, "client_id", _value(env, data, "broker", "client_id")),
                    _valid(KillSwitchSettings, "kill_client_id", _value(env, data, "kill_switch", "kill_client_id")))


SALVAGED = ("mode", "state_dir", "journal", "broker", "kill_switch")
"""The settings read (``journal``: for its ``path``; ``broker``, ``kill_switch``: for their client ids)."""


def _environment() -> dict[str, Any]:
    """The environment's values of :data:`SALVAGED`, as the settings read them: a table given as JSON
    (``TUI_TRADER_JOURNAL='{"path": ...}'``), its keys as ``__``-nested variables (which win), the names in any
    case. A variable that does not parse is left out (the file's value counts instead), as is one of another
    setting: the environment's error may be the one that keeps the configuration from loading."""
    source = EnvSettingsSource(Settings)
    found: dict[str, Any] = {}
    for name in SALVAGED:
        field = Settings.model_fields[name]
        try:
            value, _, is_complex = source.get_field_value(field, name)
            value = source.prepare_field_value(name, field, value, is_complex)
        except (ValueError, SettingsError):  # not JSON where a table is expected
            continue
        if value is not None:
            found[name] = value
    return found


def _value(env: dict[str, Any], data: dict[str, Any], *keys: str) -> Any:
    """The environment's value at ``keys`` if it has one, else the file's (None when neither has one)."""
    for source in (env, data):
        node: Any = source
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def _path(value: Any) -> Path | None:
    return Path(value) if isinstance(value, str) and value.strip() else None


def _valid(section: type[Section], name: str, value: Any) -> Any:
    """``value`` as ``section``'s field ``name`` takes it, if it is valid there on its own; else None."""
    if value is None:
        return None
    try:
        return getattr(section.model_validate({name: value}), name)
    except ValidationError:
        return None
