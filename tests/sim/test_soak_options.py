"""Simulator options for long runs: synthetic instruments (``SYN<n>``) and coarser model steps."""

from __future__ import annotations

import ib_async
import pytest

from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.instruments import InstrumentDb, synthetic, synthetic_symbols

from .helpers import connect


def test_synthetic_symbols_when_requested_then_instruments_are_deterministic() -> None:
    db = InstrumentDb(["AAPL", *synthetic_symbols(3)])
    assert [i.symbol for i in db] == ["AAPL", "SYN1", "SYN2", "SYN3"]
    assert synthetic("syn2") == db.by_symbol("SYN2")
    with pytest.raises(KeyError):
        InstrumentDb(["NOPE"])
    with pytest.raises(KeyError):
        synthetic("SYN0")


async def test_synthetic_symbol_when_qualified_then_quotes_stream() -> None:
    async with SimGateway(port=0, clock=ManualClock(), symbols=["SYN7"], always_open=True,
                          step_seconds=5.0) as gw:
        ib = await connect(gw)
        try:
            (contract,) = await ib.qualifyContractsAsync(ib_async.Stock("SYN7", "SMART", "USD"))
            assert contract.conId == synthetic("SYN7").con_id
            ticker = ib.reqMktData(contract)
            gw.control.step(10.0)
            await ib.reqCurrentTimeAsync()
            assert ticker.bid > 0
            assert ticker.ask > ticker.bid
        finally:
            ib.disconnect()


def test_step_seconds_when_not_positive_then_refused() -> None:
    with pytest.raises(ValueError, match="step_seconds"):
        SimGateway(step_seconds=0)
