"""StatusBar and KillBanner: the two lines an operator must never misread."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label, Static

from tui_trader.domain.enums import OrderStatus, TradingState
from tui_trader.domain.orders import Fill
from tui_trader.engine.snapshots import EngineSnapshot, KillReport
from tui_trader.ui.format import age, hhmmss, money, pct
from tui_trader.ui.freshness import Freshness

STATE_CLASSES = ("-active", "-reducing", "-halted")
VERDICT_CLASSES = ("-live", "-stalled", "-disconnected", "-degraded")


def set_text(label: Label, text: str, *, grow_only: bool = False) -> None:
    """Update ``label`` only when its text changed, and re-lay out only when its width did.

    A layout pass reflows and repaints the whole screen (tens of ms at 200x60). With
    ``grow_only`` (figures that change every refresh) the text is padded to the widest seen, so
    the label re-lays out only when a figure needs more room than ever before.
    """
    old: str | None = getattr(label, "_last_text", None)
    if grow_only and old is not None:
        text = text.ljust(cell_len(old))
    if old != text:
        label._last_text = text  # type: ignore[attr-defined]
        label.update(text, layout=old is None or cell_len(old) != cell_len(text))


def exchange_clock(now: datetime, zone: str) -> str:
    """``09:45:12 EDT``: the time in the exchange's zone."""
    try:
        local = now.astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):
        local = now
    return local.strftime("%H:%M:%S %Z")


def mode_text(snapshot: EngineSnapshot) -> str:
    """The mode badge: SIM, PAPER or LIVE, plus DRY-RUN."""
    return snapshot.mode.value.upper()


class StatusBar(Horizontal):
    """Mode, account, connection, trading state, equity, day P&L, exchange clock, heartbeat."""

    trading_state: reactive[TradingState | None] = reactive(None)
    """The engine's trading state as last drawn (HALTED paints the whole bar)."""

    verdict: reactive[str] = reactive("")
    """LIVE, STALLED, DISCONNECTED or DEGRADED."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels: dict[str, Label] = {}

    def compose(self) -> ComposeResult:
        yield Label("…", id="mode-badge")
        yield Label("", id="dry-run-badge")
        yield Label("", id="account-id")
        yield Label("", id="trading-state")
        yield Label("", id="link-state")
        yield Label("", id="equity")
        yield Label("", id="day-pnl")
        yield Label("", id="spacer")
        yield Label("", id="heartbeat")
        yield Label("", id="clock")

    def show(self, snapshot: EngineSnapshot, fresh: Freshness, now: datetime) -> None:
        """Draw ``snapshot``; called at the refresh rate, labels update only on change."""
        self._show_mode(snapshot)
        self.trading_state = snapshot.trading_state
        self.verdict = fresh.verdict
        set_text(self._label("#account-id"), snapshot.account_id or "no account")
        state = snapshot.trading_state.value
        if snapshot.kill_engaged:
            state = f"■ {state} · KILL"
        set_text(self._label("#trading-state"), f" {state} ")
        self._show_link(snapshot, fresh)
        self._show_money(snapshot, fresh)
        set_text(self._label("#heartbeat"), f"hb {age(fresh.heartbeat_age)}", grow_only=True)
        set_text(self._label("#clock"), exchange_clock(now, snapshot.time_zone))

    def show_fill(self, fill: Fill, zone: str) -> None:
        """Show the latest fill in the bar's free space.

        Not a toast: mounting one lays out the whole screen (tens of ms at 200x60, on the loop
        the engine shares) and fills can come dozens a second. The spacer's width is fixed by
        the layout, so the new text repaints one line and nothing moves.
        """
        text = f" last fill {fill.side.value} {fill.quantity:g} {fill.symbol} @ {fill.price:.2f}" \
               f" {hhmmss(fill.time, zone)}"
        label = self._label("#spacer")
        label._last_text = text  # type: ignore[attr-defined]
        label.update(text, layout=False)

    def _label(self, selector: str) -> Label:
        label = self._labels.get(selector)
        if label is None:  # looked up once: ten DOM queries per refresh add up
            label = self._labels[selector] = self.query_one(selector, Label)
        return label

    def _show_mode(self, snapshot: EngineSnapshot) -> None:
        badge = self._label("#mode-badge")
        set_text(badge, f" {mode_text(snapshot)} ")
        for mode in ("sim", "paper", "live"):
            badge.set_class(snapshot.mode.value == mode, f"-{mode}")
        dry = self._label("#dry-run-badge")
        set_text(dry, " DRY-RUN " if snapshot.dry_run else "")
        dry.display = snapshot.dry_run

    def _show_link(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        text = snapshot.connection.state.value
        if fresh.verdict == "STALLED":
            text = f"STALLED {age(fresh.heartbeat_age)}"
        elif fresh.verdict == "DEGRADED" and text == "CONNECTED":
            text = "DEGRADED"
        set_text(self._label("#link-state"), f"● {text}")

    def _show_money(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        account = snapshot.account
        day = account.day_pnl
        base = account.start_of_day_equity
        day_pct = pct(day / base * 100) if base else ""
        set_text(self._label("#equity"), f"Equity {money(account.equity)}", grow_only=True)
        day_label = self._label("#day-pnl")
        set_text(day_label, f"Day {money(day, signed=True)} {day_pct}".rstrip(), grow_only=True)
        day_label.set_class(day > 0, "-pos")
        day_label.set_class(day < 0, "-neg")
        for selector in ("#equity", "#day-pnl"):
            self._label(selector).set_class(fresh.account_stale, "-stale")

    def watch_trading_state(self, state: TradingState | None) -> None:
        for cls in STATE_CLASSES:
            self.set_class(state is not None and cls == f"-{state.value.lower()}", cls)

    def watch_verdict(self, verdict: str) -> None:
        for cls in VERDICT_CLASSES:
            self.set_class(cls == f"-{verdict.lower()}", cls)


class KillBanner(Static):
    """Shown while the kill switch is engaged: why, by whom, what was cancelled, what remains."""

    engaged: reactive[bool] = reactive(False)
    """Whether the kill switch is latched."""

    def __init__(self) -> None:
        super().__init__("", id="kill-banner")
        self.report = KillReport()
        self.by = ""
        self.engaged_at: datetime | None = None

    def record(self, report: KillReport, by: str, when: datetime | None = None) -> None:
        """Remember the engine's account of the last engagement (``when``: the engagement's time)."""
        self.report = report
        self.by = by
        if when is not None and not report.cancelled and not report.remaining:
            self.engaged_at = when

    def cancelled(self, snapshot: EngineSnapshot) -> int:
        """Orders the kill cancelled: those the engine reported, and those cancelled since it engaged.

        The engine reports refs only when verification finds some still working, so the count
        is also read from the orders themselves (nothing else cancels while HALTED).
        """
        refs = set(self.report.cancelled)
        if self.engaged_at is not None:
            since = self.engaged_at
            refs.update(o.order_ref for o in snapshot.orders
                        if o.status is OrderStatus.CANCELLED and o.updated_at >= since)
        return len(refs)

    def show(self, snapshot: EngineSnapshot) -> None:
        """Draw the banner from the snapshot's kill state and the last report."""
        self.engaged = snapshot.kill_engaged
        if not snapshot.kill_engaged:
            return
        working = [o.order_ref for o in snapshot.orders if o.status.is_working]
        cancelled = self.cancelled(snapshot)
        check = "verified" if self.report.verified and not working else "verifying…"
        if working:
            check = f"STILL WORKING: {', '.join(working[:6])}" + (" …" if len(working) > 6 else "")
        text = (f"KILL SWITCH ENGAGED — {snapshot.kill_reason or 'no reason given'}"
                f"{' (by ' + self.by + ')' if self.by else ''} · cancelled {cancelled} · "
                f"remaining {len(working)} · {check} · reset: ctrl+r")
        if getattr(self, "_last_text", None) != text:
            self._last_text = text
            self.update(text)
        self.set_class(bool(working), "-remaining")

    def watch_engaged(self, engaged: bool) -> None:
        self.display = engaged
