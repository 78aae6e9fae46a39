"""Finding strategy classes: built-ins by name, plugins by ``module:Class`` or entry point."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from tui_trader.strategies.base import Strategy
from tui_trader.strategies.builtin import BUILTINS

ENTRY_POINT_GROUP = "tui_trader.strategies"


class StrategyLoadError(ValueError):
    """A strategy name could not be resolved to a Strategy class."""


def resolve(name: str) -> type[Strategy]:
    """The class for a built-in name, a ``module:Class`` path or an entry-point name."""
    if name in BUILTINS:
        return BUILTINS[name]
    cls = _from_path(name) if ":" in name else _from_entry_point(name)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(f"{name}: not a tui_trader.strategies.Strategy subclass")
    return cls


def _from_path(path: str) -> object:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyLoadError(f"{path}: cannot import {module_name} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StrategyLoadError(f"{path}: {module_name} has no {attr}") from None


def _from_entry_point(name: str) -> object:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(sorted(BUILTINS))
        raise StrategyLoadError(f"unknown strategy {name!r} (built-ins: {known}; or module:Class)")
    return found[0].load()


def problems(specs: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Why each ``(name, params)`` would not load: a name that resolves to no strategy class, or
    parameters its class refuses (:meth:`Strategy.param_problems`). Empty: all load."""
    found: list[str] = []
    for name, params in specs:
        try:
            found.extend(f"{name}: {p}" for p in resolve(name).param_problems(params))
        except StrategyLoadError as exc:
            found.append(str(exc))
    return found
