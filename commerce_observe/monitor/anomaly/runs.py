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
whole run of zeros). A second upward CUSUM for 8x the rate drains fast enough to restart
between a sparse product's odd sales, so a burst is summed from its own first bucket even
when the 3x stretch still carries a few sales from hours before (issue 14: 4 then 8 sales
on 0.6 expected an hour were tested with the 4 sales of the seven hours before); its later
buckets count in full (it stays short). Up and sharp up are the stronger of two starts, as
down and the run of zeros are: no extra test paid.

After a promotion the downward stretches allow for the demand it pulled forward (issue 14:
"the dip after a promotion"): for ``PROMO_HOURS`` after a calendar event over the series or
after a day, or two, that sold at least ``LIFT`` times the decline test's two-week reference,
significantly so (an unannounced promotion, whose lift the level has partly learned), they expect at most
``1 - PULL_FORWARD`` of the lower of the level and that reference.

State: five numbers per stretch and when the last promotion's allowance ends. Only
count series run it. The decline test's
stretch (:mod:`.decline`) is the same CUSUM (:func:`advance`), one direction at its own
``rho``, its longest stretch in hours, its counts summed as they come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import mathutil
from .settings import Settings

if TYPE_CHECKING:
    from .learn import Expect

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: rate ratios the two CUSUMs look for (up, down)
RHO = np.array([3.0, 0.2, 8.0])
#: the stretches' columns (``A["run"][:, :, k]``): up, down, the run of zeros, sharp up; the
#: CUSUMs (up, down, sharp up: the three ``RHO``) and the upward ones
CUS = [0, 1, 3]
UPS = [0, 3]
#: longest stretch in buckets (a longer shortfall is the decline test's to judge)
MAX_RUN = 24
#: share of the level's own learning noise counted as uncertainty of a stretch's expectation
REL_C = 0.25
#: relative variance of a seasonal factor learned from one visit of its slot
SEASON_C = 0.05
#: counts an hour a count is expected to sell at least, for the upward tests
UP_FLOOR = 0.1
#: hours after a promotion in which the downward stretches allow for pulled-forward demand
PROMO_HOURS = 48
#: share of the expectation the days after a promotion may fall short by (demand pulled forward)
PULL_FORWARD = 0.25
#: a finished day, or the last two, whose level is at least ``LIFT`` times the reference and
#: whose sales are at least ``LIFT_Z`` (Poisson deviance) above the reference's was a promotion
#: (without the z one lucky day of a product selling five a day would be one)
LIFT = 1.5
LIFT_Z = 2.0
_LAST_TWO = np.array([1, 2])
_DAYS = np.array([1.0, 2.0])
_LOG_RHO = np.log(RHO)


def up_floor(s: Settings) -> float:
    return UP_FLOOR * s.hours


def layout() -> list[tuple[str, Any, tuple[int, ...], float]]:
    # per direction (up, down, the run of zeros): the CUSUM (zeros: 1 while live), the
    # stretch's counts, expectation, variance and length
    # when the allowance after a promotion ends
    return [("run", np.float64, (5, 4), 0.0), ("promo_end", np.int64, (), -(2**62))]


def mark_promotions(A: dict[str, npt.NDArray[Any]], idx: IntArray, s: Settings, t: int, day_start: bool,
                    excluded: BoolArray, is_count: BoolArray) -> None:
    """Start the allowance after a promotion: count series inside a calendar event, and at the
    start of a day those whose finished day, or last two days, sold at least ``LIFT`` times
    their reference and significantly so (call after :func:`.decline.step`, which has just
    added that day's level to its ring)."""
    hit = excluded & is_count
    if day_start:
        ref = A["dref"][idx]
        last = (A["dpos"][idx, None] - _LAST_TWO) % A["dlev"].shape[1]
        lev = np.nan_to_num(A["dlev"][idx[:, None], last])
        lev[:, 1] = 0.5 * (lev[:, 0] + lev[:, 1])  # the last day, the mean of the last two
        days = _DAYS * s.buckets_per_day
        lifted = (lev >= LIFT * ref[:, None]) & (mathutil.poisson_z(lev * days, ref[:, None] * days) >= LIFT_Z)
        hit |= is_count & (ref > 0) & lifted.any(axis=1)
    if hit.any():
        A["promo_end"][idx[hit]] = t + PROMO_HOURS * 3600


def _after_promotion(A: dict[str, npt.NDArray[Any]], idx: IntArray, t: int, e: Expect,
                     on: BoolArray) -> tuple[FloatArray, FloatArray]:
    """The downward stretches' expectation and variance of this bucket: after a promotion at
    most ``1 - PULL_FORWARD`` of the lower of the level and the decline test's reference."""
    after = on & (A["promo_end"][idx] > t)
    if not after.any():
        return e.exp_q, e.var_q
    ref = A["dref"][idx]
    f = (1.0 - PULL_FORWARD) * np.where(ref > 0, np.minimum(1.0, ref / np.maximum(e.base, 1e-9)), 1.0)
    mu = np.where(after, f * e.exp_q, e.exp_q)
    return mu, np.where(after, mu + e.k * mu * mu, e.var_q)


def advance(st: FloatArray, new: FloatArray, x: FloatArray, later: FloatArray | None, mu: FloatArray, var: FloatArray,
            on: BoolArray, full: BoolArray, rho: float | FloatArray, log_rho: float | FloatArray) -> BoolArray:
    """Advance Poisson CUSUM stretches by one bucket; return where a stretch lives.

    ``st`` holds a stretch along its second axis (CUSUM, counts, expectation, variance,
    length; any later axes are more stretches), ``new`` receives the next state (to be
    zeroed by the caller where none lives). The CUSUM looks for ``rho`` times the rate
    ``mu`` where ``on``; a stretch restarts when its CUSUM was at zero or where it is
    ``full`` (its longest), and dies when the CUSUM falls to zero. The count ``x`` is
    summed, or in a stretch's later buckets ``later`` where given; ``var`` is the
    bucket's variance. ``log_rho`` is ``log(rho)``, kept by the caller.
    """
    c = np.maximum(st[:, 0] + x * log_rho - mu * (rho - 1.0), 0.0) * on
    fresh = (st[:, 0] <= 0.0) | full
    live: BoolArray = c > 0.0
    kept = np.where((live & ~fresh)[:, None], st[:, 1:], 0.0)  # counts, expectation, variance, length
    new[:, 0] = c
    np.add(kept[:, 0], x if later is None else np.where(fresh, x, later), out=new[:, 1])
    np.add(kept[:, 1], mu, out=new[:, 2])
    np.add(kept[:, 2], var, out=new[:, 3])
    np.add(kept[:, 3], 1.0, out=new[:, 4])
    return live


def step(A: dict[str, npt.NDArray[Any]], idx: IntArray, s: Settings, t: int, x: FloatArray, xa: FloatArray, e: Expect,
         scored: BoolArray, visits: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Update the stretches with this point; return their sums (counts, expectation, variance),
    each of shape (n, 4) (up, down, the run of zeros, sharp up), to be tested like windows (all 0 where there
    is no stretch).
    The upward expectation is already raised to its floor."""
    on = scored & e.is_count
    st = A["run"][idx]  # (n, 5, 4): CUSUM, counts, expectation, variance, length
    new = np.empty_like(st)
    mu_dn, var_dn = _after_promotion(A, idx, t, e, on)
    cus = st[:, :, CUS]
    ncus = np.empty_like(cus)
    # the first bucket of a stretch counts in full (the one-bucket test saw it anyway); later
    # ones winsorised, so one huge spike cannot carry the stretch, but in full in the sharp one
    advance(cus, ncus, x[:, None], np.stack([xa, xa, x], axis=1), np.stack([e.exp_q, mu_dn, e.exp_q], axis=1),
            np.stack([e.var_q, var_dn, e.var_q], axis=1), on[:, None], cus[:, 4] >= MAX_RUN, RHO, _LOG_RHO)
    new[:, :, CUS] = ncus
    # the run of zeros since the last sale: a downward stretch that began with a partial
    # bucket (the product still sold one before it went quiet) is diluted by that sale
    zero = on & (x == 0.0)
    zst = st[:, :, 2]
    zkeep = zero & (zst[:, 0] > 0.0) & (zst[:, 4] < MAX_RUN)
    zkept = np.where(zkeep[:, None], zst[:, 2:], 0.0)  # expectation, variance, length
    new[:, 0, 2] = zero
    new[:, 1, 2] = 0.0
    np.add(zkept[:, 0], mu_dn, out=new[:, 2, 2])
    np.add(zkept[:, 1], var_dn, out=new[:, 3, 2])
    np.add(zkept[:, 2], 1.0, out=new[:, 4, 2])
    live = new[:, 0] > 0.0  # the CUSUMs above zero, the run of zeros 1
    new *= live[:, None, :]
    A["run"][idx] = new
    a, b, v, n = new[:, 1], new[:, 2], new[:, 3], new[:, 4]
    # the expectation itself is uncertain, by an error every bucket of a stretch shares: a
    # level learned at rate alpha from counts of mean ``base`` a bucket is off by about
    # sqrt(alpha / (2 (base + 0.5))) of itself, and a seasonal slot seen ``visits`` times (an
    # hour slot of sub-hour buckets: counted in hours) by about sqrt(SEASON_C / (visits + 1)),
    # so a long stretch is judged by both
    rel2 = REL_C * s.per_bucket(s.level_alpha) / (2.0 * (e.base + 0.5)) + SEASON_C / (visits * min(1.0, s.hours) + 1.0)
    v = v + rel2[:, None] * b * b
    b[:, UPS] = np.maximum(b[:, UPS], up_floor(s) * n[:, UPS])
    v[:, UPS] = np.maximum(v[:, UPS], b[:, UPS])
    return a, b, np.where(live, v, 1.0)  # no stretch: 0 against 0, a z of 0
