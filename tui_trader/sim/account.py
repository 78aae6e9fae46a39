"""The simulated account: cash, positions with average cost, realized/unrealized P&L,
IB-like tiered commissions and the account value tags IB sends."""

from __future__ import annotations

from dataclasses import dataclass

MARGIN_RATE = 0.25
"""Initial and maintenance margin as a fraction of gross position value (IB's intraday stock rate)."""


@dataclass(slots=True)
class Position:
    """A position in one instrument. ``avg_cost`` includes commissions, as IB reports it."""

    con_id: int
    qty: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0


@dataclass(frozen=True, slots=True)
class OtherHolding:
    """Something the account holds that the simulator does not trade (an option, a future): reported in
    positions as IB reports it, so a client can be tested against a mixed account."""

    con_id: int
    symbol: str
    sec_type: str
    qty: float
    avg_cost: float
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class CommissionSchedule:
    """IB tiered-like US stock commissions (lowest tier) with a per-order minimum and cap.

    Attributes:
        per_share: broker commission per share.
        minimum: minimum per order.
        max_pct: cap as a fraction of the order's traded value.
        fees_per_share: exchange and clearing fees per share.
        sec_fee_rate: SEC fee on sell proceeds.
        taf_per_share: FINRA trading activity fee per share sold.
    """

    per_share: float = 0.0035
    minimum: float = 0.35
    max_pct: float = 0.01
    fees_per_share: float = 0.0005
    sec_fee_rate: float = 0.0000278
    taf_per_share: float = 0.000166

    def order_total(self, qty: float, value: float, selling: bool) -> float:
        """Commission for an order that has traded ``qty`` shares worth ``value`` so far."""
        if qty <= 0:
            return 0.0
        broker = min(max(self.minimum, qty * self.per_share), max(self.minimum, value * self.max_pct))
        fees = qty * self.fees_per_share
        if selling:
            fees += value * self.sec_fee_rate + min(8.30, qty * self.taf_per_share)
        return round(broker + fees, 4)


class Account:
    """Cash and positions of the one simulated account, updated by every fill."""

    def __init__(self, account_id: str, cash: float = 1_000_000.0) -> None:
        """Open an account with ``cash`` dollars and no positions."""
        self.account_id = account_id
        self.cash = cash
        self.positions: dict[int, Position] = {}
        self.other_holdings: dict[int, OtherHolding] = {}
        """Holdings of contracts the simulator does not trade, by conId (kept for the session only)."""
        self.realized = 0.0
        self.commissions = 0.0
        self.base_currency = "USD"
        """The currency the account reports its values in (IB accounts can be based in EUR, CAD, …); the
        simulator's figures are dollars whatever it says (no exchange rate)."""

    def apply_fill(self, con_id: int, sign: int, qty: float, price: float, commission: float) -> float:
        """Book a fill of ``qty`` shares (``sign`` +1 buy, -1 sell); return the P&L it realized."""
        pos = self.positions.setdefault(con_id, Position(con_id))
        self.cash -= sign * qty * price + commission
        self.commissions += commission
        closing = min(qty, abs(pos.qty)) if pos.qty * sign < 0 else 0.0
        realized = 0.0
        if closing:
            share = commission * closing / qty
            realized = closing * (price - pos.avg_cost) * (1 if pos.qty > 0 else -1) - share
            pos.qty += sign * closing
            commission -= share
        opening = qty - closing
        if opening:
            held = abs(pos.qty)
            added = price + sign * commission / opening
            pos.avg_cost = (held * pos.avg_cost + opening * added) / (held + opening)
            pos.qty += sign * opening
        if pos.qty == 0:
            pos.avg_cost = 0.0
        pos.realized += realized
        self.realized += realized
        return round(realized, 4)

    def position_value(self, marks: dict[int, float]) -> tuple[float, float, float]:
        """Net market value, gross market value and unrealized P&L at ``marks``."""
        net = gross = unrealized = 0.0
        for pos in self.positions.values():
            mark = marks.get(pos.con_id, pos.avg_cost)
            net += pos.qty * mark
            gross += abs(pos.qty * mark)
            unrealized += pos.qty * (mark - pos.avg_cost)
        return net, gross, unrealized

    def available_funds(self, marks: dict[int, float]) -> float:
        """Equity with loan value minus initial margin."""
        net, gross, _ = self.position_value(marks)
        return self.cash + net - MARGIN_RATE * gross

    def values(self, marks: dict[int, float]) -> list[tuple[str, str, str]]:
        """Account value tags ``(key, value, currency)`` as ``updateAccountValue`` sends them."""
        net, gross, unrealized = self.position_value(marks)
        nlv = self.cash + net
        margin = MARGIN_RATE * gross
        available = nlv - margin
        money = {
            "NetLiquidation": nlv, "TotalCashValue": self.cash, "SettledCash": self.cash, "AccruedCash": 0.0,
            "BuyingPower": available / MARGIN_RATE, "EquityWithLoanValue": nlv, "GrossPositionValue": gross,
            "InitMarginReq": margin, "MaintMarginReq": margin, "AvailableFunds": available,
            "ExcessLiquidity": available, "FullInitMarginReq": margin, "FullMaintMarginReq": margin,
            "FullAvailableFunds": available, "FullExcessLiquidity": available, "LookAheadInitMarginReq": margin,
            "LookAheadMaintMarginReq": margin, "LookAheadAvailableFunds": available,
            "LookAheadExcessLiquidity": available, "StockMarketValue": net, "NetLiquidationByCurrency": nlv,
            "CashBalance": self.cash, "TotalCashBalance": self.cash, "RealizedPnL": self.realized,
            "UnrealizedPnL": unrealized,
        }
        rows = [("AccountCode", self.account_id, ""), ("AccountType", "INDIVIDUAL", ""),
                ("AccountReady", "true", ""), ("Currency", self.base_currency, self.base_currency),
                ("ExchangeRate", "1.00", self.base_currency),
                ("DayTradesRemaining", "-1", ""), ("Cushion", f"{available / nlv if nlv else 0:.6f}", ""),
                ("Leverage-S", f"{gross / nlv if nlv else 0:.4f}", "")]
        rows += [(k, f"{v:.2f}", self.base_currency) for k, v in money.items()]
        rows += [(k, f"{money[k]:.2f}", "BASE") for k in ("CashBalance", "RealizedPnL", "UnrealizedPnL",
                                                          "NetLiquidationByCurrency", "StockMarketValue")]
        return rows

    def to_state(self) -> dict[str, object]:
        """A JSON-ready snapshot for persistence."""
        return {"account_id": self.account_id, "cash": self.cash, "realized": self.realized,
                "commissions": self.commissions,
                "positions": [[p.con_id, p.qty, p.avg_cost, p.realized] for p in self.positions.values()]}

    def load_state(self, state: dict[str, object]) -> None:
        """Restore a snapshot made by :meth:`to_state`."""
        self.cash = float(state["cash"])  # type: ignore[arg-type]
        self.realized = float(state["realized"])  # type: ignore[arg-type]
        self.commissions = float(state["commissions"])  # type: ignore[arg-type]
        rows = state["positions"]
        self.positions = {int(r[0]): Position(int(r[0]), r[1], r[2], r[3]) for r in rows}  # type: ignore[attr-defined]
