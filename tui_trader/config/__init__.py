"""Settings: pydantic-settings models, frozen, unknown keys rejected.

Sources, later wins: defaults < TOML file < ``TUI_TRADER_*`` environment variables (``__``
nests: ``TUI_TRADER_BROKER__PORT=4002``) < command-line flags. The file is ``--config PATH``,
else ``./tui-trader.toml``, else ``$XDG_CONFIG_HOME/tui-trader/config.toml``.
:func:`load_settings` turns every failure into a :class:`~tui_trader.errors.ConfigError`
naming the source, the key path, the bad value and what was expected.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from tui_trader.config.notifications import NotificationSettings
from tui_trader.config.sections import (
    ENV_PREFIX,
    IB_PORTS,
    ApprovalsSettings,
    BrokerSettings,
    HealthSettings,
    JournalSettings,
    KillSwitchSettings,
    RiskSettings,
    ScheduleSettings,
    SimSettings,
    SizingSettings,
    StrategySettings,
    UISettings,
    default_state_dir,
    default_strategies,
)
from tui_trader.domain.enums import Mode
from tui_trader.errors import ConfigError


class Settings(BaseSettings):
    """Everything tui-trader is configured with; one frozen value for the whole run."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True,
        validate_default=True,
    )

    mode: Mode = Field(Mode.SIM, description="Where orders go: sim, paper or live.")
    dry_run: bool = Field(False, description="Run everything up to the wire; send nothing.")
    confirm: bool = Field(True, description="Ask the operator to approve each order (always on in live).")
    headless: bool = Field(False, description="Run the engine without the console.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of the rotating log file in the state directory."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where the journal, logs and sim state live "
                    "(unset: $XDG_STATE_HOME/tui-trader, else ~/.local/state/tui-trader).",
    )
    broker: BrokerSettings = Field(default_factory=BrokerSettings, description="IB Gateway/TWS connection.")
    risk: RiskSettings = Field(default_factory=RiskSettings, description="Pre-trade and post-trade limits.")
    kill_switch: KillSwitchSettings = Field(default_factory=KillSwitchSettings, description="Kill switch.")
    strategies: list[StrategySettings] = Field(
        default_factory=default_strategies, description="Strategies to run."
    )
    sizing: SizingSettings = Field(default_factory=SizingSettings, description="Default position sizing.")
    approvals: ApprovalsSettings = Field(default_factory=ApprovalsSettings, description="Order approvals.")
    journal: JournalSettings = Field(default_factory=JournalSettings, description="SQLite journal.")
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings, description="Telegram, email and webhook channels."
    )
    health: HealthSettings = Field(default_factory=HealthSettings, description="Health thresholds.")
    schedule: ScheduleSettings = Field(
        default_factory=ScheduleSettings, description="Trading calendar and the gateway's daily restart."
    )
    ui: UISettings = Field(default_factory=UISettings, description="Console settings.")
    sim: SimSettings = Field(default_factory=SimSettings, description="The embedded IB Gateway simulator.")

    @model_validator(mode="after")
    def _refuse_contradictions(self) -> Settings:
        if self.mode is Mode.LIVE and not self.confirm:
            raise ValueError("live mode always asks for confirmation: confirm=false is refused")
        if self.mode is Mode.LIVE and self.headless:
            raise ValueError("live mode cannot run headless: nobody would approve the orders")
        return self

    @property
    def approvals_required(self) -> bool:
        """Whether each order needs the operator's approval in this run."""
        if self.mode is Mode.LIVE:
            return True
        if not self.confirm:
            return False
        return self.approvals.required_in_paper if self.mode is Mode.PAPER else self.approvals.required_in_sim

    @property
    def broker_port(self) -> int:
        """The gateway port: configured, else IB's default for the mode, else the simulator's."""
        if self.broker.port is not None:
            return self.broker.port
        return IB_PORTS.get(self.mode, self.sim.port)

    @property
    def journal_path(self) -> Path:
        """The journal file: configured, else ``<state_dir>/journal-<mode>.sqlite`` (:func:`journal_file`)."""
        return journal_file(self.state_dir, self.mode, self.journal.path)

    @property
    def sim_state_path(self) -> Path:
        """Where the embedded simulator keeps its account, orders and executions across runs: configured,
        else beside the journal (``journal-sim.sqlite-sim.json``). The journal and the simulated broker
        are one world: a simulator that started afresh each run left the journal's working orders unknown
        to it (UNKNOWN, then the kill switch) and its positions unmatched."""
        if self.sim.state_path is not None:
            return self.sim.state_path
        return self.journal_path.with_name(self.journal_path.name + "-sim.json")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init kwargs) > environment > TOML file > defaults."""
        return (init_settings, env_settings, _TomlSource(settings_cls, _TOML_DATA.get("data", {})))


class _TomlSource(PydanticBaseSettingsSource):
    """A settings source over an already-parsed TOML document."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


_TOML_DATA: dict[str, dict[str, Any]] = {}


def journal_file(state_dir: Path, mode: Mode, configured: Path | None = None) -> Path:
    """The journal of ``mode``: ``journal.path`` (``configured``) when set, else ``<state_dir>/journal-<mode>.sqlite``
    (also for a configuration that did not load: :mod:`tui_trader.config.salvage`)."""
    return configured if configured is not None else state_dir / f"journal-{mode.value}.sqlite"


def find_config_file(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The configuration file to read, by the documented search order, or ``None``."""
    if explicit is not None:
        return explicit
    local = (cwd or Path.cwd()) / "tui-trader.toml"
    if local.is_file():
        return local
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user = xdg / "tui-trader" / "config.toml"
    return user if user.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; a missing, unreadable or malformed file is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_settings(
    config: Path | None = None, overrides: dict[str, Any] | None = None, cwd: Path | None = None
) -> Settings:
    """Build the frozen settings from file, environment and flag ``overrides``.

    Raises:
        ConfigError: naming the file or variable, the key path, the bad value and what
            was expected.
    """
    path = find_config_file(config, cwd)
    data = read_toml(path) if path is not None else {}
    refuse_unknown_env()
    _TOML_DATA["data"] = data
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, data)) from None
    except SettingsError as exc:
        # A complex field (a list or table) given in the environment must be JSON.
        raise ConfigError(f"{exc} (lists and tables in environment variables are written as JSON)") from None
    finally:
        _TOML_DATA.pop("data", None)


def refuse_unknown_env() -> None:
    """A ``TUI_TRADER_*`` variable that names no setting is a typo: refuse it rather than ignore it."""
    known = {name.upper() for name in Settings.model_fields}
    for var in os.environ:
        if var.startswith(ENV_PREFIX) and var[len(ENV_PREFIX):].split("__")[0] not in known:
            raise ConfigError(f"environment variable {var}: names no setting (see config.example.toml)")


def describe_validation_error(exc: ValidationError, path: Path | None, data: dict[str, Any]) -> str:
    """One line per problem: where it came from, the key path, the value, what is expected."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(settings)"
        source = _source_of(loc, path, data)
        value = _shorten(err.get("input"))
        expected = _expected(err, loc)
        lines.append(f"{source}: {key} = {value}: {expected}" if loc else f"{source}: {expected}")
    return "\n".join(lines)


def _source_of(loc: list[str], path: Path | None, data: dict[str, Any]) -> str:
    env = ENV_PREFIX + "__".join(loc).upper()
    if loc and env in os.environ:
        return f"environment variable {env}"
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return "command line or environment" if path is None else str(path)
    return str(path) if path is not None else "settings"


def _expected(err: Any, loc: list[str]) -> str:
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _keys_beside(loc), n=2) if loc else []
        if close:
            return f"unknown key; did you mean {' or '.join(close)}? (see config.example.toml)"
        return "unknown key (check the spelling; see config.example.toml)"
    return str(err["msg"]).removeprefix("Value error, ")


def _keys_beside(loc: list[str]) -> list[str]:
    """The keys the settings model knows where ``loc``'s last key was given."""
    model: Any = Settings
    for part in loc[:-1]:
        if part.isdigit():  # an entry of a list of sections ([[strategies]])
            continue
        field = getattr(model, "model_fields", {}).get(part)
        model = _model_in(field.annotation) if field is not None else None
        if model is None:
            return []
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings section an annotation holds (``Risk``, ``list[Strategy]``, ``Broker | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, typing.get_args(annotation)) if m is not None), None)


def _shorten(value: Any) -> str:
    if isinstance(value, SecretStr) or (isinstance(value, dict) and not value):
        return "…"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
