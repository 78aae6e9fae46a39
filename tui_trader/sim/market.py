"""The live market model: per-symbol quotes and trades from a seeded random walk or a replay."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime

from tui_trader.sim.instruments import EXCHANGE_TZ, Instrument, in_session

SECONDS_PER_YEAR = 252 * 6.5 * 3600
STEP_SECONDS = 0.25
"""Model granularity in simulated seconds: each step may move the quote and print a trade."""


@dataclass(slots=True)
class Quote:
    """The mutable market state of one instrument (what ``reqMktData`` streams)."""

    inst: Instrument
    mid: float
    bid: float = 0.0
    ask: float = 0.0
    bid_size: int = 100
    ask_size: int = 100
    last: float = 0.0
    last_size: int = 0
    volume: int = 0
    open: float = math.nan
    high: float = math.nan
    low: float = math.nan
    close: float = math.nan
    last_time: int = 0
    halted: bool = False
    day: date | None = None
    traded: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def round_tick(self, price: float) -> float:
        """Round a price to the instrument's tick grid."""
        tick = self.inst.min_tick
        return round(round(price / tick) * tick, 6)

    def set_mid(self, mid: float, spread_ticks: int = 1) -> None:
        """Move the quote around ``mid`` with a spread of at least one tick (bid < ask)."""
        tick = self.inst.min_tick
        self.mid = max(mid, tick * 10)
        self.bid = round(math.floor((self.mid - spread_ticks * tick / 2) / tick + 1e-9) * tick, 6)
        self.ask = round(self.bid + max(1, spread_ticks) * tick, 6)

    def print_trade(self, price: float, size: int, epoch: int) -> None:
        """Record a trade: last, size, cumulative volume and the day's range."""
        self.last, self.last_size, self.last_time, self.traded = price, size, epoch, True
        self.volume += size
        if math.isnan(self.open):
            self.open = self.high = self.low = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)


def volume_profile(moment: datetime) -> float:
    """Relative trading intensity: U-shaped over regular hours, thin in extended hours, 0 when closed."""
    if not in_session(moment, rth=False):
        return 0.0
    if not in_session(moment, rth=True):
        return 0.1
    local = moment.astimezone(EXCHANGE_TZ)
    x = ((local.hour - 9.5) * 3600 + local.minute * 60 + local.second) / (6.5 * 3600)
    return 0.5 + 6.0 * (x - 0.5) ** 2


class MarketModel:
    """Seeded random walk with drift, volatility and an intraday volume profile.

    The same seed and start time give the same prices, whatever is subscribed.
    """

    def __init__(self, instruments: list[Instrument], seed: int, drift: float = 0.03,
                 always_open: bool = False) -> None:
        """Create a quote per instrument, its start price perturbed by the seed."""
        self.seed = seed
        self.drift = drift
        self.always_open = always_open
        self.quotes: dict[int, Quote] = {}
        for inst in instruments:
            rng = random.Random(f"{seed}:{inst.symbol}")
            quote = Quote(inst=inst, mid=inst.price, rng=rng)
            quote.set_mid(inst.price * math.exp(0.05 * rng.gauss(0.0, 1.0)))
            quote.last = quote.close = quote.round_tick(quote.mid)
            self.quotes[inst.con_id] = quote

    def intensity(self, moment: datetime) -> float:
        """Volume profile, or a flat 1.0 when the simulator trades around the clock."""
        return 1.0 if self.always_open else volume_profile(moment)

    @staticmethod
    def roll_day(quote: Quote, today: date) -> None:
        """Reset the day's open/high/low/volume at the first step of a new exchange day."""
        if quote.day != today:
            if quote.day is not None:
                quote.close = quote.last
            quote.day = today
            quote.volume = 0
            quote.open = quote.high = quote.low = math.nan

    def step(self, quote: Quote, dt: float, intensity: float, epoch: int) -> None:
        """Advance one instrument by ``dt`` simulated seconds at a given trading ``intensity``."""
        quote.traded = False
        if intensity <= 0.0 or quote.halted:
            return
        rng = quote.rng
        sigma = quote.inst.vol * math.sqrt(dt / SECONDS_PER_YEAR) * math.sqrt(intensity)
        mid = quote.mid * math.exp(self.drift * dt / SECONDS_PER_YEAR + sigma * rng.gauss(0.0, 1.0))
        quote.set_mid(mid, self.spread_ticks(quote, rng))
        lots = max(1, int(intensity * 4))
        quote.bid_size = 100 * rng.randint(1, lots + 2)
        quote.ask_size = 100 * rng.randint(1, lots + 2)
        if rng.random() < min(0.9, 0.45 * intensity):
            price = quote.ask if rng.random() < 0.5 else quote.bid
            quote.print_trade(price, 100 * rng.randint(1, lots), epoch)

    @staticmethod
    def spread_ticks(quote: Quote, rng: random.Random) -> int:
        """Spread in ticks: wider for expensive names, sometimes one tick wider."""
        base = max(1, round(quote.mid * 0.00003 / quote.inst.min_tick))
        return base + (1 if rng.random() < 0.25 else 0)

    def set_price(self, con_id: int, price: float, epoch: int) -> Quote:
        """Force the price: a trade prints at ``price`` (rounded), bid one tick below, ask one above."""
        quote = self.quotes[con_id]
        tick = quote.inst.min_tick
        rounded = max(quote.round_tick(price), 2 * tick)
        quote.mid = rounded
        quote.bid = round(rounded - tick, 6)
        quote.ask = round(rounded + tick, 6)
        quote.print_trade(rounded, 100, epoch)
        return quote

    def set_quote(self, con_id: int, bid: float, ask: float, bid_size: int, ask_size: int) -> Quote:
        """Force an exact quote (tests use it to pin the touch and displayed sizes)."""
        if bid > ask:
            raise ValueError("bid above ask")
        quote = self.quotes[con_id]
        quote.bid, quote.ask = quote.round_tick(bid), quote.round_tick(ask)
        quote.bid_size, quote.ask_size = max(1, bid_size), max(1, ask_size)
        quote.mid = (quote.bid + quote.ask) / 2
        return quote
