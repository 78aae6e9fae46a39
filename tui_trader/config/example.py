"""Renders ``config.example.toml`` from the models, so the example can never drift from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

HEADER = """\
# tui-trader configuration: every key with its default and what it does.
# Copy to ./tui-trader.toml or $XDG_CONFIG_HOME/tui-trader/config.toml, or pass --config PATH.
# Later wins: defaults < this file < TUI_TRADER_* environment variables (__ nests,
# e.g. TUI_TRADER_BROKER__PORT=4002) < command-line flags.
# A key commented out with '# ' has no default (unset); uncomment it to set it.
"""


def render_example(settings_cls: type[BaseModel]) -> str:
    """The whole example file for ``settings_cls``."""
    top: list[str] = []
    sections: list[str] = []
    for name, info in settings_cls.model_fields.items():
        default = _default(info)
        if isinstance(default, BaseModel):
            sections.extend(_section(name, type(default), default))
        elif isinstance(default, list) and default and isinstance(default[0], BaseModel):
            sections.extend(_array_of_tables(name, default))
        else:
            top.extend(_key(name, info, default))
    return HEADER + "\n" + "\n".join(top) + "\n" + "\n".join(sections)


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def _section(path: str, model: type[BaseModel], value: BaseModel) -> list[str]:
    lines = [f"\n[{path}]"]
    nested: list[str] = []
    for name, info in model.model_fields.items():
        current = getattr(value, name)
        if isinstance(current, BaseModel):
            nested.extend(_section(f"{path}.{name}", type(current), current))
        else:
            lines.extend(_key(name, info, current))
    return lines + nested


def _array_of_tables(path: str, items: list[BaseModel]) -> list[str]:
    lines: list[str] = []
    for item in items:
        lines.append(f"\n[[{path}]]")
        for name, info in type(item).model_fields.items():
            current = getattr(item, name)
            if isinstance(current, dict):
                lines.append(f"# {info.description}")
                lines.append(f"{name} = {{ {', '.join(f'{k} = {_toml(v)}' for k, v in current.items())} }}")
            else:
                lines.extend(_key(name, info, current, _left_out(info, current)))
    return lines


def _left_out(info: FieldInfo, shown: Any) -> str:
    """`` (left out: 60)``: an entry of a list shows its own value, which may not be the key's default: a
    new entry written without the key gets the default, not what the example shows."""
    default = _default(info)
    if info.is_required() or default is None or isinstance(default, BaseModel) or default == shown:
        return ""
    return f" (left out: {_toml(default)})"


def _key(name: str, info: FieldInfo, value: Any, note: str = "") -> list[str]:
    comment = f"# {info.description}{note}"
    if value is None or isinstance(value, BaseModel):
        return [comment, f"# {name} ="]
    if isinstance(value, Path) and info.default_factory is not None:
        # A default computed from the environment (XDG paths): its description says it. Written out, it was
        # the home of whoever generated the file ("/root/..."), and the file stale on every other machine.
        return [comment, f"# {name} ="]
    return [comment, f"{name} = {_toml(value)}"]


def _toml(value: Any) -> str:
    if isinstance(value, SecretStr):
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Path):
        return _toml(str(value))
    if hasattr(value, "value"):
        return _toml(value.value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
