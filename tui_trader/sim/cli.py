"""``tui-trader gateway-sim``: run the IB Gateway simulator standalone until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import datetime

from tui_trader.help_format import HelpFormatter
from tui_trader.sim.clock import ManualClock
from tui_trader.sim.control_port import serve_control
from tui_trader.sim.gateway import SimGateway
from tui_trader.sim.market import STEP_SECONDS

DEFAULT_PORT = 4012
"""Not one of IB's ports (4001, 4002, 7496, 7497): a demo never reaches a real gateway."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``gateway-sim``."""
    p = argparse.ArgumentParser(prog="tui-trader gateway-sim", description="IB Gateway simulator (TWS API 178).",
                                formatter_class=HelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=tcp_port, default=DEFAULT_PORT, help=f"API port (default {DEFAULT_PORT})")
    p.add_argument("--symbols", default="", help="comma-separated symbols (default: all built-in)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic market")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second / replay speed")
    p.add_argument("--data", default=None, help="CSV or Parquet bars to replay (time,open,high,low,close,volume)")
    p.add_argument("--state", default=None, help="JSON file keeping account, orders and executions")
    p.add_argument("--live-account", action="store_true", help="present a non-paper account id (USIM…)")
    p.add_argument("--always-open", action="store_true",
                   help="trade around the clock: prices move, orders fill and DAY orders never expire at any "
                        "hour. Without it the simulator keeps New York's exchange hours: prices stand still "
                        "outside 04:00-20:00 and on weekends and holidays (thin outside 09:30-16:00), orders "
                        "fill in regular hours (04:00-20:00 with outsideRth), and a DAY order ends at 16:00, "
                        "20:00 if outside RTH")
    p.add_argument("--control-port", type=tcp_port, default=None,
                   help="loopback port of the line-based fault/price control (0 = any free port; off by default)")
    p.add_argument("--manual-clock", default=None, metavar="ISO_TIME",
                   help="start a manual clock at this aware ISO time: time moves only through the control "
                        "port's 'step' (soak benchmarks drive a compressed session this way)")
    p.add_argument("--step-seconds", type=float, default=STEP_SECONDS,
                   help=f"simulated seconds per market step (default {STEP_SECONDS:g})")
    p.add_argument("--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="logging level on stderr (default INFO)")
    return p


def tcp_port(text: str) -> int:
    """A TCP port for argparse: 0 (any free port) to 65535."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (any free port) to 65535, not {port}")
    return port


def main(argv: list[str]) -> int:
    """Run the simulator; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] or None
    try:
        clock = ManualClock(datetime.fromisoformat(args.manual_clock)) if args.manual_clock else None
        gw = SimGateway(host=args.host, port=args.port, symbols=symbols, seed=args.seed, speed=args.speed,
                        data_path=args.data, state_path=args.state, live_account=args.live_account,
                        always_open=args.always_open, clock=clock, step_seconds=args.step_seconds)
    except (KeyError, ValueError, OSError) as exc:
        sys.stderr.write(f"gateway-sim: {exc}\n")
        return 2
    try:
        asyncio.run(_serve(gw, args.control_port))
    except OSError as exc:
        sys.stderr.write(f"gateway-sim: {exc}\n")
        return 1
    return 0


async def _serve(gw: SimGateway, control_port: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with gw:
        control = None
        if control_port is not None:
            control = await serve_control(gw.control, "127.0.0.1", control_port)
            cport = control.sockets[0].getsockname()[1]
            logging.getLogger("tui_trader.sim").info("control port on 127.0.0.1:%d", cport)
        sys.stdout.write(f"listening on {gw.host}:{gw.port} account {gw.account_id}\n")
        if control is not None:
            sys.stdout.write(f"control on 127.0.0.1:{cport}\n")
        sys.stdout.flush()
        await stop.wait()
        if control is not None:
            control.close()
            await control.wait_closed()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
