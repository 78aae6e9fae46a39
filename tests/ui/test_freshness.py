"""The console's honesty rules about closed markets: neither live nor broken.

A symbol whose market is closed has quotes that stand still. Its feed says CLOSED, its old quote is no
staleness (no DEGRADED for it), and with every watched market closed the status bar says so instead of a
green CONNECTED. Unknown hours (no phase in the snapshot) keep the rules as they were.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tui_trader.domain.market import MarketPhase
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.demo import FROZEN, disconnected_state, normal_state
from tui_trader.ui.freshness import assess, feed_word
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.widgets.status_bar import CLOSED_VARIANT, LINK_VARIANTS, link_text, link_variants
from tui_trader.ui.widgets.watchlist import watchlist_note

P = MarketPhase
OPTIONS = ConsoleOptions()
OLD = timedelta(seconds=OPTIONS.market_data_stale_s + 60)
"""Older than the stale limit: a night's quote, or a feed that stopped."""


def aged(snapshot: EngineSnapshot, by: timedelta, *symbols: str) -> EngineSnapshot:
    """``snapshot`` with the quotes of ``symbols`` (every one when none is named) ``by`` older."""
    quotes = {s: replace(q, time=q.time - by) if not symbols or s in symbols else q
              for s, q in snapshot.quotes.items()}
    return replace(snapshot, quotes=quotes)


def phased(snapshot: EngineSnapshot, phase: MarketPhase, *symbols: str) -> EngineSnapshot:
    """``snapshot`` with the markets of ``symbols`` (every quoted one when none is named) in ``phase``."""
    return replace(snapshot, market_phases={**snapshot.market_phases,
                                            **dict.fromkeys(symbols or snapshot.quotes, phase)})


def test_assess_when_every_market_is_closed_and_the_quotes_old_then_live_markets_closed_and_nothing_stale() -> None:
    snapshot = phased(aged(normal_state(), OLD), P.CLOSED)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.verdict == "LIVE"
    assert fresh.markets_closed
    assert not fresh.stale_symbols
    assert not fresh.market_stale
    assert link_text(snapshot, fresh, FROZEN) == "CONNECTED · markets closed"
    assert link_variants(fresh) == CLOSED_VARIANT
    assert watchlist_note(fresh, len(snapshot.quotes)) == "markets closed"
    assert {feed_word(fresh, s, delayed=False) for s in snapshot.quotes} == {"CLOSED"}


def test_assess_when_the_hours_are_not_known_then_old_quotes_are_stale_as_before() -> None:
    snapshot = aged(normal_state(), OLD)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.verdict == "DEGRADED"
    assert fresh.stale_symbols == set(snapshot.quotes)
    assert not fresh.markets_closed
    assert link_variants(fresh) == LINK_VARIANTS["DEGRADED"]
    assert {feed_word(fresh, s, delayed=False) for s in snapshot.quotes} == {"STALE"}


def test_assess_when_one_market_is_closed_and_an_open_ones_quote_old_then_degraded_for_the_open_one_only() -> None:
    state = normal_state()
    closed, stuck, *_ = sorted(state.quotes)
    snapshot = phased(phased(aged(state, OLD, closed, stuck), P.OPEN), P.CLOSED, closed)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.stale_symbols == {stuck}
    assert fresh.verdict == "DEGRADED"
    assert not fresh.markets_closed
    assert (feed_word(fresh, closed, delayed=False), feed_word(fresh, stuck, delayed=False)) == ("CLOSED", "STALE")


def test_assess_when_some_markets_are_closed_and_the_rest_live_then_connected_and_the_closed_counted() -> None:
    state = normal_state()
    closed = sorted(state.quotes)[0]
    snapshot = phased(phased(aged(state, OLD, closed), P.OPEN), P.CLOSED, closed)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.verdict == "LIVE"
    assert link_text(snapshot, fresh, FROZEN) == "CONNECTED"
    assert link_variants(fresh) == LINK_VARIANTS["LIVE"]
    assert watchlist_note(fresh, len(state.quotes)) == f"{len(state.quotes)} symbols · 1 closed"


@pytest.mark.parametrize(("phase", "delayed", "word"), [
    (None, False, "LIVE"), (P.OPEN, False, "LIVE"), (P.PRE, False, "PRE"), (P.POST, False, "POST"),
    (P.CLOSED, False, "CLOSED"), (P.PRE, True, "DELAY"), (P.CLOSED, True, "CLOSED"), (None, True, "DELAY"),
])
def test_feed_word_of_a_fresh_quote_by_phase_and_delay(phase: MarketPhase | None, delayed: bool, word: str) -> None:
    state = normal_state()
    symbol = sorted(state.quotes)[0]
    snapshot = phased(state, phase, symbol) if phase is not None else state

    assert feed_word(assess(snapshot, FROZEN, OPTIONS), symbol, delayed) == word


@pytest.mark.parametrize("phase", [P.PRE, P.POST, P.OPEN])
def test_feed_word_when_a_trading_markets_quote_is_old_then_stale(phase: MarketPhase) -> None:
    state = normal_state()
    symbol = sorted(state.quotes)[0]
    snapshot = phased(aged(state, OLD, symbol), phase, symbol)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert feed_word(fresh, symbol, delayed=False) == "STALE"
    assert fresh.verdict == "DEGRADED"


def test_link_when_the_link_is_down_and_every_market_closed_then_disconnected_and_every_feed_stale() -> None:
    # The markets being closed says nothing of the link: the console never shows a lost link calmly.
    state = disconnected_state()
    snapshot = phased(state, P.CLOSED)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.verdict == "DISCONNECTED"
    assert link_text(snapshot, fresh, FROZEN).startswith("DISCONNECTED")
    assert link_variants(fresh) == LINK_VARIANTS["DISCONNECTED"]
    assert {feed_word(fresh, s, delayed=False) for s in snapshot.quotes} == {"STALE"}
