"""Contract details, streaming quotes, snapshots, real-time and historical bars."""

from __future__ import annotations

import datetime as dt
import math

import ib_async
import pytest

from tui_trader.sim import SimGateway

from .helpers import eventually, sync


async def test_qualify_when_symbol_known_then_real_con_id(ib: ib_async.IB) -> None:
    contract = ib_async.Stock("AAPL", "SMART", "USD")
    (result,) = await ib.qualifyContractsAsync(contract)
    assert result is not None
    assert result.conId == 265598
    assert result.primaryExchange == "NASDAQ"
    assert result.exchange == "SMART"


async def test_contract_details_when_by_con_id_then_long_name_hours_and_tick(ib: ib_async.IB) -> None:
    (details,) = await ib.reqContractDetailsAsync(ib_async.Contract(conId=756733))
    assert details.contract.symbol == "SPY"
    assert details.longName == "SPDR S&P 500 ETF TRUST"
    assert details.minTick == 0.01
    assert details.timeZoneId == "US/Eastern"
    assert "0930" in details.liquidHours
    assert "0400" in details.tradingHours
    assert details.stockType == "ETF"


async def test_qualify_when_symbol_unknown_then_error_200_and_none(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    (result,) = await ib.qualifyContractsAsync(ib_async.Stock("NOPE", "SMART", "USD"))
    assert result is None
    assert errors == [200]


async def test_mkt_data_when_streaming_then_bid_ask_last_sizes_volume(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await eventually(lambda: not math.isnan(ticker.bid) and not math.isnan(ticker.last), what="first ticks")
    await sync(ib)
    sim.control.step(30)
    await eventually(lambda: ticker.volume > 0 and ticker.time is not None, what="volume")
    assert ticker.bid < ticker.ask
    assert ticker.bidSize > 0
    assert ticker.askSize > 0
    assert ticker.high >= ticker.low
    assert not math.isnan(ticker.close)
    assert ticker.marketDataType == 1
    ib.cancelMktData(aapl)


async def test_mkt_data_when_price_set_then_ticker_follows(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await sync(ib)
    sim.control.set_price("AAPL", 150.00)
    await eventually(lambda: ticker.last == 150.0 and ticker.bid == 149.99 and ticker.ask == 150.01)


async def test_mkt_data_when_print_inside_the_day_range_then_no_high_low_ticks(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await sync(ib)
    updates: list[tuple[float, set[int]]] = []
    ticker.updateEvent += lambda t: updates.append((t.last, {tick.tickType for tick in t.ticks}))
    for price in (150.00, 151.00, 150.50):  # the first print opens the range, the second extends it
        sim.control.set_price("AAPL", price)
        await eventually(lambda p=price: ticker.last == p)  # type: ignore[misc]
    types = {last: kinds for last, kinds in updates}
    assert {6, 7} <= types[151.0]  # high and low
    assert ticker.high == 151.0
    assert ticker.low == 150.0
    assert 4 in types[150.5]  # the last price
    assert not {6, 7} & types[150.5]


async def test_batched_when_prints_inside_then_written_at_the_end_in_order(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await sync(ib)
    lasts: list[float] = []
    ticker.updateEvent += lambda t: lasts.extend(tick.price for tick in t.ticks if tick.tickType == 4)
    (session,) = sim._all_sessions  # noqa: SLF001 - the test watches what the session writes to its socket
    writes: list[bytes] = []
    write = session.writer.write

    def counted(data: bytes) -> None:  # the real write, counted
        writes.append(bytes(data))
        write(data)

    session.writer.write = counted  # type: ignore[method-assign]
    with sim.batched():
        for price in (150.00, 151.00, 152.00):
            sim.control.set_price("AAPL", price)
        assert writes == []  # nothing reached the socket inside the block
    assert len(writes) == 1  # one write at its end, with the three prints in the order sent
    assert writes[0].index(b"\x00150.0\x00") < writes[0].index(b"\x00151.0\x00") < writes[0].index(b"\x00152.0\x00")
    await eventually(lambda: ticker.last == 152.0)
    assert lasts == [150.0, 151.0, 152.0]


async def test_snapshot_when_requested_then_ends_with_snapshot_end(ib: ib_async.IB, aapl: ib_async.Contract) -> None:
    (ticker,) = await ib.reqTickersAsync(aapl)
    assert ticker.bid > 0
    assert ticker.ask > ticker.bid
    assert ticker.last > 0


async def test_market_data_type_when_delayed_and_denied_then_delayed_ticks(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.deny_market_data("AAPL")
    ib.reqMarketDataType(3)
    ticker = ib.reqMktData(aapl)
    await eventually(lambda: ticker.marketDataType == 3 and not math.isnan(ticker.bid))


async def test_mkt_data_when_denied_and_live_then_error_354(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    sim.control.deny_market_data("AAPL")
    ib.reqMktData(aapl)
    await eventually(lambda: 354 in errors)


async def test_realtime_bars_when_time_steps_then_five_second_bars(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    await sync(ib)
    sim.control.step(31)
    await eventually(lambda: len(bars) >= 5)
    assert all(b.high >= b.low for b in bars)
    assert (bars[1].time - bars[0].time).total_seconds() == 5


@pytest.mark.parametrize(("bar_size", "duration", "expected_step"), [
    ("5 secs", "600 S", 5), ("1 min", "1 D", 60), ("1 hour", "1 W", 3600)])
async def test_historical_when_intraday_then_bars_aligned_and_tz_aware(
    ib: ib_async.IB, aapl: ib_async.Contract, bar_size: str, duration: str, expected_step: int
) -> None:
    bars = await ib.reqHistoricalDataAsync(aapl, "", duration, bar_size, "TRADES", useRTH=True, formatDate=1)
    assert len(bars) > 3
    assert bars[-1].date.tzinfo is not None
    steps = {(b.date - a.date).total_seconds() for a, b in zip(bars, bars[1:], strict=False)}
    assert expected_step in steps
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)


async def test_historical_when_daily_then_dates_and_epoch_format(ib: ib_async.IB, aapl: ib_async.Contract) -> None:
    daily = await ib.reqHistoricalDataAsync(aapl, "", "2 W", "1 day", "TRADES", useRTH=True, formatDate=1)
    assert 8 <= len(daily) <= 11
    assert isinstance(daily[0].date, dt.date)
    assert not isinstance(daily[0].date, dt.datetime)
    epoch = await ib.reqHistoricalDataAsync(aapl, "", "3600 S", "5 mins", "TRADES", useRTH=True, formatDate=2)
    assert epoch[0].date.tzinfo == dt.UTC


async def test_historical_when_same_seed_then_same_bars(sim: SimGateway) -> None:
    from tui_trader.sim import ManualClock

    from .helpers import connect

    async def fetch(gw: SimGateway) -> list[float]:
        ib = await connect(gw, client_id=3)
        (c,) = await ib.qualifyContractsAsync(ib_async.Stock("MSFT", "SMART", "USD"))
        bars = await ib.reqHistoricalDataAsync(c, "", "1 D", "5 mins", "TRADES", useRTH=False)
        ib.disconnect()
        return [b.close for b in bars]

    async with SimGateway(port=0, clock=ManualClock(), seed=7) as other:
        assert await fetch(sim) == await fetch(other)


async def test_historical_when_stream_runs_then_history_matches_stream(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ticker = ib.reqMktData(aapl)
    await sync(ib)
    sim.control.step(60)
    await eventually(lambda: ticker.last == sim.quote("AAPL").last)
    bars = await ib.reqHistoricalDataAsync(aapl, "", "120 S", "5 secs", "TRADES", useRTH=True)
    assert bars[-1].close == ticker.last


async def test_historical_when_keep_up_to_date_then_last_bar_updates(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    bars = await ib.reqHistoricalDataAsync(aapl, "", "1800 S", "1 min", "TRADES", useRTH=True,
                                           keepUpToDate=True)
    count = len(bars)
    updates: list[bool] = []
    bars.updateEvent += lambda _bars, has_new: updates.append(has_new)
    sim.control.step(125)
    await eventually(lambda: len(bars) >= count + 2, what="new bars appended")
    assert True in updates
    sim.control.set_price("AAPL", 123.45)
    sim.control.step(5)
    await eventually(lambda: bars[-1].close == sim.quote("AAPL").last)
    assert abs(bars[-1].close - 123.45) < 2
    ib.cancelHistoricalData(bars)


async def test_historical_when_unknown_bar_size_then_error_ends_request(
    ib: ib_async.IB, aapl: ib_async.Contract
) -> None:
    bars = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "7 mins", "TRADES", useRTH=True)
    assert list(bars) == []
