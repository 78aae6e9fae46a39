"""Engine side of the out-of-band kill: notice a kill latched in the journal by ``tui-trader kill``.

The engine runs :meth:`KillStateWatcher.run` as a task. Every ``interval_s`` it reads the
journal's latched kill state; a state written out of band (``"out_of_band": true``) that the
engine has not seen yet engages the engine's own kill switch. Only out-of-band records fire, and
each at most once, so a stale read just after an operator's reset cannot re-engage the switch.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

KillLoader = Callable[[], Awaitable[dict[str, Any] | None]]


class KillStateWatcher:
    """Polls the journal's kill state and calls ``on_kill(reason, by)`` for an unseen out-of-band kill.

    Args:
        load: Reads the latched kill state (``Journal.load_kill_state``).
        on_kill: Engages the engine's kill switch (synchronous, like ``EngineHandle.kill``).
        engaged: True while the engine's kill switch is engaged.
        interval_s: Polling interval (at most 0.5 s so the engine halts within a second).
        restored: The kill state the engine restored at its start: a latch in it is the engine's already.
    """

    def __init__(self, load: KillLoader, on_kill: Callable[[str, str], None], engaged: Callable[[], bool],
                 interval_s: float = 0.25, restored: dict[str, Any] | None = None) -> None:
        self._load = load
        self._on_kill = on_kill
        self._engaged = engaged
        self._interval = min(interval_s, 0.5)
        self._seen: set[str] = set()
        if restored and restored.get("engaged"):
            self._seen.add(_key(restored))

    @property
    def seen(self) -> frozenset[str]:
        """The out-of-band latches the engine has acted on (their ``engaged_at``): the engine's own saves of the
        kill state may overwrite these, never another (:meth:`~tui_trader.store.journal.Journal.save_kill_state`)."""
        return frozenset(self._seen)

    async def run(self) -> None:
        """Poll until cancelled; a failed read is logged and retried on the next poll."""
        while True:
            await self.poll()
            await asyncio.sleep(self._interval)

    async def poll(self) -> bool:
        """Read the journal once; returns True when it engaged the kill switch."""
        try:
            state = await self._load()
        except (sqlite3.Error, OSError, ValueError) as exc:
            log.warning("kill state not readable: %s", exc)
            return False
        return self.consider(state)

    def consider(self, state: dict[str, Any] | None) -> bool:
        """Decide on one read of the kill state (pure; returns True when it engaged)."""
        if not state or not state.get("engaged") or not state.get("out_of_band"):
            return False
        key = _key(state)
        if key in self._seen:
            return False
        self._seen.add(key)
        if self._engaged():
            return False
        by = str(state.get("by") or "kill-cli")
        reason = str(state.get("reason") or "out-of-band kill")
        log.critical("out-of-band kill by %s: %s", by, reason)
        self._on_kill(reason, by)
        return True


def _key(state: dict[str, Any]) -> str:
    """What tells one out-of-band latch from another: the time it was engaged, as the journal holds it."""
    return str(state.get("engaged_at") or "")
