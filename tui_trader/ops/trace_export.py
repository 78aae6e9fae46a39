"""Writing an order trace to a file: JSON (every field, for tools) or CSV (one row per step).

Pure formatting plus one small file write; it imports neither the journal nor the engine's
machinery, so the console can export the trace it received through ``EngineHandle``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from tui_trader.domain.money import tool_figures
from tui_trader.engine.snapshots import OrderTrace, TraceStep
from tui_trader.ops.logs import private_opener

CSV_FIELDS = ("time", "step", "order_ref", "detail", "data")


def step_detail(step: TraceStep, zone: tzinfo | None) -> str:
    """``step``'s detail as read in ``zone``: a bar's begins with its own time there (the trace's times are
    shown in the trading day's zone; a bar's time written in UTC beside them read as another hour)."""
    when = step.data.get("time") if step.step == "bar" else None
    if not isinstance(when, str):
        return step.detail
    at = datetime.fromisoformat(when)
    return f"{(at.astimezone(zone) if zone else at):%H:%M:%S} {step.detail}"


def step_record(step: TraceStep) -> dict[str, Any]:
    """One step as JSON-ready values (times in ISO 8601; every figure as
    :func:`~tui_trader.domain.money.tool_figures` writes it, as ``tui-trader report --order`` does: ``503.29``, not
    ``503.28999999999996``; NaN and infinities null)."""
    return {"time": step.time.isoformat(), "step": step.step, "order_ref": step.order_ref,
            "detail": step.detail, "data": tool_figures(step.data)}


def trace_json(trace: OrderTrace) -> str:
    """The trace as a JSON document: the order, its symbol and every step."""
    doc = {"query": trace.query, "order_ref": trace.order_ref, "symbol": trace.symbol,
           "steps": [step_record(s) for s in trace.steps]}
    return json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n"


def trace_csv(trace: OrderTrace) -> str:
    """The trace as CSV, one row per step (the structured data as a JSON cell)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for step in trace.steps:
        record = step_record(step)
        record["data"] = json.dumps(record["data"], default=str, sort_keys=True, allow_nan=False) if step.data else ""
        writer.writerow(record)
    return out.getvalue()


def default_export_path(trace: OrderTrace, now: datetime, fmt: str = "json") -> Path:
    """``trace-<ref>-<stamp>.<fmt>`` next to the journal (the working directory without one); the stamp is ``now``
    as given (the console gives it in the trading day's zone, as it shows every time)."""
    folder = Path(trace.journal_path).parent if trace.journal_path else Path.cwd()
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", trace.order_ref) or "order"
    return folder / f"trace-{safe}-{now:%Y%m%dT%H%M%S}.{fmt}"


def write_trace(trace: OrderTrace, path: Path) -> Path:
    """Write ``trace`` to ``path`` (CSV when it ends in ``.csv``, JSON otherwise); the absolute path.

    Raises:
        OSError: the file could not be written.
    """
    path = path.expanduser()
    text = trace_csv(trace) if path.suffix.lower() == ".csv" else trace_json(trace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", opener=private_opener) as file:  # the owner's only, as the journal
        file.write(text)
    return path.resolve()
