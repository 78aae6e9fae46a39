"""ChannelsStrip: one line per notification channel — state, last success, queued, failed, last error.

It sits at the bottom of the connectivity pane (notifications are the engine's other outbound
links) and redraws only when a channel's figures change, never per refresh.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui_trader.engine.snapshots import ChannelStatus
from tui_trader.ui.format import hhmmss

NONE_TEXT = "Notify: no channels configured"


def channel_state(status: ChannelStatus) -> tuple[str, str]:
    """A word and its theme style: FAIL after a failed attempt, ok after a success, idle before any."""
    if status.last_error:
        return "FAIL", "bold $error"
    if status.last_success is not None:
        return "ok", "$success"
    return "idle", "$text-muted"


def channel_line(status: ChannelStatus, zone: str) -> Content:
    """``telegram ok   sent 14:02:11 · queued 0 · failed 0`` plus the last error when there is one.

    ``sent`` is the time of the last successful delivery.
    """
    word, style = channel_state(status)
    queued_style = "$warning" if status.queued else ""
    failed_style = "$error" if status.failed else ""
    parts: list[str | tuple[str, str]] = [
        (f"{status.name:<9}", "bold"), (f"{word:<5}", style),
        f"sent {hhmmss(status.last_success, zone)} · ", (f"queued {status.queued}", queued_style),
        " · ", (f"failed {status.failed}", failed_style),
    ]
    if status.dropped:
        parts += [" · ", (f"dropped {status.dropped}", "$warning")]
    if status.last_error:
        parts += [" · ", (status.last_error, "$error")]
    return Content.assemble(*parts)


class ChannelsStrip(Static):
    """Notification channels' statuses, drawn from the snapshot."""

    DEFAULT_CSS = """
    ChannelsStrip { height: auto; max-height: 3; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__(NONE_TEXT, id="channels-strip", markup=False)
        self._shown: tuple[tuple[ChannelStatus, ...], str] | None = None

    def show(self, statuses: tuple[ChannelStatus, ...], zone: str) -> None:
        """Draw ``statuses`` (a no-op when nothing changed since the last refresh)."""
        if self._shown == (statuses, zone):
            return
        self._shown = (statuses, zone)
        if not statuses:
            self.update(Content.styled(NONE_TEXT, "$text-muted"))
            return
        self.update(Content("\n").join(channel_line(s, zone) for s in statuses))
