"""The faults a chaos schedule can fire, one small function each: ``(world, rng, arg) -> None``."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from .harness import World

FaultFn = Callable[[World, random.Random, int], Awaitable[None]]


async def disconnect(world: World, rng: random.Random, arg: int) -> None:
    """The gateway drops every session."""
    world.sim.control.drop_sessions()


async def refuse(world: World, rng: random.Random, arg: int) -> None:
    """Drop every session and refuse new ones for 5–40 simulated seconds."""
    world.sim.control.refuse_connections(rng.uniform(5, 40))
    world.sim.control.drop_sessions()


async def sim_restart(world: World, rng: random.Random, arg: int) -> None:
    """Nightly restart: the simulator stops and comes back from its state file."""
    await world.restart_sim(rng.uniform(0.1, 1.0))


async def engine_sigkill(world: World, rng: random.Random, arg: int) -> None:
    """SIGKILL the engine and start a new one."""
    await world.sigkill_engine()


async def farm_flap(world: World, rng: random.Random, arg: int) -> None:
    """A data farm breaks (2103/2105/2157) and recovers."""
    broken, ok = rng.choice(((2103, 2104), (2105, 2106), (2157, 2158)))
    world.sim.control.send_error(broken)
    world.later(rng.uniform(0.2, 2.0), lambda: world.sim.control.send_error(ok))


async def pacing(world: World, rng: random.Random, arg: int) -> None:
    """Historical requests beyond one per 30 s get pacing violations (162) for a while."""
    world.sim.control.set_pacing(1, 30.0)
    world.later(rng.uniform(1.0, 3.0), lambda: world.sim.control.set_pacing(None))


async def reject(world: World, rng: random.Random, arg: int) -> None:
    """The next order is rejected (201 or 202)."""
    world.sim.control.reject_next(201 if rng.random() < 0.5 else 202)


async def reorder(world: World, rng: random.Random, arg: int) -> None:
    """Fill messages (execution, status, commission) arrive in another order for a while."""
    kinds = ["execution", "order_status", "commission"]
    rng.shuffle(kinds)
    world.sim.control.fill_sequence(*kinds)
    world.later(rng.uniform(1.0, 4.0),
                lambda: world.sim.control.fill_sequence("execution", "order_status", "commission"))


async def delay(world: World, rng: random.Random, arg: int) -> None:
    """One kind of order message arrives 1–5 simulated seconds late for a while."""
    kind = rng.choice(("order_status", "execution", "commission", "open_order"))
    world.sim.control.delay_messages(kind, rng.uniform(1.0, 5.0))
    world.later(rng.uniform(1.0, 3.0), lambda: world.sim.control.delay_messages(kind, 0))


async def drop_status(world: World, rng: random.Random, arg: int) -> None:
    """The next 1–3 order status messages are lost."""
    world.sim.control.drop_messages("order_status", rng.randint(1, 3))


async def stall(world: World, rng: random.Random, arg: int) -> None:
    """Market data stops while the connection stays up, then resumes."""
    world.sim.control.stall_market_data(True)
    world.later(rng.uniform(1.0, 5.0), lambda: world.sim.control.stall_market_data(False))


async def malformed(world: World, rng: random.Random, arg: int) -> None:
    """The gateway sends a malformed message (or a corrupted stream, then drops the session)."""
    world.sim.control.send_malformed(rng.choice(("fields", "unknown", "binary", "stream")), seed=arg)


async def notify_hang(world: World, rng: random.Random, arg: int) -> None:
    """The notification webhook stops answering for 3–10 s (held requests never get an answer)."""
    world.webhook.hanging = True
    world.later(rng.uniform(3.0, 10.0), lambda: setattr(world.webhook, "hanging", False))


async def kill_switch(world: World, rng: random.Random, arg: int) -> None:
    """The operator engages the kill switch."""
    world.request_kill()


async def reset(world: World, rng: random.Random, arg: int) -> None:
    """The operator resets the kill switch explicitly, with a reason."""
    await world.reset_kill()


FAULTS: dict[str, FaultFn] = {f.__name__: f for f in (
    disconnect, refuse, sim_restart, engine_sigkill, farm_flap, pacing, reject, reorder, delay, drop_status,
    stall, malformed, notify_hang, kill_switch, reset)}
"""Every fault by the name the schedule uses."""
