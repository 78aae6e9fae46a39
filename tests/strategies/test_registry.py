"""Loading a plugin strategy: whatever is wrong with it is said as a problem naming it, never raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.strategies.registry import StrategyLoadError, build, problems

PLUGIN = '''
from tui_trader.strategies import Strategy

class Fine(Strategy):
    pass

class RaisesInInit(Strategy):
    def __init__(self, name, params=None):
        raise KeyError("API_KEY")

class NoWarmup(Strategy):
    @property
    def warmup_bars(self):
        return None

class BadParamCheck(Strategy):
    @classmethod
    def check_params(cls, params):
        return [params["threshold"]]
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin modules on the import path, as a user's would be: one fine, one that does not parse,
    one that raises as it is imported."""
    (tmp_path / "zz_plugins.py").write_text(PLUGIN, encoding="utf-8")
    (tmp_path / "zz_unparsable.py").write_text("def on_bar(:\n", encoding="utf-8")
    (tmp_path / "zz_raising.py").write_text("raise RuntimeError('set TOKEN first')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize(("spec", "said"), [
    ("zz_unparsable:X", "zz_unparsable:X: importing zz_unparsable raised SyntaxError: invalid syntax"),
    ("zz_raising:X", "zz_raising:X: importing zz_raising raised RuntimeError: set TOKEN first"),
    (":Fine", ":Fine: not module:Class (a module to import, a colon, the class in it)"),
    ("zz_plugins:", "zz_plugins:: not module:Class (a module to import, a colon, the class in it)"),
    ("zz_plugins:RaisesInInit", "zz_plugins:RaisesInInit: creating it raised KeyError: 'API_KEY'"),
    ("zz_plugins:NoWarmup", "zz_plugins:NoWarmup: its warmup_bars None is not a whole number of bars"),
    ("zz_plugins:BadParamCheck", "zz_plugins:BadParamCheck: checking its parameters raised KeyError: 'threshold'"),
])
@pytest.mark.usefixtures("plugins")
def test_problems_when_a_plugin_fails_to_load_or_be_created_then_one_problem_naming_it(spec: str, said: str) -> None:
    # A module that does not parse or raises at import, and a constructor that raises, came out of
    # check-config as a traceback; ":X" as "Empty module name"; a constructor or warmup_bars that
    # raised passed check-config, then stopped the engine's start.
    (problem,) = problems([(spec, {}), ("zz_plugins:Fine", {})])

    assert problem.startswith(said)


@pytest.mark.usefixtures("plugins")
def test_build_when_the_plugin_is_fine_then_an_instance_under_its_name() -> None:
    strategy = build("zz_plugins:Fine", "fine#2", {})

    assert (type(strategy).__name__, strategy.name) == ("Fine", "fine#2")
    with pytest.raises(StrategyLoadError, match="ema_cross: unknown parameter 'fats'"):
        build("ema_cross", "ema_cross", {"fats": 3})
