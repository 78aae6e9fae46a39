"""The approvals queue: orders waiting for the operator, each with its verdict and expiry.

Expiry means deny: :meth:`ApprovalQueue.expired` hands back every approval past its deadline,
and the engine rejects those orders as EXPIRED. While live trading is unarmed the deadlines are held
(:attr:`ApprovalQueue.held`): the console opens no approval before the operator armed in the preflight,
and approvals asked meanwhile expired a second after the arming, never seen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tui_trader.domain.orders import Order, WhatIf
from tui_trader.domain.verdicts import RiskVerdict
from tui_trader.engine.snapshots import PendingApproval


class ApprovalQueue:
    """Pending approvals keyed by order ref (a bracket is approved through its entry's ref).

    Args:
        timeout_s: Seconds an approval stays open before it expires.
        held: Start with the deadlines held (live trading unarmed): see :meth:`release`.
    """

    def __init__(self, timeout_s: float, *, held: bool = False) -> None:
        self.timeout = timedelta(seconds=timeout_s)
        self._pending: dict[str, PendingApproval] = {}
        self.held = held
        """No approval expires: nobody can answer one yet (live trading unarmed, the console shows none)."""

    def add(self, order: Order, verdict: RiskVerdict, now: datetime, reference_price: float,
            what_if_note: str = "") -> PendingApproval:
        """Queue ``order`` for approval until ``now + timeout``."""
        item = PendingApproval(order, verdict, now, now + self.timeout, reference_price,
                               _notional(order, reference_price), what_if_note=what_if_note)
        self._pending[order.order_ref] = item
        return item

    def set_what_if(self, order_ref: str, note: str, what_if: WhatIf | None = None) -> None:
        """Show the broker's what-if (or, without one, ``note`` on why) on a pending approval;
        one resolved meanwhile stays resolved."""
        item = self._pending.get(order_ref)
        if item is None:
            return
        if what_if is not None:
            item = replace(item, margin_impact=what_if.init_margin_change, est_commission=what_if.commission)
        self._pending[order_ref] = replace(item, what_if_note=note)

    def pop(self, order_ref: str) -> PendingApproval | None:
        """Remove and return the approval of ``order_ref``."""
        return self._pending.pop(order_ref, None)

    def release(self, now: datetime) -> None:
        """Let the deadlines run (live trading armed): each approval asked while they were held is open for the
        whole timeout from ``now``, when the console can first show it."""
        if not self.held:
            return
        self.held = False
        until = now + self.timeout
        for ref, item in self._pending.items():
            self._pending[ref] = replace(item, expires_at=max(item.expires_at, until))

    def expired(self, now: datetime) -> list[PendingApproval]:
        """Remove and return every approval whose deadline has passed (none while the deadlines are held)."""
        if self.held:
            return []
        gone = [p for p in self._pending.values() if p.expires_at <= now]
        for item in gone:
            del self._pending[item.order.order_ref]
        return gone

    def drain(self) -> list[PendingApproval]:
        """Remove and return every pending approval (the kill switch rejects them all)."""
        items, self._pending = list(self._pending.values()), {}
        return items

    def items(self) -> tuple[PendingApproval, ...]:
        """Pending approvals, oldest first."""
        return tuple(sorted(self._pending.values(), key=lambda p: p.requested_at))

    def __contains__(self, order_ref: object) -> bool:
        return order_ref in self._pending

    def __len__(self) -> int:
        return len(self._pending)


def as_of(item: PendingApproval, order: Order, verdict: RiskVerdict, price: float) -> PendingApproval:
    """``item`` with the verdict its ``order`` (as tracked now) gets now, priced at ``price``."""
    return replace(item, verdict=verdict, reference_price=price, est_notional=_notional(order, price))


def _notional(order: Order, price: float) -> float:
    return order.ticket.quantity * order.ticket.price_for_notional(price)
