"""The portfolio's running sums equal the same figures computed from scratch, after any history.

The portfolio keeps its market value, gross exposure and unrealized P&L up to date as each
position changes (a quote revalues one position, not all of them). Property tests drive random
fills, commissions, marks, protection changes, broker adjustments and restores, and after
every step compare equity, exposure, unrealized P&L, the high-water mark and the drawdown with
a from-scratch computation over the positions (exactly: both are correctly rounded sums).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain import Fill, Side
from tui_trader.engine.portfolio import ExactSum, Portfolio

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "SPY", "TSLA")

prices = st.floats(min_value=0.01, max_value=5_000, allow_nan=False, allow_infinity=False)
quantities = st.floats(min_value=0.5, max_value=2_000, allow_nan=False, allow_infinity=False)
symbols = st.sampled_from(SYMBOLS)
steps = st.one_of(
    st.tuples(st.just("fill"), symbols, st.sampled_from([Side.BUY, Side.SELL]), quantities, prices,
              st.one_of(st.none(), st.floats(min_value=0, max_value=5))),
    st.tuples(st.just("mark"), symbols, st.one_of(prices, st.just(math.nan), st.just(0.0))),
    st.tuples(st.just("commission"), st.floats(min_value=0, max_value=5)),
    st.tuples(st.just("protect"), symbols, st.one_of(st.none(), prices)),
    st.tuples(st.just("adjust"), symbols, st.floats(min_value=-500, max_value=500), prices),
    st.tuples(st.just("cash"), st.floats(min_value=-1e6, max_value=1e6)),
    st.tuples(st.just("restore"),),
)


class Reference:
    """The figures from scratch, the high-water mark tracked at the points the portfolio updates it."""

    def __init__(self, portfolio: Portfolio) -> None:
        self.portfolio = portfolio
        self.high_water_mark = portfolio.high_water_mark

    def equity(self) -> float:
        p = self.portfolio
        return p.cash + math.fsum(pos.market_value for pos in p.positions.values())

    def gross(self) -> float:
        return math.fsum(abs(pos.market_value) for pos in self.portfolio.positions.values())

    def unrealized(self) -> float:
        return math.fsum(pos.unrealized_pnl for pos in self.portfolio.positions.values())

    def update_hwm(self) -> None:
        self.high_water_mark = max(self.high_water_mark, self.equity())


def _apply(p: Portfolio, ref: Reference, step: tuple, n: int) -> Portfolio:  # type: ignore[type-arg]
    """Run one step on the portfolio and the reference; the portfolio to use next (a restore makes a new one)."""
    kind, when = step[0], T0 + timedelta(seconds=n)
    if kind == "fill":
        _, symbol, side, qty, price, commission = step
        p.apply_fill(Fill(f"e{n}", f"r{n}", symbol, side, qty, price, when, commission=commission))
        ref.update_hwm()
    elif kind == "mark":
        before = p.positions.get(step[1])
        p.mark(step[1], step[2])
        if before is not None and p.positions[step[1]] is not before:
            ref.update_hwm()
    elif kind == "commission":
        p.apply_commission(step[1])
    elif kind == "protect":
        p.set_protection(step[1], step[2], None)
    elif kind == "adjust":
        p.adjust(step[1], step[2], step[3], when)
    elif kind == "cash":
        p.cash = step[1]  # what reconciliation does with the broker's cash
    elif kind == "restore":
        restored = Portfolio()
        restored.restore(p.state())
        assert restored.equity == p.equity  # the positions come back at their marks, not at cost
        ref.portfolio = restored
        ref.update_hwm()  # a restore takes the mark up to the equity it restored
        return restored
    return p


def _assert_same(p: Portfolio, ref: Reference) -> None:
    assert p.equity == ref.equity()
    assert p.gross_exposure == ref.gross()
    assert p.unrealized_pnl == ref.unrealized()
    assert p.high_water_mark == ref.high_water_mark
    snap = p.snapshot(T0, "DU1", ())
    ref.update_hwm()  # a snapshot takes the mark up to the equity (an adjustment may have raised it)
    assert snap.equity == ref.equity()
    assert snap.unrealized_pnl == ref.unrealized()
    assert snap.high_water_mark == ref.high_water_mark
    assert snap.drawdown == max(ref.high_water_mark - ref.equity(), 0.0)
    held = [pos for pos in p.positions.values() if not pos.is_flat]
    assert snap.gross_exposure == sum(abs(pos.market_value) for pos in held)  # the snapshot's own sum


@settings(max_examples=300, deadline=None)
@given(cash=st.floats(min_value=0, max_value=1e7), seeded=st.dictionaries(symbols, st.tuples(
    st.floats(min_value=-1_000, max_value=1_000), prices), max_size=3), history=st.lists(steps, max_size=60))
def test_running_sums_equal_the_sums_from_scratch_after_any_history(
        cash: float, seeded: dict[str, tuple[float, float]], history: list[tuple]) -> None:  # type: ignore[type-arg]
    p = Portfolio()
    p.seed(cash, seeded, T0)
    ref = Reference(p)
    _assert_same(p, ref)
    for n, step in enumerate(history):
        p = _apply(p, ref, step, n)
        _assert_same(p, ref)


@given(st.lists(st.floats(min_value=-1e300, max_value=1e300), max_size=40), st.data())
def test_exact_sum_is_fsum_of_its_terms_whatever_came_and_went(terms: list[float], data: st.DataObject) -> None:
    total = ExactSum()
    for x in terms:
        total.add(x)
    gone = data.draw(st.lists(st.sampled_from(terms), unique_by=id, max_size=len(terms))) if terms else []
    kept = list(terms)
    for x in gone:
        total.remove(x)
        kept.remove(x)
    assert total.value == math.fsum(kept)


def test_exact_sum_past_the_largest_float_is_infinite() -> None:
    total = ExactSum()
    total.add(1.7e308)
    total.add(1.7e308)
    assert total.value == math.inf
    total.remove(1.7e308)
    assert total.value == 1.7e308


def test_exact_sum_of_a_non_finite_term_is_nan_until_it_goes() -> None:
    total = ExactSum()
    total.add(1.5)
    total.add(math.inf)
    assert math.isnan(total.value)
    total.remove(math.inf)
    assert total.value == 1.5


def test_equity_does_not_drift_over_many_marks() -> None:
    """A plain running float sum would drift from the true sum over a day of quotes; this one cannot."""
    p = Portfolio()
    p.seed(0.1, {s: (3.0, 100.0) for s in SYMBOLS}, T0)
    for i in range(20_000):
        p.mark(SYMBOLS[i % 4], 100 + (i % 97) * 0.01 + 1e-7 * (i % 13))
    assert p.equity == 0.1 + math.fsum(pos.market_value for pos in p.positions.values())
