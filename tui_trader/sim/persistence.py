"""Persistence of the account, orders and executions across simulator restarts (JSON, atomic)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_trader.sim.gateway import SimGateway

VERSION = 1


def save_state(gw: SimGateway, path: Path) -> None:
    """Write the state atomically (temp file + rename), readable by its owner only, as the journal is."""
    prices = {str(cid): q.last for cid, q in gw.market.quotes.items()}
    text = (f'{{"version":{VERSION},"account":{json.dumps(gw.account.to_state())},'
            f'"ledger":{gw.ledger.to_json()},"last_prices":{json.dumps(prices)}}}')
    tmp = path.with_suffix(path.suffix + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    os.replace(tmp, path)


def load_state(gw: SimGateway, path: Path) -> None:
    """Restore a state written by :func:`save_state`; prices resume from the last ones saved."""
    state = json.loads(path.read_text())
    if state.get("version") != VERSION:
        raise ValueError(f"unsupported simulator state version in {path}")
    gw.account.load_state(state["account"])
    gw.ledger.load_state(state["ledger"])
    for cid, price in state.get("last_prices", {}).items():
        quote = gw.market.quotes.get(int(cid))
        if quote is not None:
            quote.set_mid(price)
            quote.last = quote.round_tick(price)
