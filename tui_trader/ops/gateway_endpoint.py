"""Which gateway a running engine is connected to: ``<journal>.gateway``, beside its journal.

``tui-trader kill`` sends its global cancel to a gateway. The configured one is not always the running engine's:
the ``--sim`` simulator takes ``sim.port`` when it is free, else any free port (a kill at the configured port
cancelled another state directory's orders); the configuration may have been edited since the engine started, or
not load at all (then no port is known for certain). So the engine says where its gateway is: it writes this file
(its mode, the gateway's host and port, its API client id, its own pid) once it is connected to one (``--sim``: once
its simulator listens), writes it again when it connects to another, and removes it when it stops. The file is
believed only while the process named in it holds the journal's lock (one left by an engine that died is stale), and
only by a kill of the same mode: a ``--paper`` kill never cancels at a ``--sim`` gateway (a ``journal.path`` shared by
the modes puts both beside one journal), nor the other way round. The file is the owner's only (0600).

The client id is the one the engine connects with (``--client-id`` when it was started with one): the kill must
not connect with it (IB would drop the engine's session), and only the configured one is known to it otherwise. A
file written before it carried the id still reads, without one.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tui_trader.domain.enums import Mode
from tui_trader.ops.logs import private_opener
from tui_trader.store.lock import probe

SUFFIX = ".gateway"


@dataclass(frozen=True, slots=True)
class GatewayEndpoint:
    """The gateway the engine (process ``pid``, in ``mode``) that runs with a journal is connected to."""

    host: str
    port: int
    pid: int
    mode: Mode
    client_id: int | None = None
    """The engine's API client id there (None: a file written before it said the id)."""


@dataclass(frozen=True, slots=True)
class NotKnown:
    """Why the running engine's gateway is not known: no engine runs with the journal, it has not said, or it
    runs in another mode (``other_mode``) than the one asked about."""

    why: str
    engine_runs: bool
    other_mode: Mode | None = None


def endpoint_path(journal: Path) -> Path:
    """``journal-sim.sqlite.gateway`` for ``journal-sim.sqlite``."""
    return journal.with_name(journal.name + SUFFIX)


def publish(journal: Path, mode: Mode, host: str, port: int, client_id: int | None) -> None:
    """Say that this process's engine for ``journal``, in ``mode``, is connected to ``host:port`` as API client
    ``client_id`` (replacing a stale file, or the one of the gateway it was connected to before)."""
    path = endpoint_path(journal)
    draft = path.with_name(path.name + ".new")
    said = {"mode": mode.value, "host": host, "port": port, "client_id": client_id, "pid": os.getpid()}
    text = json.dumps(said) + "\n"
    with open(draft, "w", encoding="utf-8", opener=private_opener) as file:
        file.write(text)
    draft.replace(path)  # whole or not at all: a kill reading it meanwhile sees the old file or the new one


def withdraw(journal: Path) -> None:
    """Remove the file, if this process wrote it (another engine may have taken the journal since)."""
    path = endpoint_path(journal)
    found = read(path)
    if found is None or found.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read(path: Path) -> GatewayEndpoint | None:
    """The endpoint in the file at ``path``; None when there is none (or it cannot be read as one).

    A file without a mode was written by a version that wrote it for ``--sim`` only: it is the simulator's; one
    without a client id, by a version that did not say it (the kill then knows only the configured one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mode = Mode(data.get("mode", Mode.SIM.value))
        client_id = data.get("client_id")
        return GatewayEndpoint(str(data["host"]), int(data["port"]), int(data["pid"]), mode,
                               None if client_id is None else int(client_id))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def running(journal: Path, mode: Mode) -> GatewayEndpoint | NotKnown:
    """The gateway the ``mode`` engine running with ``journal`` is connected to, else why that is not known."""
    try:
        held, holder = probe(journal)
    except OSError as exc:
        return NotKnown(f"whether an engine runs with {journal} cannot be told ({exc})", engine_runs=True)
    if not held:
        return NotKnown("no engine runs with this journal", engine_runs=False)
    found = read(endpoint_path(journal))
    if found is None or holder is None or found.pid != holder:
        said = "where its simulator listens" if mode is Mode.SIM else "which gateway it is connected to"
        return NotKnown(f"the engine running with {journal} (process {holder or '?'}) has not said {said} (it may "
                        f"be starting, or not connected yet: {endpoint_path(journal).name} is not written)",
                        engine_runs=True)
    if found.mode is not mode:
        return NotKnown(f"the engine running with {journal} (process {found.pid}) is a --{found.mode.value} "
                        f"engine, connected to {found.host}:{found.port}; a --{mode.value} kill does not cancel "
                        f"there (run tui-trader kill --{found.mode.value} for its orders)", engine_runs=True,
                        other_mode=found.mode)
    return found
