"""The simulator's instrument database: liquid US stocks and ETFs with IB-like contract details."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

EXCHANGE_TZ_ID = "US/Eastern"
EXCHANGE_TZ = ZoneInfo(EXCHANGE_TZ_ID)
RTH_OPEN = time(9, 30)
RTH_CLOSE = time(16, 0)
EXT_OPEN = time(4, 0)
EXT_CLOSE = time(20, 0)
ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GAT,GTC,GTD,LIT,LMT,MIT,"
    "MKT,MTL,OCA,REL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,WHATIF"
)
VALID_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,LTSE,MEMX,PEARL"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable instrument and the parameters of its synthetic price process.

    Attributes:
        symbol: IB symbol, e.g. ``AAPL``.
        con_id: IB contract id (the real one for the listed stocks and ETFs).
        primary_exchange: listing exchange (``NASDAQ``, ``NYSE``, ``ARCA``).
        long_name: IB's long name.
        price: starting mid price of the synthetic model.
        vol: annualised volatility of the random walk.
        industry: IB industry.
        category: IB category.
        stock_type: ``COMMON`` or ``ETF``.
        min_tick: price increment.
        currency: trading currency.
    """

    symbol: str
    con_id: int
    primary_exchange: str
    long_name: str
    price: float
    vol: float
    industry: str
    category: str
    stock_type: str = "COMMON"
    min_tick: float = 0.01
    currency: str = "USD"


_BUILTIN = (
    Instrument("AAPL", 265598, "NASDAQ", "APPLE INC", 185.0, 0.25, "Technology", "Computers"),
    Instrument("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", 410.0, 0.24, "Technology", "Software"),
    Instrument("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", 175.0, 0.32, "Communications", "Internet"),
    Instrument("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", 140.0, 0.28, "Communications", "Internet"),
    Instrument("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", 490.0, 0.38, "Communications",
               "Internet"),
    Instrument("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", 850.0, 0.50, "Technology", "Semiconductors"),
    Instrument("TSLA", 76792991, "NASDAQ", "TESLA INC", 180.0, 0.55, "Consumer, Cyclical", "Auto Manufacturers"),
    Instrument("AMD", 4391, "NASDAQ", "ADVANCED MICRO DEVICES", 200.0, 0.50, "Technology", "Semiconductors"),
    Instrument("INTC", 270639, "NASDAQ", "INTEL CORP", 43.0, 0.35, "Technology", "Semiconductors"),
    Instrument("NFLX", 15124833, "NASDAQ", "NETFLIX INC", 600.0, 0.40, "Communications", "Internet"),
    Instrument("JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO", 185.0, 0.22, "Financial", "Banks"),
    Instrument("BAC", 10098, "NYSE", "BANK OF AMERICA CORP", 34.0, 0.27, "Financial", "Banks"),
    Instrument("XOM", 13977, "NYSE", "EXXON MOBIL CORP", 105.0, 0.25, "Energy", "Oil&Gas"),
    Instrument("KO", 8894, "NYSE", "COCA-COLA CO/THE", 60.0, 0.15, "Consumer, Non-cyclical", "Beverages"),
    Instrument("DIS", 6459, "NYSE", "WALT DISNEY CO/THE", 110.0, 0.28, "Communications", "Media"),
    Instrument("WMT", 13824, "NYSE", "WALMART INC", 60.0, 0.18, "Consumer, Cyclical", "Retail"),
    Instrument("JNJ", 8719, "NYSE", "JOHNSON & JOHNSON", 158.0, 0.16, "Consumer, Non-cyclical",
               "Pharmaceuticals"),
    Instrument("V", 49462172, "NYSE", "VISA INC-CLASS A SHARES", 280.0, 0.20, "Financial",
               "Diversified Finan Serv"),
    Instrument("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", 510.0, 0.14, "Funds", "Equity Fund", "ETF"),
    Instrument("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", 440.0, 0.18, "Funds", "Equity Fund",
               "ETF"),
    Instrument("IWM", 9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", 205.0, 0.20, "Funds", "Equity Fund", "ETF"),
    Instrument("DIA", 73128548, "ARCA", "SPDR DJIA TRUST", 390.0, 0.13, "Funds", "Equity Fund", "ETF"),
    Instrument("GLD", 51529211, "ARCA", "SPDR GOLD SHARES", 200.0, 0.13, "Funds", "Commodity Fund", "ETF"),
    Instrument("TLT", 15547841, "NASDAQ", "ISHARES 20+ YEAR TREASURY BO", 94.0, 0.16, "Funds", "Debt Fund",
               "ETF"),
    Instrument("XLF", 4215220, "ARCA", "FINANCIAL SELECT SECTOR SPDR", 41.0, 0.18, "Funds", "Equity Fund",
               "ETF"),
)


class InstrumentDb:
    """Look-up of instruments by symbol and by conId."""

    def __init__(self, symbols: list[str] | None = None) -> None:
        """Select the built-in instruments.

        Args:
            symbols: symbols to keep (``None`` keeps all built-ins); ``SYN1`` … ``SYN999`` add synthetic
                instruments (for runs over many symbols); other unknown symbols raise ``KeyError``.
        """
        by_symbol = {i.symbol: i for i in _BUILTIN}
        chosen = [by_symbol.get(s.upper()) or synthetic(s) for s in symbols] if symbols else list(_BUILTIN)
        self._by_symbol = {i.symbol: i for i in chosen}
        self._by_con_id = {i.con_id: i for i in chosen}

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)

    def by_symbol(self, symbol: str) -> Instrument | None:
        """The instrument with this symbol, if any."""
        return self._by_symbol.get(symbol.upper())

    def by_con_id(self, con_id: int) -> Instrument | None:
        """The instrument with this conId, if any."""
        return self._by_con_id.get(con_id)

    def resolve(self, con_id: int, symbol: str, sec_type: str = "", currency: str = "") -> Instrument | None:
        """Resolve a request's contract: by conId when set, else by symbol; filters must match."""
        inst = self.by_con_id(con_id) if con_id else self.by_symbol(symbol)
        if inst is None or (symbol and inst.symbol != symbol.upper()):
            return None
        if sec_type not in ("", "STK") or currency not in ("", inst.currency):
            return None
        return inst


SYNTHETIC_PREFIX = "SYN"
SYNTHETIC_CON_ID_BASE = 900_000_000


def synthetic(symbol: str) -> Instrument:
    """A synthetic instrument ``SYN<n>`` (1 ≤ n ≤ 999) with deterministic parameters.

    Raises:
        KeyError: for any other symbol.
    """
    name = symbol.upper()
    number = name.removeprefix(SYNTHETIC_PREFIX)
    if not name.startswith(SYNTHETIC_PREFIX) or not number.isdigit() or not 1 <= int(number) <= 999:
        raise KeyError(symbol)
    n = int(number)
    return Instrument(name, SYNTHETIC_CON_ID_BASE + n, "NASDAQ", f"SYNTHETIC STOCK {n}", 20.0 + (n * 37) % 480,
                      0.15 + (n % 8) * 0.05, "Synthetic", "Synthetic")


def synthetic_symbols(count: int) -> list[str]:
    """``SYN1`` … ``SYN<count>``."""
    return [f"{SYNTHETIC_PREFIX}{n}" for n in range(1, count + 1)]


def builtin_symbols() -> list[str]:
    """Symbols of every built-in instrument."""
    return [i.symbol for i in _BUILTIN]


def is_trading_day(day: date) -> bool:
    """Weekdays trade (the simulator knows no holidays)."""
    return day.weekday() < 5


def in_session(moment: datetime, rth: bool) -> bool:
    """Whether the exchange session (regular, or extended 04:00-20:00) is open at ``moment``."""
    local = moment.astimezone(EXCHANGE_TZ)
    if not is_trading_day(local.date()):
        return False
    start, end = (RTH_OPEN, RTH_CLOSE) if rth else (EXT_OPEN, EXT_CLOSE)
    return start <= local.time() < end


def session_hours(today: date, rth: bool, days: int = 7) -> str:
    """IB ``tradingHours``/``liquidHours`` text for the days starting at ``today``."""
    start, end = (RTH_OPEN, RTH_CLOSE) if rth else (EXT_OPEN, EXT_CLOSE)
    parts = []
    for offset in range(days):
        d = today + timedelta(days=offset)
        ds = d.strftime("%Y%m%d")
        if is_trading_day(d):
            parts.append(f"{ds}:{start:%H%M}-{ds}:{end:%H%M}")
        else:
            parts.append(f"{ds}:CLOSED")
    return ";".join(parts)
