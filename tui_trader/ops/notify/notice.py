"""What a notification says: engine events become :class:`Notice` values of a kind and a level.

Kinds (``notifications.kinds``): ``fills``, ``rejections``, ``risk``, ``kill_switch``,
``disconnects``, ``daily_summary``, ``system`` (health, journal, engine failures) and ``test``.
Alerts are routed by their source; one thing that happened is one notice: the events behind an alert
(a KillSwitchEngaged next to its critical alert, the DISCONNECTED of a connect that failed next to its
``connect_failed`` alert) are not sent, and a lost link is sent as its DISCONNECTED event, not again as the
broker's ``disconnect`` alert beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from tui_trader.config.notifications import NotificationKind
from tui_trader.domain import events as ev
from tui_trader.domain.alerts import LOST_LINK, Alert
from tui_trader.domain.enums import LINK_UP, AlertLevel, ConnectionState, OrderStatus

KINDS = (*get_args(NotificationKind), "test")  # the configurable kinds, and the test message's
_ALERT_SOURCE_KIND = {
    "kill_switch": "kill_switch", "risk": "risk", "reconcile": "risk", "broker": "disconnects",
    "connection": "disconnects", "market_data": "disconnects",
}
_ALERT_KIND_KIND = {"disconnected": "disconnects", "connect_failed": "disconnects", "position_mismatch": "risk"}


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell the operator outside the console."""

    time: datetime
    level: AlertLevel
    kind: str
    title: str
    text: str = ""

    @property
    def line(self) -> str:
        """One line: time, level, title and text."""
        body = f"{self.title}: {self.text}" if self.text else self.title
        return f"{self.time:%H:%M:%S} [{self.level.value}] {body}"


def kind_of_alert(alert: Alert) -> str:
    """The notification kind of an alert (by its kind, then its source; else ``system``)."""
    return _ALERT_KIND_KIND.get(alert.kind) or _ALERT_SOURCE_KIND.get(alert.source, "system")


def notice_for(event: ev.Event) -> Notice | None:
    """The notice an engine event calls for, or ``None`` when it is not worth a message.

    A DISCONNECTED from a state in which the link was not up (a connect that failed, its sync included) is no lost
    link: the ``connect_failed`` alert beside it says the same in better words, and the operator's phone buzzed
    twice for one outage. A lost link is the DISCONNECTED, at ERROR, with why (``connection lost``, ``connectivity
    lost (1100): …``) and that entries are blocked until reconciled (the engine blocks them as it goes down, silently:
    its ``disconnect`` alert says it, which is not sent again).
    """
    if isinstance(event, ev.AlertRaised):
        a = event.alert
        if a.source == "broker" and a.kind == LOST_LINK:
            return None  # the lost link's ConnectionChanged is its notice
        return Notice(event.time, a.level, kind_of_alert(a), f"{a.source}: {a.text}")
    if isinstance(event, ev.OrderFilled):
        return _fill_notice(event)
    if isinstance(event, ev.OrderDenied):
        t = event.ticket
        title = f"denied {t.side.value} {t.quantity:g} {t.symbol} ({t.strategy})"
        return Notice(event.time, AlertLevel.WARNING, "rejections", title, event.verdict.reason)
    if isinstance(event, ev.OrderUpdated) and event.order.status is OrderStatus.REJECTED \
            and event.previous is not OrderStatus.REJECTED:
        o = event.order
        title = f"rejected {o.ticket.side.value} {o.ticket.quantity:g} {o.symbol} {o.order_ref}"
        return Notice(event.time, AlertLevel.WARNING, "rejections", title, o.last_error)
    if isinstance(event, ev.ConnectionChanged) and event.state is ConnectionState.DISCONNECTED \
            and event.previous in LINK_UP:
        return Notice(event.time, AlertLevel.ERROR, "disconnects", "broker disconnected",
                      f"{event.detail}; new entries blocked until reconciled")
    return None


def _fill_notice(event: ev.OrderFilled) -> Notice:
    f = event.fill
    strategy = f" ({event.order.ticket.strategy})" if event.order is not None else ""
    title = f"filled {f.side.value} {f.quantity:g} {f.symbol} @ {f.price:.4g}{strategy}"
    return Notice(event.time, AlertLevel.INFO, "fills", title, f.order_ref)


def subject_of(notices: list[Notice]) -> str:
    """A short subject for a batch: the most severe notice, and how many more.

    One line: a title can carry a broker's or an exception's newlines, and an email header
    with a newline is refused (it would inject headers).
    """
    top = max(notices, key=lambda n: n.level.rank)
    more = f" (+{len(notices) - 1} more)" if len(notices) > 1 else ""
    title = " ".join(top.title.split())
    return f"tui-trader {top.level.value}: {title}"[:150] + more


def body_of(notices: list[Notice], dropped: int = 0, limit: int = 50) -> str:
    """The text of a batch: one line per notice (the newest ``limit``, and every critical one: a
    kill notice is never left out behind a burst of fills), and what was left out.

    Critical lines come first, then the others in their order: Telegram and Discord cut a long
    message at the end, and a kill line queued behind forty fills would be the part cut.
    """
    first_kept = len(notices) - limit
    critical = [n.line for n in notices if n.level is AlertLevel.CRITICAL]
    others = [n.line for i, n in enumerate(notices) if i >= first_kept and n.level is not AlertLevel.CRITICAL]
    left_out = len(notices) - len(critical) - len(others)
    lines = critical + ([f"... {left_out} earlier notices left out"] if left_out else []) + others
    if dropped:
        lines.append(f"({dropped} notices dropped: queue full)")
    return "\n".join(lines)
