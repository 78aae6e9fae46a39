"""The command line: refusals exit 2 with one clear message, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_trader.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--live", "--no-confirm"], "--live with --no-confirm is refused"),
        (["--live", "--headless"], "--live with --headless is refused"),
        (["--duration", "5"], "--duration and --summary-json go with --headless"),
        (["--headless", "--duration", "-1"], "--duration must be a positive number"),
        (["--headless", "--duration", "nan"], "--duration must be a positive number of seconds, not nan"),
        (["kill", "--reason", "x", "--connect-timeout", "-1"], "--connect-timeout must be a positive number"),
        (["kill", "--reason", "x", "--port", "0"], "--port must be a port from 1 to 65535, not 0"),
        (["report", "--tz", "Mars/Base"], "--tz 'Mars/Base' is not a time zone"),
        (["--headless", "--sim", "--symbols", ","], "--symbols needs at least one symbol"),
        # Empty, they were ignored: the run traded every configured symbol, or strategy, without a word.
        (["--headless", "--sim", "--symbols", ""], "--symbols needs at least one symbol, got ''"),
        (["--headless", "--sim", "--strategy", ""], "--strategy needs a strategy name"),
    ],
)
def test_main_when_flags_contradict_then_exit_2_with_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_main_when_two_modes_then_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--sim", "--paper"])
    assert info.value.code == 2
    assert "not allowed with argument --sim" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], *([c] for c in SUBCOMMANDS)])
def test_help_when_the_terminal_is_narrow_then_no_line_breaks_at_a_hyphen(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse broke lines at hyphens: "--client-" at one line's end and "id" at the next's, a flag no one can type.
    monkeypatch.setenv("COLUMNS", "60")
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])

    said = capsys.readouterr().out
    assert exited.value.code == 0
    assert [line for line in said.splitlines() if re.search(r"\w-$", line)] == []


def test_check_config_when_valid_then_prints_settings_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[notifications.telegram]\ntoken = "123:hidden-token"\n', encoding="utf-8")
    assert main(["check-config", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "configuration is valid" in out
    assert "hidden-token" not in out
    assert "'client_id': 17" in out


def test_check_config_when_invalid_then_exit_2_naming_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[broker]\nport = 70000\n", encoding="utf-8")
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "broker.port = 70000" in err


def test_check_config_when_a_strategy_does_not_load_then_exit_2_quoting_the_name_as_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A strategy that does not load was only an alert once running (a headless run went on without it),
    # and the panel read "nosuch❌ cannot import": Rich took ":X:" for an emoji code.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[strategies]]\nname = "nosuch:X"\nsymbols = ["AAPL"]\n', encoding="utf-8")
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())  # the panel's lines joined
    assert "strategies (entry 1 of 1): nosuch:X: cannot import nosuch (No module named 'nosuch'); a plugin's " \
           "module must be importable by the Python that runs tui-trader" in err
    assert "installed in its environment, or in a folder on PYTHONPATH" in err
    assert main(["--strategy", "[bold]nosuch", "--headless", "--duration", "1", "--config", str(cfg)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown strategy '[bold]nosuch'" in err


def test_main_when_strategy_flag_names_a_disabled_strategy_then_exit_2_instead_of_running_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --strategy picked the configured entry, enabled = false: the run started no strategy at all, saying nothing.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[strategies]]\nname = "ema_cross"\nenabled = false\n'
                   '[[strategies]]\nname = "macd"\n', encoding="utf-8")
    assert main(["--headless", "--sim", "--strategy", "ema_cross", "--duration", "1", "--config", str(cfg)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--strategy ema_cross is disabled in the configuration (enabled = false)" in err


def test_check_config_when_strategy_params_are_wrong_then_exit_2_naming_each(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A misspelt parameter was ignored (the strategy traded on its default), "fast" slower than "slow"
    # traded the opposite cross, a period given as text failed on the first bar: all now refused.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[strategies]]\nname = "ema_cross"\nparams = { fsat = 3, slow = "x" }\n'
                   '[[strategies]]\nname = "macd"\nparams = { fast = 30, slow = 26 }\n'
                   '[[strategies]]\nname = "volume_breakout"\nparams = { lookback = 0, volume_mult = nan }\n',
                   encoding="utf-8")
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())  # the panel's lines joined
    assert "strategies (entry 1 of 3): ema_cross: unknown parameter 'fsat' (did you mean fast?)" in err
    assert "strategies (entry 1 of 3): ema_cross: slow = 'x': must be a whole number" in err
    assert "strategies (entry 2 of 3): macd: fast (30) must be shorter than slow (26)" in err
    assert "strategies (entry 3 of 3): volume_breakout: lookback = 0: must be at least 2" in err
    assert "strategies (entry 3 of 3): volume_breakout: volume_mult = nan: must be a number above 0" in err
    assert main(["--headless", "--sim", "--duration", "1", "--config", str(cfg)]) == 2


def test_console_script_when_config_bad_then_exit_2_and_no_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk]\nmax_order_notional = 'lots'\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_TRADER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "tui_trader.cli", "--sim", "--config", str(cfg)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "risk.max_order_notional" in proc.stderr


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


EXAMPLE_LINES = (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines()
KEYS = ["BROKER__PORT", "BROKER__CLIENT_ID", "RISK__MAX_ORDER_QUANTITY", "UI__REFRESH_HZ", "MODE",
        "SIM__PORT", "RISK__ALLOWED_SYMBOLS", "APPROVALS__TIMEOUT_S", "NOPE", "BROKER__NOPE", "STRATEGIES"]


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    lines = list(EXAMPLE_LINES)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "garble", "value", "insert"]))
        if action == "delete":
            del lines[i]
        elif action == "garble":
            lines[i] = draw(st.text(max_size=30))
        elif action == "value" and " = " in lines[i]:
            key = lines[i].split(" = ")[0]
            value = draw(st.sampled_from(['"x"', "-1", "1e309", "[1, 'a']", "true", "{}", "99999999999", '""']))
            lines[i] = f"{key} = {value}"
        else:
            lines.insert(i, draw(st.text(max_size=40)))
    return "\n".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(mutated_example(), st.text(max_size=200)),
    env=st.dictionaries(st.sampled_from(KEYS), st.text(max_size=12).filter(lambda s: "\x00" not in s), max_size=3),
)
def test_check_config_when_fed_random_input_then_exit_0_or_2_and_never_traceback(
    tmp_path: Path, text: str, env: dict[str, str]
) -> None:
    cfg = tmp_path / "fuzz.toml"
    cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
    with environ({f"TUI_TRADER_{k}": v for k, v in env.items()}):
        code = main(["check-config", "--config", str(cfg)])
    assert code in (0, 2)


def test_console_when_config_invalid_then_exit_2_and_the_early_engine_process_is_gone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ``tui-trader`` launches the engine process before it loads the settings: a refusal must not leave it behind.
    import psutil

    cfg = tmp_path / "c.toml"
    cfg.write_text("[broker]\nport = 70000\n", encoding="utf-8")
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    assert main(["--sim", "--config", str(cfg)]) == 2

    assert "broker.port = 70000" in " ".join(capsys.readouterr().err.split())
    assert {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()} <= before
