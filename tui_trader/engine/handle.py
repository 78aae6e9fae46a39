"""The one control surface every front end uses: console, headless runner and tests.

``kill`` is synchronous on purpose: it flips the trading state to HALTED before anything
awaits, then schedules the cancels and their verification.

The console normally holds an :class:`~tui_trader.engine.process.proxy.EngineProxy`: the engine
runs in a child process and every method is forwarded by name. So every argument, return
value and exception of a handle method must pickle (strings, numbers, enums, tuples, frozen
dataclasses of those, the ``TraderError`` hierarchy); a new method needs nothing else to work
through it. Synchronous methods block the console until the engine answers (milliseconds):
keep them quick, and make anything that waits on the broker a coroutine.
"""

from __future__ import annotations

from typing import Protocol

from tui_trader.domain.events import KillReport
from tui_trader.domain.market import Instrument
from tui_trader.domain.orders import Order, OrderTicket, WhatIf
from tui_trader.domain.verdicts import RiskVerdict
from tui_trader.engine.bus import Subscription
from tui_trader.engine.snapshots import (
    EngineSnapshot,
    FlattenPreview,
    OrderTrace,
    TestNotificationResult,
)


class EngineHandle(Protocol):
    """Commands in, snapshots and events out."""

    async def start(self) -> None:
        """Connect, restore from the journal, reconcile, subscribe data and start strategies."""
        ...

    async def stop(self) -> None:
        """Stop strategies, flush the journal and disconnect (working orders stay at the broker)."""
        ...

    def preview(self, ticket: OrderTicket) -> RiskVerdict:
        """Run the pre-trade gate on ``ticket`` without sending anything."""
        ...

    async def what_if(self, ticket: OrderTicket) -> tuple[WhatIf | None, str]:
        """The broker's what-if of ``ticket`` (margin and commission; nothing is placed): its answer and
        warning, or ``None`` and why there is none (refused, no answer, dry run, read-only, disconnected)."""
        ...

    async def watch(self, symbol: str) -> Instrument:
        """Subscribe ``symbol``'s quotes for the session (a ticket for a symbol no strategy trades);
        returns once its first quote is in or after a few seconds. Raises ``BrokerError`` for a
        symbol the broker does not know, or while disconnected."""
        ...

    async def submit(self, ticket: OrderTicket) -> Order:
        """Submit a ticket through risk and (where required) approval; returns the tracked order."""
        ...

    async def cancel(self, order_ref: str) -> None:
        """Cancel one working order."""
        ...

    async def modify(self, order_ref: str, quantity: float | None = None, limit_price: float | None = None,
                     stop_price: float | None = None) -> RiskVerdict:
        """Re-place a working order under its id with new figures, after a risk re-check."""
        ...

    async def resubmit(self, order_ref: str) -> Order:
        """Resend an order whose submit went unacknowledged, unless the broker already has its orderRef."""
        ...

    async def cancel_all(self) -> KillReport:
        """Cancel every working order in the configured scope and verify."""
        ...

    def kill(self, reason: str, by: str = "operator", *, operator: bool = True) -> None:
        """Engage the kill switch: HALTED now, cancels and verification scheduled.

        ``operator`` is False for a kill the software engages by itself (the console's crash
        handling). A running engine cancels either way; with the engine process gone, only an
        operator's kill cancels at the broker (see ``EngineProxy.kill``).
        """
        ...

    def reduce_only(self, on: bool, reason: str, by: str = "operator") -> None:
        """Enter (or leave) REDUCING."""
        ...

    async def flatten(self, preview: bool = True, symbol: str | None = None,
                      expected: tuple[OrderTicket, ...] | None = None) -> FlattenPreview:
        """Preview (or, with ``preview=False``, send) the orders that close every position (or ``symbol``'s);
        sent only if they are still ``expected`` (the preview the operator confirmed)."""
        ...

    def reset_kill(self, reason: str, by: str = "operator", confirm_same_day: bool = False) -> None:
        """Release the latched kill switch with a typed reason (raises when refused)."""
        ...

    def arm(self, account_id: str, by: str = "operator") -> None:
        """Arm live trading with the account id the operator typed (raises SafetyError on a mismatch).

        Live mode starts unarmed and refuses every approval until armed; other modes start armed.
        """
        ...

    def approve(self, order_ref: str, by: str = "operator") -> None:
        """Approve a pending order (it is re-checked by risk before it is sent)."""
        ...

    def reject(self, order_ref: str, by: str = "operator") -> None:
        """Reject a pending order."""
        ...

    def pause_strategy(self, name: str, paused: bool) -> None:
        """Pause or resume one strategy."""
        ...

    def snapshot(self) -> EngineSnapshot:
        """The current state as a frozen value."""
        ...

    def subscribe(self, name: str, *, maxsize: int = 10_000, lossless: bool = False) -> Subscription:
        """A bounded queue of engine events."""
        ...

    async def order_trace(self, ref: str) -> OrderTrace | None:
        """The whole story of order ``ref`` (orderRef or broker id) from the journal; ``None`` if unknown."""
        ...

    async def send_test_notification(self) -> tuple[TestNotificationResult, ...]:
        """Send a test message on every configured channel now; one result per channel (``()``: none)."""
        ...
