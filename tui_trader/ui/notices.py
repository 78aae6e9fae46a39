"""FillNotices: fill toasts, at most one per window, several fills folded into one.

A toast is mounted into the screen and laid out: at 200x60 that costs tens of milliseconds on
the loop the engine shares. Fills can arrive dozens a second (a flatten, a sweep), so they are
folded: the first fill after a quiet window shows at once, later ones wait for the window to
pass and show as one toast. The orders and positions panes show every fill regardless.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tui_trader.domain.orders import Fill

WINDOW_S = 2.0
"""At most one fill toast per this many seconds."""

Notify = Callable[[str, str], None]
"""``notify(text, title)``."""
Later = Callable[[float, Callable[[], None]], object]
"""``later(delay_s, callback)``: run ``callback`` once after ``delay_s`` seconds."""


def describe(fills: list[Fill]) -> tuple[str, str]:
    """(text, title) of one toast for ``fills`` (the newest one in full)."""
    last = fills[-1]
    text = f"{last.side.value} {last.quantity:g} {last.symbol} @ {last.price:.2f}"
    if len(fills) == 1:
        return text, "Filled"
    return f"{text}\nand {len(fills) - 1} more (see Orders)", f"{len(fills)} fills"


class FillNotices:
    """Folds fills into toasts, shown through ``notify`` no more often than every ``window`` s."""

    def __init__(self, notify: Notify, later: Later, window: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notify = notify
        self.later = later
        self.window = window
        self.clock = clock
        self.pending: list[Fill] = []
        self._last_shown = -window
        self._scheduled = False

    def add(self, fill: Fill) -> None:
        """A fill arrived: show it now, or fold it into the next toast."""
        self.pending.append(fill)
        if self._scheduled:
            return
        wait = self._last_shown + self.window - self.clock()
        if wait <= 0:
            self.flush()
        else:
            self._scheduled = True
            self.later(wait, self.flush)

    def flush(self) -> None:
        """Show the pending fills as one toast."""
        self._scheduled = False
        if self.pending:
            self.notify(*describe(self.pending))
            self.pending = []
            self._last_shown = self.clock()
