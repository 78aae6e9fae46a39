"""The invariants the chaos suite checks after every run, from the simulator's ledger, the engine's
journal (read with sqlite3 after the engine stopped), its summary and its status lines."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from .harness import World

FINAL = {"FILLED", "CANCELLED", "REJECTED", "EXPIRED"}
SIM_WORKING = {"PreSubmitted", "Submitted", "PendingSubmit"}


def journal_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the engine's journal (read after the engine stopped)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def check_invariants(world: World, summary: dict[str, Any]) -> list[str]:
    """Every invariant of the chaos suite; the list of violations (empty when all hold)."""
    journal = world.tmp / "journal.sqlite"
    problems: list[str] = []
    if not summary:
        return ["the engine wrote no summary on SIGTERM"]
    problems += _no_duplicates(world)
    problems += _nothing_sent_while_halted(world, journal)
    problems += _approvals(world, journal)
    problems += _executions(world, journal)
    problems += _account(world, summary)
    problems += _kill_latched(world, summary)
    problems += _orders_final(world, summary, journal)
    problems += _no_silent_crash(world)
    return problems


BOOK_ALERTS = ("position_mismatch", "cash_mismatch", "fill_recovered", "unknown_fill", "executions_not_this_journals",
               "order_reconciled", "order_adopted", "protection_refused", "order_figures", "commission_missing")
"""Alerts in which the engine says what it found when it compared its book with the broker's."""
MISMATCH_TRIP = "kill switch engaged by risk:position_mismatch %"
"""How the kill switch's alert begins (a ``kill`` alert) that says a position mismatch whose trigger halted trading:
the mismatch's only alert then."""


def diagnosis(world: World, summary: dict[str, Any]) -> str:
    """What the engine itself recorded about its book, for a failed run's report: the broker's positions as
    the engine last saw them, each book checkpoint's reason, the reconciliation alerts, and each fill."""
    journal = world.tmp / "journal.sqlite"
    lines = [f"engine's view of the broker at the summary: {summary.get('broker_positions')} "
             f"(match: {summary.get('positions_match')}); alerts: {summary.get('alerts')}"]
    if not journal.exists():
        return lines[0]
    for time, payload in journal_rows(journal, "SELECT time, payload FROM events "
                                      "WHERE kind = 'BookCheckpointed' ORDER BY id"):
        lines.append(f"{time} checkpoint: {json.loads(payload).get('reason')}")
    marks = ",".join("?" * len(BOOK_ALERTS))
    said = (f"SELECT time, kind, text FROM alerts WHERE kind IN ({marks}) OR (kind = 'kill' AND text LIKE ?) "
            "ORDER BY id")
    for time, kind, text in journal_rows(journal, said, (*BOOK_ALERTS, MISMATCH_TRIP)):
        lines.append(f"{time} {kind}: {text}")
    for time, payload in journal_rows(journal, "SELECT time, payload FROM events WHERE kind = 'OrderFilled' "
                                      "ORDER BY id"):
        fill = json.loads(payload)["fill"]
        lines.append(f"{time} fill {fill['exec_id']} {fill['order_ref']} {fill['side']} {fill['quantity']:g} "
                     f"{fill['symbol']} @ {fill['price']:g} (executed {fill['time']})")
    return "\n".join(lines)


def _no_duplicates(world: World) -> list[str]:
    dups = world.sim.duplicate_order_refs()
    return [f"orderRefs sent more than once: {dups}"] if dups else []


def _sent_refs(world: World) -> list[str]:
    return [r for r in world.sim.order_refs() if r]


def _halted_intervals(journal: Path) -> list[tuple[str, str]]:
    """(from, to) times during which the journal says the engine was HALTED (to is open-ended: "~")."""
    rows = journal_rows(journal, "SELECT time, payload FROM events WHERE kind = 'TradingStateChanged' ORDER BY id")
    intervals: list[tuple[str, str]] = []
    start: str | None = None
    for time, payload in rows:
        state = json.loads(payload).get("state")
        if state == "HALTED" and start is None:
            start = str(time)
        elif state != "HALTED" and start is not None:
            intervals.append((start, str(time)))
            start = None
    if start is not None:
        intervals.append((start, "~"))  # "~" sorts after every ISO time
    return intervals


def _nothing_sent_while_halted(world: World, journal: Path) -> list[str]:
    intervals = _halted_intervals(journal)
    if not intervals:
        return []
    sending = dict(journal_rows(journal, "SELECT order_ref, MIN(time) FROM order_states WHERE status = 'SENDING' "
                                         "GROUP BY order_ref"))
    late = [r for r in _sent_refs(world) if sending.get(r) is not None
            and any(lo < sending[r] < hi for lo, hi in intervals)]
    return [f"orders sent while the engine was HALTED {intervals}: {late}"] if late else []


def _approvals(world: World, journal: Path) -> list[str]:
    refs = _sent_refs(world)
    unknown = [r for r in refs if not journal_rows(journal, "SELECT 1 FROM orders WHERE order_ref = ?", (r,))]
    problems = [f"orders at the simulator that the journal never saw: {unknown}"] if unknown else []
    if world.approve == "none":
        return problems
    approved = {json.loads(p)["order_ref"] for (p,) in journal_rows(
        journal, "SELECT payload FROM events WHERE kind = 'ApprovalResolved'") if json.loads(p).get("approved")}
    parents = dict(journal_rows(journal, "SELECT order_ref, parent_ref FROM orders"))
    unapproved = [r for r in refs if r not in approved and parents.get(r) not in approved]
    if unapproved:
        problems.append(f"orders sent without the operator's approval: {unapproved}")
    return problems


def _executions(world: World, journal: Path) -> list[str]:
    sim_execs = {e.exec_id: e for e in world.sim.executions()}
    fills = {row[0]: row for row in journal_rows(journal, "SELECT exec_id, commission, quantity FROM fills")}
    events: dict[str, int] = {}
    for (payload,) in journal_rows(journal, "SELECT payload FROM events WHERE kind = 'OrderFilled'"):
        exec_id = json.loads(payload)["fill"]["exec_id"]
        events[exec_id] = events.get(exec_id, 0) + 1
    problems = []
    missing = sorted(set(sim_execs) - set(fills))
    extra = sorted(set(fills) - set(sim_execs))
    twice = sorted(e for e, n in events.items() if n != 1)
    no_commission = sorted(e for e, row in fills.items() if row[1] is None)
    wrong_commission = sorted(e for e, row in fills.items()
                              if e in sim_execs and row[1] is not None and abs(row[1] - sim_execs[e].commission) > 1e-6)
    for label, items in (("executions missing from the journal", missing),
                         ("journaled fills the simulator never executed", extra),
                         ("executions journaled more (or less) than once", twice),
                         ("fills without a commission", no_commission),
                         ("fills whose commission differs from the broker's", wrong_commission)):
        if items:
            problems.append(f"{label}: {items}")
    return problems


def _account(world: World, summary: dict[str, Any]) -> list[str]:
    problems = []
    ours = {s: float(q) for s, q in summary.get("positions", {}).items() if q}
    theirs = {s: float(q) for s, q in world.sim.positions().items() if q}
    if ours != theirs:
        problems.append(f"engine positions {ours} != simulator positions {theirs}")
    cash = float(summary.get("cash", float("nan")))
    if not abs(cash - world.sim.cash) <= 0.01:
        problems.append(f"engine cash {cash:.4f} != simulator cash {world.sim.cash:.4f}")
    return problems


def _kill_latched(world: World, summary: dict[str, Any]) -> list[str]:
    if world.kill_requested_at is None:
        return []
    seen = False
    for child in world.children:
        for i, status in enumerate(child.statuses):
            if world.reset_mark is not None and (child.index, i) >= world.reset_mark:
                break
            if status.get("kill"):
                seen = True
            elif seen:
                return [f"kill switch released without a reset (engine #{child.index}, status line {i})"]
    problems = [] if seen else ["the kill switch was requested but never engaged"]
    if world.reset_mark is None and not summary.get("kill_engaged"):
        problems.append("the kill switch was not engaged at the end of the run")
    if world.reset_mark is not None and summary.get("kill_engaged"):
        problems.append("the explicit reset did not release the kill switch")
    return problems


def _orders_final(world: World, summary: dict[str, Any], journal: Path) -> list[str]:
    working = {o.order_ref for o in world.sim.orders() if o.status in SIM_WORKING}
    alerts = " ".join(t for (t,) in journal_rows(journal, "SELECT text FROM alerts WHERE kind = 'order_unknown'"))
    problems = []
    for ref, status in summary.get("order_status", {}).items():
        if status in FINAL or (status in {"SUBMITTED", "PARTIALLY_FILLED"} and ref in working):
            continue
        if status == "UNKNOWN" and ref in alerts:
            continue
        problems.append(f"order {ref} left {status} (working at the simulator: {ref in working})")
    return problems


def _no_silent_crash(world: World) -> list[str]:
    problems = []
    for child in world.children:
        code = child.proc.returncode
        if not child.killed and code != 0:
            problems.append(f"engine #{child.index} exited with code {code} without being asked to")
        err = (world.tmp / f"engine-{child.index}.err").read_text(encoding="utf-8", errors="replace")
        if "Traceback" in err:
            problems.append(f"engine #{child.index} wrote a traceback: {err[-800:]}")
    log_path = world.tmp / "engine.log"
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    for marker in ("exception was never retrieved", "Unhandled exception", "Exception in callback"):
        if marker in text:
            problems.append(f"engine log shows an unhandled exception ({marker!r})")
    return problems
