"""How messages show a list of names (the first few, then how many more) and an amount.

One place, so every message cuts long lists the same way (30,000 unknown app names in one
constraint once made a 698 KB line).
"""

from __future__ import annotations

from collections.abc import Iterable


def listing(items: Iterable[str], show: int = 5, total: int | None = None) -> str:
    """'a, b, c and 4 more' (thousands separators in the count); ``total``: how many items
    there are when ``items`` holds only the first ones."""
    items = list(items)
    count = len(items) if total is None else total
    head = ", ".join(items[:show])
    return head + (f" and {count - min(show, len(items)):,} more" if count > show else "")


def amount(x: float) -> str:
    """A cost or objective in a summary: whole units with thousands separators, and three
    significant digits below 1, where whole units read 0 (QPS of 1e-300 printed "objective 0
    (gap <= 32.6 %)", a gap on nothing)."""
    return f"{x:.3g}" if 0 < abs(x) < 1 else f"{x:,.0f}"
