"""Day-scale decline test: a product whose sales slide 60 % over three days.

The level tracks such a slide (it is meant to follow slow change), so the short
windows never see more than a few percent per bucket. This test compares the last
day of sales (an exponentially weighted sum with a one-day time constant) with what
the *reference* level would have sold in the same slots. The reference is built from
whole days, not from the level: each local day that is over leaves its own level,
its (winsorised) sales divided by the seasonal factors of the buckets they came
from, and the reference is the mean of the last ``DAYS`` such day levels without
the highest and the lowest (a trimmed mean; issue 14). Two weeks of whole days give
a steadier reference than the level at a few midnights, and a slide that has begun
two days ago moves it by about one per cent: it does not follow the decline itself.
A trimmed mean of two weeks lags a trend by a week, so the reference is carried forward
along the trend: a long level (day levels weighted by ``LONG_ALPHA`` a day, about three
weeks' memory) against the trimmed mean gives the slope per day over the gap of their
mean ages, and the reference moves by ``TREND_SHARE`` of that slope from its own mean age
to the current day (at most ``TREND_CLIP``; only once the long level is at least twice as
old as the reference, after about six weeks of days). A slide's first days barely move
it: the trimmed mean leaves out the lowest day.
Only drops count, and a day's level is allowed ``decline_noise`` of relative
uncertainty on top of the count noise, so paydays, weekdays and ordinary ups and
downs stay quiet.

Counts also sum their shortfall over a stretch that starts where the slide began, as
an oracle that knew the start would (issue 14): a Poisson CUSUM for a rate of ``RHO``
times the reference picks the start (it restarts when it falls back to zero or after
``MAX_HOURS``) and the counts since then are tested against the reference's sum, with
``STRETCH_NOISE`` of relative uncertainty. The stronger of the two is the evidence,
paying for two tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .runs import advance
from .settings import Settings

if TYPE_CHECKING:
    from .bank import Slots
    from .learn import Expect

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: whole days the reference is taken from
DAYS = 14
#: weight of each new day level in the long level the reference's trend is measured against,
#: the share of the measured trend the reference is carried along (a slope between two noisy
#: levels ten days apart; all of it raised the strongest decline score outside incidents on
#: the tuning seeds from 70 to 80, half left it at 70), and the most it moves the reference
LONG_ALPHA = 0.05
TREND_SHARE = 0.5
TREND_CLIP = 0.15
#: mean age in days of the ring's day levels (the newest is 0) and of the current day
_REF_AGE = (DAYS - 1) / 2.0
_AHEAD = _REF_AGE + 1.0
_LOG_KEEP = float(np.log(1.0 - LONG_ALPHA))
#: days the reference needs before the test runs
MIN_DAYS = 3
#: share of a day's buckets that must have been seen for the day to count
FULL_DAY = 0.75
#: rate ratio the stretch's CUSUM looks for, its longest stretch in hours and the relative
#: uncertainty of the reference over it (the start is chosen where the counts look low,
#: so the stretch is allowed more than the day sums)
RHO = 0.6
MAX_HOURS = 96.0
STRETCH_NOISE = 0.02
#: orders a day below which the stretch does not run: a full 60 % slide of such a product
#: does not reach critical within ``MAX_HOURS`` (about 0.75 sqrt(orders a day) sigma), so
#: there it could only add false alerts (a launch's hype fading on a product selling a few a day)
STRETCH_MIN_DAY = 50.0
#: the stronger of two tests: Bonferroni
TWO = float(np.log10(2.0))
_LOG_RHO = float(np.log(RHO))
#: midnight levels a version-4 state file kept (the test's reference before whole days)
OLD_SNAPSHOTS = 7


def layout() -> list[tuple[str, Any, tuple[int, ...], float]]:
    # the EW sums (counts, expectation, variance), the reference, this day's sums (counts,
    # seasonal factors, buckets) and the ring of day levels with its next position
    return [
        ("dx", np.float64, (), 0.0), ("de", np.float64, (), 0.0), ("dv", np.float64, (), 0.0),
        ("dref", np.float64, (), 0.0), ("dsum", np.float64, (3,), 0.0),
        ("dlev", np.float32, (DAYS,), np.nan), ("dpos", np.int32, (), 0),
        ("drun", np.float64, (5,), 0.0),  # the stretch: CUSUM, counts, expectation, variance, buckets
        ("dlong", np.float64, (2,), 0.0),  # the long level's weighted sum of day levels and its weight
    ]


def migrate(arrays: dict[str, npt.NDArray[Any]], saved: Any, n: int) -> None:
    """A version-4 state file kept the level at the last seven midnights instead of day
    levels: they stand in for the first seven days, so the test goes on after an upgrade."""
    if "dlev" in saved.files or "snap" not in saved.files:
        return
    snap = np.asarray(saved["snap"], dtype=np.float32)[:n]
    taken = np.minimum(np.asarray(saved["snap_n"])[:n], OLD_SNAPSHOTS)
    have = np.arange(OLD_SNAPSHOTS)[None, :] < taken[:, None]
    arrays["dlev"][:n, :OLD_SNAPSHOTS] = np.where(have, snap, np.nan)
    arrays["dpos"][:n] = taken % DAYS


def _trimmed_mean(lev: npt.NDArray[np.float32]) -> FloatArray:
    """Mean of each row's day levels (NaN: none) without its highest and lowest once there
    are five; NaN with fewer than ``MIN_DAYS``."""
    ok = ~np.isnan(lev)
    n = ok.sum(axis=1)
    v = np.where(ok, lev, 0.0).astype(np.float64)
    total = v.sum(axis=1)
    trim = n >= 5
    hi = np.where(ok, lev, -np.inf).max(axis=1)
    lo = np.where(ok, lev, np.inf).min(axis=1)
    total = total - np.where(trim, hi, 0.0) - np.where(trim, lo, 0.0)
    out: FloatArray = np.where(n >= MIN_DAYS, total / np.maximum(n - 2 * trim, 1), np.nan)
    return out


def _carried(ref: FloatArray, lg: FloatArray) -> FloatArray:
    """The reference carried from its mean age to the current day along the trend that the long
    level ``lg`` (weighted sum, weight) shows against it; unchanged while the long level is young."""
    w = lg[:, 1]
    q = np.maximum(1.0 - w, 1e-12)
    # mean age of exponentially weighted days, n = log(1 - w) / log(1 - alpha) of them
    age = (1.0 - LONG_ALPHA) / LONG_ALPHA - np.log(q) / _LOG_KEEP * q / np.maximum(w, 1e-12)
    old = (age >= 2.0 * _REF_AGE) & (ref > 0.0)
    long = lg[:, 0] / np.maximum(w, 1e-12)
    per_day = (ref - long) / np.maximum(age - _REF_AGE, 1.0)
    g = np.clip(1.0 + TREND_SHARE * per_day * _AHEAD / np.maximum(ref, 1e-12), 1.0 - TREND_CLIP, 1.0 + TREND_CLIP)
    out: FloatArray = np.where(old, ref * g, ref)
    return out


def step(A: dict[str, npt.NDArray[Any]], idx: IntArray, s: Settings, sl: Slots, x: FloatArray,
         e: Expect, scored: BoolArray, excluded: BoolArray) -> tuple[BoolArray, FloatArray]:
    """Update the day sums and the stretch with this point; return which points were tested
    and their evidence, the stronger z of the two tests (the caller turns it into a surprise
    together with its other evidence, and :func:`paid` makes it pay for the two tests)."""
    none = (np.zeros(idx.size, dtype=bool), np.zeros(0))
    if s.decline_noise <= 0:
        return none
    plain = ~e.is_ratio
    if sl.day_start:  # the day that just ended leaves its level in the ring
        di = idx[plain]
        sums = A["dsum"][di]
        done = sums[:, 2] >= FULL_DAY * s.buckets_per_day
        if done.any():
            ti = di[done]
            pos = A["dpos"][ti]
            lev = sums[done, 0] / np.maximum(sums[done, 1], 1e-9)
            A["dlev"][ti, pos] = lev.astype(np.float32)
            A["dpos"][ti] = (pos + 1) % DAYS
            lg = A["dlong"][ti] * (1.0 - LONG_ALPHA)
            lg[:, 0] += LONG_ALPHA * lev
            lg[:, 1] += LONG_ALPHA
            A["dlong"][ti] = lg
            A["dref"][ti] = _carried(np.nan_to_num(_trimmed_mean(A["dlev"][ti])), lg)
        A["dsum"][di] = 0.0
    # this day's sales (winsorised: one spike must not lift a day) against its seasonal factors
    take = plain & ~excluded & ~e.first
    if take.any():
        cap = e.exp_q + 4.0 * e.sd_q + 1.0
        ti = idx[take]
        add = np.empty((ti.size, 3))
        add[:, 0] = np.minimum(x, cap)[take]
        add[:, 1] = e.season[take]
        add[:, 2] = 1.0
        A["dsum"][ti] += add
    ready = plain & scored & (A["dref"][idx] > 0)
    if not ready.any():
        return none
    ri = idx[ready]
    ref = A["dref"][ri]
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
    z_run = _stretch(A, ri, s, xd, mu, var, count & (ref * s.buckets_per_day >= STRETCH_MIN_DAY))
    return ready, np.maximum(z, z_run)


def paid(ready: BoolArray, surprise: FloatArray) -> FloatArray:
    """The decline evidence of every point as a surprise (``-log10 p``; 0 where not tested),
    paying for its two tests; ``surprise``: that of the tested points' z from :func:`step`."""
    out = np.zeros(ready.size)
    out[ready] = np.maximum(surprise - TWO, 0.0)
    return out


def _stretch(A: dict[str, npt.NDArray[Any]], ri: IntArray, s: Settings, xd: FloatArray, mu: FloatArray,
             var: FloatArray, count: BoolArray) -> FloatArray:
    """Advance the counts' stretch and return its shortfall as a z (0 without a stretch)."""
    st = A["drun"][ri]  # the CUSUM and the sums: counts, expectation, variance, buckets
    new = np.empty_like(st)
    live = advance(st, new, xd, None, mu, var, count, st[:, 4] * s.hours >= MAX_HOURS, RHO, _LOG_RHO)
    A["drun"][ri] = new * live[:, None]
    a, b, v = new[:, 1], new[:, 2], new[:, 3]
    z: FloatArray = np.where(live, (b - a) / np.sqrt(np.maximum(v, 1e-9) + (STRETCH_NOISE * b) ** 2), 0.0)
    return z
