"""An empty wave moved beside a full one: the waves in between shift by one, no cut changes.

Why: chatty cost grows with |w(u) - w(v)|, so good plans pack the estate into as few waves
as capacity allows and leave the last ones empty.  A wave one app over its capacity then
has full waves on both sides, and every move out of it splits calls that budgets forbid.
On a generated 600-app estate at 24 waves (seed 2) the repair ended one app over in wave
6 (46 of 45) after 60 s of failed steps, with waves 18-24 empty.

The move.  With wave j full and wave e empty (e > j), every block in waves j+1..e-1 moves
one wave later, so wave j+1 is empty and the blocks of wave j may spill into it.  Every
period's moved set is one of the old ones (period j's is repeated, period e-1's was
already repeated, as wave e was empty), so no latency row, link limit, ``before``,
``apart`` or ``callees_first`` rule changes state; only loads land on waves with other
capacities, and pins and windows may refuse the move (then it is not offered).  The
chatty cost changes by cut(period j) - cut(period e-1).  The same holds mirrored for an
empty wave e < j (waves e+1..j-1 one wave earlier, wave j-1 empty).
"""

from __future__ import annotations

import numpy as np

from migplan.model import IntArray
from migplan.solve.cpsat import Problem


def open_beside(problem: Problem, waves: IntArray, full: int) -> tuple[IntArray, tuple[int, int]] | None:
    """(shifted plan, the two waves: ``full`` and the emptied one beside it), towards the
    nearest empty wave whose shift every moved block's range allows (a later one on a tie:
    ramp-ups grow later); None without one."""
    used = np.bincount(waves, minlength=problem.K + 1)[1:] > 0
    empty = np.flatnonzero(~used) + 1
    for e in sorted(empty.tolist(), key=lambda e: (abs(e - full), -e)):
        step = 1 if e > full else -1
        low, high = (full + 1, e - 1) if step == 1 else (e + 1, full - 1)
        moved = np.flatnonzero((waves >= low) & (waves <= high))
        shifted = waves[moved] + step
        if np.all(shifted >= problem.blocks.lo[moved]) and np.all(shifted <= problem.blocks.hi[moved]):
            out = waves.copy()
            out[moved] = shifted
            return out, ((full, full + 1) if step == 1 else (full - 1, full))
    return None
