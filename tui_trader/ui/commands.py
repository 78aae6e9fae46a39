"""The command palette: the same commands as the keys, plus cancel order #id, trace order #id,
flatten SYMBOL and send test notification."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui_trader.ui.format import qty

if TYPE_CHECKING:
    from tui_trader.ui.app import TraderApp

Command = tuple[str, str, Callable[[], object]]


def static_commands(app: TraderApp) -> list[Command]:
    """Commands that always exist."""
    main = app.main
    return [
        ("Kill switch (HALT and cancel everything)", "ctrl+k", app.action_kill_switch),
        ("Reset kill switch…", "asks for a typed reason", app.action_reset_kill),
        ("Flatten all positions…", "preview, then confirm", main.action_flatten),
        ("Cancel all working orders", "X", main.action_cancel_all),
        ("New order ticket…", "n", main.action_new_order),
        ("REDUCING on/off", "r", main.action_toggle_reducing),
        ("Pause or resume a strategy…", "p", main.action_pause_strategy),
        ("Filter orders or alerts", "/", main.action_filter),
        ("Modify the selected order…", "e: quantity, limit, stop", main.action_modify_order),
        ("Trace the selected order", "t: its whole story from the journal", main.action_trace_order),
        ("Send test notification", "a test message on every channel", main.action_test_notification),
        ("Help: keys", "?", app.action_help),
        ("Quit", "q", app.action_quit_console),
    ]


def dynamic_commands(app: TraderApp) -> list[Command]:
    """Commands built from the latest snapshot: per order (cancel, modify, trace), position and strategy."""
    main = app.main
    snap = main.snapshot
    if snap is None:
        return []
    commands: list[Command] = []
    for order in snap.orders:
        if order.status.is_working:
            t = order.ticket
            commands.append((f"Cancel order #{order.order_ref} ({t.side.value} {qty(t.quantity)} {t.symbol})",
                             "cancel this order", partial(main.action_cancel_order, order.order_ref)))
            commands.append((f"Modify order #{order.order_ref} ({t.side.value} {qty(t.quantity)} {t.symbol})…",
                             "quantity, limit, stop", partial(main.action_modify_order, order.order_ref)))
    for order in reversed(snap.orders):  # newest first
        t = order.ticket
        commands.append((f"Trace order #{order.order_ref} ({t.side.value} {qty(t.quantity)} {t.symbol}, "
                         f"{order.status.value})", "its whole story from the journal",
                         partial(main.action_trace_order, order.order_ref)))
    for symbol, pos in sorted(snap.account.positions.items()):
        if not pos.is_flat:
            commands.append((f"Flatten {symbol} ({pos.quantity:+g})", "preview, then confirm",
                             partial(main.action_flatten, symbol)))
    for s in snap.strategies:
        verb, what = ("Resume", "") if s.paused else ("Pause", ": no new entries; its exits still close its positions")
        commands.append((f"{verb} strategy {s.name}", ", ".join(s.symbols) + what,
                         partial(main.action_pause_strategy, s.name)))
    return commands


class TraderCommands(Provider):
    """Every console command, searchable by name."""

    def _all(self) -> list[Command]:
        app: TraderApp = self.app  # type: ignore[assignment]
        return [*static_commands(app), *dynamic_commands(app)]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._all():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._all():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
