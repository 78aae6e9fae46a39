"""Finding strategy classes: built-ins by name, plugins by ``module:Class`` or entry point.

A plugin is the user's code: whatever goes wrong while it is found, imported or created (a module
that does not parse or raises as it loads, a constructor that raises, a ``warmup_bars`` that is
no number of bars) becomes a :class:`StrategyLoadError` naming the strategy and the problem, which
``check-config`` prints and the engine alerts, never a traceback out of the engine's start.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from tui_trader.strategies.base import Strategy
from tui_trader.strategies.builtin import BUILTINS

ENTRY_POINT_GROUP = "tui_trader.strategies"


class StrategyLoadError(ValueError):
    """A strategy name could not be resolved to a Strategy class, or its class not made an instance."""


def resolve(name: str) -> type[Strategy]:
    """The class for a built-in name, a ``module:Class`` path or an entry-point name."""
    if name in BUILTINS:
        return BUILTINS[name]
    cls = _from_path(name) if ":" in name else _from_entry_point(name)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(f"{name}: not a tui_trader.strategies.Strategy subclass")
    return cls


def build(spec: str, name: str, params: Mapping[str, Any]) -> Strategy:
    """An instance of ``spec``'s class (:func:`resolve`) named ``name`` with ``params``.

    Raises:
        StrategyLoadError: ``spec`` resolves to no strategy class, its parameters are refused, its
            constructor raised, or its ``warmup_bars`` is not a whole number of bars.
    """
    cls = resolve(spec)
    try:
        strategy = cls(name, params)
        warmup = strategy.warmup_bars
    except ValueError as exc:  # the parameters' problems (Strategy.param_problems), already worded
        raise StrategyLoadError(f"{spec}: {str(exc) or _named(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's constructor: said, not raised out of the engine's start
        raise StrategyLoadError(f"{spec}: creating it raised {_named(exc)}") from exc
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise StrategyLoadError(f"{spec}: its warmup_bars {warmup!r} is not a whole number of bars")
    return strategy


def _from_path(path: str) -> object:
    module_name, _, attr = path.partition(":")
    if not module_name.strip() or not attr.strip():
        raise StrategyLoadError(f"{path}: not module:Class (a module to import, a colon, the class in it)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = (f"; a plugin's module must be importable by the Python that runs tui-trader ({sys.executable}): "
                 "installed in its environment, or in a folder on PYTHONPATH") if exc.name == module_name else ""
        raise StrategyLoadError(f"{path}: cannot import {module_name} ({exc}){where}") from exc
    except ImportError as exc:
        raise StrategyLoadError(f"{path}: cannot import {module_name} ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module fails as it loads (does not parse, raises)
        raise StrategyLoadError(f"{path}: importing {module_name} raised {_named(exc)}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StrategyLoadError(f"{path}: {module_name} has no {attr}") from None


def _from_entry_point(name: str) -> object:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(sorted(BUILTINS))
        raise StrategyLoadError(f"unknown strategy {name!r} (built-ins: {known}; or module:Class)")
    try:
        return found[0].load()
    except Exception as exc:  # noqa: BLE001 - an installed plugin that fails as it loads
        raise StrategyLoadError(f"{name}: loading entry point {found[0].value} ({ENTRY_POINT_GROUP}) raised "
                                f"{_named(exc)}") from exc


def _named(exc: BaseException) -> str:
    """``exc`` as its type and message (``SyntaxError: invalid syntax (plugin.py, line 3)``)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def problems(specs: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Why each ``(name, params)`` would not load: a name that resolves to no strategy class, parameters
    its class refuses (:meth:`Strategy.param_problems`, each said), or a failure to create it
    (:func:`build`). Empty: all load."""
    found: list[str] = []
    for name, params in specs:
        try:
            refused = resolve(name).param_problems(params)
            if refused:
                found.extend(f"{name}: {p}" for p in refused)
            else:
                build(name, name, params)
        except StrategyLoadError as exc:
            found.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a plugin's own parameter check raised
            found.append(f"{name}: checking its parameters raised {_named(exc)}")
    return found
