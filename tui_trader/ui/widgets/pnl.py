"""PnLPane: equity and day-P&L sparklines and the risk headroom gauges."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from textual.app import ComposeResult

from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.format import DASH, compact, gauge, money, shown_sign, sparkline
from tui_trader.ui.freshness import Freshness
from tui_trader.ui.options import RiskLimits
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, Row

BAR_WIDTH = 16
SPARK_WIDTH = 120
COLUMNS = (
    Column("", 9),
    Column("", BAR_WIDTH, flex=True, keep_end=True),
    Column("", 17, right=True, figures=True),
)
SAMPLE_EVERY_S = 1.0


def used_role(fraction: float | None) -> str:
    """Gauge colour: green below half, warning to 80 %, error beyond."""
    if fraction is None:
        return "dim"
    return "crit" if fraction >= 0.8 else "warn" if fraction >= 0.5 else "pos"


def gauge_row(key: str, label: str, used: float | None, limit: float | None, text: str) -> Row:
    """One headroom gauge: how much of ``limit`` is used."""
    fraction = used / limit if used is not None and limit else None
    value = f"{text} / {compact(limit) if limit else '∞'}" if limit else f"{text} (no limit)"
    return Row(key, (label, gauge(fraction, BAR_WIDTH), value), ("", used_role(fraction), ""))


def loss_limit(account: AccountSnapshot, limits: RiskLimits) -> float | None:
    """The daily loss limit in money: the tighter of the money and percent limits."""
    candidates = [limits.daily_loss] if limits.daily_loss else []
    if limits.daily_loss_pct and account.start_of_day_equity:
        candidates.append(account.start_of_day_equity * limits.daily_loss_pct / 100)
    return min(candidates) if candidates else None


def drawdown_limit(account: AccountSnapshot, limits: RiskLimits) -> float | None:
    """The drawdown limit in money."""
    candidates = [limits.max_drawdown] if limits.max_drawdown else []
    if limits.max_drawdown_pct and account.high_water_mark:
        candidates.append(account.high_water_mark * limits.max_drawdown_pct / 100)
    return min(candidates) if candidates else None


def gauge_rows(account: AccountSnapshot, limits: RiskLimits) -> list[Row]:
    """Daily loss used, trades today, gross exposure and drawdown against their limits."""
    loss = max(-account.day_pnl, 0.0)
    exposure_limit = limits.max_gross_exposure * account.equity if limits.max_gross_exposure else None
    trades = float(account.trades_today)
    trade_limit = float(limits.max_daily_trades) if limits.max_daily_trades else None
    return [
        gauge_row("loss", "Loss used", loss, loss_limit(account, limits), compact(loss)),
        gauge_row("trades", "Trades", trades, trade_limit, f"{account.trades_today}"),
        gauge_row("exposure", "Exposure", account.gross_exposure, exposure_limit,
                  compact(account.gross_exposure)),
        gauge_row("dd", "Drawdown", account.drawdown, drawdown_limit(account, limits),
                  compact(account.drawdown)),
    ]


class PnLPane(Pane):
    """Equity over the session and how much of each risk limit is used."""

    def __init__(self, limits: RiskLimits) -> None:
        super().__init__("P&L and risk", "5", id="pnl-pane")
        self.limits = limits
        self.equity: deque[float] = deque(maxlen=240)
        self.day_pnl: deque[float] = deque(maxlen=240)
        self._last_sample: datetime | None = None
        self._charts: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        table = LineTable(COLUMNS, id="pnl-table")
        table.show_cursor = False
        yield table

    def show(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        """Sample equity (at most once a second) and redraw the chart and gauges."""
        account = snapshot.account
        if not account.known:  # never connected, no journal: no figure to show or to sample
            self.table.set_rows([Row("equity", ("Equity", "", DASH)), Row("day", ("Day P&L", "", DASH)),
                                 Row("unknown", ("Account", "not known yet", ""), ("", "dim", ""))])
            self.set_age(fresh.heartbeat_age, stale=fresh.account_stale,
                         note=fresh.verdict if fresh.account_stale else "")
            return
        self._sample(account)
        day = account.day_pnl
        day_role = "neg" if shown_sign(day) < 0 else "pos"  # -0.00 of float noise is no loss
        equity_chart, day_chart = self._charts_now()
        rows = [
            Row("equity", ("Equity", equity_chart, money(account.equity)), ("", "accent", "")),
            Row("day", ("Day P&L", day_chart, money(day, signed=True)),
                ("", day_role, day_role)),
            *gauge_rows(account, self.limits),
        ]
        self.table.set_rows(rows)
        self.set_age(fresh.heartbeat_age, stale=fresh.account_stale,
                     note=fresh.verdict if fresh.account_stale else "")

    def seed_history(self, equity: list[float], day_pnl: list[float]) -> None:
        """Preload the session's equity and day-P&L samples (demo scenarios and screenshots)."""
        self.equity.extend(equity)
        self.day_pnl.extend(day_pnl)
        self._charts = None

    def _charts_now(self) -> tuple[str, str]:
        """The equity and day-P&L sparklines, redrawn only when a sample was added."""
        if self._charts is None:
            self._charts = (sparkline(self.equity, SPARK_WIDTH), sparkline(self.day_pnl, SPARK_WIDTH))
        return self._charts

    def _sample(self, account: AccountSnapshot) -> None:
        last = self._last_sample
        if last is not None and (account.time - last).total_seconds() < SAMPLE_EVERY_S:
            return
        self._last_sample = account.time
        self._charts = None
        self.equity.append(account.equity)
        self.day_pnl.append(account.day_pnl)
