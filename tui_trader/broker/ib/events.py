"""ib_async's events translated for the listener: the event handlers of
:class:`~tui_trader.broker.ib.adapter.IbBroker`, as a mixin it inherits.

They handle quotes, bars, open orders and order statuses (a refused modification keeping its
order working), executions, commissions, positions, account values, errors and the disconnect,
and prune the trades ib_async keeps once they are finished. ib_async event handlers only
translate to domain values and call the listener; they never issue requests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ib_async import IB, Contract, Trade, TradeLogEntry
from ib_async import Fill as IbFill
from ib_async import Position as IbPosition
from ib_async.objects import AccountValue, CommissionReport, RealTimeBarList
from ib_async.ticker import Ticker

from tui_trader.broker.base import MALFORMED_MESSAGE, MODIFY_OF_FILLED, BrokerError, BrokerListener, refuses_modify
from tui_trader.broker.ib import mapping as m

#: Account value tags the engine reads (base currency).
ACCOUNT_TAGS = frozenset({"NetLiquidation", "TotalCashValue", "RealizedPnL", "UnrealizedPnL",
                          "GrossPositionValue", "BuyingPower", "AvailableFunds"})
NO_SECURITY_DEFINITION = 200
FINISHED_TRADES_KEPT = 100
"""Finished trades (and their fills) left in ib_async's caches for late messages about them; older ones
are dropped. ib_async keeps every trade and fill of the session otherwise; the journal is the record."""
PRUNE_SLACK = 20
"""Trades tracked beyond :data:`FINISHED_TRADES_KEPT` before a sweep (so a sweep runs every ~20 orders)."""
WORKING_AT_BROKER = frozenset({"PreSubmitted", "Submitted"})
"""Statuses of an order the gateway holds: cancelling it is a request, answered by the gateway."""


class IbEvents:
    """The ib_async event handlers of :class:`~tui_trader.broker.ib.adapter.IbBroker`, which sets up the
    state they read and write (see its ``__init__``)."""

    ib: IB
    client_id: int
    finished_trades_kept: int
    _account: str
    _listener: BrokerListener
    _tickers: dict[str, Ticker]
    _bars: dict[str, RealTimeBarList]
    _account_values: dict[str, float]
    _unmanaged_seen: set[tuple[int, float]]
    _qualifying: int
    _currency_said: bool
    _request_errors: dict[int, tuple[int, str]]
    _answered_here: set[int]
    _modifying: dict[int, list[float | None]]

    # -- ib_async events -> listener ----------------------------------------------------------

    def _wire_handlers(self) -> None:
        ib = self.ib
        ib.pendingTickersEvent += self._on_tickers
        ib.barUpdateEvent += self._on_bar
        ib.openOrderEvent += self._on_open_order
        ib.orderStatusEvent += self._on_trade
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.positionEvent += self._on_position
        ib.accountValueEvent += self._on_account_value
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        now = datetime.now(UTC)
        for ticker in tickers:
            self._listener.on_quote(m.quote_from_ticker(ticker, now))

    def _on_bar(self, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if has_new_bar and bars and bars.contract is not None:
            self._listener.on_bar(m.bar_from_realtime(bars.contract.symbol, bars[-1]))
            # ib_async appends every bar forever; the engine keeps its own bounded history.
            del bars[:-1]

    def _on_open_order(self, trade: Trade) -> None:
        """An order's figures as the broker holds them: for an order being modified, the answer to the oldest
        modification unanswered (IB echoes each one it accepts)."""
        self._answered(trade, taken=True)
        self._on_trade(trade)

    def _on_trade(self, trade: Trade) -> None:
        self._keep_refused_working(trade)
        done = _done(trade)
        if done:
            self._modifying.pop(trade.order.orderId, None)
        self._listener.on_order(m.report_from_trade(trade))
        if done and len(self.ib.wrapper.trades) >= self.finished_trades_kept + PRUNE_SLACK:
            self.prune_finished()

    def _keep_refused_working(self, trade: Trade) -> None:
        """An error on an order with a modification unanswered is the broker refusing that modification:
        the order works on at the figures it had.

        ib_async marks a trade Cancelled on any error for its order id, and cannot modify it again
        once it has (it asserts the trade is not done): a refused modify showed the order as rejected
        while the broker worked it, its next modify failed, and the position looked unprotected with
        its stop working. The status the trade had before the error is put back (the engine hears
        the refusal itself as the error). Which errors refuse a modification the engine decides alike
        (:func:`~tui_trader.broker.base.refuses_modify`): not a cancellation (202), the order's end, nor an
        answer to a cancel (10148 and friends), whose meaning the mapping leaves to a reconciliation. A 104
        ("can't modify a filled order") refuses it too: the order filled at the figures it had, and its
        status and execution, on their way, say so.
        """
        last = trade.log[-1] if trade.log else None
        if (trade.orderStatus.status != "Cancelled" or last is None or not last.errorCode
                or not refuses_modify(last.errorCode) or not self._modifying.get(trade.order.orderId)):
            return
        self._answered(trade, taken=False)
        before = next((e.status for e in reversed(trade.log[:-1]) if e.status in WORKING_AT_BROKER), "Submitted")
        trade.orderStatus.status = before
        after = "filled as it was" if last.errorCode == MODIFY_OF_FILLED else "works on as it was"
        trade.log.append(TradeLogEntry(last.time, before, f"modify refused ({last.errorCode}): {after}"))

    def _answered(self, trade: Trade, *, taken: bool) -> None:
        """The oldest unanswered modification of ``trade`` was answered: ``taken`` (its echo) or refused.

        A trailing stop it set becomes the one the next modify compares with (and reports show) only once the
        broker took it: ib_async keeps the order first sent and takes no ``trailStopPrice`` from the broker's
        answers. Recorded when sent, a refused stop was the record while the engine put the order back to its
        old one, and the next modify sent that old, maybe looser, stop back over where IB had trailed it.
        """
        asked = self._modifying.get(trade.order.orderId)
        if not asked:
            return
        stop = asked.pop(0)
        if not asked:
            del self._modifying[trade.order.orderId]
        if taken and stop is not None:
            trade.order.trailStopPrice = stop

    def _refused_as_warning(self, trade: Trade, code: int) -> None:
        """An error ib_async takes for a warning (``ValidationError``; IB's 2102 "still being processed", 105,
        110, 321, …) on an order with a modification unanswered refuses the oldest (its notices excepted:
        :func:`~tui_trader.broker.base.refuses_modify`); the order works on, so ib_async leaves its status alone."""
        if trade.orderStatus.status == "ValidationError" and refuses_modify(code):
            self._answered(trade, taken=False)

    def prune_finished(self) -> int:
        """Drop finished trades from ib_async's caches, keeping the newest :attr:`finished_trades_kept`.

        ib_async keeps every trade and fill of the session in ``wrapper.trades``, ``permId2Trade`` and
        ``fills``. A trade goes once it is done (filled, cancelled, inactive) and every fill of it has
        its commission (a commission report for a dropped fill would be ignored). Its fills go with it,
        so ib_async's own ``trades()``, ``fills()`` and ``openTrades()`` stay consistent. The engine
        deduplicates executions itself (a replayed execution of a dropped fill is caught there), and
        the journal keeps the record. Returns how many trades were dropped.
        """
        wrapper = self.ib.wrapper
        # Oldest finished first: by the last status change (a trade can work for hours, then finish).
        finished = sorted((key for key, trade in wrapper.trades.items() if _finished(trade)),
                          key=lambda key: _finished_at(wrapper.trades[key]))
        drop = finished[:max(len(finished) - self.finished_trades_kept, 0)]
        for key in drop:
            trade = wrapper.trades.pop(key)
            if wrapper.permId2Trade.get(trade.order.permId) is trade:
                del wrapper.permId2Trade[trade.order.permId]
            for fill in trade.fills:
                wrapper.fills.pop(fill.execution.execId, None)
        self._prune_orphan_fills()
        return len(drop)

    def _prune_orphan_fills(self) -> None:
        """Executions ib_async filed without a trade of ours (other clients, earlier sessions)."""
        fills = self.ib.wrapper.fills
        if len(fills) <= self.finished_trades_kept * 4:
            return
        live = {f.execution.execId for t in self.ib.wrapper.trades.values() for f in t.fills}
        orphans = [k for k, f in fills.items() if k not in live and f.commissionReport.execId]
        for key in orphans[:max(len(orphans) - self.finished_trades_kept, 0)]:
            del fills[key]

    def _on_exec(self, trade: Trade, fill: IbFill) -> None:
        if m.is_managed(fill.contract):  # another client's option trade is not a fill of the stock
            self._listener.on_fill(m.fill_from_ib(fill, trade.order.orderRef))

    def _on_commission(self, trade: Trade, fill: IbFill, report: CommissionReport) -> None:
        if not m.is_managed(fill.contract):  # the commission of a fill not reported (see _on_exec)
            return
        realized = m._num(report.realizedPNL)
        self._listener.on_commission(report.execId, float(report.commission), realized)

    def _on_position(self, position: IbPosition) -> None:
        if self._account and position.account != self._account:
            return
        if m.is_managed(position.contract):
            self._listener.on_position(m.position_from_ib(position))
        else:
            self._unmanaged(position)

    def _unmanaged(self, position: IbPosition) -> None:
        """A holding that is not a US stock: said once per contract and quantity, never merged into a
        stock's position (an option on AAPL would otherwise count as AAPL shares, and be flattened as such)."""
        key = (position.contract.conId, float(position.position))
        if key not in self._unmanaged_seen and position.position:
            self._unmanaged_seen.add(key)
            self._listener.on_unmanaged_position(m.describe_contract(position.contract), float(position.position))

    def _on_account_value(self, value: AccountValue) -> None:
        if self._account and value.account and value.account != self._account:
            return  # another account of the login's (an advisor's): not the one traded
        if value.tag == "NetLiquidation" and value.currency not in ("USD", "BASE", "") and not self._currency_said:
            self._currency_said = True  # an account based in another currency: its figures are not dollars
            self._listener.on_account_currency(value.currency)
        # Dollars only: "BASE" rows are in the account's base currency, which need not be the dollar.
        if value.tag in ACCOUNT_TAGS and value.currency == "USD":
            try:
                amount = float(value.value)
            except ValueError:
                return
            self._account_values[value.tag] = amount
            self._listener.on_account_value(value.tag, amount, value.currency)

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        trade = self.ib.wrapper.trades.get((self.client_id, req_id)) if req_id > 0 else None
        ref = trade.order.orderRef if trade is not None else ""
        if req_id > 0 and trade is None:
            self._request_errors[req_id] = (code, message)
            if len(self._request_errors) > 1000:  # errors of requests nobody awaits
                self._request_errors.pop(next(iter(self._request_errors)))
            if req_id in self._answered_here:  # the answer to the awaiting call, not news about the account
                return
            if code == NO_SECURITY_DEFINITION and self._qualifying:  # qualify's callers name unknown symbols
                return
        if trade is not None and self._modifying.get(req_id):
            self._refused_as_warning(trade, code)
        symbol, stream = self._stream_of(req_id, contract)
        self._listener.on_error(BrokerError(code, message, req_id, ref, req_id if trade else None,
                                            symbol, stream))

    def _stream_of(self, req_id: int, contract: Contract | None) -> tuple[str, str]:
        """The symbol and subscription ('quotes' or 'bars') a request id belongs to."""
        symbol = contract.symbol if contract is not None else ""
        for stream, subs in (("quotes", self._tickers), ("bars", self._bars)):
            for sym, sub in subs.items():
                if self._req_id(sub) == req_id:
                    return sym, stream
        return symbol, ""

    def _req_id(self, sub: Ticker | RealTimeBarList) -> int:
        if isinstance(sub, RealTimeBarList):
            return int(sub.reqId)
        return int(self.ib.wrapper.ticker2ReqId["mktData"].get(sub, -2))

    def _on_disconnected(self) -> None:
        self._modifying.clear()  # what the session did not answer it never will
        self._listener.on_disconnected()

    def _on_decode_fault(self, text: str) -> None:
        """A message from the gateway could not be decoded: state may have diverged, so rebuild it."""
        self._listener.on_error(BrokerError(MALFORMED_MESSAGE, text))
        if self.ib.isConnected():
            self.ib.disconnect()


def _done(trade: Trade) -> bool:
    """Done at the broker: ib_async's done states, but for an order held for a locate (``Inactive``, alive)."""
    return trade.isDone() and not m.held_for_locate(trade.orderStatus)


def _finished(trade: Trade) -> bool:
    """Done at the broker, and every fill has its commission report."""
    return _done(trade) and all(f.commissionReport.execId for f in trade.fills)


def _finished_at(trade: Trade) -> float:
    """When the trade last changed, epoch seconds (0 for a trade ib_async learnt of at a sync: no log)."""
    when = trade.log[-1].time if trade.log else None
    return when.timestamp() if when is not None and when.tzinfo is not None else 0.0
