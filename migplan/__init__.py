"""migplan: latency-aware data-center migration wave planning."""

__version__ = "0.1.0"
