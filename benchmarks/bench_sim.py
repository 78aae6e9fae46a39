"""Benchmark: market-data messages per second the simulator sustains to one client.

The simulator runs in this process on a manual clock stepped as fast as it can go (one core); the
client is a separate process speaking the raw TWS protocol that only counts frames, so the client's
decoding never limits the figure. Reported: messages/s for 1, 5 and 25 subscribed symbols (the model
always steps every built-in instrument). ``sim.msgs_per_s`` is the figure at 25 symbols.

Run: ``python benchmarks/bench_sim.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.market import STEP_SECONDS

END_CODE = 9999

CLIENT = r"""
import socket, struct, sys, time
host, port, con_ids = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
s = socket.create_connection((host, port))
def send(*fields):
    p = ("\0".join(str(f) for f in fields) + "\0").encode()
    s.sendall(struct.pack(">I", len(p)) + p)
s.sendall(b"API\0" + struct.pack(">I", 9) + b"v157..178")
send(71, 2, 99, "")
for i, cid in enumerate(con_ids):
    send(1, 11, 1000 + i, cid, "", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 0, "", 0, 0, "")
send(49, 1)
buf, count, first, end = b"", 0, None, None
market = {b"1", b"2", b"45", b"46", b"50"}
while end is None:
    data = s.recv(1 << 20)
    if not data:
        break
    buf += data
    pos, size = 0, len(buf)
    while size - pos >= 4:
        (n,) = struct.unpack_from(">I", buf, pos)
        if size - pos - 4 < n:
            break
        head = buf[pos + 4:pos + 10].split(b"\0", 1)[0]
        if head in market:
            count += 1
            if first is None:
                first = time.perf_counter()
        elif head == b"49":
            print("READY", flush=True)
        elif head == b"4" and b"\x00%d\x00" % END_CODE in buf[pos + 4:pos + 4 + n]:
            end = time.perf_counter()
        pos += 4 + n
    buf = buf[pos:]
print(count, (end or time.perf_counter()) - (first or 0.0), flush=True)
""".replace("END_CODE", str(END_CODE))


async def _measure(symbols: int, seconds: float) -> float:
    async with SimGateway(port=0, clock=ManualClock(), always_open=True) as gw:
        con_ids = ",".join(str(i.con_id) for i in list(gw.instruments)[:symbols])
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, gw.host, str(gw.port), con_ids,
                                                    stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        while (await proc.stdout.readline()).strip() != b"READY":
            pass
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            gw.control.step(STEP_SECONDS * 4)
            await asyncio.sleep(0)
        gw.control.send_error(END_CODE, "benchmark end")
        count, elapsed = (await proc.stdout.readline()).split()
        await proc.wait()
        return int(count) / float(elapsed)


def run(quick: bool = False) -> dict[str, float]:
    """Measure market-data throughput; keys ``sim.msgs_per_s`` and ``sim.msgs_per_s.<n>sym``."""
    seconds = 1.0 if quick else 3.0
    counts = (1, 25) if quick else (1, 5, 25)
    results = {f"sim.msgs_per_s.{n}sym": asyncio.run(_measure(n, seconds)) for n in counts}
    results["sim.msgs_per_s"] = results["sim.msgs_per_s.25sym"]
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
