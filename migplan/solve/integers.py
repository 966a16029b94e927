"""The one float -> int conversion of the solvers (CP-SAT and the partitioner take integers).

Loads, coefficients and call weights are scaled and rounded so that an integer plan
that fits is a real plan that fits: "up" for loads and coefficients, "down" for
capacities and budgets, "nearest" for objective weights.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from migplan.model import IntArray

Rounding = Literal["up", "down", "nearest"]
TOLERANCE = 1e-6  # after scaling: float noise must not turn an exact 30 ms call into 31


def scaled(values: npt.ArrayLike, scale: float, rounding: Rounding) -> IntArray:
    """``values`` x ``scale`` rounded as asked; within TOLERANCE of an integer counts as it."""
    v = np.asarray(values, dtype=np.float64) * scale
    if rounding == "up":
        out = np.ceil(v - TOLERANCE)
    elif rounding == "down":
        out = np.floor(v + TOLERANCE)
    else:
        out = np.rint(v)
    return out.astype(np.int64)


def roundings(relaxed: bool) -> tuple[Rounding, Rounding]:
    """(rounding for loads and coefficients, for capacities and budgets): ("up", "down") for a
    safe model, the other way round for a relaxed one (``cpsat.relaxed_problem``)."""
    return ("down", "up") if relaxed else ("up", "down")
