"""Replay of bars from CSV (and Parquet when an engine is installed) through history and the stream."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import ib_async
import pandas as pd
import pytest

from tui_trader.sim import ManualClock, SimGateway

from .helpers import connect, eventually, sync

START = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


def write_bars(path: Path) -> pd.DataFrame:
    """120 one-minute AAPL bars from 09:30 New York time."""
    times = pd.date_range(START, periods=120, freq="1min")
    opens = [100 + i * 0.1 for i in range(120)]
    frame = pd.DataFrame({"time": times, "open": opens, "high": [o + 0.5 for o in opens],
                          "low": [o - 0.5 for o in opens], "close": [o + 0.1 for o in opens],
                          "volume": [1000 + i for i in range(120)]})
    frame.to_csv(path, index=False)
    return frame


async def test_replay_when_csv_then_history_is_file_and_stream_continues(tmp_path: Path) -> None:
    frame = write_bars(tmp_path / "AAPL.csv")
    clock = ManualClock(datetime(2024, 3, 5, 15, 0, tzinfo=UTC))
    async with SimGateway(port=0, clock=clock, data_path=tmp_path / "AAPL.csv", symbols=["AAPL", "MSFT"]) as sim:
        ib = await connect(sim)
        (aapl,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
        bars = await ib.reqHistoricalDataAsync(aapl, "", "1800 S", "1 min", "TRADES", useRTH=True)
        assert [b.close for b in bars] == pytest.approx(list(frame["close"][:30]))
        ticker = ib.reqMktData(aapl)
        await sync(ib)
        sim.control.step(30)
        await eventually(lambda: not math.isnan(ticker.last) and ticker.last >= 102.5)
        assert frame["low"][30] <= ticker.last <= frame["high"][30]
        ib.disconnect()


def test_replay_when_columns_missing_then_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"time": [START], "close": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing columns"):
        SimGateway(port=0, data_path=path)


def test_replay_when_real_clock_then_starts_inside_the_file(tmp_path: Path) -> None:
    write_bars(tmp_path / "AAPL.csv")
    gw = SimGateway(port=0, data_path=tmp_path / "AAPL.csv", symbols=["AAPL"])
    assert START <= gw.clock.now() <= datetime(2024, 3, 5, 16, 30, tzinfo=UTC)


async def test_replay_when_parquet_then_same_as_csv(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (not a project dependency yet)")
    frame = write_bars(tmp_path / "AAPL.csv")
    frame.to_parquet(tmp_path / "AAPL.parquet")
    clock = ManualClock(datetime(2024, 3, 5, 15, 0, tzinfo=UTC))
    async with SimGateway(port=0, clock=clock, data_path=tmp_path / "AAPL.parquet", symbols=["AAPL"]) as sim:
        assert sim.quote("AAPL").last == pytest.approx(frame["open"][30], abs=0.011)
