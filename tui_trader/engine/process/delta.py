"""Snapshot deltas: what the engine process pushes instead of a whole :class:`EngineSnapshot`.

A whole snapshot with 100 positions and a few hundred orders pickles in 2–5 ms and unpickles in
about 3 ms, ten times a second, on each side. Almost all of it is unchanged from one push to the
next: orders, positions and quotes are frozen values the engine replaces when they change, and
keeps (the same object) when they do not. So the engine process sends, per push, the small
top-level fields as they are and, for the three large collections, only the items that are not
the very object it sent last time. Orders are compared by ``order_ref``, not by position: the
engine forgets its oldest finished orders beyond a bound, and a removal at the front shifted
every later position, so each push then carried every order (≈ 75 KB pickled in the engine's
loop with 600 orders, unpickled as new objects that the console redrew all of).

The proxy applies that to the snapshot it assembled last and serves a complete, frozen
:class:`EngineSnapshot`, equal to the engine's.

Each channel is one ordered stream with its own pair (:class:`DeltaEncoder` in the engine process,
:class:`DeltaDecoder` in the proxy) holding the last snapshot sent on it: the feed (pushes and the
replies of awaited calls) and the command channel (the replies of synchronous calls, which block
the console while they are unpickled). The decoder must see every delta of its channel, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tui_trader.domain.orders import Order
from tui_trader.engine.snapshots import EngineSnapshot


@dataclass(frozen=True, slots=True)
class MapDelta:
    """A dict against the previous one: items added or replaced, keys removed (key order kept)."""

    changed: dict[Any, Any]
    removed: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotDelta:
    """One push: ``core`` is the snapshot without its orders, quotes, positions and working orders."""

    core: EngineSnapshot
    orders: MapDelta | dict[str, Order]
    """By ``order_ref``, in the engine's order."""
    quotes: MapDelta | dict[str, Any]
    positions: MapDelta | dict[str, Any]
    working: tuple[int | Order, ...]
    """The account's working orders: an index into the assembled ``orders``, or the order itself."""


def map_delta(new: dict[Any, Any], old: dict[Any, Any] | None) -> MapDelta | dict[Any, Any]:
    """``new`` against ``old`` by identity; ``new`` itself when applying the delta would reorder its keys."""
    if old is None:
        return new
    removed = tuple(k for k in old if k not in new)
    changed = {k: v for k, v in new.items() if old.get(k, _MISSING) is not v}
    kept = [k for k in old if k in new]
    if kept + [k for k in changed if k not in old] != list(new):
        return new
    return MapDelta(changed, removed)


def apply_map(delta: MapDelta | dict[Any, Any], old: dict[Any, Any]) -> dict[Any, Any]:
    """The dict ``delta`` describes."""
    if isinstance(delta, dict):
        return delta
    out = dict(old)
    for key in delta.removed:
        del out[key]
    out.update(delta.changed)
    return out


class _Missing:
    pass


_MISSING = _Missing()


class DeltaEncoder:
    """The engine process's end: each snapshot as a delta against the one pushed before."""

    def __init__(self) -> None:
        self._last: EngineSnapshot | None = None
        self._orders: dict[str, Order] | None = None

    def reset(self) -> None:
        """The last delta was not sent: the next one carries whole collections."""
        self._last = None
        self._orders = None

    def encode(self, snap: EngineSnapshot) -> SnapshotDelta:
        """``snap`` against the last snapshot encoded (whole collections the first time and after :meth:`reset`)."""
        last, last_orders = self._last, self._orders
        self._last = snap
        self._orders = orders = {o.order_ref: o for o in snap.orders}
        index = {id(order): i for i, order in enumerate(snap.orders)}
        working = tuple(i if (i := index.get(id(o))) is not None and snap.orders[i] is o else o
                        for o in snap.account.working_orders)
        account = replace(snap.account, positions={}, working_orders=())
        core = replace(snap, orders=(), quotes={}, account=account)
        return SnapshotDelta(
            core, map_delta(orders, last_orders),
            map_delta(snap.quotes, last.quotes if last else None),
            map_delta(snap.account.positions, last.account.positions if last else None), working)


class DeltaDecoder:
    """The console's end: the complete snapshot, from the last one and a delta."""

    def __init__(self) -> None:
        self._last: EngineSnapshot | None = None
        self._orders: dict[str, Order] = {}

    def decode(self, delta: SnapshotDelta) -> EngineSnapshot:
        """The snapshot the engine process encoded."""
        last = self._last
        self._orders = by_ref = apply_map(delta.orders, self._orders)
        orders = tuple(by_ref.values())
        quotes = apply_map(delta.quotes, last.quotes if last else {})
        positions = apply_map(delta.positions, last.account.positions if last else {})
        working = tuple(orders[w] if isinstance(w, int) else w for w in delta.working)
        account = replace(delta.core.account, positions=positions, working_orders=working)
        snap = replace(delta.core, orders=orders, quotes=quotes, account=account)
        self._last = snap
        return snap
