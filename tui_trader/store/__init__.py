"""The aiosqlite journal: append-only events, orders, fills, operator actions, kill state, alerts; and its sending log,
the write-ahead record of an order before the wire (:mod:`tui_trader.store.sending`)."""

from tui_trader.store.journal import Journal
from tui_trader.store.schema import migrate

__all__ = ["Journal", "migrate"]
