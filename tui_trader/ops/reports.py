"""Reports from the journal: round-trip trades (flat to flat per symbol), statistics, totals
per strategy and symbol, rejections and denials by reason, kill switch and risk triggers,
operator actions; and the daily summary the engine journals and sends at the session close.

Everything here only reads the journal (plus :func:`close_session`, which writes the summary).
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from tui_trader.domain import events as ev
from tui_trader.domain.enums import AlertLevel, OrderStatus
from tui_trader.domain.orders import Fill, Order
from tui_trader.ops.notify.notice import Notice
from tui_trader.ops.trace import execution_order
from tui_trader.ops.trace_fills import FillOrders
from tui_trader.store.journal import Journal
from tui_trader.store.queries import BookAdjustment, BookAdjustments

TRADE_COLUMNS = ["symbol", "strategy", "direction", "quantity", "entry_time", "entry_price", "exit_time",
                 "exit_price", "gross_pnl", "commission", "net_pnl", "holding_s", "entry_ref", "exit_ref"]
STAT_COLUMNS = ("trades", "wins", "losses", "win_rate", "gross_pnl", "commission", "net_pnl", "avg_win", "avg_loss",
                "profit_factor", "max_drawdown")
SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": tuple(TRADE_COLUMNS), "by_strategy": ("strategy", *STAT_COLUMNS), "by_symbol": ("symbol", *STAT_COLUMNS),
    "open_positions": ("symbol", "direction", "quantity", "price", "time", "strategy", "order_ref"),
    "kill_switch": ("time", "event", "by", "reason"), "risk_triggers": ("time", "by", "from", "to", "reason"),
    "operator_actions": ("time", "who", "action", "why", "before", "after"),
    "uncertain_fills": ("time", "exec_id", "order_ref", "symbol", "side", "quantity", "price", "why"),
}
"""The columns of each section listing rows, also when it has none (CSV prints its header then)."""


@dataclass(frozen=True, slots=True)
class Period:
    """A range of trading days in the exchange time zone, as instants [start, end)."""

    first: date
    last: date
    time_zone: str = "America/New_York"

    @property
    def start(self) -> datetime:
        """Midnight starting the first day."""
        return datetime.combine(self.first, time(0), ZoneInfo(self.time_zone))

    @property
    def end(self) -> datetime:
        """Midnight after the last day."""
        return datetime.combine(self.last + timedelta(days=1), time(0), ZoneInfo(self.time_zone))

    def contains(self, when: datetime) -> bool:
        """True when ``when`` falls in the period."""
        return self.start <= when < self.end


HELD_AT_START = "held at journal start"
"""The strategy of a position the journal's book began with (the broker's, at its average cost, when a new journal was
seeded): no order of the journal opened it."""

HELD_IN_THE_BOOK = "held in the book"
"""The strategy of a position as a later checkpoint of the book holds it, where the fills do not add up to it (adjusted
to the broker at a reconciliation, executions left out as another run's) and no strategy is known to have opened it."""


@dataclass
class _Lot:
    direction: int
    quantity: float
    price: float
    time: datetime
    commission_per_unit: float
    strategy: str
    order_ref: str


def pair_fills(fills: list[Fill], strategies: dict[str, str],
               book: BookAdjustments | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Round-trip trades from fills; returns (trades, open lots).

    Each symbol starts flat. ``book``: the positions the engine took from the broker (:meth:`~tui_trader.store.
    queries.JournalQueries.book_adjustments`), each applied where it was journaled among the fills
    (:func:`_adjust`): a new journal's seed, a position adjusted to the broker at a reconciliation. From the fills
    alone, a sell of shares the book took from the broker paired against nothing (a SHORT that never was), or
    against the wrong lot.

    A round trip is a position in one symbol from flat back to flat: an entry filled in pieces,
    a scale-in or a scale-out is one trade, with the quantities and P&L summed and the prices
    averaged by quantity (one per strategy whose entries the position holds). Lots are matched
    FIFO; a fill that crosses through flat closes the round trip and opens the next with the rest.
    Commission is spread per unit over the entry and exit fills.

    ``fills`` come in execution order (:func:`~tui_trader.ops.trace.execution_order`): they are sorted
    by time only, so fills of the same second keep the order given.
    """
    books: dict[str, deque[_Lot]] = defaultdict(deque)
    pieces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    trades: list[dict[str, Any]] = []
    book = book or BookAdjustments((), {})
    applied = 0
    for fill in sorted(fills, key=lambda f: f.time):
        due = book.before_fill(fill.exec_id)
        for adjustment in book.adjustments[applied:due]:
            trades += _adjust(adjustment, books, pieces)
        applied = max(applied, due)
        lot = _lot_of(fill, strategies.get(fill.order_ref, "unknown"))
        lots = books[fill.symbol]
        while lots and lot.quantity > 1e-12 and lots[0].direction != lot.direction:
            pieces[fill.symbol].append(_close(fill.symbol, lots, lot))
        if not lots and pieces[fill.symbol]:  # flat again: the round trip is over
            trades.extend(round_trips(pieces.pop(fill.symbol)))
        if lot.quantity > 1e-12:
            lots.append(lot)
    for adjustment in book.adjustments[applied:]:
        trades += _adjust(adjustment, books, pieces)
    open_lots = [{"symbol": s, **_lot_row(lot)} for s, lots in books.items() for lot in lots]
    return trades, open_lots


def _adjust(adjustment: BookAdjustment, books: dict[str, deque[_Lot]],
            pieces: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Apply one of the book's adjustments to the lots; the round trips it ends (taken to flat).

    Held beyond the lots on their side, the rest is one lot at the book's average cost, by the strategy the book
    says opened the position, else :data:`HELD_AT_START` (the seed) or :data:`HELD_IN_THE_BOOK`. Held less, the
    oldest lots go, with no trade: nothing of the journal's sold them, at no price it knows.
    """
    ended: list[dict[str, Any]] = []
    for symbol, (moved, cost) in adjustment.moved.items():
        lots, direction = books[symbol], 1 if moved > 0 else -1
        while lots and abs(moved) > 1e-12 and lots[0].direction != direction:
            taken = min(lots[0].quantity, abs(moved))
            lots[0].quantity -= taken
            moved -= taken * direction
            if lots[0].quantity <= 1e-12:
                lots.popleft()
        if not lots and pieces[symbol]:
            ended += round_trips(pieces.pop(symbol))
        if abs(moved) > 1e-12:
            held = HELD_AT_START if adjustment.reason == ev.BOOK_SEEDED else HELD_IN_THE_BOOK
            lots.append(_Lot(direction, abs(moved), cost, adjustment.time, 0.0,
                             adjustment.owners.get(symbol) or held, ""))
    return ended


def round_trips(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trades of one position from flat back to flat, from its matched lot pieces: one per strategy."""
    by_strategy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for piece in pieces:
        by_strategy[piece["strategy"]].append(piece)
    return [_merged(group) for group in by_strategy.values()]


def _merged(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    qty = sum(p["quantity"] for p in pieces)
    entry_time, exit_time = min(p["entry_time"] for p in pieces), max(p["exit_time"] for p in pieces)
    gross, commission = sum(p["gross_pnl"] for p in pieces), sum(p["commission"] for p in pieces)
    return {**pieces[0], "quantity": qty, "entry_time": entry_time, "exit_time": exit_time,
            "entry_price": _average(pieces, "entry_price", qty), "exit_price": _average(pieces, "exit_price", qty),
            "gross_pnl": gross, "commission": commission, "net_pnl": gross - commission,
            "holding_s": (exit_time - entry_time).total_seconds(),
            "entry_ref": _refs(p["entry_ref"] for p in pieces), "exit_ref": _refs(p["exit_ref"] for p in pieces)}


def _average(pieces: list[dict[str, Any]], key: str, qty: float) -> float:
    """The pieces' ``key`` price averaged by quantity; the price itself when they share one (a short of
    9 @ 503.2 read 503.20000000000005)."""
    prices = {p[key] for p in pieces}
    return prices.pop() if len(prices) == 1 else sum(p[key] * p["quantity"] for p in pieces) / qty


def _refs(refs: Iterable[str]) -> str:
    """The distinct orderRefs, in order, comma-separated."""
    return ",".join(dict.fromkeys(refs))


def _lot_of(fill: Fill, strategy: str) -> _Lot:
    per_unit = (fill.commission or 0.0) / fill.quantity if fill.quantity else 0.0
    return _Lot(fill.side.sign, fill.quantity, fill.price, fill.time, per_unit, strategy, fill.order_ref)


def _close(symbol: str, book: deque[_Lot], exit_lot: _Lot) -> dict[str, Any]:
    entry = book[0]
    qty = min(entry.quantity, exit_lot.quantity)
    gross = (exit_lot.price - entry.price) * qty * entry.direction
    commission = (entry.commission_per_unit + exit_lot.commission_per_unit) * qty
    entry.quantity -= qty
    exit_lot.quantity -= qty
    if entry.quantity <= 1e-12:
        book.popleft()
    return {"symbol": symbol, "strategy": entry.strategy, "direction": "LONG" if entry.direction > 0 else "SHORT",
            "quantity": qty, "entry_time": entry.time, "entry_price": entry.price, "exit_time": exit_lot.time,
            "exit_price": exit_lot.price, "gross_pnl": gross, "commission": commission, "net_pnl": gross - commission,
            "holding_s": (exit_lot.time - entry.time).total_seconds(), "entry_ref": entry.order_ref,
            "exit_ref": exit_lot.order_ref}


def _lot_row(lot: _Lot) -> dict[str, Any]:
    return {"direction": "LONG" if lot.direction > 0 else "SHORT", "quantity": lot.quantity, "price": lot.price,
            "time": lot.time, "strategy": lot.strategy, "order_ref": lot.order_ref}


def trade_stats(trades: pd.DataFrame) -> dict[str, Any]:
    """Count, win rate, average win/loss, profit factor, max drawdown and P&L totals of ``trades``."""
    if trades.empty:
        return {"trades": 0, "wins": 0, "losses": 0, "win_rate": None, "gross_pnl": 0.0, "commission": 0.0,
                "net_pnl": 0.0, "avg_win": None, "avg_loss": None, "profit_factor": None, "max_drawdown": 0.0}
    net = trades["net_pnl"]
    wins, losses = net[net > 0], net[net < 0]
    return {
        "trades": len(trades), "wins": len(wins), "losses": len(losses), "win_rate": len(wins) / len(trades),
        "gross_pnl": float(trades["gross_pnl"].sum()), "commission": float(trades["commission"].sum()),
        "net_pnl": float(net.sum()), "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "max_drawdown": max_drawdown(trades.sort_values("exit_time", kind="stable")["net_pnl"]),
    }


def fill_stats(fills: list[Fill], uncertain: int = 0) -> dict[str, Any]:
    """The period's executions and every commission they paid: the trades' ``commission`` counts only
    closed round trips, so a day that opened a position paid commissions the trades do not show.
    ``uncertain``: how many of them the journal cannot tie to one order (:func:`uncertain_fills`)."""
    return {"fills": len(fills), "fills_commission": sum((f.commission or 0.0 for f in fills), 0.0),
            "uncertain_fills": uncertain}


def named_fills(fills: list[Fill], orders: FillOrders) -> tuple[list[Fill], dict[str, str]]:
    """``fills`` each under the name of the order it filled (:meth:`FillOrders.of`), and each name's strategy.

    Two orders under one orderRef (another tool's ``bot1``, one of them adopted as ``bot1#<permId>``, or one never
    journaled) are two orders here: by the orderRef alone, a fill of the other one took the strategy of the ``bot1``
    journaled and read as its entry or exit in the trades. A fill whose order is uncertain is named ``bot1#?``, its
    strategy ``uncertain``.
    """
    owners = [orders.of(f) for f in fills]
    return [replace(f, order_ref=o.name) for f, o in zip(fills, owners, strict=True)], \
        {o.name: o.strategy for o in owners}


def uncertain_fills(fills: list[Fill], orders: FillOrders) -> list[dict[str, Any]]:
    """The fills of ``fills`` whose order the journal cannot tell, each with why (not given to one of the orders
    under its orderRef)."""
    return [{"time": f.time, "exec_id": f.exec_id, "order_ref": f.order_ref, "symbol": f.symbol, "side": str(f.side),
             "quantity": f.quantity, "price": f.price, "why": orders.doubts[f.exec_id]}
            for f in fills if f.exec_id in orders.doubts]


def max_drawdown(pnl: pd.Series) -> float:
    """Largest fall of cumulative P&L from its running peak (starting from zero)."""
    equity = pd.concat([pd.Series([0.0]), pnl.cumsum()], ignore_index=True)
    return float((equity.cummax() - equity).max())


def totals_by(trades: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    """:func:`trade_stats` per value of ``key`` (strategy or symbol)."""
    if trades.empty:
        return []
    return [{key: name, **trade_stats(group)} for name, group in trades.groupby(key, sort=True)]


AT_THE_BROKER = frozenset({OrderStatus.SENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED,
                           OrderStatus.UNKNOWN})


def rejection_reasons(events: list[ev.Event]) -> dict[str, int]:
    """Broker rejections counted by reason, each rejected order once. An order the risk gate denied (``denials``)
    or an approval the operator or the engine turned down (``approvals``) never reached the broker: counted there.

    The reason is the broker's error (code and words) when the journal has it: a journal written before a rejection
    was one record holds two updates of it, the move to REJECTED and then its error, and counted both (once under
    the words alone, once under the code and words).
    """
    rejected: dict[str, Order] = {}
    for e in events:
        if (isinstance(e, ev.OrderUpdated) and e.order.status is OrderStatus.REJECTED
                and (e.previous in AT_THE_BROKER or e.order.last_error or e.order.order_ref in rejected)):
            known = rejected.get(e.order.order_ref)
            rejected[e.order.order_ref] = e.order if known is None or e.order.last_error else known
    return dict(Counter(_reject_reason(o) for o in rejected.values()).most_common())


def not_sent_reasons(events: list[ev.Event], children: Mapping[str, int]) -> dict[str, int]:
    """Orders stopped before the wire, counted by why: in a dry run, the orders it would have sent.

    One event stops a whole bracket: its stop and target (``children``: how many each orderRef has) count
    with their entry, as the headless summary counts them (a dry run's 18 orders read 6 here).
    """
    reasons: Counter[str] = Counter()
    for e in events:
        if isinstance(e, ev.OrderNotSent):
            reasons[e.reason] += 1 + children.get(e.order.order_ref, 0)
    return dict(reasons.most_common())


def approval_outcomes(events: list[ev.Event]) -> dict[str, int]:
    """Orders that waited for approval, counted by what became of them."""
    outcomes: Counter[str] = Counter()
    for e in events:
        if isinstance(e, ev.ApprovalResolved):
            if e.approved:
                outcomes[f"approved by {e.by}"] += 1
            elif e.by == "timeout":
                outcomes["expired"] += 1
            else:
                outcomes[f"rejected by {e.by}" + (f": {e.note}" if e.note else "")] += 1
    return dict(outcomes.most_common())


def _reject_reason(order: Order) -> str:
    note = order.history[-1].note if order.history else ""
    return order.last_error or note or "unspecified"


def denial_reasons(events: list[ev.Event]) -> dict[str, int]:
    """Risk denials counted by failed check."""
    reasons: Counter[str] = Counter()
    for e in events:
        if isinstance(e, ev.OrderDenied):
            reasons.update(c.name for c in e.verdict.failures or ())
            if not e.verdict.failures:
                reasons["unspecified"] += 1
    return dict(reasons.most_common())


def incidents(events: list[ev.Event]) -> dict[str, list[dict[str, Any]]]:
    """Kill switch engagements, resets and the checks of what still worked after them, risk-driven state
    changes, and operator actions."""
    risk = [{"time": e.time, "by": e.by, "from": e.previous.value, "to": e.state.value, "reason": e.reason}
            for e in events if isinstance(e, ev.TradingStateChanged) and e.by.startswith(("risk", "schedule"))]
    refusals = [e for e in events if isinstance(e, ev.ModifyRefused)]
    actions = [{"time": e.time, "who": e.who, "action": e.action, "why": e.why, "before": e.before,
                "after": _outcome(e, refusals)} for e in events if isinstance(e, ev.OperatorAction)]
    kill = [row for e in events for row in _kill_rows(e)]
    return {"kill_switch": kill, "risk_triggers": risk, "operator_actions": actions}


def _outcome(action: ev.OperatorAction, refusals: list[ev.ModifyRefused]) -> str:
    """What an operator's action left (its ``after``); for a modify the broker refused, the figures the order stayed
    at, and that the broker refused the ones asked for, in its words. The first refusal after the modify, of its order
    and of the figures it asked for, is its answer (taken from ``refusals``: each answers one modify)."""
    if action.action != "modify_order":
        return action.after
    refusal = next((r for r in refusals if r.order_ref == action.order_ref and r.asked == action.after
                    and r.time >= action.time), None)
    if refusal is None:
        return action.after
    refusals.remove(refusal)
    return f"{refusal.held}: the broker refused {refusal.asked} ({refusal.code}: {refusal.message})"


SUPERSEDED = "superseded by a later kill: "
"""How the reason of a kill check begins that a later kill superseded
(:attr:`~tui_trader.domain.events.KillChecked.superseded`)."""


def _kill_event(row: dict[str, Any]) -> str:
    """What a kill switch row counts as in a summary: a superseded check is not the word on its kill (the later
    kill's own check is), so its "NOT verified" is not counted as one."""
    return "superseded check" if row["reason"].startswith(SUPERSEDED) else row["event"]


def _kill_rows(e: ev.Event) -> list[dict[str, Any]]:
    """The kill switch rows of one event: a kill that left orders working listed only as "engaged"
    read as a kill that worked."""
    if isinstance(e, ev.KillChecked):
        row = _kill_check(e.time, e.report)
        if e.superseded:  # a later kill was decided before it came: that kill's own check is the latest word
            row["reason"] = f"{SUPERSEDED}{row['reason']}"
        return [row]
    if isinstance(e, ev.KillSwitchEngaged) and (e.remaining or e.cancelled):  # a journal before KillChecked
        return [_kill_check(e.time, ev.KillReport(e.cancelled, e.remaining, checked=True))]
    if isinstance(e, ev.KillSwitchEngaged | ev.KillSwitchReset):
        return [{"time": e.time, "event": "engaged" if isinstance(e, ev.KillSwitchEngaged) else "reset",
                 "by": e.by, "reason": e.reason}]
    return []


def _kill_check(when: datetime, report: ev.KillReport) -> dict[str, Any]:
    cancelled = f"{len(report.cancelled)} cancelled"
    if report.kept:  # an automatic trip keeps the positions' stops and targets working on purpose
        cancelled += f", {len(report.kept)} protective kept"
    if report.verified:
        return {"time": when, "event": "verified", "by": "broker", "reason": f"{cancelled}, nothing still working"}
    if not report.checked:  # what it names is only what the engine itself still tracks as working
        tracked = f"tracked as working: {', '.join(report.remaining)}" if report.remaining else \
            "none tracked as working"
        return {"time": when, "event": "NOT verified", "by": "engine",
                "reason": f"the broker could not be asked; {tracked} ({cancelled})"}
    return {"time": when, "event": "NOT verified", "by": "broker",
            "reason": f"still working: {', '.join(report.remaining)} ({cancelled})"}


REPORT_EVENT_KINDS = ("OrderUpdated", "OrderDenied", "ApprovalResolved", "OrderNotSent", "KillSwitchEngaged",
                      "KillSwitchReset", "KillChecked", "TradingStateChanged", "OperatorAction", "ModifyRefused")


async def build_report(journal: Journal, period: Period) -> dict[str, Any]:
    """The whole report of ``period`` as plain values (datetimes stay datetimes)."""
    start = await journal.book_start()
    fills = await execution_order(journal, await journal.fills(until=period.end))
    if start is not None:  # in the positions the book began with (another run's, replayed by an earlier version)
        fills = [f for f in fills if f.exec_id not in start.journaled_before]
    orders = await journal.orders()
    owners = FillOrders(orders, await journal.fill_doubts(fills))
    children = Counter(o.parent_ref for o in orders if o.parent_ref)
    named, strategies = named_fills(fills, owners)
    trades_all, open_lots = pair_fills(named, strategies, await journal.book_adjustments(period.end))
    trades = pd.DataFrame(trades_all, columns=TRADE_COLUMNS)
    trades = trades[[period.contains(t) for t in trades["exit_time"]]] if not trades.empty else trades
    events = await journal.events(REPORT_EVENT_KINDS, since=period.start, until=period.end)
    in_period = [f for f in fills if period.contains(f.time)]
    uncertain = uncertain_fills(in_period, owners)
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat(), "time_zone": period.time_zone},
        "summary": {**trade_stats(trades), **fill_stats(in_period, len(uncertain))},
        "by_strategy": totals_by(trades, "strategy"), "by_symbol": totals_by(trades, "symbol"),
        "trades": trades.to_dict("records"), "open_positions": open_lots,
        "rejections": rejection_reasons(events), "denials": denial_reasons(events),
        "approvals": approval_outcomes(events), "not_sent": not_sent_reasons(events, children), **incidents(events),
        "uncertain_fills": uncertain,
    }


def summary_text(report: dict[str, Any]) -> str:
    """The daily summary as a few lines for a notification."""
    s = report["summary"]
    rate = f"{s['win_rate']:.0%}" if s["win_rate"] is not None else "n/a"
    uncertain = f" ({s['uncertain_fills']} of an uncertain order)" if s.get("uncertain_fills") else ""
    lines = [f"trades {s['trades']} (win rate {rate}), fills {s['fills']}{uncertain}",
             f"net P&L {s['net_pnl']:.2f} (gross {s['gross_pnl']:.2f}, commission {s['commission']:.2f}), "
             f"max drawdown {s['max_drawdown']:.2f}"]
    lines += [f"  {row['strategy']}: {row['trades']} trades, net {row['net_pnl']:.2f}" for row in report["by_strategy"]]
    kill = Counter(_kill_event(k) for k in report["kill_switch"])
    if kill:
        lines.append("kill switch: " + ", ".join(f"{n} {event}" for event, n in kill.items()))
    if report["denials"] or report["rejections"]:
        lines.append(f"denials {sum(report['denials'].values())}, rejections {sum(report['rejections'].values())}")
    if report["approvals"]:
        lines.append("approvals: " + ", ".join(f"{n} {outcome}" for outcome, n in report["approvals"].items()))
    return "\n".join(lines)


async def close_session(journal: Journal, day: date, time_zone: str, notify: Any = None,
                        late: datetime | None = None) -> dict[str, Any]:
    """At the session close: journal the day's summary and hand it to the notifier (kind daily_summary).

    Args:
        journal: The engine's (writable) journal.
        day: The trading day closing.
        time_zone: The exchange time zone defining the day.
        notify: ``Notifier.notify`` or any callable taking a :class:`Notice`; ``None``: not sent.
        late: When the summary is sent after its day (the engine was stopped at the close): now,
            said in the title.

    Returns:
        The summary as journaled.
    """
    report = await build_report(journal, Period(day, day, time_zone))
    summary = {k: report[k] for k in ("summary", "by_strategy", "by_symbol", "rejections", "denials", "approvals",
                                      "not_sent")}
    summary["kill_switch"] = sum(k["event"] in ("engaged", "reset") for k in report["kill_switch"])
    summary["kill_not_verified"] = sum(_kill_event(k) == "NOT verified" for k in report["kill_switch"])
    await journal.save_daily_summary(day.isoformat(), summary)
    if notify is not None:
        now = late.astimezone(ZoneInfo(time_zone)) if late is not None else datetime.now(ZoneInfo(time_zone))
        title = f"daily summary {day.isoformat()}" + (f" (sent late, {now:%a %Y-%m-%d %H:%M %Z})" if late else "")
        notify(Notice(now, AlertLevel.INFO, "daily_summary", title, summary_text(report)))
    return summary


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO text and NaN as None (for JSON and CSV output)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    return asdict(value) if hasattr(value, "__dataclass_fields__") else value
