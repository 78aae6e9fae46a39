"""What ``tui-trader kill`` writes in the journal: the latch, and what became of the global cancel.

The journal tells the whole story of a kill: an OperatorAction ``kill``, then one ``global_cancel``, whether
it was sent (what it found working, what it left) or not (``not sent: <why>``: ``--no-cancel``, a gateway not
known for certain, no engine running with a ``--sim`` journal). The printed line was the only record of a
cancel not sent; ``tui-trader report --section operator_actions`` shows both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_trader.domain.enums import TradingState
from tui_trader.domain.events import KillSwitchEngaged, OperatorAction
from tui_trader.store.journal import Journal

if TYPE_CHECKING:
    from tui_trader.ops.kill import CancelReport

LATCH_ONLY = "only the latch was asked for"
"""Why no global cancel was sent when none was asked for (``--no-cancel``; the console's own kill when its engine
process died, which leaves the protective stops at the broker)."""


def kill_state(by: str, reason: str, when: datetime) -> dict[str, Any]:
    """The latched kill state as the engine persists it, marked out of band."""
    return {"engaged": True, "by": by, "reason": reason, "engaged_at": when.isoformat(), "trigger": "manual",
            "auto": False, "out_of_band": True}


async def latch(journal_path: Path, by: str, reason: str, when: datetime) -> None:
    """Write the kill to the journal (events and latched state), committed before this returns."""
    journal = await Journal.open(journal_path)
    try:
        journal.append(KillSwitchEngaged(when, by, reason))
        journal.append(OperatorAction(when, by, "kill", reason, "", TradingState.HALTED.value))
        await journal.save_kill_state(kill_state(by, reason, when), when)
    finally:
        await journal.close()


def sent(report: CancelReport) -> tuple[str, str]:
    """The global cancel sent, as the journal says it: what it found (before) and what became of it (after)."""
    before = (f"{len(report.cancelled) + len(report.remaining)} working" if report.reachable
              else f"{client_ids(report.client_ids_in_use)} in use at the gateway" if report.client_ids_in_use
              else "gateway unreachable")
    return before, f"{len(report.remaining)} still working" if report.reachable else report.error


def client_ids(ids: tuple[int, ...]) -> str:
    """``client id 55``, ``client ids 56, 57, 58``."""
    return f"client id{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"


def not_sent(why: str) -> tuple[str, str]:
    """The global cancel not sent, and why, as the journal says it."""
    return "", f"not sent: {why}"


async def record_cancel(journal_path: Path, by: str, reason: str, outcome: tuple[str, str]) -> None:
    """Journal the global cancel's ``outcome`` (:func:`sent` or :func:`not_sent`) as an operator action."""
    before, after = outcome
    journal = await Journal.open(journal_path)
    try:
        journal.append(OperatorAction(datetime.now(UTC), by, "global_cancel", reason, before, after))
        await journal.flush()
    finally:
        await journal.close()
