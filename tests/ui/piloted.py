"""A console under Textual's pilot with a simulator behind it: what the real-engine console tests share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from engine.helpers import eventually
from textual.pilot import Pilot

from tui_trader.sim import SimGateway
from tui_trader.ui.app import TraderApp
from tui_trader.ui.widgets.line_table import LineTable


@dataclass
class PilotedConsole:
    """The console, the simulator and the pilot (subclasses add the engine or its proxy)."""

    app: TraderApp
    gw: SimGateway
    pilot: Pilot[int]

    wait_s: ClassVar[float] = 30.0
    """Upper bound of every poll, never reached when things work. Start-up (connect, reconcile,
    qualify, subscribe, first quotes) takes about a second here, yet took over 10 s in one CI run
    on a host loaded enough to stretch the whole suite from 8 to 15 minutes."""

    async def until(self, predicate: Callable[[], object], what: str) -> None:
        """Poll ``predicate`` (the app keeps running meanwhile), then let the screen settle."""
        await eventually(predicate, timeout=self.wait_s, what=what)
        await self.pilot.pause()

    def rows(self, table_id: str) -> dict[str, tuple[str, ...]]:
        """The cells of a pane's table by row key, as drawn."""
        return {row.key: row.cells for row in self.app.main.query_one(f"#{table_id}", LineTable).rows}
