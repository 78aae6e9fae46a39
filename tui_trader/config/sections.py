"""The sections of the settings: frozen pydantic models, unknown keys rejected, a description each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tui_trader.domain.enums import Mode

ENV_PREFIX = "TUI_TRADER_"
IB_PORTS = {Mode.PAPER: 4002, Mode.LIVE: 4001}
SIM_DEFAULT_PORT = 4012
Fraction = Annotated[float, Field(ge=0)]


def _empty_is_off(value: Any) -> Any:
    """``""`` turns an optional setting off: TOML has no null, and its default is not off (``gateway_restart = ""``
    and ``TUI_TRADER_SCHEDULE__GATEWAY_RESTART=`` failed "String should match pattern")."""
    return None if value == "" else value


OFF = '"" turns it off'
"""How a description says that ``""`` turns a setting off (:data:`OffWhenEmpty`)."""
OffWhenEmpty = BeforeValidator(_empty_is_off)
"""An optional setting whose default is not off, turned off by ``""``."""
PositiveOrNone = Annotated[Annotated[float, Field(gt=0)] | None, OffWhenEmpty]
CountOrNone = Annotated[Annotated[int, Field(gt=0)] | None, OffWhenEmpty]
MinutesOrNone = Annotated[Annotated[float, Field(ge=0)] | None, OffWhenEmpty]
ShareOrNone = Annotated[Annotated[float, Field(ge=0, le=1)] | None, OffWhenEmpty]


def limit(default: float | None, description: str) -> Any:
    """A risk limit's field: ``description`` says that ``""`` turns it off when its default is not off (a limit
    whose default is off is turned on by setting it)."""
    return Field(default, description=description if default is None else f"{description} {OFF}.")


TriggerAction = Literal["alert", "reducing", "halted", "halt_and_flatten"]
_HALTED = "halted: kill switch cancelling only entries; the positions' stops and targets stay, Ctrl+K cancels them"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/tui-trader``, else ``~/.local/state/tui-trader``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tui-trader"


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(Section):
    """Connection to IB Gateway or TWS."""

    host: str = Field("127.0.0.1", description="Gateway host.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Gateway port; unset: 4002 paper, 4001 live, sim.port for sim."
    )
    client_id: int = Field(17, ge=0, le=2**31 - 1, description="API client id of the engine (not 0: TWS's own).")
    account: str = Field("", description="Expected account id; trading is refused if the gateway differs.")
    connect_timeout: float = Field(10.0, gt=0, le=300, description=(
        "Seconds to wait for the connection, and for each request of the sync after it."))
    readonly: bool = Field(False, description="Connect read-only: no orders can be sent.")
    market_data_type: Literal[1, 2, 3, 4] = Field(
        1, description="1 live, 2 frozen, 3 delayed, 4 delayed-frozen."
    )
    delayed_fallback: bool = Field(
        False, description="Fall back to delayed data when live data is not permitted (error 354)."
    )
    @field_validator("client_id")
    @classmethod
    def _not_tws_own(cls, client_id: int) -> int:
        # Client 0 is sent the orders typed into TWS and can take them over (IB's "master" binding): the
        # engine would adopt them as its own, cancel them with its kill switch and count them in its book.
        if client_id == 0:
            raise ValueError("client id 0 is TWS's own: it receives the orders typed into TWS, which tui-trader "
                             "would take for its own; use another id (the default is 17)")
        return client_id

    reconnect_initial_s: float = Field(1.0, gt=0, le=60, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Longest reconnect delay (with jitter).")
    ack_timeout_s: float = Field(
        10.0, gt=0, le=300, description="An order without an acknowledgement after this is UNKNOWN."
    )
    book_settle_s: float = Field(
        3.0, ge=0, le=60,
        description="Seconds a difference from the broker's positions (or cash, at a start) may take to "
        "settle before reconciliation adopts it (at a start) or calls it a mismatch (while running).",
    )


class RiskSettings(Section):
    """Pre-trade limits and post-trade monitors. A limit set to ``""`` (or unset where its default is unset) turns its
    check off."""

    max_order_quantity: PositiveOrNone = limit(1000, "Largest quantity in one order.")
    max_order_notional: PositiveOrNone = limit(50_000, "Largest value of one order.")
    max_position_notional: PositiveOrNone = limit(100_000, "Largest position value per symbol.")
    max_position_quantity: PositiveOrNone = limit(None, "Largest position quantity per symbol.")
    max_open_positions: CountOrNone = limit(10, "Most symbols held at once.")
    max_gross_exposure: PositiveOrNone = limit(1.0, "Gross exposure as a fraction of equity.")
    max_leverage: PositiveOrNone = limit(2.0, "Gross exposure over equity, hard cap.")
    min_cash_fraction: ShareOrNone = limit(None, "Cash that must stay uncommitted, as a fraction of equity.")
    price_collar_pct: PositiveOrNone = limit(5.0, "Deny a limit/stop price farther than this percent from the "
                                                    "reference.")
    price_collar_ticks: PositiveOrNone = limit(None, "Same collar in ticks.")
    collar_reference: Literal["mid", "far"] = Field(
        "mid", description="Collar reference: the mid, or the far side of the quote."
    )
    max_spread_pct: PositiveOrNone = limit(1.0, "Deny a market order when the quote is wider than this percent (an "
                                           "order that only reduces a position is exempt).")
    max_quote_age_s: PositiveOrNone = limit(10.0, "Deny when the quote is older than this (an order that only reduces "
                                            "a position is exempt: an exit still goes in a data outage).")
    max_orders_per_second: PositiveOrNone = limit(10, "Submits, modifies and cancels per second (placeOrder messages: "
                                                  "a bracket is three).")
    max_orders_per_minute: PositiveOrNone = limit(120, "Submits, modifies and cancels per minute (placeOrder messages: "
                                                  "a bracket is three).")
    max_daily_trades: CountOrNone = limit(100, "Executions per day for the account.")
    max_daily_trades_per_strategy: CountOrNone = limit(50, "Executions per day for one strategy.")
    duplicate_window_s: PositiveOrNone = limit(5.0, "Deny an order identical to one working or sent within this "
                                                      "window.")
    allowed_symbols: list[str] | None = Field(None, description="Only these symbols may trade (unset: all).")
    allowed_order_types: list[str] | None = Field(
        None, description="Only these order types (MKT, LMT, STP, STP LMT, TRAIL; unset: all)."
    )
    require_liquid_hours: bool = Field(
        True, description="New entries only inside liquid hours (off in --sim: the simulator never closes)."
    )
    no_entry_before_close_min: MinutesOrNone = limit(5, "No new entries in the last N minutes before the close (off in "
                                                     "--sim).")
    no_entry_after_open_min: MinutesOrNone = limit(None, "No new entries in the first N minutes after the open (off in "
                                                   "--sim).")
    daily_loss_limit: PositiveOrNone = limit(None, "Daily loss limit in money.")
    daily_loss_limit_pct: PositiveOrNone = limit(2.0, "Daily loss limit, percent of start-of-day equity.")
    daily_loss_action: TriggerAction = Field("halted", description=f"What the daily loss limit does. {_HALTED}.")
    max_drawdown: PositiveOrNone = limit(None, "Drawdown from the equity high in money (restarts when you release a "
                                               "drawdown trip).")
    max_drawdown_pct: PositiveOrNone = limit(5.0, "Drawdown from the equity high in percent (restarts when you "
                                                  "release a drawdown trip).")
    drawdown_action: TriggerAction = Field("halted", description=f"What the drawdown limit does. {_HALTED}.")
    max_losing_streak: CountOrNone = limit(5, "Losing trades in a row before a cooldown.")
    cooldown_s: Annotated[float, Field(ge=0)] = Field(600, description="Cooldown after a losing streak.")
    losing_streak_action: TriggerAction = Field("reducing", description="What a losing streak does.")
    max_holding_s: PositiveOrNone = limit(None, "Close positions held longer than this.")
    trade_count_action: TriggerAction = Field("halted", description=f"What the daily trade limit does. {_HALTED}.")
    warning_thresholds: tuple[Fraction, ...] = Field(
        (0.5, 0.8), description="Alert when a limit is this fraction used."
    )


class KillSwitchSettings(Section):
    """The kill switch and the automatic triggers that engage it."""

    scope: Literal["own", "global"] = Field(
        "own", description="What Ctrl+K cancels. own: this client's orders; global: every order on the account "
        "(an automatic trip cancels only this client's entries either way)."
    )
    on_disconnect: Literal["none", "reducing", "halted"] = Field(
        "reducing", description="State to enter after a disconnect longer than disconnect_after_s (halted "
        "cancels only entries; the positions' stops and targets stay)."
    )
    disconnect_after_s: float = Field(30.0, gt=0, description="Grace period before on_disconnect applies.")
    unknown_order_timeout_s: float = Field(
        30.0, gt=0, description="Halt when an order stays UNKNOWN longer than this."
    )
    halt_on_position_mismatch: bool = Field(True, description="Halt when positions disagree with the broker.")
    trigger_file: Path | None = Field(None, description="A file whose appearance engages the kill switch.")
    kill_client_id: int = Field(
        999, ge=0, le=2**31 - 1,
        description="API client id of `tui-trader kill` (must differ from broker.client_id).",
    )
    kill_poll_s: float = Field(
        0.25, gt=0, le=1.0, description="How often the running engine looks for a kill set by `tui-trader kill`."
    )


class SizingSettings(Section):
    """How a signal becomes a quantity."""

    method: Literal["fixed_quantity", "fixed_notional", "equity_pct", "risk_per_trade"] = Field(
        "fixed_notional", description="Sizing method."
    )
    quantity: float = Field(10, gt=0, description="Shares for fixed_quantity.")
    notional: float = Field(5_000, gt=0, description="Money per entry for fixed_notional.")
    equity_pct: float = Field(5.0, gt=0, le=100, description="Percent of equity per entry.")
    risk_money: float | None = Field(None, gt=0, description="Money at risk per trade (risk_per_trade).")
    risk_pct: float = Field(0.5, gt=0, le=100, description="Percent of equity at risk per trade.")
    stop_method: Literal["fixed_pct", "atr", "trailing"] = Field(
        "fixed_pct", description="Protective stop placed at the broker with every entry."
    )
    stop_pct: float = Field(1.0, gt=0, le=50, description="Stop distance in percent (fixed_pct, trailing).")
    atr_mult: float = Field(2.0, gt=0, le=20, description="Stop distance in ATRs (atr).")
    take_profit_r: Annotated[float | None, OffWhenEmpty] = Field(
        2.0, gt=0, description=f"Take-profit at this multiple of the stop distance ({OFF}: no take-profit)."
    )


class StrategySettings(Section):
    """One strategy instance."""

    name: str = Field(description="Built-in name (ema_cross, macd, vwap_reversion, volume_breakout) or module:Class.")
    symbols: list[str] = Field(default_factory=lambda: ["SPY"], min_length=1, description="Symbols it trades.")
    bar_size_s: int = Field(60, ge=5, le=86_400, description=(
        "Bar size in seconds: a multiple of 5; over an hour, one that divides a day (7200, 14400; 86400 is "
        "the exchange's calendar day). Bars begin on the exchange's clock: 4-hour bars at 00:00, 04:00..."))
    params: dict[str, float | int | str | bool] = Field(default_factory=dict, description="Its parameters.")
    sizing: SizingSettings | None = Field(None, description="Sizing override for this strategy.")
    enabled: bool = Field(True, description="Whether it runs.")
    max_holding_s: float | None = Field(
        None, gt=0, description="Close its positions held longer than this (instead of [risk] max_holding_s for them).")

    @model_validator(mode="after")
    def _bar_size_on_the_clock(self) -> StrategySettings:
        """5-second slices make the bars; a bar over an hour must fit a whole number of times into the
        exchange's day, or its boundaries would fall at other clock times every day."""
        size = self.bar_size_s
        if size % 5:
            raise ValueError(f"bar_size_s must be a multiple of 5 seconds, not {size}")
        if size > 3600 and 86_400 % size:
            raise ValueError(f"bar_size_s {size} is over an hour and does not divide a day (86400 s) evenly: "
                             "its bars would begin at other clock times every day; use one that does, "
                             "e.g. 7200 (2 hours), 14400 (4 hours) or 86400 (the exchange's day)")
        return self


def default_strategies() -> list[StrategySettings]:
    """Two lively built-ins so a first --sim run trades within a minute."""
    return [
        StrategySettings(name="ema_cross", symbols=["SPY", "QQQ", "AAPL"], bar_size_s=5,
                         params={"fast": 5, "slow": 13}),
        StrategySettings(name="volume_breakout", symbols=["MSFT", "NVDA"], bar_size_s=5,
                         params={"lookback": 12, "volume_mult": 1.5}),
    ]


class ApprovalsSettings(Section):
    """Operator approval of orders (always required in live mode)."""

    required_in_paper: bool = Field(True, description="Approve each order in paper mode.")
    required_in_sim: bool = Field(True, description="Approve each order in sim mode.")
    timeout_s: float = Field(30.0, gt=0, le=600, description="An approval expires after this; expiry denies.")
    approve_delay_s: float = Field(
        0.5, ge=0, le=5, description="Approve (y) works only once no key was pressed this long since an approval "
                                     "was drawn on screen: a key meant for the screen under it never approves.")


class JournalSettings(Section):
    """The SQLite journal."""

    path: Path | None = Field(None, description="Journal file; unset: <state_dir>/journal-<mode>.sqlite.")
    batch_size: int = Field(200, ge=1, le=100_000, description="Most events per write transaction.")
    flush_interval_ms: float = Field(50, gt=0, le=10_000, description="Longest wait before a batch is written.")


class HealthSettings(Section):
    """Thresholds for the health pane and its alerts (warning, critical)."""

    cpu_warn_pct: float = Field(80, gt=0, le=100, description="System CPU warning.")
    cpu_crit_pct: float | None = Field(
        None, gt=0, le=100,
        description="System CPU critical (unset: none; the machine's CPU is other processes' too, and what slows "
        "trading, the engine's loop lag, has its own critical level).",
    )
    mem_warn_pct: float = Field(80, gt=0, le=100, description="System memory warning.")
    mem_crit_pct: float = Field(95, gt=0, le=100, description="System memory critical.")
    disk_warn_pct: float = Field(85, gt=0, le=100, description="Journal disk warning.")
    disk_crit_pct: float = Field(95, gt=0, le=100, description="Journal disk critical.")
    loop_lag_warn_ms: float = Field(100, gt=0, description="Event-loop lag warning.")
    loop_lag_crit_ms: float = Field(500, gt=0, description="Event-loop lag critical.")
    market_data_stale_s: float = Field(15, gt=0, description="Market data older than this is STALLED.")
    heartbeat_stale_s: float = Field(3, gt=0, description="Engine heartbeat older than this is STALLED.")
    sample_interval_s: float = Field(1.0, gt=0, le=60, description="How often health is sampled.")
    process_rss_warn_mb: float | None = Field(None, gt=0, description="Process memory (RSS) warning.")
    process_rss_crit_mb: float | None = Field(None, gt=0, description="Process memory (RSS) critical.")
    journal_queue_warn: int = Field(10_000, gt=0, description="Journal events waiting to be written: warning.")
    journal_queue_crit: int = Field(50_000, gt=0, description="Journal events waiting to be written: critical.")
    broker_rtt_warn_ms: float = Field(1_000, gt=0, description="Broker round trip (current-time request) warning.")
    broker_rtt_crit_ms: float = Field(5_000, gt=0, description="Broker round trip critical.")
    broker_rtt_interval_s: float = Field(10, gt=0, le=600, description="How often the broker round trip is measured.")
    hysteresis_pct: float = Field(
        5, ge=0, le=50, description="A level clears only when the value falls this percent below its threshold."
    )
    alert_after_s: float = Field(
        5, ge=0, le=600,
        description="A level alerts once it has held this long (the pane colours at once; a loop freeze at "
        "loop_lag_crit_ms alerts at once).",
    )
    cpu_alert_after_s: float = Field(
        60, ge=0, le=3600,
        description="The system CPU's alert_after_s: a level alerts once it has held this long, and its end once the "
        "CPU has stayed this long under the limit by hysteresis_pct (a busy machine swings every few seconds).",
    )

    @model_validator(mode="after")
    def _warn_below_crit(self) -> HealthSettings:
        """A warning above its critical limit would never be shown or said: the value is critical first."""
        for metric in ("cpu_{}_pct", "mem_{}_pct", "disk_{}_pct", "loop_lag_{}_ms", "process_rss_{}_mb",
                       "journal_queue_{}", "broker_rtt_{}_ms"):
            warn, crit = getattr(self, metric.format("warn")), getattr(self, metric.format("crit"))
            if warn is not None and crit is not None and warn > crit:
                raise ValueError(f"{metric.format('warn')} ({warn:g}) is above {metric.format('crit')} ({crit:g})")
        return self


class ScheduleSettings(Section):
    """The trading calendar and the IB Gateway's daily restart."""

    gateway_restart: Annotated[str | None, OffWhenEmpty] = Field(
        "23:45", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description=f"Daily IB Gateway restart time HH:MM in gateway_restart_zone ({OFF}: no restart window; off "
        "in --sim: the embedded simulator never restarts).",
    )
    gateway_restart_zone: str = Field("America/New_York", description="Time zone of the restart time.")
    restart_duration_min: float = Field(15, gt=0, le=240, description="How long the restart window lasts.")
    reduce_before_restart_min: Annotated[float | None, OffWhenEmpty] = Field(
        10, ge=0, description=f"Go REDUCING this many minutes before the restart ({OFF}: never)."
    )
    reduce_before_close_min: Annotated[float | None, OffWhenEmpty] = Field(
        10, ge=0, description=f"Go REDUCING this many minutes before the close ({OFF}: never; off in --sim)."
    )
    flatten_before_close_min: float | None = Field(
        None, ge=0, description="Close all positions this many minutes before the close, tried again every 30 s "
                                "until flat or the close; not while trading is HALTED (unset: off; off in --sim)."
    )
    use_liquid_hours: bool = Field(True, description="The close is the end of liquid hours, not of trading hours.")
    daily_summary: bool = Field(
        True, description="Journal and send a daily summary at the day's last session close, once per trading day "
                          "(missed while the engine was stopped: sent late on its next start).",
    )

    @model_validator(mode="after")
    def _known_zone(self) -> ScheduleSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.gateway_restart_zone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder of zones ("America")
            raise ValueError(f"unknown time zone {self.gateway_restart_zone!r}") from exc
        return self


class UISettings(Section):
    """The console."""

    refresh_hz: float = Field(4, ge=1, le=10, description="Snapshot refresh rate of the panes (4-10 Hz).")
    theme: str = Field("textual-dark", description="Textual theme name.")
    engine_in_process: bool = Field(
        False, description="Run the engine in the console's process (default: a child process, so drawing the "
        "panes never delays the engine).",
    )


class SimSettings(Section):
    """The embedded IB Gateway simulator used by --sim."""

    host: str = Field("127.0.0.1", description="Listen address (loopback only).")
    port: int = Field(SIM_DEFAULT_PORT, ge=0, le=65535, description="Listen port (0: any free port).")
    seed: int = Field(7, description="Market model seed: the same seed gives the same prices.")
    symbols: list[str] | None = Field(None, description="Instruments offered (unset: the built-in set).")
    speed: float = Field(1.0, gt=0, le=1000, description="Market time per wall-clock second.")
    data_path: Path | None = Field(None, description="CSV/Parquet bars to replay instead of the model.")
    state_path: Path | None = Field(None, description="Persist account, orders and executions here "
                                    "(unset: beside the journal, so its world goes on from run to run).")
    live_account: bool = Field(False, description="Present a non-paper account id (tests the paper guard).")

    @model_validator(mode="after")
    def _not_an_ib_port(self) -> SimSettings:
        if self.port in (4001, 4002, 7496, 7497):
            raise ValueError(f"port {self.port} is one of IB's; the simulator must not pose as a real gateway")
        return self


