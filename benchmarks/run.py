"""Run every benchmark, repeated, and report the median of each figure with how noisy it was.

Usage: ``.venv/bin/python benchmarks/run.py [--quick] [--json PATH] [--only NAME,NAME] [--repeats N]``.

Each benchmark module in :data:`BENCHMARKS` exposes ``run(quick: bool = False) -> dict[str, float]``.
Every repetition runs in a fresh interpreter (a crash, a hang or a leak of one run cannot spoil the
others, and RSS figures start from a clean process) with a time limit. A benchmark that fails is
recorded under ``errors`` and the runner goes on; the exit code is 1 if any failed.

The output is one JSON object::

    {"machine": {...}, "metrics": {NAME: median}, "noise": {NAME: relative spread},
     "runs": {NAME: [each repetition]}, "errors": {MODULE: message}, "elapsed_s": {MODULE: seconds},
     "missing": [required names without a finite figure]}

Noise is ``(max - min) / |median|`` over the repetitions (0 with a single repetition; NaN when the
median is 0): a figure whose noise is 0.5 moved by half its value between repetitions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BENCHMARKS: tuple[str, ...] = (
    "bench_sim", "bench_risk", "bench_journal", "bench_tick_to_order", "bench_console", "bench_startup",
    "bench_soak",
)
"""Module names under ``benchmarks/``, in the order they run."""

REPEATS = {"full": 3, "quick": 2}
"""Repetitions per benchmark (see :data:`SINGLE_RUN` for the exceptions)."""

SINGLE_RUN = {"full": {"bench_soak"}, "quick": {"bench_soak", "bench_console", "bench_startup"}}
"""Benchmarks run once in a profile: too long to repeat (the soak), or repeated inside (startup launches
the console twice in quick mode)."""

TIME_LIMIT_S = {"full": 240.0, "quick": 75.0}
"""Wall-clock limit of one repetition of one benchmark (the soak gets :data:`SOAK_LIMIT_S`)."""

SOAK_LIMIT_S = {"full": 1200.0, "quick": 150.0}

LIMIT_S = {"bench_soak": SOAK_LIMIT_S, "bench_console": {"full": 600.0, "quick": 150.0},
           "bench_tick_to_order": {"full": 480.0, "quick": 75.0}}
"""Benchmarks that need longer than :data:`TIME_LIMIT_S`: the soak, the console (it starts the
engine's child process with 100 positions and 100 resting orders, then runs 16 kill / re-rest
cycles in quick mode, each paced by ib_async's 45 requests/s: about a minute), and tick-to-order
(600 samples per client at each of three rates, 40–60 ms apart: ≈ 3.6 min a repetition)."""

GOALS: dict[str, tuple[str, float, str]] = {
    "sim.msgs_per_s": (">", 100_000, "ours: near what one ib_async client decodes, DESIGN §5"),
    "risk.check_us_p50": ("<", 50, "issue 4"),
    "journal.events_per_s": (">", 100_000, "ours: DESIGN §5 measured ≈270k at batch 100, raw rows"),
    "journal.max_loop_block_ms": ("<=", 1, "DESIGN §5"),
    "engine.tick_to_order_ms.p99": ("<=", 1.5, "× bare p99 (issue 5)"),
    "engine.tick_to_order_ms.p99@0": ("<=", 1.5, "× bare p99 (issue 5)"),
    "engine.tick_to_order_ms.p99@1000": ("<=", 1.5, "× bare p99 (issue 5)"),
    "console.tick_to_order_ms.p99": ("<", 10, "issue 6"),
    "console.kill_to_wire_ms.p99": ("<", 25, "issue 6"),
    "console.loop_lag_ms.p99": ("<", 10, "issue 6"),
    "console.frame_ms.p99": ("<", 16, "issue 6"),
    "console.refresh_hz": (">=", 4, "issue 6: 4–10 Hz"),
    "startup.first_frame_s": ("<", 1.5, "issue 8"),
    "soak.rss_growth_mb": ("<", 20, "issue 8"),
    "soak.rss_peak_mb": ("<", 300, "issue 8"),
    "soak.console.rss_growth_mb": ("<", 20, "issue 8"),
    "soak.console.rss_peak_mb": ("<", 300, "issue 8"),
}
"""Goal per headline metric: comparison, value, where it comes from. Tick-to-order goals are ratios."""

HEADLINE = (
    "sim.msgs_per_s", "risk.check_us_p50", "journal.events_per_s", "journal.events_per_s.b1000",
    "journal.events_per_s.busy_loop", "journal.max_loop_block_ms",
    "engine.tick_to_order_ms.p50", "engine.tick_to_order_ms.p99", "bare.tick_to_order_ms.p50",
    "bare.tick_to_order_ms.p99", "engine.tick_to_order_ms.p50@1000", "engine.tick_to_order_ms.p99@1000",
    "bare.tick_to_order_ms.p50@1000", "bare.tick_to_order_ms.p99@1000", "engine.tick_to_order_ms.p50@0",
    "engine.tick_to_order_ms.p99@0", "bare.tick_to_order_ms.p50@0", "bare.tick_to_order_ms.p99@0",
    "console.tick_to_order_ms.p99", "console.kill_to_wire_ms.p50", "console.kill_to_wire_ms.p99",
    "console.loop_lag_ms.p99", "console.frame_ms.p99", "console.refresh_hz", "startup.first_frame_s",
    "startup.import_s", "soak.rss_growth_mb", "soak.rss_peak_mb", "soak.sim.rss_peak_mb",
    "soak.console.rss_growth_mb", "soak.console.rss_peak_mb",
)
"""The names the issue asks for (and a few that explain them), in the order the README shows them."""

REQUIRED = tuple(n for n in HEADLINE if n not in (
    "journal.events_per_s.b1000", "journal.events_per_s.busy_loop", "startup.import_s",
    "soak.console.rss_growth_mb", "soak.console.rss_peak_mb", "soak.sim.rss_peak_mb"))

PACKAGES = ("textual", "rich", "ib_async", "pandas", "numpy", "pydantic", "pydantic-settings", "aiosqlite",
            "psutil", "pyarrow")

_CHILD = """
import json, sys
sys.path.insert(0, {here!r}); sys.path.insert(0, {root!r})
import {module} as bench
result = bench.run(quick={quick})
sys.stdout.write("\\n@@RESULT@@" + json.dumps({{k: float(v) for k, v in result.items()}}) + "\\n")
"""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "packages": _versions(), "git_commit": _git_commit(),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["physical_cores"] = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        pass
    if hasattr(os, "getloadavg"):
        info["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def run_once(module: str, quick: bool, limit_s: float) -> dict[str, float]:
    """One repetition of one benchmark in a fresh interpreter; raises RuntimeError on failure."""
    code = _CHILD.format(here=str(HERE), root=str(ROOT), module=module, quick=quick)
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=limit_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"timed out after {limit_s:.0f}s") from exc
    marker = done.stdout.rfind("@@RESULT@@")
    if done.returncode != 0 or marker < 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
        raise RuntimeError(f"exit code {done.returncode}: " + " | ".join(tail))
    result: dict[str, float] = json.loads(done.stdout[marker + len("@@RESULT@@"):].strip().splitlines()[0])
    return result


def noise_of(values: list[float]) -> float:
    """Relative spread ``(max - min) / |median|`` of the finite values."""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2:
        return 0.0 if finite else math.nan
    median = statistics.median(finite)
    return (max(finite) - min(finite)) / abs(median) if median else math.nan


def summarize(runs: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Median and noise of every metric over its repetitions."""
    metrics, noise = {}, {}
    for name, values in sorted(runs.items()):
        finite = [v for v in values if not math.isnan(v)]
        metrics[name] = statistics.median(finite) if finite else math.nan
        noise[name] = noise_of(values)
    return metrics, noise


def run_all(modules: list[str], quick: bool, repeats: int | None) -> dict[str, Any]:
    """Run ``modules`` and build the report (never raises for a failing benchmark)."""
    profile = "quick" if quick else "full"
    runs: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    elapsed: dict[str, float] = {}
    fallbacks: list[str] = []
    info = machine()
    for module in modules:
        count = 1 if module in SINGLE_RUN[profile] else (repeats or REPEATS[profile])
        limit = LIMIT_S.get(module, TIME_LIMIT_S)[profile]
        start = time.perf_counter()
        got = _repeat(module, quick, limit, count, errors)
        if got is None and not quick:
            # A full run that fails still gets figures from its quick mode, marked as such.
            got = _repeat(module, True, LIMIT_S.get(module, TIME_LIMIT_S)["quick"], count, errors,
                          key=f"{module} (quick fallback)")
            if got is not None:
                fallbacks.append(module)
        for name, values in (got or {}).items():
            runs.setdefault(name, []).extend(values)
        elapsed[module] = round(time.perf_counter() - start, 1)
        print(f"[run] {module}: {elapsed[module]:.1f}s", file=sys.stderr, flush=True)
    metrics, noise = summarize(runs)
    return {"profile": profile, "machine": info, "metrics": metrics, "noise": noise, "runs": runs,
            "errors": errors, "elapsed_s": elapsed, "quick_fallback": fallbacks}


def _repeat(module: str, quick: bool, limit: float, count: int, errors: dict[str, str],
            key: str | None = None) -> dict[str, list[float]] | None:
    """``count`` repetitions of one benchmark; None (and the error recorded) if one fails."""
    got: dict[str, list[float]] = {}
    for i in range(count):
        try:
            result = run_once(module, quick, limit)
        except RuntimeError as exc:
            errors[key or module] = f"repetition {i + 1}: {exc}"
            print(f"[run] {key or module}: FAILED ({exc})", file=sys.stderr, flush=True)
            return None
        for name, value in result.items():
            got.setdefault(name, []).append(value)
    return got


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def goal_met(name: str, value: float, metrics: dict[str, float]) -> str:
    """``yes`` / ``no`` / empty (no goal, or no figure)."""
    goal = GOALS.get(name)
    if goal is None or value is None or math.isnan(value):
        return ""
    op, limit, _ = goal
    if name.startswith("engine.tick_to_order_ms.p99"):
        bare = metrics.get(name.replace("engine.", "bare."), math.nan)
        value = value / bare if bare else math.nan
    ok = {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[op]
    return "yes" if ok else "**no**"


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "missing"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def markdown(report: dict[str, Any]) -> str:
    """The headline table of a report, with goals and noise."""
    metrics, noise, runs = report["metrics"], report["noise"], report.get("runs", {})
    lines = ["| metric | median | goal | met | noise (max−min)/median | runs |", "|---|---:|---|:---:|---:|---:|"]
    for name in HEADLINE:
        value = metrics.get(name)
        goal = GOALS.get(name)
        goal_text = f"{goal[0]} {goal[1]:g} ({goal[2]})" if goal else ""
        shown = _number(value)
        spread = noise.get(name)
        count = len(runs.get(name, []))
        spread_text = "" if spread is None or math.isnan(spread) or count < 2 else f"{spread:.0%}"
        met = goal_met(name, value, metrics) if value is not None else ""
        lines.append(f"| `{name}` | {shown} | {goal_text} | {met} | {spread_text} | {count} |")
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 1 when any benchmark failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repetitions (under 3 minutes)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the report here (default: stdout)")
    parser.add_argument("--only", metavar="A,B", help="run only these benchmarks (e.g. journal,startup)")
    parser.add_argument("--repeats", type=int, help="repetitions per benchmark (default 3 full, 2 quick)")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the headline table (Markdown)")
    args = parser.parse_args(argv)
    modules = list(BENCHMARKS)
    if args.only:
        wanted = {f"bench_{w.strip().removeprefix('bench_')}" for w in args.only.split(",")}
        modules = [m for m in modules if m in wanted]
    started = time.perf_counter()
    report = run_all(modules, args.quick, args.repeats)
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["missing"] = [n for n in REQUIRED if not _finite(report["metrics"].get(n))] if not args.only else []
    if report["missing"]:
        print(f"[run] no figure for: {', '.join(report['missing'])}", file=sys.stderr)
    text = json.dumps(_jsonable(report), indent=2, sort_keys=False)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.markdown:
        args.markdown.write_text(markdown(report), encoding="utf-8")
    for module, message in report["errors"].items():
        print(f"[run] FAILED {module}: {message}", file=sys.stderr)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
