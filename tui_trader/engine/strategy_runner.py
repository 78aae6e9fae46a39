"""Running strategies: warm-up, bar aggregation per bar size, signals → sized brackets or exits.

A strategy that raises is disabled with an alert; the others go on. One symbol holds one position:
an entry signal while flat opens a bracket, an opposite (or exit) signal closes the position if the
strategy owns it, anything else is ignored, and nothing new is sent while an order for that symbol is
still in flight. A paused strategy opens nothing: its entry signals are dropped (not kept for the
resume), but its exit (or opposite) signals still close the positions it owns, as freqtrade's pause
does: a position it opened stays managed by it, not left to its stop and the operator alone.

A strategy owns a position it opened from flat with its own entry and that nothing else has added
to since (:attr:`Position.owner`). One opened or added to from a ticket, by another strategy, or
whose opener is not known (adopted from the broker, held before a restart that could not tell) is
left to its stop and the operator: said once per position in an INFO alert. The maximum holding
time and every flatten (the operator's, the kill switch's, the schedule's) close any position, whoever
owns it: they are risk controls.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.broker.base import BrokerPacingError, HistoryRefused
from tui_trader.config.sections import SizingSettings, StrategySettings
from tui_trader.domain.enums import AlertLevel, OrderStatus
from tui_trader.domain.events import Event, OperatorAction, SignalGenerated
from tui_trader.domain.market import Bar, Instrument, Quote
from tui_trader.domain.orders import MANUAL, NOT_STRATEGY_NAMES, OrderTicket
from tui_trader.engine.market import BarSeries
from tui_trader.engine.recovery import Recovery
from tui_trader.engine.sizing import entry_probe, exit_ticket, sizing_rule
from tui_trader.engine.snapshots import StrategyStatus
from tui_trader.risk.sizing import size_order
from tui_trader.strategies.base import Signal, Strategy, signal_problem
from tui_trader.strategies.registry import StrategyLoadError, build

log = logging.getLogger(__name__)
S = OrderStatus
_IN_FLIGHT = frozenset({S.PENDING_APPROVAL, S.APPROVED, S.SENDING, S.UNKNOWN})
SIGNAL_BARS = 10
"""Bars journaled with each signal (the order trace shows them)."""
MIN_BARS_KEPT = 100
"""Bars of history kept per series at least; more when a strategy's warm-up needs (twice its warm-up)."""
PAUSE, RESUME = "pause_strategy", "resume_strategy"
"""The :class:`OperatorAction` actions of a strategy's pause and resume (its name is their ``why``)."""


@dataclass
class RunningStrategy:
    """One configured strategy instance and its state."""

    spec: StrategySettings
    strategy: Strategy
    paused: bool = False
    disabled_reason: str = ""
    last_signal_at: datetime | None = None
    wants_quotes: bool = False
    symbols: tuple[str, ...] = field(default_factory=tuple)
    warmup_bars: int = 0
    """Bars the strategy needs before it is run (its :attr:`Strategy.warmup_bars`, read once at load)."""

    def status(self) -> StrategyStatus:
        """The frozen status the console shows."""
        return StrategyStatus(self.spec.name, self.symbols, self.paused, self.disabled_reason,
                              self.last_signal_at)


class StrategyRunner(Recovery):
    """Strategies on top of the order path."""

    strategies: dict[str, RunningStrategy]
    series: dict[tuple[str, int], BarSeries]
    left_alone: dict[tuple[str, str], datetime | None]
    """(strategy, symbol) → when the position its signal last left alone was opened (said once per position)."""
    not_sized: dict[tuple[str, str], str]
    """(strategy, symbol) → what made its last entry signal size to nothing (said once until one is sized again)."""
    nothing_to_trade = ""
    """Why the strategies can trade nothing at all (none of their symbols known to the broker, or in a headless run
    none enabled: :meth:`say_nothing_to_trade`); "" while they can."""
    _warming: asyncio.Task[None] | None = None
    """The warm-up under way (:meth:`warm_up`): one at a time."""
    history_refused: frozenset[str] = frozenset()
    """Symbols whose history the broker refused (:meth:`_say_history_refused`: said once, until it answers again)."""
    _journaled_pauses: tuple[OperatorAction, ...] = ()
    """The pause of each strategy the journal holds as paused (:func:`paused_in`): paused again at load."""

    async def open_journal(self) -> None:
        """Also: read which strategies the operator left paused (:meth:`load_strategies` pauses them again)."""
        await super().open_journal()
        if self.journal is not None:
            self._journaled_pauses = paused_in(await self.journal.events(kinds=(OperatorAction.__name__,)))

    def load_strategies(self) -> None:
        """Instantiate every enabled strategy of the config (a bad one is reported, not fatal); one the
        journal holds as paused starts paused (:meth:`_restore_pauses`)."""
        self.strategies, self.series, self.left_alone, self.not_sized = {}, {}, {}, {}
        for spec in self.config.strategies:
            if spec.enabled:
                self._load_one(spec)
        self._restore_pauses()

    def _restore_pauses(self) -> None:
        """Pause again the strategies the operator paused before the restart, and say which (a WARNING: an
        operator who forgot the pause would else wonder why a strategy opens nothing).

        A pause lived in memory only: a restart (a crash, a supervisor's, the nightly one) resumed every
        strategy unseen, and one paused on purpose opened positions again.
        """
        restored = [a for a in self._journaled_pauses if a.why in self.strategies]
        for action in self._journaled_pauses:
            if action.why not in self.strategies:
                log.info("strategy %s was paused, and is not loaded now: nothing to pause", action.why)
        for action in restored:
            self.strategies[action.why].paused = True
        if restored:
            zone = ZoneInfo(self.config.time_zone)
            said = "; ".join(f"{a.why} paused (since {a.time.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}, by {a.who})"
                             for a in restored)
            self.alert(AlertLevel.WARNING, "strategies", f"paused before the restart, still paused: {said}",
                       kind="strategy_pause_restored")

    def _load_one(self, spec: StrategySettings) -> None:
        name = self._unique_name(spec.name)
        try:
            strategy = build(spec.name, name, spec.params)
        except StrategyLoadError as exc:  # the others load and run: said, not raised out of the start
            self.alert(AlertLevel.ERROR, "strategies", f"strategy {spec.name} not loaded: {exc}",
                       kind="strategy_not_loaded")
            return
        symbols = tuple(dict.fromkeys(s.upper() for s in spec.symbols))  # "aapl" and "AAPL" are one
        wants_quotes = type(strategy).on_quote is not Strategy.on_quote
        warmup = strategy.warmup_bars
        self.strategies[name] = RunningStrategy(spec, strategy, wants_quotes=wants_quotes, symbols=symbols,
                                                warmup_bars=warmup)
        for symbol in symbols:
            key = (symbol, spec.bar_size_s)
            keep = max(warmup * 2, MIN_BARS_KEPT)
            series = self.series.setdefault(key, BarSeries(symbol, spec.bar_size_s, keep, self.config.time_zone))
            series.warmup_bars = max(series.warmup_bars, warmup)
            series.hold()  # bars are subscribed before the warm-up: its history goes in first
            if keep > (series.bars.maxlen or 0):  # another strategy on the same bars looks further back
                series.bars = deque(series.bars, maxlen=keep)

    def _unique_name(self, name: str) -> str:
        base, n = name.split(":")[-1], 2
        candidate = base
        while candidate in self.strategies or candidate in NOT_STRATEGY_NAMES:
            candidate, n = f"{base}#{n}", n + 1
        return candidate

    async def connect_and_sync(self, startup: bool) -> None:
        """As :meth:`Recovery.connect_and_sync`; after a reconnect the bars are warmed up again, which
        fills the gap of the outage (live slices wait meanwhile, as at startup)."""
        for series in self.series.values():
            series.hold()
        await super().connect_and_sync(startup)
        self._check_something_to_trade()
        if not startup:
            self.spawn(self.warm_up(), "warm-up")

    def _check_something_to_trade(self) -> None:
        """Say it (an ERROR, once) when the broker has known none of the strategies' symbols this session: each
        unknown one was said, but a headless run then went on to its end doing nothing and exited 0 (it stops on
        this). One known on an earlier connection does not count as unknown now."""
        traded = {symbol for running in self.strategies.values() for symbol in running.symbols}
        if not traded or traded & self.market.instruments.keys():
            return
        self.say_nothing_to_trade(f"the broker knows none of the strategies' symbols ({', '.join(sorted(traded))})")

    def say_nothing_to_trade(self, why: str) -> None:
        """Say (an ERROR, once: the first reason stays) that the strategies can trade nothing at all, and why;
        :attr:`nothing_to_trade` keeps it (a headless run stops on it)."""
        if self.nothing_to_trade:
            return
        self.nothing_to_trade = why
        self.alert(AlertLevel.ERROR, "strategies", f"nothing to trade: {why}", kind="nothing_to_trade")

    async def warm_up(self) -> None:
        """Seed every bar series from historical bars (failures alert; live bars fill in).

        Live slices that arrive meanwhile are held and folded in after the history. pandas, which
        strategies read bars through, is imported meanwhile in a thread: it stays off the start path
        (the first quotes do not wait for it) and the first bar does not stall the loop.

        One at a time: a warm-up started while another is under way (a reconnect while the last one's requests
        back off from pacing) replaces it. The one under way is cancelled and done with first, so each series has
        one request, and one chain of retries, at a time; the one replaced returns.
        """
        previous = self._warming
        if previous is not None and not previous.done():
            previous.cancel()
            await asyncio.wait([previous])
        task = self._warming = asyncio.ensure_future(self._warm_all())
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not task.cancelled():
            task.result()

    async def _warm_all(self) -> None:
        for series in self.series.values():
            series.hold()
        traded = [series for series in self.series.values() if series.symbol not in self.unknown_symbols]
        preload = [asyncio.to_thread(importlib.import_module, "pandas")] if traded else []
        await asyncio.gather(*preload, *(self._warm_one(series) for series in traded))

    async def _warm_one(self, series: BarSeries) -> None:
        """Fetch what the longest-looking strategy on ``series`` needs (the config's count at least);
        the held live slices are released whatever happens. The time is taken before the request: the
        history ends there (or a little after), not where its answer arrives. A bar the held slices
        complete is run through the strategies at once: a live bar, which would else wait for the next.
        The bars follow the clock of the symbol's exchange, as its contract details give it.
        """
        if (instrument := self.market.instruments.get(series.symbol)) is not None:
            series.use_zone(instrument.time_zone)
        size = series.size_s
        bars: list[Bar] = []
        asked = self.now()
        refused: HistoryRefused | None = None
        try:
            bars = await self.broker.historical_bars(series.symbol, size * self.warmup_count(series), size)
            self.history_refused -= {series.symbol}
        except HistoryRefused as exc:
            refused = exc
        except (TimeoutError, ConnectionError, BrokerPacingError) as exc:
            self.alert(AlertLevel.WARNING, "strategies", f"no warm-up history for {series.symbol}: {exc}")
        finally:
            completed = series.warm(bars, asked)
        if refused is not None:
            self._say_history_refused(series, refused)
        elif (have := len(series.bars)) < series.warmup_bars:
            self.alert(AlertLevel.WARNING, "strategies", f"{series.symbol} {size}s bars: {have} of history, its "
                       f"strategies need {series.warmup_bars}: they wait for {series.warmup_bars - have} live bars "
                       "before they trade", kind="warmup_short")
        if completed is not None:
            self._run_strategies(series)

    def _say_history_refused(self, series: BarSeries, refused: HistoryRefused) -> None:
        """The broker refused ``series``' history (no permission, no data): an ERROR naming the symbol and its
        strategies, which cannot warm up on it, and what they wait for. Said once per symbol (not again at each
        reconnect's warm-up) until the history comes."""
        symbol = series.symbol
        if symbol in self.history_refused:
            log.info("history of %s refused again (%d): %s", symbol, refused.code, refused.reason)
            return
        self.history_refused |= {symbol}
        names = ", ".join(self.strategies_on(symbol)) or "its strategies"
        need = series.warmup_bars - len(series.bars)
        if symbol in self.bars_refused:
            then = "its live bars are refused too: they cannot trade it"
        elif need > 0:
            then = f"they wait for {need} live {series.size_s}s bars before they trade it"
        else:
            then = "live bars carry on"
        self.alert(AlertLevel.ERROR, "strategies", f"history of {symbol} refused by the broker ({refused.code}: "
                   f"{refused.reason}): {names} cannot warm up on {symbol}; {then}", kind="history_refused")

    def strategies_on(self, symbol: str) -> list[str]:
        """The names of the strategies that trade ``symbol``."""
        return [name for name, running in self.strategies.items() if symbol in running.symbols]

    def warmup_count(self, series: BarSeries) -> int:
        """Bars of history fetched for ``series``: the config's count, or two more than its strategies
        need, whichever is larger (the window's newest bar is still in progress; its oldest may cover
        only part of its bucket)."""
        return max(self.config.warmup_bars, series.warmup_bars + 2)

    def pause_strategy(self, name: str, paused: bool) -> None:
        """Pause or resume one strategy; journaled as the operator's :class:`OperatorAction` (``pause_strategy`` or
        ``resume_strategy``, the strategy's name as its ``why``), which a restart restores it from."""
        running = self.strategies.get(name)
        if running is None:
            raise KeyError(f"no strategy {name}")
        before, running.paused = running.paused, paused
        self.publish(OperatorAction(self.now(), "operator", PAUSE if paused else RESUME, name,
                                    _pause_word(before), _pause_word(paused)))
        said = "paused: no new entries; its exits still close its positions" if paused else "resumed"
        self.alert(AlertLevel.INFO, "strategies", f"strategy {name} {said}")

    def strategy_statuses(self) -> tuple[StrategyStatus, ...]:
        """Every strategy's status."""
        return tuple(r.status() for r in self.strategies.values())

    # -- data in, signals out ------------------------------------------------------------------

    def bar_hook(self, bar: Bar) -> None:
        """Aggregate the 5-second bar into each size; run strategies on every completed bar."""
        for (symbol, _), series in self.series.items():
            if symbol == bar.symbol and series.add(bar) is not None:
                self._run_strategies(series)

    def _run_strategies(self, series: BarSeries) -> None:
        """Run the strategies on ``series``'s bars, which just gained a completed bar.

        A strategy is not run before the series holds its ``warmup_bars``: when the warm-up's history
        is short (it failed, or the symbol has not traded that long) live bars make up the rest, and
        an indicator on fewer bars than the strategy declares it needs is not one it trades on.

        Each is handed its own copy of the bars (about 10 µs for a few hundred): strategy code that
        adds a column, smooths the closes or drops rows in place must not change the prices the
        next strategy on the series trades on.
        """
        symbol, have = series.symbol, len(series.bars)
        for running in self.strategies.values():
            if running.spec.bar_size_s == series.size_s and symbol in running.symbols and have >= running.warmup_bars:
                self._run(running, symbol, running.strategy.on_bar, symbol, series.frame().copy())

    def quote_hook(self, quote: Quote) -> None:
        """Give quote-driven strategies the quote."""
        for running in self.strategies.values():
            if running.wants_quotes and quote.symbol in running.symbols:
                self._run(running, quote.symbol, running.strategy.on_quote, quote)

    def _run(self, running: RunningStrategy, symbol: str, call: Callable[..., Signal | None],
             *args: Any) -> None:
        if running.disabled_reason:
            return
        try:
            signal = call(*args)
        except Exception as exc:  # noqa: BLE001 - strategy code is the user's: disable, never crash
            log.exception("strategy %s raised", running.strategy.name)
            self._disable(running, f"it raised {exc!r}")
            return
        if signal is None:
            return
        if problem := signal_problem(signal):
            self._disable(running, problem)
            return
        running.last_signal_at = self.now()
        try:
            self.on_signal(running, symbol, signal)
        except Exception as exc:  # noqa: BLE001 - one strategy's signal must not stop the others' data
            log.exception("acting on strategy %s's signal failed", running.strategy.name)
            self._disable(running, f"its signal {signal!r} could not be acted on: {exc!r}")

    def _disable(self, running: RunningStrategy, why: str) -> None:
        running.disabled_reason = why
        self.alert(AlertLevel.ERROR, "strategies", f"strategy {running.strategy.name} disabled: {why}",
                   kind="strategy_disabled")

    def on_signal(self, running: RunningStrategy, symbol: str, signal: Signal) -> None:
        """Turn a signal into an entry bracket or an exit, unless something is in flight.

        An exit (or opposite) signal closes only a position the strategy owns (:meth:`owns`), paused
        or not; a paused strategy's entry signal is dropped. The entry goes out first; its
        :class:`SignalGenerated` record (with the signal's time and the last :data:`SIGNAL_BARS` bars
        behind it, for the order trace) follows the send.
        """
        if self.stopping or self._in_flight(symbol):  # strategies end when the engine begins to stop
            return
        position = self.portfolio.quantity(symbol)
        name = running.strategy.name
        if position and (signal.exit or signal.side.sign * position < 0):
            if self.owns(name, symbol):
                self.spawn(self.close_position(symbol, signal.reason, name, owned=True), f"exit-{symbol}")
        elif not position and not signal.exit:
            if running.paused:
                log.info("%s paused: its %s %s signal opens nothing", name, signal.side, symbol)
                return
            at = self.now()
            ticket = self._size_entry(symbol, signal, running.spec.sizing or self.config.sizing, name)
            if ticket is not None:
                self._enter(ticket)
                series = self.series.get((symbol, running.spec.bar_size_s))
                bars = tuple(islice(reversed(series.bars), SIGNAL_BARS))[::-1] if series is not None else ()
                self.publish(SignalGenerated(at, name, ticket, bars))

    def owns(self, name: str, symbol: str) -> bool:
        """``symbol``'s position is strategy ``name``'s to close (:attr:`Position.owner`). When it is not,
        the position is left to its stop and the operator: said in an INFO alert once per position (a
        signal on every bar would repeat it), logged each time."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.owner == name:
            return True
        whose = _whose(pos.owner)
        key = (name, symbol)
        if key not in self.left_alone or self.left_alone[key] != pos.opened_at:  # a position not said yet
            self.left_alone[key] = pos.opened_at
            self.alert(AlertLevel.INFO, "strategies", f"{name}'s signal to close {symbol} left the position "
                       f"alone: it is not {name}'s ({whose}); its stop and the operator see to it",
                       kind="position_not_owned")
        else:
            log.info("%s's signal to close %s left the position alone (%s)", name, symbol, whose)
        return False

    def _enter(self, ticket: OrderTicket) -> None:
        """Submit an entry right here, in the market-data handler: no task hop before the wire."""
        try:
            self.submit_nowait(ticket)
        except Exception as exc:  # noqa: BLE001 - as for a task: alerted, and the data stream goes on
            self.report_crash(f"entry-{ticket.symbol}", exc)

    def _in_flight(self, symbol: str) -> bool:
        return any(o.symbol == symbol and (o.status in _IN_FLIGHT or not o.ticket.reduce_only)
                   and not o.status.is_final for o in self.orders.orders.values())

    def _size_entry(self, symbol: str, signal: Signal, sizing: SizingSettings, name: str) -> OrderTicket | None:
        price = self.market.mark(symbol)
        instrument = self.market.instruments.get(symbol) or Instrument(symbol)
        probe = entry_probe(symbol, signal, price, sizing, instrument, name)
        if probe is None:
            return None
        account = self.account_snapshot()
        in_flight = tuple(self.orders.with_status(S.PENDING_APPROVAL, S.APPROVED))
        # Sized on the stop the bracket will carry (an ATR multiple, a fixed percent or a trail's start):
        # the risk per trade is what a stop-out loses.
        stop = probe.bracket.stop_price if probe.bracket is not None else None
        result = size_order(sizing_rule(sizing), probe, account, self.market.snapshot(), self.risk.limits,
                            self.now(), in_flight, stop_price=stop, atr=signal.stop_distance)
        if not result.ok:
            self._say_not_sized(name, symbol, signal, result.reason, result.capped_by or "its sizing rule")
            return None
        self.not_sized.pop((name, symbol), None)
        from dataclasses import replace

        if result.capped_by is None:
            return replace(probe, quantity=result.quantity, created_at=self.now())
        # Said with the order (its approval, row and trace): the size the rule asked for, and what cut it.
        reason = (f"{probe.reason}; " if probe.reason else "") + (
            f"sized {result.requested:g}, capped to {result.quantity:g} by {result.capped_by}")
        return replace(probe, quantity=result.quantity, created_at=self.now(), reason=reason)

    def _say_not_sized(self, name: str, symbol: str, signal: Signal, why: str, cause: str) -> None:
        """An entry signal that sized to nothing: an INFO alert once (a signal on every bar would repeat it) until
        one is sized again or its ``cause`` (the limit without headroom, or the sizing rule itself: its words hold
        each bar's figures) changes; logged each time. It vanished into the log."""
        log.info("%s %s %s not sized: %s", name, signal.side, symbol, why)
        if self.not_sized.get((name, symbol)) == cause:
            return
        self.not_sized[(name, symbol)] = cause
        self.alert(AlertLevel.INFO, "strategies", f"{name}'s {signal.side} {symbol} signal opens nothing: sized to 0 "
                   f"({why})", kind="not_sized")

    @functools.cached_property
    def _exits_clearing(self) -> set[str]:
        """Symbols whose exit (:meth:`close_position`) is cancelling its protection and waiting for its end: its
        closing order does not exist yet, so :meth:`exits_pending` does not see it."""
        return set()

    async def close_position(self, symbol: str, reason: str, strategy: str, *, owned: bool = False) -> None:
        """Close the symbol's position at market; its protective orders are cancelled first.

        ``owned``: a strategy's exit, sent only while the position is still ``strategy``'s (:meth:`owns`):
        one grown from a ticket while its protection was being cancelled is not sent (and said: it is
        left without its protection). Without it (the maximum holding time) whoever owns it.

        With approvals the exit waits for the operator with the protection still in force: it is
        cancelled only once the exit is approved (:meth:`send_approved`), so a rejected or expired
        exit never leaves the position naked. Nor does one the risk gate denies: it is asked before
        the protection is cancelled. An exit of the symbol already on its way, waiting or working
        (a market order with no bid yet) is left to finish: a second would cancel it as protection.
        So is one still waiting for its protection's cancel (:attr:`_exits_clearing`): a second cancelled
        and waited too, then waited on the first's order as on protection, and gave that up with a
        CRITICAL alert and a reconciliation for an exit already made (the order rested, nobody bidding).

        The exit is given its cancelled protection's record before it is sent, as an approved exit is
        (:meth:`send_approved`): a send waits for the journal after a failed write, and a flatten meanwhile dropped
        the record, given after. Both rejected, the position was left with no stop at the broker, said nowhere.
        """
        qty = self.portfolio.quantity(symbol)
        if (not qty or symbol in self._exits_clearing or self.exits_pending(symbol)
                or (owned and not self.owns(strategy, symbol))):
            return
        ticket = exit_ticket(symbol, qty, reason, strategy, self.market.mark(symbol))
        cancelled = not self.config.approvals_required and self.exit_denied(ticket) is None
        if cancelled:
            self._exits_clearing.add(symbol)
            try:
                if await self.clear_protection(symbol, f"exit ({reason})"):
                    return  # not sent, and said why (disconnected: a later signal retries)
            finally:  # its order, if any, is made with nothing awaited after: exits_pending sees it
                self._exits_clearing.discard(symbol)
            qty = self.portfolio.quantity(symbol)  # its stop may have filled meanwhile
            if not qty:
                return
            if owned and (owner := self.portfolio.positions[symbol].owner) != strategy:
                self.alert(AlertLevel.WARNING, "close_position", f"{strategy}'s exit of {symbol} not sent: the "
                           f"position stopped being its own ({_whose(owner)}) while its protective orders were "
                           "cancelled for the exit", kind="exit_not_sent")
                self.exit_after_cancel(symbol, None, f"{strategy}'s exit of {symbol}", "the position stopped "
                                       "being its own")
                return
            ticket = exit_ticket(symbol, qty, reason, strategy, self.market.mark(symbol))
        order, verdict = self._admit(ticket)
        if cancelled:  # one that does not close the position has its protection placed again
            self.exit_after_cancel(symbol, order.order_ref, f"exit of {symbol} ({reason})")
        if verdict is not None:
            await self.send(order.order_ref, checked=verdict)


def paused_in(events: Iterable[Event]) -> tuple[OperatorAction, ...]:
    """The strategies ``events`` (journaled, oldest first) leave paused: the pause of each that no resume
    followed, the first of several in a row (the one it has been paused since)."""
    paused: dict[str, OperatorAction] = {}
    for event in events:
        if isinstance(event, OperatorAction) and event.action == RESUME:
            paused.pop(event.why, None)
        elif isinstance(event, OperatorAction) and event.action == PAUSE:
            paused.setdefault(event.why, event)
    return tuple(paused.values())


def _pause_word(paused: bool) -> str:
    return "paused" if paused else "running"


def _whose(owner: str) -> str:
    """Who a position belongs to, in the operator's words (:attr:`Position.owner`)."""
    if owner == MANUAL:
        return "opened from a ticket"
    if owner == "adopted":
        return "opened by an order adopted from the broker"
    if owner:
        return f"opened by {owner}"
    return "added to by another order, or its opener not known"
