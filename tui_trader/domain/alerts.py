"""Alerts: what the operator must be told."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tui_trader.domain.enums import AlertLevel

LOST_LINK = "disconnect"
"""The kind of the broker's alert for a link that was up and went down (the engine raises it; the notifications send
the connection change behind it instead, :func:`~tui_trader.ops.notify.notice.notice_for`)."""

def listed(words: Sequence[str]) -> str:
    """Words as an alert says them together: ``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert with its level, the component that raised it, and its text."""

    level: AlertLevel
    source: str
    text: str
    time: datetime
    kind: str = "general"
    trip: str = ""
    """The automatic trigger (``daily_loss``, ``journal_failure``) whose trip this alert says for it: the kill
    switch's alert of the trip that engaged it, the trip's only alert
    (:attr:`~tui_trader.risk.monitors.TriggerHit.said_by_kill`); the notifications send it where the trigger's own
    alerts go too. Empty on every other alert."""


# A condition that begins and ends (the link lost, entries blocked, a data farm broken, the kill switch engaged) is
# named by the alert that says it began and by the one that says it is over: the notifications send the end where the
# beginning went (:attr:`~tui_trader.ops.notify.notice.Notice.topic`), a headless run's stderr shows the INFO end of
# what it said (:class:`~tui_trader.engine.runner.StderrFollow`).
LINK = "link"
"""The condition of a link lost, or never made."""
_CONDITIONS = {  # an alert's kind -> the condition it is news of, and whether it says the condition is over
    LOST_LINK: (LINK, False), "connect_failed": (LINK, False), "reconnected": (LINK, True),
    "farm_broken": ("farm", False), "farm_ok": ("farm", True),
    "ib_link_broken": ("ib_link", False), "ib_link_restored": ("ib_link", True),
    "entries_blocked": ("entries", False), "entries_unblocked": ("entries", True),
    "schedule_reduced": ("schedule", False), "schedule_restored": ("schedule", True),
    "schedule_state_kept": ("schedule", True),  # the window over, REDUCING kept as another set it: said so
    "trigger_file_unchecked": ("trigger_file", False), "trigger_file_checked": ("trigger_file", True),
    "notification_failed": ("notifications", False), "notification_recovered": ("notifications", True),
    "kill": ("kill", False), "kill_all": ("kill", False), "kill_restored": ("kill", False),
    "kill_reset": ("kill", True),
    "halted": ("halt", False), "halt_over": ("halt", True),  # a symbol's trading halt at its exchange
}
_WHICH: dict[str, Callable[[str], str]] = {  # which one of a condition, as both its alerts' texts end or begin
    "farm": lambda text: text.rsplit(":", 1)[-1].strip(),  # "…: Market data farm connection is OK:usfarm"
    "entries": lambda text: text.partition(": ")[2],  # "new entries blocked: <why>", "entry block lifted: <why>"
    "notifications": lambda text: text.partition(":")[0],  # "<channel>: delivering again"
    "halt": lambda text: text.partition(" ")[0],  # "<symbol> halted: …", "<symbol> resumed: …"
}


def condition_of(alert: Alert) -> tuple[str, bool]:
    """The condition ``alert`` is news of (``""``: none), and whether it says the condition is over.

    A health figure's condition is its kind (``health_cpu``, ``health_market_data_age[AAPL]``): over when it is
    back to normal (INFO). A condition that can hold more than once at a time (two farms broken, two entry blocks)
    is told apart by the words its alerts share.
    """
    if alert.kind.startswith("health_"):
        return alert.kind, alert.level is AlertLevel.INFO
    name, ends = _CONDITIONS.get(alert.kind, ("", False))
    which = _WHICH.get(name)
    return (f"{name}: {which(alert.text)}" if which is not None else name), ends
