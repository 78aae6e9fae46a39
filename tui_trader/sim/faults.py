"""Fault state the gateway consults: refused connections, pacing, permissions, stalls and the
drop/delay/reorder filter applied to order and account messages (and to IB's halted tick)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_trader.sim.gateway import SimGateway
    from tui_trader.sim.session import Session

MESSAGE_KINDS = frozenset({"open_order", "order_status", "execution", "commission", "position", "portfolio",
                           "account_value", "error", "open_orders_end", "contract_details_end", "halted"})
"""``open_orders_end``: the end of an open-orders answer (``53``); held or dropped, the request is not answered.
``contract_details_end``: the end of a contract-details answer (``52``): held, a connect waits in its subscribe step.
``halted``: IB's "Halted" tick (49), a new subscription's and a halt's or its end's: held, a subscription's prices
come without it (as IB's can, its tick 49 following them); dropped, the client is never told."""
DEFAULT_FILL_SEQUENCE = ("execution", "order_status", "commission")
FARM_TEXTS = {
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2157: "Sec-def data farm connection is broken:secdefnj",
    2158: "Sec-def data farm connection is OK:secdefnj",
}
"""The data farms' status messages; the farm is the text after the last colon."""
FARMS_OK = {"usfarm": 2104, "ushmds": 2106, "secdefnj": 2158}
LINK_TEXTS = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
}
"""IB's link's status messages."""
LINK_LOST = frozenset({1100, 2110})
"""IB's link lost: the API session's connectivity to IB (1100), the gateway's link to IB's servers (2110)."""
LINK_BACK = frozenset({1101, 1102})


class Faults:
    """What is currently broken (everything is healthy by default)."""

    def __init__(self, gw: SimGateway) -> None:
        """No faults."""
        self.gw = gw
        self.clear()

    def clear(self) -> None:
        """Back to a healthy gateway."""
        self.denied: set[str] = set()
        self.stalled = False
        self.refuse_until = 0.0
        self.pacing: tuple[int, float] | None = None
        self.drops: dict[str, int] = {}
        self.delays: dict[str, float] = {}
        self.fill_sequence: tuple[str, ...] = DEFAULT_FILL_SEQUENCE
        self.farms = dict(FARMS_OK)
        """Each data farm's last status code, reported to every session as it connects."""
        self.ib_link: int | None = None
        """1100 or 2110 while the gateway's link to IB's servers is lost (reported to every session as it connects,
        as TWS keeps saying 1100 to a client that connects or asks meanwhile); ``None`` while it is up."""

    def connect_messages(self) -> list[tuple[int, str]]:
        """What a connecting session is told about IB's link (when lost) and the data farms."""
        link = [] if self.ib_link is None else [(self.ib_link, LINK_TEXTS[self.ib_link])]
        return [*link, *((code, FARM_TEXTS[code]) for code in self.farms.values())]

    def report_status(self, code: int) -> None:
        """A farm's or IB's link's status sent to every session is its status from now on (1101 and 1102 say the
        link is back)."""
        if code in FARM_TEXTS:
            self.farms[FARM_TEXTS[code].rsplit(":", 1)[1]] = code
        elif code in LINK_LOST:
            self.ib_link = code
        elif code in LINK_BACK:
            self.ib_link = None

    def refusing(self) -> bool:
        """Whether new connections are refused right now."""
        return self.gw.clock.now().timestamp() < self.refuse_until

    def allow_request(self, session: Session) -> bool:
        """Count a paced request; ``False`` means a pacing violation."""
        if self.pacing is None:
            return True
        limit, window = self.pacing
        now = self.gw.clock.now().timestamp()
        while session.requests and session.requests[0] <= now - window:
            session.requests.popleft()
        if len(session.requests) >= limit:
            return False
        session.requests.append(now)
        return True

    def route(self, session: Session, kind: str, data: bytes) -> None:
        """Send, drop or delay one message of a given kind."""
        remaining = self.drops.get(kind, 0)
        if remaining:
            self.drops[kind] = remaining - 1 if remaining > 0 else remaining
            return
        delay = self.delays.get(kind)
        if delay:
            when = self.gw.clock.now().timestamp() + delay
            self.gw.call_at(when, lambda: session.send(data))
            return
        session.send(data)
