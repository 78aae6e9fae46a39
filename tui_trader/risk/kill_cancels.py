"""Which working orders a kill cancels and which it keeps, decided in one place: :func:`kill_cancels`.

The operator's kill (Ctrl+K, the trigger file, ``tui-trader kill``) cancels every working order in scope, the
positions' stops and targets too; an automatic trip keeps the positions' protective orders (:func:`is_protective`)
and cancels only the orders that can add exposure. The engine writes exactly the list decided here (the kill's,
the cancels a kill owes after an outage, the operator's cancel-all), and the kill switch's verification reports as
kept exactly what it kept (:meth:`~tui_trader.risk.kill_switch.KillSwitch.verify`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tui_trader.domain import Order
from tui_trader.risk.limits import CancelScope


def is_protective(order: Order) -> bool:
    """``order`` can only take its position's exposure down (reduce-only: a bracket's stop or target, a
    working exit): an automatic trip keeps it working."""
    return order.ticket.reduce_only


@dataclass(frozen=True, slots=True)
class KillCancels:
    """The cancels a kill sends, decided by :func:`kill_cancels` alone: the engine writes exactly these."""

    refs: tuple[str, ...]
    """The working orders to cancel, in the order to send them: entries and stand-alone orders before the
    protective children, so what ib_async's request pacing (45 a second) holds back is the stops and targets,
    which the broker also cancels with their parent. Under a global cancel, the orders it is to take."""
    kept: tuple[str, ...] = ()
    """The protective orders left working on purpose (``keeps_protection``): not in ``refs``."""
    global_cancel: bool = False
    """One global cancel (every order on the account) instead of the ``refs`` one by one."""
    keeps_protection: bool = False
    """An automatic trip's cancels: only this client's orders that can add exposure, one by one."""
    kill: int = 0
    """Which kill decision they follow (:attr:`KillSwitch.decisions` when decided): its verification is
    superseded once a later kill is decided."""

    def keeps(self, order: Order) -> bool:
        """These cancels leave ``order`` working on purpose: one of :attr:`kept`, or, as they keep the positions'
        protection, a protective order they did not list (placed since: a bracket's stop placed again for the
        part of a cancelled entry held). Never one of :attr:`refs`: what they cancel is cancelled or remaining,
        whatever it has become since, and whatever a later kill decided."""
        if order.order_ref in self.kept:
            return True
        return self.keeps_protection and order.order_ref not in self.refs and is_protective(order)

    def kept_of(self, working: Iterable[Order], at_broker: Iterable[str] = ()) -> tuple[str, ...]:
        """The orders still working that these cancels keep (:meth:`keeps`): tracked in ``working``, or
        named only by the broker (``at_broker``: kept only when listed in :attr:`kept`)."""
        tracked = (o.order_ref for o in working if o.status.is_working and self.keeps(o))
        return tuple(dict.fromkeys([*tracked, *(r for r in at_broker if r in self.kept)]))


def kill_cancels(working: Iterable[Order], scope: CancelScope, keep_protection: bool = False) -> KillCancels:
    """The cancels of ``working`` in ``scope``: every order, or (``keep_protection``, an automatic trip's kill)
    only those that can add exposure, one by one whatever the scope (a global cancel would take the stops).

    Only orders placed at the broker (a broker id) are listed: one not placed yet is stopped by the send's own
    check of the trading state. The kill, the cancels it owes after an outage and the operator's cancel-all
    all take their list from here.
    """
    placed = sorted((o for o in working if o.status.is_working and o.broker_id is not None),
                    key=lambda o: o.parent_ref is not None)
    kept = tuple(o.order_ref for o in placed if keep_protection and is_protective(o))
    refs = tuple(o.order_ref for o in placed if o.order_ref not in kept)
    return KillCancels(refs, kept, scope is CancelScope.GLOBAL and not keep_protection, keep_protection)


