"""How messages show a list of names: the first few, then how many more.

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
