"""What a notification says: engine events become :class:`Notice` values of a kind and a level.

Kinds (``notifications.kinds``): ``fills``, ``rejections``, ``risk`` (risk triggers, reconciliation, the
schedule), ``kill_switch``, ``disconnects``, ``daily_summary``, ``system`` (health, journal, engine failures) and
``test``.
Alerts are routed by their kind or source; one thing that happened is one notice: the events behind an alert
(a KillSwitchEngaged next to its critical alert, the DISCONNECTED of a connect that failed next to its
``connect_failed`` alert) are not sent, and a lost link is sent as its DISCONNECTED event, not again as the
broker's ``disconnect`` alert beside it. A notice may be of two kinds (:attr:`Notice.kinds`): the kill switch's alert
of an automatic trip, which is the trip's only alert, is ``kill_switch`` and the trigger's (``risk``; ``system`` for a
journal failure), sent once to a channel that listens to either or both.

A notice that a condition began (the link lost, entries blocked, a data farm broken, a health figure over its limit,
the schedule's REDUCING, the kill switch engaged) names it (:attr:`Notice.topic`), and so does the notice that it
is over (:attr:`Notice.ends`). The end is mostly INFO, which the channels' default levels leave out: a channel that
sent the beginning sends the end too, whatever its levels (:meth:`~tui_trader.ops.notify.channel.Channel.accepts`),
so a phone told the link was lost hears that it is back, and one never told of a farm's outage hears nothing of its
return: recoveries are sent where their loss was, not every INFO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import get_args

from tui_trader.config.notifications import NotificationKind
from tui_trader.domain import events as ev
from tui_trader.domain.alerts import LINK, LOST_LINK, Alert, condition_of
from tui_trader.domain.enums import LINK_UP, AlertLevel, ConnectionState, Mode

KINDS = (*get_args(NotificationKind), "test")  # the configurable kinds, and the test message's
# The schedule's alerts are risk: its REDUCING before a restart or the close, ACTIVE again, positions held past the
# close; a trader who picks the risk kind looks there for why entries are denied (as for a risk trigger's REDUCING).
_ALERT_SOURCE_KIND = {
    "kill_switch": "kill_switch", "risk": "risk", "reconcile": "risk", "schedule": "risk", "broker": "disconnects",
    "connection": "disconnects", "market_data": "disconnects",
}
_ALERT_KIND_KIND = {"disconnected": "disconnects", "connect_failed": "disconnects", "position_mismatch": "risk",
                    "order_rejected": "rejections", "journal_failure": "system"}


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell the operator outside the console."""

    time: datetime
    level: AlertLevel
    kind: str
    title: str
    text: str = ""
    topic: str = ""
    """The condition the notice is news of (``link``, ``entries: market data stalled``, ``farm: usfarm``,
    ``health_cpu``), if any: a channel that sent its beginning sends its end, whatever the channel's levels."""
    ends: bool = False
    """The notice says the condition ``topic`` is over."""
    owed_only: bool = False
    """Sent only where the beginning of ``topic`` was (the link made after a connect that failed: every start makes
    one, and a reconnection's end is the ``reconnected`` alert)."""
    origin: str = ""
    """Which engine says it: its mode and account (``LIVE U1234567``, :func:`origin_label`), set as it is routed; a
    paper and a live engine's messages look alike on a phone otherwise."""
    also: str = ""
    """A second kind it is of, if any: the kill switch's alert of an automatic trip is the trigger's too (``risk``),
    and a channel that listens to the trigger's kind and not to ``kill_switch`` hears the trip that halted trading."""

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds the notice is of: a channel that listens to any of them takes it (once)."""
        return frozenset((self.kind, self.also)) - {""}

    @property
    def line(self) -> str:
        """One line: time (with its zone's abbreviation), level, title and text."""
        body = f"{self.title}: {self.text}" if self.text else self.title
        zone = self.time.tzname()
        return f"{self.time:%H:%M:%S}{f' {zone}' if zone else ''} [{self.level.value}] {body}"

    def routed(self, zone: tzinfo | None, origin: str) -> Notice:
        """This notice as sent: its time read in ``zone`` (the console's), said by ``origin``."""
        time = self.time.astimezone(zone) if zone is not None else self.time
        return replace(self, time=time, origin=origin)


def origin_label(mode: Mode, dry_run: bool, account: str) -> str:
    """The mode and account a message comes from: ``LIVE U1234567``, ``PAPER DRY-RUN DU123``, ``SIM`` (no account
    known yet)."""
    return " ".join(part for part in (mode.value.upper(), "DRY-RUN" if dry_run else "", account) if part)


def kind_of_alert(alert: Alert) -> str:
    """The notification kind of an alert (by its kind, then its source; else ``system``)."""
    return _kind_of(alert.kind, alert.source)


def _kind_of(kind: str, source: str) -> str:
    return _ALERT_KIND_KIND.get(kind) or _ALERT_SOURCE_KIND.get(source, "system")


def notice_for(event: ev.Event) -> Notice | None:
    """The notice an engine event calls for, or ``None`` when it is not worth a message.

    A DISCONNECTED from a state in which the link was not up (a connect that failed, its sync included) is no lost
    link: the ``connect_failed`` alert beside it says the same in better words, and the operator's phone buzzed
    twice for one outage. A lost link is the DISCONNECTED, at ERROR, with why (``connection lost``, ``connectivity
    lost (1100): …``) and that entries are blocked until reconciled (the engine blocks them as it goes down, silently:
    its ``disconnect`` alert says it, which is not sent again). A broker's rejection of an order is its
    ``order_rejected`` alert (with the broker's code and words), not the order's updates: the move to REJECTED and the
    error it came with were two notices, the first without a word of why.
    """
    if isinstance(event, ev.AlertRaised):
        a = event.alert
        if a.source == "broker" and a.kind == LOST_LINK:
            return None  # the lost link's ConnectionChanged is its notice
        topic, ends = condition_of(a)
        # A trip said by another's alert is of the kind its trigger's own alerts are (source risk, kind the trigger).
        trip = _kind_of(a.trip, "risk") if a.trip else ""
        return Notice(event.time, a.level, kind_of_alert(a), f"{a.source}: {a.text}", topic=topic, ends=ends,
                      also=trip)
    if isinstance(event, ev.OrderFilled):
        return _fill_notice(event)
    if isinstance(event, ev.OrderDenied):
        t = event.ticket
        title = f"denied {t.side.value} {t.quantity:g} {t.symbol} ({t.strategy})"
        return Notice(event.time, AlertLevel.WARNING, "rejections", title, event.verdict.reason)
    if isinstance(event, ev.ConnectionChanged):
        return _link_notice(event)
    return None


def _link_notice(event: ev.ConnectionChanged) -> Notice | None:
    """A link lost (it was up), or made where a connect that failed was told (the start's: a reconnection's end is
    its ``reconnected`` alert, which comes first)."""
    if event.state is ConnectionState.DISCONNECTED and event.previous in LINK_UP:
        return Notice(event.time, AlertLevel.ERROR, "disconnects", "broker disconnected",
                      f"{event.detail}; new entries blocked until reconciled", topic=LINK)
    if event.state in LINK_UP and event.previous not in LINK_UP:
        return Notice(event.time, AlertLevel.INFO, "disconnects", "broker connected", event.detail, topic=LINK,
                      ends=True, owed_only=True)
    return None


def _fill_notice(event: ev.OrderFilled) -> Notice:
    f = event.fill
    strategy = f" ({event.order.ticket.strategy})" if event.order is not None else ""
    title = f"filled {f.side.value} {f.quantity:g} {f.symbol} @ {f.price:.4g}{strategy}"
    return Notice(event.time, AlertLevel.INFO, "fills", title, f.order_ref)


def subject_of(notices: list[Notice]) -> str:
    """A short subject for a batch: where it comes from (mode and account), the most severe notice, and how many more.

    One line: a title can carry a broker's or an exception's newlines, and an email header
    with a newline is refused (it would inject headers).
    """
    top = max(notices, key=lambda n: n.level.rank)
    more = f" (+{len(notices) - 1} more)" if len(notices) > 1 else ""
    title = " ".join(top.title.split())
    return f"{app_name(top.origin)} {top.level.value}: {title}"[:150] + more


def app_name(origin: str) -> str:
    """``tui-trader`` and where a message comes from (``tui-trader LIVE U1234567``), as its subject begins."""
    return " ".join(f"tui-trader {origin}".split())


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
