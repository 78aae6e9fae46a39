"""The dependency rules of DESIGN.md §4, enforced two ways: a fresh interpreter per module, and
import-linter's contracts from pyproject.toml. Plus ruff and mypy, so one test command proves hygiene.
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tui_trader

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORE = ("domain", "risk", "engine", "strategies", "broker", "sim", "store", "ops", "config", "errors")
PURE = ("domain", "risk")
PURE_FORBIDDEN = ("textual", "ib_async", "aiosqlite", "pandas", "psutil", "asyncio")


def project_modules(layer: str) -> list[str]:
    base = f"tui_trader.{layer}"
    path = ROOT / "tui_trader" / layer
    if not path.is_dir():
        return [base] if (ROOT / "tui_trader" / f"{layer}.py").exists() else []
    found = [base]
    for info in pkgutil.walk_packages([str(path)], prefix=base + "."):
        if not info.name.endswith("__main__"):
            found.append(info.name)
    return found


def imported_by(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout)} | set(json.loads(out.stdout))


@pytest.mark.parametrize("module", [m for layer in CORE for m in project_modules(layer)])
def test_core_module_when_imported_alone_then_textual_not_loaded(module: str) -> None:
    assert "textual" not in imported_by(module)


@pytest.mark.parametrize("module", [m for layer in PURE for m in project_modules(layer)])
def test_pure_module_when_imported_alone_then_no_io_libraries(module: str) -> None:
    loaded = imported_by(module)
    leaked = [name for name in PURE_FORBIDDEN if name in loaded and name != "asyncio"]
    assert leaked == []


def test_import_linter_contracts_hold() -> None:
    proc = subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_clean() -> None:
    proc = subprocess.run([str(BIN / "ruff"), "check", "tui_trader", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("mypy", path=str(BIN)) is None, reason="mypy is part of the test extra")
def test_mypy_clean() -> None:
    # benchmarks/ has no __init__.py: ``-p`` checks it as a namespace package (``mypy benchmarks`` would not resolve it)
    proc = subprocess.run([str(BIN / "mypy"), "-p", "tui_trader", "-p", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


def test_package_version_matches_pyproject() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["version"] == tui_trader.__version__
