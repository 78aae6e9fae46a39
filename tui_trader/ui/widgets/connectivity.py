"""ConnectivityPane: gateway, client id, link state, farms, reconnects, latency, pacing, tick ages."""

from __future__ import annotations

import textwrap
from datetime import datetime

from textual.app import ComposeResult

from tui_trader.domain.enums import ConnectionState
from tui_trader.engine.snapshots import ConnectionInfo, EngineSnapshot
from tui_trader.ui.format import DASH, age, hhmmss
from tui_trader.ui.freshness import LINK_UP, Freshness, link_state, waiting_to_retry
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, LazyRows, Row

COLUMNS = (Column("Item", 14), Column("Value", 20, flex=True))
STATE_ROLE = {
    ConnectionState.CONNECTED: "pos",
    ConnectionState.CONNECTING: "warn",
    ConnectionState.DEGRADED: "warn",
    ConnectionState.DISCONNECTED: "crit",
}


def farm_role(status: str) -> str:
    """IB farm messages: 2104/2106/2158 OK, 2103/2105/2157 broken, 2107/2108 inactive."""
    text = status.lower()
    if "broken" in text or "down" in text or "error" in text:
        return "crit"
    if "inactive" in text or "connecting" in text:
        return "warn"
    return "pos"


def link_rows(conn: ConnectionInfo, zone: str, now: datetime, width: int = 0) -> list[Row]:
    """Gateway, client, state, since, reconnects, RTT, pacing, IB's servers and market data when they
    fail, last error (wrapped at ``width``, the value column's; 0: not wrapped).

    While the link is down the last error comes right under the state, which says when the next try is: it
    is why there is no connection, and the rows below it have nothing to say until there is one.
    """
    rtt = f"{conn.round_trip_ms:.1f} ms" if conn.round_trip_ms is not None else DASH
    pacing = f"{conn.pacing_budget:.0%} left" if conn.pacing_budget is not None else DASH
    state = ConnectionState.DISCONNECTED if waiting_to_retry(conn) else conn.state
    head = [
        Row("gw", ("Gateway", f"{conn.host}:{conn.port}")),
        Row("cid", ("Client id", str(conn.client_id))),
        Row("state", ("State", link_state(conn, now)), ("", STATE_ROLE[state])),
    ]
    rows = [
        Row("since", ("Connected", hhmmss(conn.connected_since, zone))),
        Row("recon", ("Reconnects", str(conn.reconnects)), ("", "warn" if conn.reconnects else "")),
        Row("rtt", ("Round trip", rtt)),
        Row("pacing", ("Pacing budget", pacing)),
    ]
    if conn.server_link_broken:
        # The API link is up, but what is sent stops at the gateway: said apart from the state.
        rows.append(Row("ib", ("IB servers", "UNREACHABLE (2110)"), ("", "warn")))
    if conn.market_data_degraded:
        rows.append(Row("md", ("Market data", "DEGRADED"), ("", "warn")))
    errors = error_rows(conn, zone, width)
    return [*head, *errors, *rows] if conn.state not in LINK_UP else [*head, *rows, *errors]


def error_rows(conn: ConnectionInfo, zone: str, width: int) -> list[Row]:
    """The last error over as many rows as it takes at ``width``: a failed connect's reason alone (the gateway
    is on its own row, the next try on the state's)."""
    if not conn.last_error:
        return []
    at = f"{hhmmss(conn.last_error_at, zone)} " if conn.last_error_at else ""
    text = f"{at}{conn.last_error_reason or conn.last_error}"
    lines = textwrap.wrap(text, width) if width > 0 else [text]
    # Once connected again it is history: kept (with its time) but no longer shown as a fault.
    role = "" if conn.state in LINK_UP else "neg"
    return [Row("err" if i == 0 else f"err:{i}", ("Last error" if i == 0 else "", line), ("", role))
            for i, line in enumerate(lines)]


def farm_rows(conn: ConnectionInfo) -> list[Row]:
    """One row per data farm; while the link is down, each one's last report as past (``was OK (2104)``,
    dimmed): the engine keeps them until the next connection opens, and "OK" read as a farm serving now."""
    if conn.state is ConnectionState.DISCONNECTED:
        return [Row(f"farm:{name}", (f"farm {name}", f"was {status}"), ("", "dim"))
                for name, status in sorted(conn.farms.items())]
    return [Row(f"farm:{name}", (f"farm {name}", status), ("", farm_role(status)))
            for name, status in sorted(conn.farms.items())]


def tick_row(symbol: str, fresh: Freshness) -> Row:
    """The market-data age of ``symbol``."""
    return Row(f"md:{symbol}", (f"tick {symbol}", age(fresh.quote_ages[symbol])),
               ("", "crit" if symbol in fresh.stale_symbols else ""))


class ConnectivityPane(Pane):
    """The broker link as IB reports it, with the age of each symbol's last tick."""

    def __init__(self) -> None:
        super().__init__("Connectivity", "6", id="connectivity-pane")

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, empty="No connection information", id="connectivity-table")

    def show(self, snapshot: EngineSnapshot, fresh: Freshness, now: datetime) -> None:
        """Draw the connection info of ``snapshot`` (``now``: the console's clock, for the wait before the
        next try)."""
        conn = snapshot.connection
        links = link_rows(conn, snapshot.time_zone, now, self.table.column_width(1))
        items: list[Row | str] = [*links, *farm_rows(conn), *sorted(fresh.quote_ages)]

        def row(item: Row | str) -> Row:
            return item if isinstance(item, Row) else tick_row(item, fresh)

        self.table.set_rows(LazyRows(items, row))  # the tick ages below the fold are never formatted
        note = fresh.verdict if fresh.verdict != "LIVE" else conn.state.value
        self.set_age(fresh.heartbeat_age, stale=fresh.engine_stalled, note=note)
