"""Evidence summed over an adaptive stretch of buckets, for counts (sparse products).

The fixed windows (1, 3, 6, 12 buckets) test a product selling two an hour that sells
17 in two hours against a three-bucket window that dilutes it, and a run of zeros that
started five buckets ago against six. Here a Poisson CUSUM per direction picks the
start: it grows while the counts fit ``rho`` times the expected rate better than the
expected rate itself (``x log rho - mu (rho - 1)`` per bucket) and the stretch restarts
whenever it falls back to zero. The counts, expectations and variances since the start
are summed, and the sum is tested against the negative binomial of the sum like a
window, so the score keeps its meaning. Upwards ``rho`` is 3 (a product tripling), downwards
0.2 (a product selling next to nothing: for zeros the test is the probability of the
whole run of zeros).

State: four numbers per direction. Only count series run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import mathutil as mu_
from .settings import Settings

if TYPE_CHECKING:
    from .learn import Expect

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: rate ratios the two CUSUMs look for (up, down)
RHO = np.array([3.0, 0.2])
#: longest stretch in buckets (a longer shortfall is the decline test's to judge)
MAX_RUN = 24
#: share of the level's own learning noise counted as uncertainty of a stretch's expectation
REL_C = 0.25
#: relative variance of a seasonal factor learned from one visit of its slot
SEASON_C = 0.05
#: counts an hour a count is expected to sell at least, for the upward tests
UP_FLOOR = 0.1
_LOG_RHO = np.log(RHO)


def up_floor(s: Settings) -> float:
    return UP_FLOOR * s.hours


def floored_z(a: FloatArray, b: FloatArray, v: FloatArray, floor: float | FloatArray) -> FloatArray:
    """Evidence of ``a`` counts against ``b`` expected (variance ``v``), ``b`` taken as at least ``floor``."""
    return mu_.negbin_z(a, np.maximum(b, floor), np.maximum(v, floor))


def layout() -> list[tuple[str, Any, tuple[int, ...], float]]:
    return [("run_c", np.float64, (2,), 0.0), ("run_a", np.float64, (2,), 0.0),
            ("run_b", np.float64, (2,), 0.0), ("run_v", np.float64, (2,), 0.0), ("run_n", np.int16, (2,), 0)]


def step(A: dict[str, npt.NDArray[Any]], idx: IntArray, s: Settings, x: FloatArray, xa: FloatArray, e: Expect,
         scored: BoolArray, visits: IntArray) -> FloatArray:
    """Update both stretches with this point; return the evidence (a z, >= 0) up and down, shape (n, 2)."""
    out = np.zeros((idx.size, 2))
    on = scored & e.is_count
    off = idx[~on]
    for name in ("run_c", "run_a", "run_b", "run_v", "run_n"):
        A[name][off] = 0.0
    if not on.any():
        return out
    oi = idx[on]
    mu = e.exp_q[on, None]
    # the first bucket of a stretch counts in full (the one-bucket test saw it anyway);
    # later ones winsorised, so one huge spike cannot carry the stretch
    c = np.maximum(A["run_c"][oi] + x[on, None] * _LOG_RHO - mu * (RHO - 1.0), 0.0)
    live = c > 0.0
    fresh = (A["run_c"][oi] <= 0.0) | (A["run_n"][oi] >= MAX_RUN)
    obs = np.where(fresh, x[on, None], xa[on, None])
    a = np.where(live, np.where(fresh, 0.0, A["run_a"][oi]) + obs, 0.0)
    b = np.where(live, np.where(fresh, 0.0, A["run_b"][oi]) + mu, 0.0)
    v = np.where(live, np.where(fresh, 0.0, A["run_v"][oi]) + e.var_q[on, None], 0.0)
    n = np.where(live, np.where(fresh, 0, A["run_n"][oi]) + 1, 0)
    A["run_c"][oi], A["run_a"][oi], A["run_b"][oi], A["run_v"][oi], A["run_n"][oi] = c, a, b, v, n
    # the expectation itself is uncertain, by an error every bucket of a stretch shares: a
    # level learned at rate alpha from counts of mean ``base`` a bucket is off by about
    # sqrt(alpha / (2 (base + 0.5))) of itself, and a seasonal slot seen ``visits`` times (an
    # hour slot of sub-hour buckets: counted in hours) by
    # about sqrt(SEASON_C / (visits + 1)), so a long stretch is judged by both
    rel2 = REL_C * s.per_bucket(s.level_alpha) / (2.0 * (e.base[on, None] + 0.5)) + SEASON_C / (visits[on, None] * min(1.0, s.hours) + 1.0)
    v = np.maximum(v + rel2 * b * b, 1e-12)
    z_up = floored_z(a[:, 0], b[:, 0], v[:, 0], up_floor(s) * n[:, 0])
    z_dn = -mu_.negbin_z(a[:, 1], b[:, 1], v[:, 1])
    out[on] = np.where(live, np.maximum(np.stack([z_up, z_dn], axis=1), 0.0), 0.0)
    return out
