"""PositionsPane: every open position with marks, P&L, protective exits and totals."""

from __future__ import annotations

from textual.app import ComposeResult

from tui_trader.domain.portfolio import AccountSnapshot, Position
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.format import DASH, asked, money, pct, price, qty, shown_sign, trailing_stop
from tui_trader.ui.freshness import Freshness
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, LazyRows, Row

# Wide enough for -12,345.5 shares (-1000000 without separators), prices to 99,999.99, P&L to -123,456.78
# (-1234567.89 without them), -100.00 % and a stop for 1,000 at 178.58: wider figures are written shorter,
# never cut (``Column.figures``). An 80-column terminal still shows the same columns as before; the owner
# shows only where every figure does (it is dropped first).
COLUMNS = (
    Column("Symbol", 7),
    Column("Side", 5, priority=3),
    Column("Qty", 9, right=True, figures=True),
    Column("Avg", 9, right=True, priority=2, figures=True),
    Column("Last", 9, right=True, figures=True),
    Column("Mkt value", 12, right=True, priority=4, figures=True),
    Column("Unrl P&L", 11, right=True, figures=True),
    Column("Rlzd gross", 11, right=True, priority=5, figures=True),
    Column("P&L %", 8, right=True, priority=1, figures=True),
    Column("Stop", 12, right=True, priority=2, figures=True),
    Column("Target", 9, right=True, priority=6, figures=True),
    Column("Owner", 10, priority=7),
)

STOP_WIDTH, TARGET_WIDTH = COLUMNS[9].width, COLUMNS[10].width

Asked = tuple[Position, float, bool]
"""A position as the modifications of its protective orders would leave it once the broker confirms them, with
what its stops would cover and whether, covering none, one would be held for its entry (:func:`stop_cover`)."""

EMPTY = "No open positions"
UNKNOWN = "Positions not known yet"
"""What the pane says before the broker or a journal gave any account figure: not that nothing is held."""


def sign_role(value: float) -> str:
    """``pos`` for gains, ``neg`` for losses, '' for a figure drawn as zero (``+0.00``)."""
    sign = shown_sign(value)
    return "pos" if sign > 0 else "neg" if sign < 0 else ""


def stop_text(pos: Position, covered: float | None = None, held: bool = False) -> str:
    """The protective stop (a trailing one's start as :func:`trailing_stop` shows it), as ``10@178.58``
    when it ``covered`` only part of the position (``0@178.58``: a bracket's stop ``held`` by the broker
    until its entry has filled)."""
    if not pos.stop_price:
        return DASH
    text = trailing_stop(pos.stop_price, pos.quantity > 0) if pos.stop_trails else price(pos.stop_price)
    return f"{qty(covered)}@{text}" if partly(pos, covered, held) else text


def partly(pos: Position, covered: float | None, held: bool = False) -> bool:
    """A stop works but ``covered`` less than the position, or none of it while the stop is a bracket's
    ``held`` by the broker until its entry fills (``AccountSnapshot.stop_held``): the stop shown alone read
    as protecting 30 filled of a bracket of 100, which the broker would not act on."""
    return (bool(pos.stop_price) and covered is not None and (covered > 0 or held)
            and covered < abs(pos.quantity) - 1e-9)


def stop_cover(account: AccountSnapshot, symbol: str) -> tuple[float, bool]:
    """What ``symbol``'s working stops cover, and whether, covering none, a stop is held for its entry."""
    covered = account.stop_covered(symbol)
    return covered, not covered and account.stop_held(symbol) > 0


def is_marked(pos: Position) -> bool:
    """The position has a mark: without one its market value is its cost and its open P&L 0, placeholders
    (:attr:`Position.market_value`), not figures to show."""
    return pos.market_price > 0


def target_text(pos: Position) -> str:
    """The protective target's price, a dash without one."""
    return price(pos.take_profit_price) if pos.take_profit_price else DASH


def exit_cells(pos: Position, covered: float | None, held: bool, changing: Asked | None) -> tuple[str, str, str, str]:
    """The stop and target cells, and their roles. A position whose protective orders have a modification the
    broker has not confirmed (``changing``: as they were asked) shows the figures the broker holds, then the
    ones asked after an arrow (:func:`~tui_trader.ui.format.asked`), as a warning, where they differ."""
    stop, target = stop_text(pos, covered, held), target_text(pos)
    stop_role = "" if pos.stop_price and not partly(pos, covered, held) else "warn"
    target_role = ""
    if changing is not None:
        if (new := stop_text(*changing)) != stop:
            stop, stop_role = asked(stop, new, STOP_WIDTH), "warn"
        if (new := target_text(changing[0])) != target:
            target, target_role = asked(target, new, TARGET_WIDTH), "warn"
    return stop, stop_role, target, target_role


def position_row(pos: Position, stale: bool, covered: float | None = None, held: bool = False,
                 changing: Asked | None = None) -> Row:
    """One position as a row; the mark, and the value and P&L figured from it, are dimmed when it is
    ``stale`` (not from a live quote), and unknown (a dash) without a mark: ``+0.00`` read as a position
    standing at its cost. A stop that ``covered`` only part of it (or none: ``held``, see :func:`partly`)
    is shown with its quantity, as a warning; one ``changing`` with its figures asked too (:func:`exit_cells`).
    Its owner is the strategy whose signals may close it (:attr:`Position.owner`), ``manual`` for a ticket's,
    a dash when no single opener is known."""
    marked = is_marked(pos)
    upnl = pos.unrealized_pnl if marked else None
    cost = abs(pos.quantity * pos.avg_cost)
    stop, stop_role, target, target_role = exit_cells(pos, covered, held, changing)
    cells = (
        pos.symbol,
        "LONG" if pos.quantity > 0 else "SHORT",
        qty(pos.quantity),
        price(pos.avg_cost),
        price(pos.market_price),
        money(pos.market_value if marked else None),
        money(upnl, signed=True),
        money(pos.realized_pnl, signed=True),
        pct(upnl / cost * 100 if upnl is not None and cost else None),
        stop,
        target,
        pos.owner or DASH,
    )
    mark_role = "dim" if stale else ""
    upnl_role = "dim" if stale else sign_role(upnl or 0.0)
    roles = ("", "", "", "", mark_role, mark_role, upnl_role, sign_role(pos.realized_pnl),
             upnl_role, stop_role, target_role, "")
    return Row(pos.symbol, cells, roles)


def day_realised(account: AccountSnapshot) -> tuple[float, float]:
    """The day's realised P&L before commissions (as ``tui-trader report`` sums its trades' gross) and after
    today's commissions (the account's own figure), flat symbols included."""
    return account.realized_pnl_today + account.commissions_today, account.realized_pnl_today


def total_row(positions: list[Position], stale: bool = False, realised: float | None = None) -> Row:
    """The totals line: market value and open P&L summed over every position; the market value and open P&L
    are unknown while a position has no mark (a sum without it read as the book's), dimmed while one
    is ``stale``. The realised figure is the day's (gross, :func:`day_realised`) when given: summed over the
    positions held, it lost what a symbol closed today made or lost."""
    marked = all(is_marked(p) for p in positions)
    value = sum(p.market_value for p in positions) if marked else None
    upnl = sum(p.unrealized_pnl for p in positions) if marked else None
    rpnl = sum(p.realized_pnl for p in positions) if realised is None else realised
    cells = ("TOTAL", f"{len(positions)}", "", "", "", money(value), money(upnl, signed=True),
             money(rpnl, signed=True), "", "", "", "")
    roles = ("", "", "", "", "", "dim" if stale else "", "dim" if stale else sign_role(upnl or 0.0),
             sign_role(rpnl))
    return Row("__total__", cells, roles, role="accent")


def not_live(snapshot: EngineSnapshot, fresh: Freshness, symbol: str) -> bool:
    """``symbol``'s mark is not from a live quote: its quote is stale, has no price, or none came this
    session (a mark restored from the journal, a held symbol the broker sends no quotes for)."""
    quote = snapshot.quotes.get(symbol)
    return quote is None or symbol in fresh.stale_symbols or not quote.mark > 0


def marks_note(fresh: Freshness, stale: set[str]) -> str:
    """The pane's note: why nothing is live (STALLED, DISCONNECTED), else which marks are not."""
    if fresh.account_stale:
        return fresh.verdict
    if not stale:
        return ""
    named = sorted(stale)
    return f"mark not live: {', '.join(named[:3])}" + (f" +{len(named) - 3}" if len(named) > 3 else "")


def exits_changing(snapshot: EngineSnapshot) -> tuple[set[str], AccountSnapshot]:
    """The symbols whose protective orders have a modification the broker has not confirmed (usually none), and
    the account as those would leave it once it has (the snapshot's has the figures the broker holds)."""
    pending, account = snapshot.modifications, snapshot.account
    symbols = account.protected_by(pending) if pending else set()
    if not symbols:
        return symbols, account
    return symbols, account.with_tickets({ref: p.asked for ref, p in pending.items()})


class PositionsPane(Pane):
    """Open positions: symbol, side, quantity, cost, mark, value, P&L, stop, target and owner."""

    def __init__(self) -> None:
        super().__init__("Positions", "2", id="positions-pane")

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, empty=EMPTY, id="positions-table")

    def show(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        """Draw ``snapshot``'s positions (symbol order) and their totals.

        Only the rows on screen are formatted; the totals are summed over every position.
        """
        account = snapshot.account
        held = sorted((p for p in account.positions.values() if not p.is_flat), key=lambda p: p.symbol)
        stale = {p.symbol for p in held if not_live(snapshot, fresh, p.symbol)}
        gross, net = day_realised(account)
        traded = account.known and (held or gross or net)  # a day of closed trades has a total, and no position
        items: list[Position | Row] = [*held, total_row(held, bool(stale), gross)] if traded else []
        changing, asked_account = exits_changing(snapshot)

        def row(item: Position | Row) -> Row:
            if isinstance(item, Row):
                return item
            symbol = item.symbol
            new = asked_account.positions.get(symbol) if symbol in changing else None
            return position_row(item, symbol in stale, *stop_cover(account, symbol),
                                 (new, *stop_cover(asked_account, symbol)) if new is not None else None)

        self.table.set_empty(EMPTY if snapshot.account.known else UNKNOWN)
        self.table.set_rows(LazyRows(items, row))
        notes = [marks_note(fresh, stale), f"day rlzd net {money(net, signed=True)}" if traded else ""]
        self.set_age(fresh.heartbeat_age, stale=fresh.account_stale, note=" · ".join(n for n in notes if n))

    @property
    def selected_symbol(self) -> str | None:
        """The symbol under the cursor (not the totals line)."""
        row = self.table.selected
        return row.key if row is not None and row.key != "__total__" else None
