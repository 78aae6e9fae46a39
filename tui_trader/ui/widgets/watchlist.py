"""WatchlistPane: last, change, bid/ask, spread, a sparkline, tick age and the feed badge."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult

from tui_trader.domain.market import Quote
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.format import age, is_num, pct, price, sparkline, spread
from tui_trader.ui.freshness import Freshness, feed_word
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, LazyRows, Row

SPARK_WIDTH = 12
COLUMNS = (
    Column("Sym", 6),
    Column("Last", 9, right=True, figures=True),
    Column("Chg %", 7, right=True, figures=True),
    Column("Bid", 9, right=True, priority=3, figures=True),
    Column("Ask", 9, right=True, priority=3, figures=True),
    Column("Sprd", 6, right=True, priority=4, figures=True),  # a sub-dollar stock's: 0.0016
    Column("Trend", SPARK_WIDTH, priority=2, keep_end=True),
    Column("Age", 5, right=True, priority=1),
    Column("Feed", 6, priority=1),
)
BADGE_ROLES = {"STALE": "crit", "HALTED": "crit", "CLOSED": "dim", "DELAY": "warn", "PRE": "accent", "POST": "accent",
               "LIVE": "pos"}
"""The feed badge's colour per word (:func:`~tui_trader.ui.freshness.feed_word`): a closed market is neither
live (green) nor broken (red); outside regular hours it trades, thinly; a halt stops its orders (red)."""
QUIET = frozenset({"STALE", "HALTED", "CLOSED"})
"""Badges whose row is dimmed: its prices are not moving (stale, halted, or the market closed)."""


def change_pct(quote: Quote) -> float | None:
    """Change of the last price against the previous close, in percent."""
    if is_num(quote.last) and is_num(quote.close) and quote.close > 0:
        return (quote.last - quote.close) / quote.close * 100
    return None


def quote_row(quote: Quote, trend: str, tick_age: float, badge: str) -> Row:
    """One symbol as a row (``trend``: its sparkline; ``badge``: its feed's word, see
    :func:`~tui_trader.ui.freshness.feed_word`)."""
    chg = change_pct(quote)
    stale, quiet = badge == "STALE", badge in QUIET
    cells = (quote.symbol, price(quote.last), pct(chg), price(quote.bid), price(quote.ask),
             spread(quote.spread, quote.bid), trend, age(tick_age), badge)
    chg_role = "" if chg is None else "pos" if chg > 0 else "neg" if chg < 0 else ""
    roles = ("", "dim" if quiet else "", chg_role, "", "", "", "accent", "warn" if stale else "",
             BADGE_ROLES[badge])
    return Row(quote.symbol, cells, roles, "dim" if quiet else "")


def watchlist_note(fresh: Freshness, count: int) -> str:
    """The pane's note: the freshness verdict when not LIVE, else the count of symbols and of those closed."""
    if fresh.verdict != "LIVE":
        return fresh.verdict
    if fresh.markets_closed:
        return "markets closed"
    closed = len(fresh.closed_symbols)
    return f"{count} symbols" + (f" · {closed} closed" if closed else "")


class WatchlistPane(Pane):
    """Quotes pulled with each snapshot; the sparkline keeps the last prices seen per symbol."""

    def __init__(self) -> None:
        super().__init__("Watchlist", "1", id="watchlist-pane")
        self._history: dict[str, deque[float]] = {}
        self._seen: dict[str, object] = {}
        self._trends: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, empty="No market data", id="watchlist-table")

    def show(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        """Draw every quote of ``snapshot`` in symbol order (only the rows on screen get formatted)."""
        quotes = snapshot.quotes
        for quote in quotes.values():
            self._record(quote)
        ages = fresh.quote_ages

        def row(symbol: str) -> Row:
            quote = quotes[symbol]
            return quote_row(quote, self._trend(symbol), ages.get(symbol, 0.0), feed_word(fresh, symbol, quote.delayed))

        self.table.set_rows(LazyRows(sorted(quotes), row))
        self.set_age(fresh.newest_quote_age, stale=fresh.market_stale, note=watchlist_note(fresh, len(quotes)))

    def _record(self, quote: Quote) -> None:
        """Add a new price to the symbol's history (every refresh, on screen or not)."""
        symbol = quote.symbol
        if self._seen.get(symbol) != quote.time and is_num(quote.last):
            self._seen[symbol] = quote.time
            self._history.setdefault(symbol, deque(maxlen=SPARK_WIDTH)).append(quote.last)
            self._trends.pop(symbol, None)

    def _trend(self, symbol: str) -> str:
        """The symbol's sparkline, redrawn only after its price moved."""
        trend = self._trends.get(symbol)
        if trend is None:
            trend = self._trends[symbol] = sparkline(self._history.get(symbol, ()), SPARK_WIDTH)
        return trend

    def seed_history(self, symbol: str, prices: list[float]) -> None:
        """Preload a symbol's sparkline (demo scenarios and screenshots)."""
        self._history.setdefault(symbol, deque(maxlen=SPARK_WIDTH)).extend(prices)
        self._trends.pop(symbol, None)
