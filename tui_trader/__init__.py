"""tui-trader: a terminal operator console for automated trading on Interactive Brokers."""

__version__ = "0.1.0"
