"""PreflightScreen: before a live session arms, show what it is about to trade with.

Account type and id, read-only API, market data, reconciliation, kill state and risk limits;
the operator arms by typing the account id. Until then the console opens no approval, so no
order can reach the wire (in live mode every order needs one).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tui_trader.domain.enums import ConnectionState
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.format import pct
from tui_trader.ui.freshness import Freshness, feed_word
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.rows import Column, Row

COLUMNS = (Column("Check", 20), Column("Finding", 30, flex=True), Column("", 5))
OFF = "OFF"
"""A loss limit turned off."""
Finding = tuple[str, str, str]
FEED_WORDS = ("STALE", "HALTED", "DELAY", "CLOSED", "PRE", "POST")
"""The watchlist's feed words (:func:`~tui_trader.ui.freshness.feed_word`) other than LIVE, in the order the
preflight names their symbols: those whose data cannot be trusted first."""
UNTRUSTED = frozenset({"STALE", "HALTED", "DELAY"})
"""Feed words that make the market data a warning; a closed market, or one outside regular hours, is none."""


def account_findings(snap: EngineSnapshot, options: ConsoleOptions) -> list[Finding]:
    """Account id, account type (paper ids start with DU) and the expected account.

    With no account reported yet (no gateway, or it has not answered) the type is unknown too: it read
    "live — ok", a finding the console had no ground for."""
    acct = snap.account_id or "unknown"
    if not snap.account_id:
        kind = ("unknown: the gateway has not reported the account", "FAIL")
    elif acct.upper().startswith("DU"):
        kind = ("PAPER (DU…) — not a live account", "FAIL")
    else:
        kind = ("live", "ok")
    found = [("Account id", acct, "ok" if snap.account_id else "FAIL"), ("Account type", *kind)]
    if options.expected_account:
        match = options.expected_account == snap.account_id
        found.append(("Expected account", options.expected_account, "ok" if match else "FAIL"))
    return found


def market_data_finding(snap: EngineSnapshot, fresh: Freshness) -> Finding:
    """The quotes' feeds in the watchlist's words: ``live, 8 symbols``, ``markets closed: AAPL, MSFT``, or the
    symbols of each other word (``CLOSED: AAPL · 6 live``).

    It said ``live`` for every quote that was not delayed: before the open, a trader arming live trading read
    that markets were live that were closed (and the same of a stale or halted quote)."""
    if not snap.quotes:
        return ("Market data", "no quotes yet", "warn")
    named: dict[str, list[str]] = {}
    for symbol in sorted(snap.quotes):
        named.setdefault(feed_word(fresh, symbol, snap.quotes[symbol].delayed), []).append(symbol)
    live = len(named.pop("LIVE", ()))
    if not live and list(named) == ["CLOSED"]:
        text = f"markets closed: {', '.join(named['CLOSED'])}"
    else:
        said = [f"{word}: {', '.join(named[word])}" for word in FEED_WORDS if word in named]
        text = " · ".join([*said, f"{live} live"]) if said else f"live, {live} symbols"
    return ("Market data", text, "warn" if UNTRUSTED & named.keys() else "ok")


def session_findings(snap: EngineSnapshot, fresh: Freshness) -> list[Finding]:
    """Connection, read-only API, market data and reconciliation."""
    connected = snap.connection.state is ConnectionState.CONNECTED
    read_only = getattr(snap, "read_only_api", None)
    blocked = snap.entries_blocked_reason
    return [
        ("Connection", f"{snap.connection.state.value} {snap.connection.host}:{snap.connection.port}",
         "ok" if connected else "FAIL"),
        ("Read-only API", {None: "not reported: check the gateway setting", True: "ON: orders refused",
                           False: "off"}[read_only], "warn" if read_only is None else "FAIL" if read_only else "ok"),
        market_data_finding(snap, fresh),
        ("Reconciliation", blocked or "clean", "FAIL" if blocked else "ok"),
        ("Kill switch", f"ENGAGED{' by ' + snap.kill_by if snap.kill_by else ''}: {snap.kill_reason}"
         if snap.kill_engaged else "released",
         "warn" if snap.kill_engaged else "ok"),
    ]


def limit_findings(options: ConsoleOptions) -> list[Finding]:
    """The risk limits in force; a loss limit turned off (``""`` in the configuration) is a warning."""
    lim = options.limits
    loss = _loss_limit(lim.daily_loss_pct, lim.daily_loss)
    drawdown = _loss_limit(lim.max_drawdown_pct, lim.max_drawdown)
    text = (f"daily loss {loss} · drawdown {drawdown} · trades/day {lim.max_daily_trades or '∞'} · "
            f"gross ≤ {lim.max_gross_exposure or '∞'}× equity")
    return [("Risk limits", text, "warn" if OFF in (loss, drawdown) else "ok")]


def _loss_limit(percent: float | None, money: float | None) -> str:
    """A loss limit set in percent, in money, or both (the first reached trips it); ``OFF`` when neither is."""
    said = [pct(percent, signed=False)] if percent else []
    if money:
        said.append(f"{money:,.0f}")
    return " or ".join(said) or OFF


def findings(snap: EngineSnapshot, fresh: Freshness, options: ConsoleOptions) -> list[Finding]:
    """Every preflight finding (``fresh``: the snapshot's freshness, as the console assessed it)."""
    return [*account_findings(snap, options), *session_findings(snap, fresh), *limit_findings(options)]


ROLE = {"ok": "pos", "warn": "warn", "FAIL": "crit"}


class PreflightScreen(ModalScreen[bool]):
    """Arms the live console once every check passes and the account id is typed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "abort", "Quit", id="abort-preflight", tooltip="Do not arm; quit"),
    ]
    """Escape quits without arming."""

    def __init__(self, options: ConsoleOptions) -> None:
        super().__init__(id="preflight-screen")
        self.options = options
        self.account_id = ""
        self.blocking = True
        self.refusal = ""
        """Why the id typed and entered did not arm (said under the input until it changes)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="preflight-dialog", classes="dialog -error"):
            yield Label("LIVE TRADING — preflight", classes="dialog-title")
            table = LineTable(COLUMNS, empty="Waiting for the engine…", id="preflight-checks")
            table.show_cursor = False
            yield table
            yield Label("Type the account id to arm:", id="preflight-prompt")
            yield Input(placeholder="account id", id="preflight-account")
            yield Label("", id="preflight-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Quit", id="abort", variant="primary")
                yield Button("Arm live trading", id="arm", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#preflight-account", Input).focus()

    def show(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        """Refresh the findings from ``snapshot`` and its freshness."""
        if not self.is_mounted:
            return
        try:
            table = self.query_one(LineTable)
        except NoMatches:  # a snapshot arrived while the console tears the screen down
            return
        found = findings(snapshot, fresh, self.options)
        rows = [Row(name, (name, text, verdict), ("", "", ROLE[verdict])) for name, text, verdict in found]
        table.set_rows(rows)
        self.account_id = snapshot.account_id
        self.blocking = any(verdict == "FAIL" for _, _, verdict in found)
        self._update_arm()

    def on_input_changed(self) -> None:
        self.refusal = ""
        self._update_arm()

    def _update_arm(self) -> None:
        typed = self.query_one("#preflight-account", Input).value.strip()
        ready = bool(self.account_id) and typed == self.account_id and not self.blocking
        self.query_one("#arm", Button).disabled = not ready
        errors = ["A check FAILED: live trading cannot arm."] if self.blocking else []
        self.query_one("#preflight-error", Label).update("\n".join([self.refusal, *errors] if self.refusal else errors))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter arms; an id that cannot arm says why (the Arm button only stayed disabled)."""
        event.stop()
        self.refusal = self._why_not(event.value.strip())
        self._update_arm()
        self.action_arm()

    def _why_not(self, typed: str) -> str:
        """Why ``typed`` cannot arm, or ``""`` when it is the connected account's id."""
        if not typed:
            return "Type the account id to arm."
        if not self.account_id:
            return f"{typed} cannot be checked: the gateway has not reported the account yet."
        return "" if typed == self.account_id else f"{typed} is not the connected account."

    def action_arm(self) -> None:
        """Arm when the typed id matches and nothing failed."""
        if not self.query_one("#arm", Button).disabled:
            self.dismiss(True)

    def action_abort(self) -> None:
        """Quit without arming."""
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_arm() if event.button.id == "arm" else self.action_abort()
