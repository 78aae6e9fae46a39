"""Building an engine from the settings: the broker adapter and, for ``--sim``, the simulator; in every mode an
engine that says which gateway it is connected to (:mod:`tui_trader.ops.gateway_endpoint`).

The ib_async adapter is imported by name at run time: the engine package must not import
ib_async (only ``tui_trader.broker.ib`` does), and that includes imports through a chain.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tui_trader.broker.base import Broker
from tui_trader.domain.enums import LINK_UP, AlertLevel, ConnectionState, Mode
from tui_trader.engine.config import EngineConfig, config_from_settings
from tui_trader.engine.engine import Engine
from tui_trader.ops import gateway_endpoint
from tui_trader.store.lock import JournalLock

if TYPE_CHECKING:
    from tui_trader.config import Settings

ADAPTER_MODULE = "tui_trader.broker.ib"
log = logging.getLogger(__name__)


def make_broker(host: str, port: int, client_id: int, account: str = "", timeout: float = 10.0,
                readonly: bool = False, gateway_in_process: bool = False) -> Broker:
    """The ib_async broker adapter for a gateway at ``host:port`` (``gateway_in_process``: the
    embedded simulator, which reads in this process's loop)."""
    adapter: Any = importlib.import_module(ADAPTER_MODULE)
    broker: Broker = adapter.IbBroker(host, port, client_id, account, timeout, readonly,
                                      yield_after_send=not gateway_in_process)
    return broker


class _GatewayEngine(Engine):
    """An engine that says which gateway it is connected to, beside its journal, while it runs
    (:mod:`tui_trader.ops.gateway_endpoint`: ``tui-trader kill`` cancels there, in every mode)."""

    def __init__(self, config: EngineConfig, broker: Broker,
                 on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        self._said: tuple[str, int] | None = None
        """The gateway the file says, as this engine wrote it (None: no file of this engine's)."""
        super().__init__(config, broker, on_stop=on_stop)
        self.add_service(lambda: None, self._unsay)  # at stop, while the journal's lock is still held

    def move_link(self, state: ConnectionState, detail: str = "", **changes: Any) -> None:
        """Also: a link that comes up says which gateway it is on, if that is news (here, where the link's state
        changes, not in :meth:`publish`, which every order, fill and alert passes through)."""
        super().move_link(state, detail, **changes)
        if state in LINK_UP:
            self.say_where(getattr(self.broker, "host", ""), getattr(self.broker, "port", 0))

    def say_where(self, host: str, port: int) -> None:
        """Write ``host:port`` as this engine's gateway, with the client id it connects with (``--client-id`` is not
        the configured one the kill knows), again only when it changed; never once stopping."""
        journal = self.config.journal_path
        if journal is None or self.stopping or self._said == (host, port):
            return
        try:
            gateway_endpoint.publish(journal, self.config.mode, host, port, getattr(self.broker, "client_id", None))
        except OSError as exc:  # not said: the kill then says it does not know where, never a wrong gateway
            log.warning("could not say which gateway the engine is connected to in %s: %s",
                        gateway_endpoint.endpoint_path(journal), exc)
            return
        self._said = (host, port)

    async def _unsay(self) -> None:
        """Remove the file this engine wrote."""
        journal = self.config.journal_path
        if journal is not None and self._said is not None:
            self._said = None
            try:
                gateway_endpoint.withdraw(journal)
            except OSError as exc:  # a stale file is not believed: its pid no longer holds the journal's lock
                log.warning("could not remove %s: %s", gateway_endpoint.endpoint_path(journal), exc)


class _SimEngine(_GatewayEngine):
    """An engine that starts the embedded simulator before connecting to it, and says where it listens as soon as
    it does (:mod:`tui_trader.ops.gateway_endpoint`: ``tui-trader kill --sim`` cancels there)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._gateway: Any = None
        broker = make_broker(settings.sim.host, settings.sim.port, settings.broker.client_id,
                             settings.broker.account, settings.broker.connect_timeout, gateway_in_process=True)
        super().__init__(config_from_settings(settings), broker, on_stop=self._stop_gateway)

    async def start(self) -> None:
        """Take the journal's lock, start the simulator (an ephemeral port when the configured one is
        taken), say where it listens, then start the engine.

        The lock first: a second engine on the journal fails before its simulator loads (and later
        saves) the simulated account's state the first one's simulator is using. A stop asked while the
        simulator started found none to stop: the start stops it (its state saved) and lets go of the lock.
        """
        journal = self.config.journal_path
        if journal is not None and self.journal_lock is None:
            self.journal_lock = JournalLock.acquire(journal)
        try:
            self._gateway = await start_simulator(self._settings)
            self.say_where(self._gateway.host, self._gateway.port)
        except BaseException:
            await self._give_up_start()
            raise
        if self.stopping:
            await self._give_up_start()
            return
        self.broker.port = self._gateway.port  # type: ignore[attr-defined]
        self.connection = _with_port(self.connection, self._gateway.port)
        await super().start()

    async def open_journal(self) -> None:
        """Open the journal, then say (journaled) that the simulator is not on the configured port, if so."""
        await super().open_journal()
        configured = self._settings.sim.port
        if self._gateway is not None and configured not in (0, self._gateway.port):
            self.alert(AlertLevel.INFO, "simulator", f"the simulator's port {configured} is taken (sim.port): it "
                       f"listens on {self._gateway.port} instead; tui-trader kill --sim finds it there",
                       kind="sim_port_taken")

    async def _give_up_start(self) -> None:
        """Stop the simulator this start brought up (its file removed with it) and let go of the journal's lock."""
        await self._stop_gateway()
        if self.journal_lock is not None:
            self.journal_lock.release()
            self.journal_lock = None

    async def _stop_gateway(self) -> None:
        gateway, self._gateway = self._gateway, None  # taken at once: the start and the stop may both stop it
        if gateway is not None:
            await self._unsay()  # said already at the stop, while the journal's lock was held; else now
            await gateway.__aexit__(None, None, None)


def _with_port(info: Any, port: int) -> Any:
    from dataclasses import replace

    return replace(info, port=port)


async def start_simulator(settings: Settings) -> Any:
    """Start the embedded SimGateway for ``settings.sim`` (falls back to an ephemeral port)."""
    from tui_trader.sim import SimGateway

    sim = settings.sim

    def build(port: int) -> SimGateway:
        # always_open: the simulator trades around the clock so --sim is lively at any hour.
        return SimGateway(host=sim.host, port=port, symbols=sim.symbols, seed=sim.seed, speed=sim.speed,
                          data_path=sim.data_path, state_path=settings.sim_state_path,
                          live_account=sim.live_account, always_open=True)

    try:
        gateway = build(sim.port)
        await gateway.__aenter__()
    except OSError:  # said by the engine's sim_port_taken alert, which the log has too
        gateway = build(0)
        await gateway.__aenter__()
    return gateway


def create_engine(settings: Settings) -> Engine:
    """The engine for ``settings``: for ``--sim`` it embeds the simulator and connects to it."""
    from tui_trader.engine.operations import attach_operations

    if settings.mode is Mode.SIM:
        return attach_operations(_SimEngine(settings), settings)
    broker = make_broker(settings.broker.host, settings.broker_port, settings.broker.client_id,
                         settings.broker.account, settings.broker.connect_timeout, settings.broker.readonly)
    return attach_operations(_GatewayEngine(config_from_settings(settings), broker), settings)


StopHook = Callable[[], Awaitable[None]]
