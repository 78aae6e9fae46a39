"""The standalone simulator: one ready line, a real client connects, the control port drives faults,
SIGTERM stops it."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from datetime import UTC, datetime

import ib_async
import pytest

from tui_trader.sim import ManualClock
from tui_trader.sim.cli import DEFAULT_PORT, build_parser, main
from tui_trader.sim.control import Control
from tui_trader.sim.control_port import execute
from tui_trader.sim.gateway import SimGateway

from .helpers import eventually


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parser_when_defaults_then_port_is_not_ibs() -> None:
    args = build_parser().parse_args([])
    assert args.port == DEFAULT_PORT
    assert DEFAULT_PORT not in (4001, 4002, 7496, 7497)


@pytest.mark.parametrize(("argv", "says", "code"), [
    (["--port", "70000"], "argument --port: must be 0 (any free port) to 65535, not 70000", 2),
    (["--port", "0", "--control-port", "-1"], "argument --control-port: must be 0 (any free port) to 65535", 2),
    (["--port", "0", "--speed", "-1"], "speed must be a positive number of simulated seconds per second", 2),
    (["--port", "0", "--speed", "nan"], "speed must be a positive number of simulated seconds per second", 2),
    (["--log-level", "loud"], "argument --log-level: invalid choice: 'LOUD'", 2),
])
def test_main_when_an_option_is_out_of_range_then_exit_2_naming_it(
        argv: list[str], says: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    # These went through to a traceback (a port past 65535, an unknown log level) or ran a market
    # whose clock went backwards (a negative speed).
    try:
        got = main(argv)
    except SystemExit as exc:
        got = int(exc.code or 0)
    assert got == code
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("always_open", [False, True])
async def test_help_of_always_open_when_the_market_is_closed_then_says_what_the_simulator_does(
        always_open: bool) -> None:
    # The help said the simulator "quotes and fills around the clock either way": without --always-open its prices
    # stand still outside exchange hours (the console showed them LIVE at 0.00% and no strategy signalled).
    help_text = " ".join(build_parser().format_help().split())
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    async with SimGateway(port=0, clock=ManualClock(saturday), symbols=["AAPL"], always_open=always_open) as gw:
        (quote,) = gw.market.quotes.values()
        before = quote.mid
        gw.control.step(600)

        moved = quote.mid != before
    assert moved is always_open
    assert "either way" not in help_text
    assert "Without it the simulator keeps New York's exchange hours: prices stand still outside" in help_text


async def test_standalone_when_started_then_prints_ready_line_and_serves_ib_async() -> None:
    port, cport = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_trader.sim", "--port", str(port), "--symbols", "AAPL,MSFT", "--seed", "3",
        "--control-port", str(cport), "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line == f"listening on 127.0.0.1:{port} account DUSIM0001\n"
        ib = ib_async.IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5, raiseSyncErrors=True)
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *_: errors.append(code)
        reader, writer = await asyncio.open_connection("127.0.0.1", cport)
        writer.write(b"send_error 1100\nbogus\n")
        assert (await reader.readline()).decode().startswith("ok")
        assert (await reader.readline()).decode().startswith("error")
        await eventually(lambda: 1100 in errors)
        writer.close()
        ib.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_standalone_with_manual_clock_then_time_moves_only_by_step_on_the_control_port() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_trader.sim", "--port", "0", "--symbols", "AAPL", "--control-port", "0",
        "--manual-clock", "2026-03-03T14:30:00+00:00", "--step-seconds", "5", "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int((await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()[2].rsplit(":", 1)[1])
        control = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        assert control[:2] == ["control", "on"]
        ib = ib_async.IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5, raiseSyncErrors=True)
        before = await ib.reqCurrentTimeAsync()
        reader, writer = await asyncio.open_connection(*control[2].rsplit(":", 1))
        writer.write(b"step 60\n")
        assert (await reader.readline()).decode().startswith("ok")
        after = await ib.reqCurrentTimeAsync()

        assert before.isoformat() == "2026-03-03T14:30:00+00:00"
        assert (after - before).total_seconds() == 60
        writer.close()
        ib.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_control_commands_when_executed_then_control_applied(sim: SimGateway) -> None:
    control: Control = sim.control
    assert execute(control, "set_price AAPL 123.45") == "ok"
    assert sim.quote("AAPL").last == 123.45
    assert execute(control, "halt AAPL") == "ok"
    assert sim.quote("AAPL").halted
    assert execute(control, "set_pacing 5 2") == "ok"
    assert sim.faults.pacing == (5, 2.0)
    assert execute(control, "fill_sequence commission execution order_status") == "ok"
    assert execute(control, "locate_shorts on") == "ok"
    assert sim.engine.locate_shorts
    assert execute(control, "drop_messages nonsense").startswith("error")
    assert execute(control, "status").startswith("ok clients=")
    assert execute(control, "clear_faults") == "ok"
    assert not sim.engine.locate_shorts
