"""The aiosqlite journal: append-only events, orders, fills, operator actions, kill state, alerts."""

from tui_trader.store.journal import Journal, migrate

__all__ = ["Journal", "migrate"]
