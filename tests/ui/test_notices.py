"""FillNotices: one toast per window, later fills folded into the next one."""

from __future__ import annotations

from collections.abc import Callable

from tui_trader.domain.enums import Side
from tui_trader.domain.orders import Fill
from tui_trader.ui.demo import FROZEN
from tui_trader.ui.notices import FillNotices


class Harness:
    """A manual clock, the toasts shown and the callback scheduled."""

    def __init__(self) -> None:
        self.now = 100.0
        self.shown: list[tuple[str, str]] = []
        self.scheduled: list[tuple[float, Callable[[], None]]] = []
        self.notices = FillNotices(lambda text, title: self.shown.append((text, title)),
                                   lambda delay, cb: self.scheduled.append((delay, cb)),
                                   window=2.0, clock=lambda: self.now)

    def fill(self, symbol: str = "AAPL", price: float = 185.0) -> None:
        self.notices.add(Fill(f"x-{len(self.shown)}-{symbol}", "tt-1", symbol, Side.BUY, 1, price, FROZEN))


def test_first_fill_when_quiet_then_toast_at_once() -> None:
    h = Harness()
    h.fill()
    assert h.shown == [("BUY 1 AAPL @ 185.00", "Filled")]
    assert not h.scheduled


def test_fills_within_the_window_then_folded_into_one_toast_after_it() -> None:
    h = Harness()
    h.fill()
    h.now += 0.5
    h.fill("MSFT", 410.0)
    h.fill("NVDA", 120.0)
    assert len(h.shown) == 1
    assert [round(delay, 2) for delay, _ in h.scheduled] == [1.5]
    h.now += 1.5
    h.scheduled[0][1]()
    assert h.shown[1] == ("BUY 1 NVDA @ 120.00\nand 1 more (see Orders)", "2 fills")


def test_fill_after_the_window_then_shown_at_once_again() -> None:
    h = Harness()
    h.fill()
    h.now += 2.5
    h.fill("MSFT", 410.0)
    assert [title for _, title in h.shown] == ["Filled", "Filled"]
