"""pmws: record Polymarket's public market-data feed for research, verifiably."""

__version__ = "0.1.0"
