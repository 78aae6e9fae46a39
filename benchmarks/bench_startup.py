"""Benchmark: from launching ``tui-trader --sim`` to the first painted frame with live quotes.

The real console script runs in a real terminal (a detached tmux session, 160x48, fresh state and
config directories, the embedded simulator on an ephemeral port). The clock starts just before
tmux is asked to start the command and stops when the captured screen first shows the watchlist
with a price for at least one symbol. The screen is polled every 20 ms, so the figure is
resolved to about 20 ms (and the polling itself takes a little CPU on a 2-core machine).

Also reported: ``startup.import_s``, the time to import what ``tui-trader --sim`` imports before
it can draw (:data:`START_PATH`), summed from ``python -X importtime`` in a fresh interpreter; run as
a script it also lists the packages that spend it.

Run: ``.venv/bin/python benchmarks/bench_startup.py [--quick]`` (needs tmux).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent / "tui-trader"
PRICE = re.compile(r"[│┃|]\s?([A-Z]{1,5})\s+([0-9,]+\.[0-9]+)")
"""A watchlist row: a border, a symbol, a price (tolerant of the border style the panes use)."""
POLL_S = 0.02
LIMIT_S = 30.0


def _tmux(*args: str) -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        raise RuntimeError("tmux is not installed")
    return subprocess.run([tmux, *args], capture_output=True, text=True, check=True, timeout=10).stdout


def _has_live_quote(screen: str) -> bool:
    return "Watchlist" in screen and PRICE.search(screen) is not None


def first_frame_s() -> tuple[float, float]:
    """Seconds from launch to the first painted frame (the watchlist pane, maybe empty) and to a
    watchlist price on screen (one launch)."""
    name = f"bench-startup-{os.getpid()}-{time.monotonic_ns()}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {"XDG_STATE_HOME": f"{tmp}/state", "XDG_CONFIG_HOME": f"{tmp}/config", "TUI_TRADER_SIM__PORT": "0",
               "TERM": "xterm-256color"}
        if os.environ.get("PYTHONPATH"):  # A/B runs point it at another checkout (tmux would not pass it on)
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        command = f"cd {tmp} && exec env {exports} {BIN} --sim"
        start = time.perf_counter()
        painted = float("nan")
        _tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "48", command)
        pane_pid = int(_tmux("display-message", "-p", "-t", name, "#{pane_pid}").strip() or 0)
        try:
            while time.perf_counter() - start < LIMIT_S:
                screen = _tmux("capture-pane", "-p", "-t", name)
                if painted != painted and "Watchlist" in screen:
                    painted = time.perf_counter() - start
                if _has_live_quote(screen):
                    return painted, time.perf_counter() - start
                time.sleep(POLL_S)
            raise RuntimeError(f"no live quote on screen within {LIMIT_S}s; last screen:\n{screen}")
        finally:
            family = _family(pane_pid)
            _quit(name)
            _reap(family)


def _quit(name: str) -> None:
    """Ask the console to quit (leave orders), then make sure the session is gone."""
    try:
        _tmux("send-keys", "-t", name, "q")
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            screen = _tmux("capture-pane", "-p", "-t", name)
            if "eave" in screen:
                _tmux("send-keys", "-t", name, "l")
            time.sleep(0.1)
            if name not in _tmux("list-sessions", "-F", "#{session_name}"):
                return
    except subprocess.CalledProcessError:
        return
    subprocess.run([shutil.which("tmux") or "tmux", "kill-session", "-t", name], check=False, timeout=10,
                   capture_output=True)


def _family(pid: int) -> list[psutil.Process]:
    """The console and every process it started (an engine child process, an embedded simulator)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _reap(family: list[psutil.Process]) -> None:
    """Make sure no process of a launch outlives it (one launch must not load the next)."""
    alive = [p for p in family if p.is_running()]
    for proc in alive:
        try:
            proc.terminate()
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(alive, timeout=3)
    for proc in still:
        try:
            proc.kill()
        except psutil.Error:
            continue


START_PATH = ("tui_trader.cli", "tui_trader.config", "tui_trader.ui.app", "tui_trader.engine.process",
              "tui_trader.engine.factory", "tui_trader.broker.ib", "tui_trader.sim", "tui_trader.strategies",
              "tui_trader.store.journal")
"""What ``tui-trader --sim`` imports before its first frame with quotes: the CLI, the console, the engine
(and its child-process transport, where it exists) and its adapter, the embedded simulator, the strategies
and the journal. When the engine runs in a child process these are split between two interpreters;
the sum is still what stands between launch and the first quote. Modules that do not exist are skipped."""


def _start_path() -> list[str]:
    """:data:`START_PATH` without the modules this checkout does not have."""
    out = []
    for module in START_PATH:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out.append(module)
    return out


def import_profile() -> tuple[float, list[tuple[str, float]]]:
    """Import time of the start path and the packages that spend it (self time summed per package)."""
    code = "; ".join(f"import {m}" for m in _start_path())
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    per_package: dict[str, float] = {}
    total = 0.0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if not match:
            continue
        self_s, module = int(match.group(1)) / 1e6, match.group(4)
        parts = module.split(".")
        package = ".".join(parts[:2]) if parts[0] == "tui_trader" else parts[0]
        per_package[package] = per_package.get(package, 0.0) + self_s
        total += self_s
    return total, sorted(per_package.items(), key=lambda kv: -kv[1])[:12]


def _launch_with_retry() -> tuple[float, float]:
    """One launch; a launch that shows no quote (a loaded machine, a port race) is tried once more."""
    try:
        return first_frame_s()
    except (RuntimeError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"startup launch failed, retrying once: {exc}\n")
        return first_frame_s()


def run(quick: bool = False) -> dict[str, float]:
    """Keys ``startup.first_frame_s`` (median of launches), ``.min``, ``.max``, ``startup.first_paint_s``
    (the panes, before quotes) and ``startup.import_s``."""
    launches = 2 if quick else 5
    pairs = [_launch_with_retry() for _ in range(launches)]
    samples = [quoted for _, quoted in pairs]
    total, _ = import_profile()
    return {"startup.first_frame_s": statistics.median(samples), "startup.first_frame_s.min": min(samples),
            "startup.first_frame_s.max": max(samples),
            "startup.first_paint_s": statistics.median(painted for painted, _ in pairs), "startup.import_s": total}


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    print(json.dumps(result, indent=2))
    seconds, slowest = import_profile()
    print(f"import of the start path: {seconds:.3f}s; slowest top-level packages:")
    for module, spent in slowest:
        print(f"  {module:30s} {spent:.3f}s")
