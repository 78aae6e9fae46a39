"""Property tests (hypothesis): trading states, in-flight limits, the latched kill switch."""

from __future__ import annotations

from tui_trader.risk import RiskLimits

ALL_ON = RiskLimits(
    max_order_quantity=1_000, max_order_notional=100_000, max_position_notional=200_000,
    max_position_quantity=2_000, max_open_positions=10, max_gross_exposure=2.0, max_leverage=2.0,
    min_cash_fraction=0.1, price_collar_pct=5.0, price_collar_ticks=1_000, max_spread_pct=1.0,
    max_quote_age_s=5.0, max_orders_per_second=10, max_orders_per_minute=100, max_daily_trades=100,
    max_daily_trades_per_strategy=50, duplicate_window_s=2.0, allowed_symbols=("AAPL", "MSFT", "SPY"),
    allowed_order_types=("MKT", "LMT", "STP", "STP LMT"), no_entry_before_close_min=10,
    no_entry_after_open_min=5, require_liquid_hours=True, max_losing_streak=5, cooldown_s=300,
)  # fmt: skip
"""Every pre-trade check switched on, with limits an ordinary order fits inside."""
