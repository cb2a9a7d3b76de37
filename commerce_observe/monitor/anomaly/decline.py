"""Day-scale decline test: a product whose sales slide 60 % over three days.

The level tracks such a slide (it is meant to follow slow change), so the short
windows never see more than a few percent per bucket. This test compares the last
day of sales (an exponentially weighted sum with a one-day time constant) with what
the *reference* level would have sold in the same slots; the reference is the median
of the level's values at the last seven local midnights, so it does not follow the
slide itself until most of a week has gone by. Only drops count, and a day's level
is allowed ``decline_noise`` of relative uncertainty on top of the count noise, so
paydays, weekdays and ordinary ups and downs stay quiet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .settings import Settings

if TYPE_CHECKING:
    from .bank import Slots
    from .learn import Expect

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SNAPSHOTS = 7


def layout() -> list[tuple[str, Any, tuple[int, ...], float]]:
    return [
        ("dx", np.float64, (), 0.0), ("de", np.float64, (), 0.0), ("dv", np.float64, (), 0.0),
        ("snap", np.float32, (SNAPSHOTS,), np.nan), ("snap_n", np.int32, (), 0), ("dref", np.float64, (), 0.0),
    ]


def step(A: dict[str, npt.NDArray[Any]], idx: IntArray, s: Settings, sl: Slots, x: FloatArray,
         e: Expect, scored: BoolArray, excluded: BoolArray) -> FloatArray:
    """Update the day sums with this point and return the decline evidence (a z, >= 0)."""
    out = np.zeros(idx.size)
    if s.decline_noise <= 0:
        return out
    plain = ~e.is_ratio
    if sl.day_start:
        take = plain & ~excluded & ~e.first
        if take.any():
            ti = idx[take]
            pos = A["snap_n"][ti] % SNAPSHOTS
            fresh = A["snap_n"][ti] == 0
            lev = e.base[take].astype(np.float32)
            A["snap"][ti[fresh]] = lev[fresh, None]
            A["snap"][ti, pos] = lev
            A["snap_n"][ti] += 1
            A["dref"][ti] = np.partition(A["snap"][ti], SNAPSHOTS // 2, axis=1)[:, SNAPSHOTS // 2]
    ready = plain & scored & (A["snap_n"][idx] >= 3)
    if not ready.any():
        return out
    ri = idx[ready]
    ref = A["dref"][ri]  # the median, taken when a snapshot is added
    mu = ref * e.season[ready]
    count = e.is_count[ready]
    var = np.where(count, np.maximum(mu, 0.05) + e.k[ready] * mu * mu, e.var_q[ready] * (mu / np.maximum(e.exp_q[ready], 1e-9)) ** 2)
    xd = np.minimum(x[ready], mu + 4.0 * np.sqrt(var) + 1.0)  # a spike cannot hide a decline
    lam = max(0.0, 1.0 - s.hours / s.decline_hours)
    dx = lam * A["dx"][ri] + xd
    de = lam * A["de"][ri] + mu
    dv = lam * lam * A["dv"][ri] + var
    A["dx"][ri], A["de"][ri], A["dv"][ri] = dx, de, dv
    z = (de - dx) / np.sqrt(dv + (s.decline_noise * de) ** 2)
    out[ready] = np.maximum(z, 0.0)
    return out
