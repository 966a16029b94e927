"""How messages show lists and amounts (``migplan.text``)."""

from __future__ import annotations

import pytest

from migplan.text import amount, listing


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0"),
        (1234.4, "1,234"),
        (0.5, "0.5"),
        (3.287e-299, "3.29e-299"),
        (-0.25, "-0.25"),
        (7.3e16, "73,000,000,000,000,000"),
    ],
)
def test_amounts_below_one_keep_their_digits(value: float, shown: str) -> None:
    """Regression (hostile-input audit M7): QPS of 1e-300 printed "objective 0 (gap <= 32.6 %)"."""
    assert amount(value) == shown


def test_listing_cuts_after_the_first_names() -> None:
    assert listing(["a", "b", "c"], show=2) == "a, b and 1 more"
    assert listing(["a"], show=2, total=3001) == "a and 3,000 more"
