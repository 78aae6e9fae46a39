"""Configuration: sources and their order, refusals, and the example file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from tests.risk.builders import check, ticket
from tui_trader.config import Settings, load_settings
from tui_trader.config.example import render_example
from tui_trader.config.sections import OFF, RiskSettings
from tui_trader.domain.enums import Mode
from tui_trader.engine.config import limits_from_settings
from tui_trader.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"

pytestmark = pytest.mark.usefixtures("isolated")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_when_nothing_configured_then_safe_defaults() -> None:
    settings = load_settings()
    assert settings.mode is Mode.SIM
    assert settings.approvals_required
    assert settings.broker_port == settings.sim.port
    assert settings.broker_port not in (4001, 4002, 7496, 7497)


def test_load_when_file_env_and_flags_set_then_later_source_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "c.toml", "[broker]\nport = 1111\nclient_id = 5\nhost = 'filehost'\n")
    monkeypatch.setenv("TUI_TRADER_BROKER__PORT", "2222")
    monkeypatch.setenv("TUI_TRADER_BROKER__CLIENT_ID", "6")
    settings = load_settings(cfg, {"broker": {"client_id": 7}})
    assert settings.broker.host == "filehost"
    assert settings.broker.port == 2222
    assert settings.broker.client_id == 7


def test_find_when_no_flag_then_local_file_before_xdg(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg-config" / "tui-trader"
    xdg.mkdir(parents=True)
    write(xdg / "config.toml", "[broker]\nclient_id = 1\n")
    assert load_settings().broker.client_id == 1
    write(tmp_path / "tui-trader.toml", "[broker]\nclient_id = 2\n")
    assert load_settings().broker.client_id == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[broker]\nclinet_id = 3\n", "broker.clinet_id = 3: unknown key; did you mean client_id?"),
        ("[[strategies]]\nname = 'ema_cross'\nsymbol = ['AAPL']\n", "strategies.0.symbol = ['AAPL']: unknown key; "
                                                                   "did you mean symbols?"),
        ("[risk]\nmax_daily_loss = 5\n", "risk.max_daily_loss = 5: unknown key; did you mean "),
        ("[notify]\nx = 1\n", "unknown key (check the spelling"),
        ("[broker]\nport = 'abc'\n", "broker.port = 'abc': Input should be a valid integer"),
        ("[risk]\nmax_order_quantity = -5\n", "risk.max_order_quantity = -5: Input should be greater than 0"),
        ("[broker]\nbook_settle_s = -1\n", "broker.book_settle_s = -1: Input should be greater than or equal to 0"),
        ("[sim]\nport = 4002\n", "port 4002 is one of IB's"),
        ("[broker]\nclient_id = 0\n", "broker.client_id = 0: client id 0 is TWS's own"),
        ("[broker\nport = 1\n", "not valid TOML"),
        ("[[strategies]]\nname = 'ema_cross'\nbar_size_s = 7\n", "strategies.0"),
        # Over an hour, a size that does not divide a day would begin its bars at other clock times every day.
        ("[[strategies]]\nname = 'ema_cross'\nbar_size_s = 9000\n",
         "bar_size_s 9000 is over an hour and does not divide a day (86400 s) evenly"),
        ("[[strategies]]\nname = 'ema_cross'\nbar_size_s = 172800\n",
         "strategies.0.bar_size_s = 172800: Input should be less than or equal to 86400"),
        # A folder of zones raised IsADirectoryError: a traceback instead of this message.
        ("[schedule]\ngateway_restart_zone = 'America'\n", "unknown time zone 'America'"),
    ],
)
def test_load_when_file_invalid_then_error_names_file_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    cfg = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(cfg) in info.value.message
    assert expected in info.value.message


@pytest.mark.parametrize("size", [5, 420, 3600, 5400, 7200, 14400, 86400])
def test_load_when_bar_size_fits_the_day_or_is_an_hour_at_most_then_accepted(tmp_path: Path, size: int) -> None:
    cfg = write(tmp_path / "ok.toml", f"[[strategies]]\nname = 'ema_cross'\nbar_size_s = {size}\n")

    assert load_settings(cfg).strategies[0].bar_size_s == size


def test_load_when_env_value_invalid_then_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_TRADER_BROKER__PORT", "notaport")
    with pytest.raises(ConfigError, match="environment variable TUI_TRADER_BROKER__PORT: broker.port"):
        load_settings()


def test_load_when_an_optional_setting_is_empty_in_the_file_or_the_environment_then_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The example said "unset: none", but leaving it out gives 23:45, and both `gateway_restart = ""` and
    # TUI_TRADER_SCHEDULE__GATEWAY_RESTART= failed "String should match pattern": it could not be turned off.
    cfg = write(tmp_path / "c.toml", '[schedule]\ngateway_restart = ""\nreduce_before_close_min = ""\n'
                                     '[sizing]\ntake_profit_r = ""\n')
    from_file = load_settings(cfg)
    left_out = load_settings(write(tmp_path / "d.toml", ""))
    monkeypatch.setenv("TUI_TRADER_SCHEDULE__GATEWAY_RESTART", "")
    monkeypatch.setenv("TUI_TRADER_SCHEDULE__REDUCE_BEFORE_RESTART_MIN", "")
    from_env = load_settings()

    assert (from_file.schedule.gateway_restart, from_file.schedule.reduce_before_close_min,
            from_file.sizing.take_profit_r) == (None, None, None)
    assert (from_env.schedule.gateway_restart, from_env.schedule.reduce_before_restart_min) == (None, None)
    assert left_out.schedule.gateway_restart == "23:45"  # left out: the default
    assert '("" turns it off: no restart window;' in EXAMPLE.read_text(encoding="utf-8")


def test_load_when_a_risk_limit_with_a_default_is_empty_then_its_check_is_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The [risk] section said "a limit left unset turns its check off", but leaving out a limit with a default
    # keeps the default, and `max_drawdown_pct = ""` failed "Input should be a valid number": it could not be
    # turned off at all. Every limit whose default is on now takes "", in the file and in the environment.
    defaulted = [name for name, field in RiskSettings.model_fields.items()
                 if field.default is not None and _optional(field.annotation)]
    text = "[risk]\n" + "".join(f'{name} = ""\n' for name in defaulted)
    from_file = load_settings(write(tmp_path / "c.toml", text))
    monkeypatch.setenv("TUI_TRADER_RISK__MAX_ORDER_QUANTITY", "")
    from_env = load_settings()
    big = ticket(quantity=5_000)  # 500,000 of AAPL: over the default order size, notional and position limits

    assert len(defaulted) >= 15  # the size, exposure, collar, quote, rate, trade-count, loss and drawdown limits
    assert {name: getattr(from_file.risk, name) for name in defaulted} == dict.fromkeys(defaulted)
    assert from_env.risk.max_order_quantity is None
    assert not check(big, limits_from_settings(load_settings())).passed
    assert check(big, limits_from_settings(from_file)).passed
    assert f'Largest quantity in one order. {OFF}.' in EXAMPLE.read_text(encoding="utf-8")


def _optional(annotation: object) -> bool:
    return type(None) in get_args(annotation)


def test_load_when_env_names_no_setting_then_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_TRADER_BORKER__PORT", "1")
    with pytest.raises(ConfigError, match="TUI_TRADER_BORKER__PORT: names no setting"):
        load_settings()


def test_load_when_config_path_missing_then_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "nope.toml")


def test_live_without_confirmation_or_headless_then_refused() -> None:
    with pytest.raises(ConfigError, match="always asks for confirmation"):
        load_settings(None, {"mode": "live", "confirm": False})
    with pytest.raises(ConfigError, match="cannot run headless"):
        load_settings(None, {"mode": "live", "headless": True})


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.broker.port = 1  # type: ignore[misc]


def test_secrets_are_masked_in_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_TRADER_NOTIFICATIONS__TELEGRAM__TOKEN", "123:very-secret")
    settings = load_settings()
    assert settings.notifications.telegram.token.get_secret_value() == "123:very-secret"
    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings.model_dump(mode="json"))


def test_example_when_parsed_then_valid_and_equal_to_defaults() -> None:
    settings = load_settings(EXAMPLE)
    defaults = load_settings()
    assert settings.model_dump(exclude={"state_dir"}) == defaults.model_dump(exclude={"state_dir"})


def test_example_is_generated_from_the_models() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == render_example(Settings), (
        "config.example.toml is stale: regenerate it with `tui-trader check-config --example > config.example.toml`"
    )


def test_example_when_generated_for_another_user_then_the_same_file(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    # The state directory's default was written out: "/root/.local/state/tui-trader" in the committed file, so
    # the example (and this suite) was stale for any other user, or with XDG_STATE_HOME set.
    monkeypatch.setenv("HOME", str(tmp_path / "alice"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    text = render_example(Settings)
    assert text == EXAMPLE.read_text(encoding="utf-8")
    assert str(tmp_path) not in text


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        inner = getattr(ann, "__args__", (ann,))
        sub = next((t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if sub is None and isinstance(ann, type) and issubclass(ann, BaseModel):
            sub = ann
        paths.extend(_field_paths(sub, f"{prefix}{name}.") if sub else [f"{prefix}{name}"])
    return paths


def test_example_when_read_then_every_model_field_appears() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    tomllib.loads(text)
    missing = [path for path in _field_paths(Settings) if f"{path.rsplit('.', 1)[-1]} =" not in text]
    assert missing == []


def test_load_when_a_health_warning_is_above_its_critical_then_refused(tmp_path: Path) -> None:
    # Accepted silently: a CPU at 85 % was critical at once, the 95 % warning never shown or said.
    cfg = write(tmp_path / "inverted.toml", "[health]\ncpu_warn_pct = 95\ncpu_crit_pct = 80\n")
    with pytest.raises(ConfigError, match=r"cpu_warn_pct \(95\) is above cpu_crit_pct \(80\)"):
        load_settings(cfg)


def test_example_when_a_list_entry_shows_a_value_not_the_default_then_its_comment_gives_the_default() -> None:
    # The built-in strategies run on 5-second bars, and the example showed `bar_size_s = 5` under "every key with
    # its default": a new [[strategies]] entry written without the key got 60-second bars, and no signal for a minute.
    text = render_example(Settings)
    block = text[text.index("[[strategies]]"):]
    assert "04:00... (left out: 60)\nbar_size_s = 5\n" in block
    assert '# Symbols it trades. (left out: ["SPY"])\n' in block
    assert "# Whether it runs.\nenabled = true\n" in block  # shown as its default: nothing to add
