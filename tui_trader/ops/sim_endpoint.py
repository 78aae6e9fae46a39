"""Where a running ``--sim`` engine's embedded simulator listens: ``<journal>.gateway``, beside its journal.

The simulator takes ``sim.port`` when it is free, else any free port. ``tui-trader kill --sim`` went to the
configured port whatever listened there: another state directory's engine, whose orders it cancelled, while this
one's simulator (on the port it fell back to) was not reached. So the engine says where its simulator listens:
it writes this file once the simulator listens (it holds the journal's lock by then) and removes it when it stops.
The file is believed only while the process named in it holds the journal's lock: one left by an engine that
died is stale.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tui_trader.store.lock import probe

SUFFIX = ".gateway"


@dataclass(frozen=True, slots=True)
class SimEndpoint:
    """The embedded simulator of the engine (process ``pid``) that runs with a journal."""

    host: str
    port: int
    pid: int


@dataclass(frozen=True, slots=True)
class NotKnown:
    """Why where the simulator listens is not known: no engine runs with the journal, or it has not said."""

    why: str
    engine_runs: bool


def endpoint_path(journal: Path) -> Path:
    """``journal-sim.sqlite.gateway`` for ``journal-sim.sqlite``."""
    return journal.with_name(journal.name + SUFFIX)


def publish(journal: Path, host: str, port: int) -> None:
    """Say that this process's simulator for ``journal`` listens on ``host:port`` (replacing a stale file)."""
    path = endpoint_path(journal)
    draft = path.with_name(path.name + ".new")
    draft.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}) + "\n", encoding="utf-8")
    draft.replace(path)  # whole or not at all: a kill reading it meanwhile sees the old file or the new one


def withdraw(journal: Path) -> None:
    """Remove the file, if this process wrote it (another engine may have taken the journal since)."""
    path = endpoint_path(journal)
    found = read(path)
    if found is None or found.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read(path: Path) -> SimEndpoint | None:
    """The endpoint in the file at ``path``; None when there is none (or it cannot be read as one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SimEndpoint(str(data["host"]), int(data["port"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(journal: Path) -> SimEndpoint | NotKnown:
    """Where the simulator of the engine running with ``journal`` listens, else why that is not known."""
    try:
        held, holder = probe(journal)
    except OSError as exc:
        return NotKnown(f"whether an engine runs with {journal} cannot be told ({exc})", engine_runs=True)
    if not held:
        return NotKnown("no engine runs with this journal, so neither does its simulator", engine_runs=False)
    found = read(endpoint_path(journal))
    if found is None or holder is None or found.pid != holder:
        return NotKnown(f"the engine running with {journal} (process {holder or '?'}) has not said where its "
                        f"simulator listens (it may be starting: {endpoint_path(journal).name} is not written yet)",
                        engine_runs=True)
    return found
