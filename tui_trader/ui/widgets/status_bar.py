"""StatusBar and KillBanner: the two lines an operator must never misread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui_trader.domain.enums import LINK_UP, OrderStatus, TradingState
from tui_trader.domain.events import KillChecked, KillReport
from tui_trader.domain.orders import Fill
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.risk.kill_cancels import is_protective
from tui_trader.ui.format import DASH, age, hhmmss, money, pct, price, qty, shown_sign
from tui_trader.ui.freshness import Freshness, link_state

STATE_CLASSES = ("-active", "-reducing", "-halted")
LINK_VARIANTS = {"LIVE": ("link-live",), "DEGRADED": ("link-degraded",), "STALLED": ("link-down",),
                 "DISCONNECTED": ("link-down",)}
"""The link field's colour per freshness verdict: a variant of its component class, not a state
class on the bar (the verdict flips when quotes go stale, and a state class restyled the bar:
3-5 ms of that frame, its costliest part in ``profile_console --real --worst``)."""
CLOSED_VARIANT = ("link-closed",)
"""The link field's colour when it is LIVE and every watched market is closed: neither live (green) nor an alarm."""
MODE_CLASSES = ("-mode-sim", "-mode-paper", "-mode-live")
FIELDS = ("mode", "dry-run", "account", "state", "paused", "link", "equity", "day-pnl", "fill", "heartbeat",
          "clock")
"""The bar's fields, left to right; ``fill`` takes the width left over (drawn only when it fits whole)."""
FILL_AT = FIELDS.index("fill")
PADDED = frozenset(FIELDS) - {"fill"}
"""Fields drawn with one cell of padding each side (in the field's background, not its text style)."""
ESSENTIAL = ("mode", "dry-run", "account", "state", "link", "equity", "day-pnl")
"""The fields a paused strategy's name is cut to leave room for, however long it is."""
SHED = ("fill", "heartbeat", "clock", "spacing", "state", "link", "day-pnl", "equity", "paused")
"""What a bar too narrow for its fields gives up, one at a time in this order until they fit: the lesser fields
whole (the last fill, the heartbeat (the link says STALLED with its age when it matters), the clock), then the
padding (the fields' own spaces stripped, one cell between them), then the essential fields' detail (:data:`SHORTER`),
then the paused strategy's name (:func:`paused_text`). Past all that, whole fields go (:data:`LAST_RESORT`). Never a
field cut at the edge: "-1,234.5" cut to "-1,23" reads as another amount."""
LAST_RESORT = ("paused", "equity", "account", "day-pnl", "link", "dry-run", "state", "mode")
"""The fields a bar too narrow for the essential ones, however short, drops whole, in this order (about 60 columns with
the kill engaged): the day's loss is what trips a halt, and the mode badge says paper or live where the account id
is not shown."""
SHORTEST_NAME = 4
"""Fewer cells of a paused strategy's name than this say nothing: the bar says how many are paused instead."""


def grown(old: str | None, text: str) -> str:
    """``text`` padded to the width of ``old`` when narrower: a figure never makes the bar jump back."""
    return text.ljust(cell_len(old)) if old is not None else text


def fill_text(fill: Fill, zone: str) -> str:
    """`` last fill BUY 12 MSFT @ 410.77 00:15:03``: the fill, its time in ``zone`` (the clock's beside it)."""
    return f" last fill {fill.side.value} {qty(fill.quantity)} {fill.symbol} @ {price(fill.price)} " \
           f"{hhmmss(fill.time, zone)}"


def exchange_clock(now: datetime, zone: str) -> str:
    """``09:45:12 EDT``: the time in the exchange's zone."""
    try:
        local = now.astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):
        local = now
    return local.strftime("%H:%M:%S %Z")


def paused_text(paused: Sequence[str], room: int | None = None) -> str:
    """`` ema_cross PAUSED `` (`` 2 strategies PAUSED ``), or ``""`` when none is: the trading state says ACTIVE
    while a paused strategy sends nothing, and its pause was said only once, in an INFO alert.

    With ``room`` (cells for the text, its own spaces included) it is cut to fit: the name cut short
    (`` ema_cr… PAUSED ``), else the count only (`` 2 PAUSED ``). A long
    name (or several) pushed the link, and the figures after it, off an 80-column bar.
    """
    if not paused:
        return ""
    full = f" {paused[0] if len(paused) == 1 else f'{len(paused)} strategies'} PAUSED "
    if room is None or cell_len(full) <= room:
        return full
    name_room = room - cell_len(" … PAUSED ")
    if len(paused) == 1 and name_room >= SHORTEST_NAME:
        return f" {set_cell_size(paused[0], name_room)}… PAUSED "
    return f" {len(paused)} PAUSED "


def without_detail(text: str) -> str:
    """``text`` without what follows its `` · ``: `` ■ HALTED `` for `` ■ HALTED · KILL `` (the kill banner says
    it), ``● DISCONNECTED`` for ``● DISCONNECTED · retry in 7 s`` (the connectivity pane says it)."""
    head, dot, _ = text.partition(" · ")
    if not dot:
        return text
    return f"{head} " if text.endswith(" ") else head


def without_percentage(text: str) -> str:
    """``Day -2,663.50`` for ``Day -2,663.50 -0.27%`` (the equity beside it says what it is a part of)."""
    figure, _, last = text.rstrip().rpartition(" ")
    return figure if last.endswith("%") else text


def short_label(text: str) -> str:
    """``Eq 997,336.50`` for ``Equity 997,336.50``."""
    return text.replace("Equity", "Eq", 1)


SHORTER = {"state": without_detail, "link": without_detail, "day-pnl": without_percentage, "equity": short_label}
"""The essential fields' shorter forms, taken in :data:`SHED`'s order: each drops a detail, never a figure's digit."""


def mode_text(snapshot: EngineSnapshot) -> str:
    """The mode badge: SIM, PAPER or LIVE, plus DRY-RUN."""
    return snapshot.mode.value.upper()


class StatusBar(Widget):
    """Mode, account, connection, trading state, equity, day P&L, last fill, heartbeat, exchange clock.

    One line drawn through the Line API from a tuple of texts (:attr:`texts`), each field styled
    by a component class (``status-bar--<field>``) whose colours depend on the bar's state
    classes (``-halted``, ``-stalled``, ``-mode-live`` …), so all colour lives in ``app.tcss``.
    It was a row of ten labels: a label whose width changed laid out and repainted the whole
    screen (15–45 ms at 200x60), and a state change restyled ten widgets. Now a change repaints
    this one line and nothing else moves.
    """

    COMPONENT_CLASSES = {f"status-bar--{name}" for name in FIELDS} | {
        "status-bar--pnl-pos", "status-bar--pnl-neg", "status-bar--stale",
        *(f"status-bar--{v}" for variants in (*LINK_VARIANTS.values(), CLOSED_VARIANT) for v in variants)}
    """One per field, plus variants added to a field's own (day P&L sign, stale figures, the
    link's verdict): a variant changes with the data, and a component class costs nothing to
    switch, where a state class on the bar restyles it (2-3 ms)."""

    trading_state: reactive[TradingState | None] = reactive(None)
    """The engine's trading state as last drawn (HALTED paints the whole bar)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.texts: dict[str, str] = dict.fromkeys(FIELDS, "")
        """What each field shows (``""``: the field is not drawn, except ``fill``)."""
        self.texts["mode"] = "…"
        self.paused: tuple[str, ...] = ()
        """The paused strategies' names (``texts["paused"]`` says them in full; the line cuts them to fit)."""
        self.verdict = ""
        """LIVE, STALLED, DISCONNECTED or DEGRADED, as last drawn (the link field's variant)."""
        self._strip: tuple[tuple[object, ...], int, Strip] | None = None
        self.variants: dict[str, tuple[str, ...]] = {}
        """Component classes added to a field's own (``day-pnl``: ``pnl-neg``, ``stale`` …)."""
        self._unpainted = False
        """A fill was recorded since the line was last drawn."""
        self._fill: Fill | None = None
        """The last fill shown (its time is drawn in the snapshot's zone: :meth:`show`)."""
        self._fill_zone = ""
        """The zone the last fill's time is drawn in now."""
        self._styles: dict[tuple[str, tuple[str, ...]], tuple[Style, Segment]] = {}
        """Each field's style and padding by its variants (a few dozen at most; cleared on restyle)."""

    @property
    def fill_text(self) -> str:
        """The last fill, as shown in the bar's free space ('' before the first)."""
        return self.texts["fill"]

    def show(self, snapshot: EngineSnapshot, fresh: Freshness, now: datetime) -> None:
        """Draw ``snapshot``; called at the refresh rate, the line repaints only when a text changed."""
        texts = dict(self.texts)
        texts["mode"] = f" {mode_text(snapshot)} "
        texts["dry-run"] = " DRY-RUN " if snapshot.dry_run else ""
        texts["account"] = snapshot.account_id or "no account"
        state = snapshot.trading_state.value
        texts["state"] = f" ■ {state} · KILL " if snapshot.kill_engaged else f" {state} "
        self.paused = tuple(s.name for s in snapshot.strategies if s.paused)
        texts["paused"] = paused_text(self.paused)
        texts["link"] = f"● {link_text(snapshot, fresh, now)}"
        texts.update(money_texts(snapshot, self.texts))
        texts["heartbeat"] = grown(self.texts["heartbeat"] or None, f"hb {age(fresh.heartbeat_age)}")
        texts["clock"] = exchange_clock(now, snapshot.time_zone)
        if self._fill is not None and self._fill_zone != snapshot.time_zone:  # shown before the first snapshot (a
            texts["fill"] = fill_text(self._fill, snapshot.time_zone)       # fill recovered at the start), it read UTC
            self._fill_zone = snapshot.time_zone
        self._set_classes(snapshot)
        self.trading_state = snapshot.trading_state
        self.verdict = fresh.verdict
        self._update(texts, {**money_variants(snapshot, fresh), "link": link_variants(fresh)})

    def show_fill(self, fill: Fill, zone: str) -> None:
        """Show the latest fill in the bar's free space.

        Not a toast: mounting one lays out the whole screen (tens of ms at 200x60, on the loop
        the engine shares) and fills can come dozens a second. Nor a repaint of its own: the
        line is drawn with the next snapshot (at the refresh rate), together with the position
        and the order the fill changed, so a burst of fills costs no extra compositor passes.
        """
        self._fill, self._fill_zone = fill, zone
        self.texts = {**self.texts, "fill": fill_text(fill, zone)}
        self._unpainted = True

    def _update(self, texts: dict[str, str], variants: dict[str, tuple[str, ...]]) -> None:
        if texts != self.texts or variants != self.variants or self._unpainted:
            self.texts, self.variants = texts, variants
            self._unpainted = False
            self.refresh()

    def _set_classes(self, snapshot: EngineSnapshot) -> None:
        """The state classes the fields' colours hang on (rare changes: each restyles the bar)."""
        mode = f"-mode-{snapshot.mode.value}"
        for cls in MODE_CLASSES:
            self.set_class(cls == mode, cls)

    def watch_trading_state(self, state: TradingState | None) -> None:
        for cls in STATE_CLASSES:
            self.set_class(state is not None and cls == f"-{state.value.lower()}", cls)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip = None
        self._styles.clear()

    def render_line(self, y: int) -> Strip:
        """The bar: the left fields, the last fill in the room left (when it fits whole), then heartbeat and clock;
        each field whole or not at all, as :meth:`_fitted` chose them for the width."""
        width = self.size.width
        key = (*self.texts.values(), *self.variants.items())
        if self._strip is not None and self._strip[0] == key and self._strip[1] == width:
            return self._strip[2]
        texts, tight = self._fitted(width)
        left = [s for name in FIELDS[:FILL_AT] for s in self._field(name, texts[name], tight)]
        right = [s for name in FIELDS[FILL_AT + 1:] for s in self._field(name, texts[name], tight)]
        if tight:
            del left[:1]  # the cell between fields, before the first
        room = max(width - Segment.get_line_length(left) - Segment.get_line_length(right), 0)
        fill = Segment(set_cell_size(texts["fill"], room), self._field_style("fill", ())[0])
        strip = Strip([*left, fill, *right]).extend_cell_length(width, self.rich_style)
        self._strip = (key, width, strip)
        return strip

    def _fitted(self, width: int) -> tuple[dict[str, str], bool]:
        """The fields' texts as the bar draws them ``width`` cells wide, and whether tight (no padding, one cell
        between fields): given up in :data:`SHED`'s order until they fit; past that, whole fields dropped
        (:data:`LAST_RESORT`)."""
        texts, tight = dict(self.texts), False
        for step in SHED:
            if cells(texts, FIELDS, tight) <= width:
                return texts, tight
            if step == "spacing":
                tight = True
            elif step == "paused":
                texts[step] = paused_text(self.paused, paused_room(texts, width, tight))
            elif step in SHORTER:
                texts[step] = SHORTER[step](texts[step])
            else:
                texts[step] = ""
        for name in LAST_RESORT:
            if cells(texts, FIELDS, tight) <= width:
                break
            texts[name] = ""
        return texts, tight

    def _field(self, name: str, text: str, tight: bool) -> list[Segment]:
        """One field as segments: `` text `` (the padding in the field's background only), or tight: a cell in the
        bar's background, then the text without its spaces."""
        if not text:
            return []
        style, pad = self._field_style(name, self.variants.get(name, ()))
        if tight:
            return [self._field_style("fill", ())[1], Segment(text.strip(), style)]
        return [pad, Segment(text, style), pad]

    def _field_style(self, name: str, variants: tuple[str, ...]) -> tuple[Style, Segment]:
        """The field's style and its padding cell, combined once per style update.

        The clock and the heartbeat redraw the bar every second or sooner, and combining ten
        fields' component styles was most of the line's cost (about 0.6 ms of 0.9).
        """
        key = (name, variants)
        cached = self._styles.get(key)
        if cached is None:
            style = self.get_component_rich_style(f"status-bar--{name}", *(f"status-bar--{v}" for v in variants))
            cached = self._styles[key] = (style, Segment(" ", Style(bgcolor=style.bgcolor)))
        return cached


def cells(texts: dict[str, str], names: Sequence[str], tight: bool) -> int:
    """The cells the ``names`` fields take on the bar: each padded a cell each side, or tight: its spaces stripped,
    one cell between fields."""
    if tight:
        return max(sum(cell_len(texts[name].strip()) + 1 for name in names if texts[name]) - 1, 0)
    return sum(cell_len(texts[name]) + 2 * (name in PADDED) for name in names if texts[name])


def paused_room(texts: dict[str, str], width: int, tight: bool) -> int:
    """The cells the paused strategies' text may take beside the essential fields on a bar ``width`` wide: less its
    padding, or tight: its own two spaces are stripped and one cell goes before it."""
    room = width - cells(texts, ESSENTIAL, tight)
    return room + 1 if tight else room - 2


def link_text(snapshot: EngineSnapshot, fresh: Freshness, now: datetime) -> str:
    """The broker link's state (with the wait before the next try while there is one, as the connectivity
    pane says it), or STALLED/DEGRADED when the data says so; ``CONNECTED · markets closed`` when the link is
    live and every watched market closed (its quotes stand still: not a live market, not a broken feed)."""
    text = link_state(snapshot.connection, now)
    if fresh.verdict == "STALLED":
        return f"STALLED {age(fresh.heartbeat_age)}"
    if fresh.verdict == "DEGRADED" and text == "CONNECTED":
        return "DEGRADED"
    if fresh.verdict == "LIVE" and fresh.markets_closed:
        return f"{text} · markets closed"
    return text


def link_variants(fresh: Freshness) -> tuple[str, ...]:
    """The link field's colour: by the freshness verdict, muted when it is LIVE with every market closed."""
    if fresh.verdict == "LIVE" and fresh.markets_closed:
        return CLOSED_VARIANT
    return LINK_VARIANTS.get(fresh.verdict, ())


def money_variants(snapshot: EngineSnapshot, fresh: Freshness) -> dict[str, tuple[str, ...]]:
    """The day P&L's sign colour; both figures struck through while the account is stale."""
    day = snapshot.account.day_pnl
    stale = ("stale",) if fresh.account_stale else ()
    sign = {1: ("pnl-pos",), -1: ("pnl-neg",), 0: ()}[shown_sign(day)]
    return {"equity": stale, "day-pnl": (*sign, *stale)}


def money_texts(snapshot: EngineSnapshot, before: dict[str, str]) -> dict[str, str]:
    """Equity and day P&L, each padded to the widest it has been (figures change every refresh)."""
    account = snapshot.account
    if not account.known:  # never connected, no journal: 0.00 would be a figure the account never had
        return {"equity": grown(before["equity"] or None, f"Equity {DASH}"),
                "day-pnl": grown(before["day-pnl"] or None, f"Day {DASH}")}
    day, base = account.day_pnl, account.start_of_day_equity
    day_pct = pct(day / base * 100) if base else ""
    return {
        "equity": grown(before["equity"] or None, f"Equity {money(account.equity)}"),
        "day-pnl": grown(before["day-pnl"] or None, f"Day {money(day, signed=True)} {day_pct}".rstrip()),
    }


class KillBanner(Static):
    """Shown while the kill switch is engaged: why, by whom, what was cancelled, what remains.

    What remains is said as the broker last answered: an order still working after a check the broker
    answered is STILL WORKING; while the broker could not be asked (disconnected, no answer, the engine
    process gone) the banner says NOT VERIFIED and names the orders only as last known working (a stop
    may have filled meanwhile).
    """

    engaged: reactive[bool] = reactive(False)
    """Whether the kill switch is latched."""

    def __init__(self) -> None:
        super().__init__("", id="kill-banner")
        self.verification: KillReport | None = None
        """The broker's answer after the last engagement (or connect); None until it comes."""
        self.engaged_at: datetime | None = None
        self.asked_at: datetime | None = None
        """When the kill's cancels awaiting their check went out (None once it has come): the orders cancelled
        since are theirs until it says which were."""
        self.credited: set[str] = set()
        """The orders this engagement's checks said the kill cancelled."""

    def engage(self, when: datetime) -> None:
        """A new engagement: its verification is to come."""
        self.verification, self.engaged_at, self.asked_at, self.credited = None, when, when, set()

    def check_pending(self, when: datetime) -> None:
        """Cancels were sent again at ``when`` (Ctrl+K while engaged, which the engine does not announce as a
        new engagement): the last check no longer stands until the next one comes."""
        self.verification, self.asked_at = None, when

    def record_check(self, check: KillChecked) -> None:
        """The engine asked the broker what still works (or could not). The check of a kill a later one
        superseded does not replace the latest kill's (nor stand in for it while that one is awaited)."""
        if not check.superseded:
            self.verification, self.asked_at = check.report, None
            self.credited.update(check.report.cancelled)

    def cancelled(self, snapshot: EngineSnapshot) -> int:
        """Orders the kill cancelled: those its checks named, those its check left working that were
        cancelled since, and, while a check is awaited, those cancelled since its cancels went out.

        Not every order cancelled while HALTED: a flatten cancels the positions' stops (an automatic trip
        kept them), and those are the flatten's, not the kill's.
        """
        refs = set(self.credited)
        ours = set(self.verification.remaining) if self.verification else set()
        since = self.asked_at
        refs.update(o.order_ref for o in snapshot.orders if o.status is OrderStatus.CANCELLED
                    and (o.order_ref in ours or (since is not None and o.updated_at >= since)))
        return len(refs)

    def show(self, snapshot: EngineSnapshot) -> None:
        """Draw the banner from the snapshot's kill state and the last verification."""
        self.engaged = snapshot.kill_engaged
        if not snapshot.kill_engaged:  # released: the next kill's check and count start afresh
            if self.engaged_at is not None:
                self.verification, self.engaged_at, self.asked_at, self.credited = None, None, None, set()
            return
        if self.engaged_at is None:  # engaged with no event to say so (a latch restored, the console's own): a check
            self.engaged_at = snapshot.time  # heard already stands (the release before cleared the last kill's)
            self.asked_at = snapshot.time if self.verification is None else None
        verification = self.verification
        # UNKNOWN: neither working nor ended as far as the broker said (reconciliation settles it).
        unknown = [o.order_ref for o in snapshot.orders if o.status is OrderStatus.UNKNOWN]
        live = [o for o in snapshot.orders if o.status.is_working and o.status is not OrderStatus.UNKNOWN]
        # An automatic trip keeps the positions' stops and targets working on purpose: kept, not remaining.
        keeps = snapshot.kill_keeps_protection
        kept: list[str] = []
        working: list[str] = []
        for o in live:
            (kept if keeps and is_protective(o) else working).append(o.order_ref)
        if verification is not None and verification.remaining:
            # Orders the broker holds that the engine does not track are named there only.
            known = {o.order_ref for o in snapshot.orders}
            working += [r for r in verification.remaining if r not in known]
        connected = snapshot.connection.state in LINK_UP  # DEGRADED too: the broker answers
        check = _check_text(verification, connected)
        # The broker said it could not check, or cannot be asked now (no check has come yet).
        unverified = not verification.checked if verification is not None else not connected
        # The broker not asked now: what was last known (a stop may have filled since), never "still working".
        title = "last known working" if unverified or not connected else "STILL WORKING"
        named = [f"{label}: {', '.join(refs[:6])}" + (" …" if len(refs) > 6 else "")
                 for label, refs in ((title, working), ("STATE UNKNOWN", unknown)) if refs]
        if unverified:
            named.insert(0, check)
        said = " · ".join(named) or check
        by = f" (by {snapshot.kill_by})" if snapshot.kill_by else ""
        text = (f"KILL SWITCH ENGAGED — {snapshot.kill_reason or 'no reason given'}{by} · "
                f"cancelled {self.cancelled(snapshot)} · remaining {len(working) + len(unknown)} · {said} · "
                + (f"kept {len(kept)} protective (ctrl+k cancels them) · " if kept else "") + "reset: ctrl+r")
        if getattr(self, "_last_text", None) != text:
            self._last_text = text
            self.update(text)
        self.set_class(bool(working or unknown), "-remaining")

    def watch_engaged(self, engaged: bool) -> None:
        self.display = engaged


def _check_text(verification: KillReport | None, connected: bool) -> str:
    """What the kill's check says: verified, verifying, or NOT VERIFIED and why the broker was not asked."""
    if verification is not None and verification.checked:
        return "verified"
    if verification is not None:
        return f"NOT VERIFIED: {'the broker did not answer' if connected else 'disconnected'}"
    return "verifying…" if connected else "NOT VERIFIED: disconnected"
