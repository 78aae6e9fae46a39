"""The console's honesty rules about a trading halt: the watchlist's feed says HALTED, not LIVE.

A symbol halted at its exchange has a quote that stands still and orders the gate denies. Its badge says
HALTED over LIVE, DELAY, PRE, POST and CLOSED (the halt is why nothing of it trades), its row is dimmed, and
its standing quote is no staleness. A lost link still says STALE: nothing is known to be live then.
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
from tui_trader.ui.widgets.watchlist import BADGE_ROLES, quote_row

P = MarketPhase
OPTIONS = ConsoleOptions()
OLD = timedelta(seconds=OPTIONS.market_data_stale_s + 60)


def halted(snapshot: EngineSnapshot, symbol: str, *, older_by: timedelta = timedelta(0)) -> EngineSnapshot:
    """``snapshot`` with ``symbol``'s quote halted (and ``older_by`` older)."""
    quote = snapshot.quotes[symbol]
    stood = replace(quote, halted=True, time=quote.time - older_by)
    return replace(snapshot, quotes={**snapshot.quotes, symbol: stood})


@pytest.mark.parametrize(("phase", "delayed"), [
    (None, False), (P.OPEN, False), (P.PRE, False), (P.POST, False), (P.CLOSED, False), (P.OPEN, True),
])
def test_feed_word_when_the_symbol_is_halted_then_halted(phase: MarketPhase | None, delayed: bool) -> None:
    state = normal_state()
    symbol, other = sorted(state.quotes)[:2]
    snapshot = halted(state, symbol)
    if phase is not None:
        snapshot = replace(snapshot, market_phases={symbol: phase})

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert feed_word(fresh, symbol, delayed) == "HALTED"
    assert feed_word(fresh, other, delayed=False) == "LIVE"


def test_assess_when_a_halted_symbols_quote_is_old_then_not_stale_and_still_live() -> None:
    state = normal_state()
    symbol = sorted(state.quotes)[0]
    snapshot = halted(state, symbol, older_by=OLD)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.halted_symbols == {symbol}
    assert not fresh.stale_symbols
    assert fresh.verdict == "LIVE"
    assert feed_word(fresh, symbol, delayed=False) == "HALTED"


def test_assess_when_every_other_quote_is_stale_and_one_halted_then_the_market_is_stale() -> None:
    state = normal_state()
    symbol = sorted(state.quotes)[0]
    aged = replace(state, quotes={s: replace(q, time=q.time - OLD) for s, q in state.quotes.items()})
    snapshot = halted(aged, symbol)

    fresh = assess(snapshot, FROZEN, OPTIONS)

    assert fresh.market_stale
    assert fresh.stale_symbols == set(state.quotes) - {symbol}


def test_feed_word_when_the_link_is_down_then_a_halted_symbol_is_stale() -> None:
    state = disconnected_state()
    symbol = sorted(state.quotes)[0]

    fresh = assess(halted(state, symbol), FROZEN, OPTIONS)

    assert feed_word(fresh, symbol, delayed=False) == "STALE"


def test_quote_row_when_halted_then_the_badge_is_red_and_the_row_dimmed() -> None:
    quote = replace(next(iter(normal_state().quotes.values())), halted=True)

    row = quote_row(quote, "", 0.0, "HALTED")

    assert row.cells[-1] == "HALTED"
    assert row.roles[-1] == BADGE_ROLES["HALTED"] == "crit"
    assert row.role == "dim"
