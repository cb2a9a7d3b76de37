"""Vectorised state of many series and the one-step score-then-learn update.

Each series keeps a fixed set of numbers (see :meth:`Bank.bytes_per_series`), so
memory is bounded no matter how long the detector runs. A step scores the new
points of a batch of series that share one timestamp *before* learning from them
(:mod:`.learn`), so a score only ever depends on the past and is final when returned.

Model per series (one of three kinds):

* ``COUNT`` (orders per bucket): expected ``mu = (level + slope) x season x payday``,
  a damped Holt level/trend on de-seasonalised counts; the season is the
  hour-of-week factor once that slot has been seen, else hour-of-day x weekday; a
  day-of-month factor learns paydays. Noise is negative binomial: variance
  ``mu + (k + rel_noise^2) mu^2`` with ``k`` the series' own measured dispersion
  (shrunk to ``nb_prior`` while it has little data), tested with the signed root
  negative-binomial deviance.
* ``VALUE`` (revenue, any non-negative amount): same expectation, Gaussian noise
  with a learned residual variance.
* ``RATIO`` (payment failures / attempts): exponentially weighted failure rate,
  refined per hour of day (banks' nightly maintenance) and shrunk to the overall
  rate where that hour has few attempts; beta-binomial over-dispersion; the test is
  the binomial deviance of the bucket's failures given its attempts.

Evidence: sums over the last 1, 3, 6 and 12 buckets (winsorised points, so one spike
cannot carry a window; counts: only ``Settings.count_windows``), for counts the two
adaptive stretches of :mod:`.runs` (a burst or a run of zeros summed from where it
started), and for counts and amounts a day-scale decline test (see :mod:`.decline`);
the strongest is turned into a Bonferroni-adjusted surprise ``-log10 p`` -> score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from . import decline, learn, runs
from . import mathutil as mu_
from .pool import Pool
from .settings import Settings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

KIND_UNSET = 0
KIND_COUNT = 1
KIND_VALUE = 2
KIND_RATIO = 3
KIND_NAMES = {KIND_COUNT: "count", KIND_VALUE: "value", KIND_RATIO: "ratio"}
NEVER = -(2**62)
#: the window rings: winsorised points, expectations, variances, attempts
RINGS = ("ring_a", "ring_b", "ring_v", "ring_n")

__all__ = ["Bank", "Settings", "Slots", "StepResult", "KIND_COUNT", "KIND_RATIO", "KIND_UNSET", "KIND_VALUE"]


class Slots(NamedTuple):
    """Where a timestamp falls in the shop's calendar (local time)."""

    hod: int  # slot of the day (hour, or bucket when buckets are longer)
    dow: int
    how: int  # slot of the week
    dom: int  # day of month, 0-based
    day_start: bool  # first bucket of a local day
    prev_dom: int  # day of month of the day before, 0-based


@dataclass
class StepResult:
    score: FloatArray  # NaN when not scored
    expected: FloatArray
    alert: BoolArray
    warming: BoolArray
    lower: FloatArray  # NaN when not scored
    upper: FloatArray


def band_z(n_tests: int, alert_score: float) -> float:
    """The one-bucket deviation (in standard deviations) that scores ``alert_score``."""
    need = alert_score / mu_.POINTS_PER_DECADE + float(np.log10(n_tests))
    lo, hi = 0.0, 40.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(mu_.surprise(np.array([mid]))[0]) < need:
            lo = mid
        else:
            hi = mid
    return hi


def n_tests(s: Settings, count: bool = False) -> int:
    """Tests a point's score is the strongest of: each window two ways and the decline test;
    for counts their own windows two ways, the adaptive stretches (up and down, each from the
    stronger of two starts: see :mod:`.runs`) and the decline test."""
    return len(s.count_windows) * 2 + 2 + 1 if count else len(s.windows) * 2 + 1


# (name, dtype, trailing shape, initial value) of every per-series array
def _layout(s: Settings) -> list[tuple[str, Any, tuple[int, ...], float]]:
    w = max(s.windows)
    return [
        ("kind", np.int8, (), 0), ("n", np.int64, (), 0), ("last_t", np.int64, (), NEVER),
        ("last_alert", np.int64, (), NEVER), ("level", np.float64, (), 0), ("slope", np.float64, (), 0),
        ("disp", np.float64, (), 0), ("nb_num", np.float64, (), 0), ("nb_den", np.float64, (), 0),
        ("ra", np.float64, (), 0), ("rb", np.float64, (), 0),
        ("pa", np.float32, (24,), 0), ("pb", np.float32, (24,), 0),
        ("fh", np.float64, (24,), 1), ("fw", np.float64, (7,), 1), ("fdm", np.float32, (31,), 1),
        ("day_x", np.float64, (), 0), ("day_m", np.float64, (), 0),
        ("fhw", np.float32, (168,), 1), ("visits", np.uint8, (168,), 0), ("group", np.int16, (), 0),
        ("pooled", np.bool_, (), 0), ("pool_fit", np.float32, (), 0),
        ("ring_a", np.float64, (w,), np.nan), ("ring_b", np.float64, (w,), np.nan),
        ("ring_v", np.float64, (w,), np.nan), ("ring_n", np.float64, (w,), np.nan), ("rpos", np.int32, (), 0),
        *decline.layout(), *runs.layout(),
    ]


@dataclass
class Bank:
    """Arrays of per-series state, grown by doubling."""

    settings: Settings
    capacity: int = 0
    size: int = 0
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    #: hour-of-week profiles pooled across the count series of each family (``group``)
    pool: Pool = field(default_factory=Pool)

    def __post_init__(self) -> None:
        self.band = band_z(n_tests(self.settings), self.settings.alert_score)
        self.band_count = band_z(n_tests(self.settings, count=True), self.settings.alert_score)
        #: what the strongest of a point's tests pays (Bonferroni, in decades): counts, others
        self.adjust_count = np.log10(n_tests(self.settings, count=True))
        self.adjust_other = np.log10(n_tests(self.settings))
        w = self.settings.windows
        #: the windows counts are not tested on; the stretches' columns after the windows (up, down, zeros)
        self.not_count_window = np.array([j for j, v in enumerate(w) if v not in self.settings.count_windows], dtype=np.int64)
        self.up_cols = np.array([len(w), len(w) + 3])
        self.down_cols = slice(len(w) + 1, len(w) + 3)
        if not self.arrays:
            self._alloc(max(self.capacity, 16))

    def _alloc(self, cap: int) -> None:
        new: dict[str, npt.NDArray[Any]] = {}
        for name, dt, shape, init in _layout(self.settings):
            arr = np.full((cap, *shape), init, dtype=dt)
            old = self.arrays.get(name)
            if old is not None:
                arr[: self.size] = old[: self.size]
            new[name] = arr
        self.arrays = new
        self.capacity = cap

    def add(self) -> int:
        if self.size >= self.capacity:
            self._alloc(self.capacity * 2)
        self.size += 1
        return self.size - 1

    def bytes_per_series(self) -> int:
        return sum(int(a.itemsize * (a.size // max(a.shape[0], 1))) for a in self.arrays.values())

    def seed_pool(self) -> None:
        """Start the pooled profiles from the count series' own (a state saved before the pool)."""
        A, n = self.arrays, self.size
        count = A["kind"][:n] == KIND_COUNT
        seen = A["visits"][:n] > 0
        days = np.arange(168) // self.settings.day_slots
        own = np.where(seen, A["fhw"][:n], A["fh"][:n, np.arange(168) % self.settings.day_slots] * A["fw"][:n, days % 7])
        level = np.where(count & (A["n"][:n] > self.settings.buckets_per_day), np.maximum(A["level"][:n], 0.0), 0.0)
        A["pooled"][:n] = level > 0
        self.pool.seed(A["group"][:n].astype(np.int64), own * level[:, None], level)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.arrays[name]

    # ------------------------------------------------------------------ step
    def step(self, idx: IntArray, t: int, slots: Slots, x: FloatArray, den: FloatArray, excluded: BoolArray) -> StepResult:
        """Score then learn one point for each series in ``idx`` (all at time ``t``).

        ``x`` is the value (or the numerator for ratio series), ``den`` the
        denominator (NaN for non-ratio series). ``excluded`` points (known calendar
        events) are neither scored nor learned. Inputs must already be valid.
        """
        s = self.settings
        A = self.arrays
        e = learn.expect(A, idx, t, slots, s, den, self.pool if s.pool_seasons else None)
        warming = e.n < s.warmup
        scored = ~warming & ~excluded & ~e.first

        # winsorised observation for window sums: one huge spike cannot carry a window, but
        # a burst of a few units over several buckets on a small product adds up
        lo = np.maximum(e.exp_q - 3.0 * e.sd_q, 0.0)
        hi = e.exp_q + 5.0 * e.sd_q + e.units
        xa = np.minimum(np.maximum(x, lo), hi)

        W = max(s.windows)
        rpos = A["rpos"][idx]
        for name, vals in zip(RINGS, (xa, e.exp_q, e.var_q, e.nn)):
            A[name][idx, rpos] = np.where(scored, vals, np.nan)
        A["rpos"][idx] = (rpos + 1) % W

        # ---- evidence: the strongest window or stretch, each direction ---------
        run = runs.step(A, idx, s, t, x, xa, e, scored, e.visits.astype(np.float64))
        z_up = np.zeros(idx.size)
        z_dn = np.zeros(idx.size)
        if scored.any():
            # every window at once: the four rings newest first, cumulated, read at each length,
            # beside them the stretches (tested like four more windows; no attempts in them)
            at = np.asarray(s.windows) - 1
            nw = at.size
            cols = np.zeros((4, idx.size, nw + 4))
            sums = cols[:, :, :nw]
            _window_sums(A, idx, rpos, at, sums)
            sums[0][:, at == 0] = x[:, None]  # the one-bucket test sees the point itself, not its winsorised copy
            # upwards a count is tested against at least ``runs.UP_FLOOR`` an hour: four sales in an
            # hour of a product selling one a day are one customer, not an incident
            floor = runs.up_floor(s) * (at + 1.0)
            rise = e.is_count[:, None] & (sums[0] > sums[1])
            sums[1] = np.where(rise, np.maximum(sums[1], floor), sums[1])
            sums[2] = np.where(rise, np.maximum(sums[2], floor), sums[2])
            for k, r in enumerate(run):
                cols[k, :, nw:] = r
            z = _z(e.is_count[:, None], e.is_ratio[:, None], *cols)
            # counts: their own windows only (the stretches stand in for the rest); a stretch
            # counts in its own direction
            z[:, self.up_cols] = np.maximum(z[:, self.up_cols], 0.0)
            np.minimum(z[:, self.down_cols], 0.0, out=z[:, self.down_cols])
            other = self.not_count_window
            z[:, other] = np.where(e.is_count[:, None], 0.0, z[:, other])
            z_up = z.max(axis=1)
            z_dn = np.where(e.is_ratio & s.ratio_upper_only, 0.0, -z.min(axis=1))
        adjust = np.where(e.is_count, self.adjust_count, self.adjust_other)
        ready, z_decline = decline.step(A, idx, s, slots, x, e, scored, excluded)
        runs.mark_promotions(A, idx, s, t, slots.day_start, excluded, e.is_count)
        sur = mu_.surprise(np.concatenate([np.maximum(z_up, z_dn), z_decline]))  # both in one call
        short = mu_.to_score(sur[:idx.size] - adjust)
        s_decline = decline.paid(ready, sur[idx.size:])  # a surprise, its two tests paid
        score = np.where(scored, np.maximum(short, mu_.to_score(s_decline - adjust)), np.nan)

        # ---- alerts (one per incident) ---------------------------------------
        crit = scored & (score >= s.alert_score)
        last_alert = A["last_alert"][idx]
        alert = crit & ((e.n - last_alert) > s.alert_cooldown)
        A["last_alert"][idx] = np.where(crit, e.n, last_alert)

        # ---- learning (from the short-window score only: a decline is learned) ----
        pooled, pool_x, pool_m = learn.learn(A, idx, slots, s, x, e, np.where(scored, short, 0.0), scored, excluded)
        if pooled.any():
            ip = idx[pooled]
            g = A["group"][ip].astype(np.int64)
            joined = ~A["pooled"][ip]
            A["pooled"][ip] = True
            self.pool.learn(g, slots.how, t, s, pool_x[pooled], pool_m[pooled], g[joined])
        A["last_t"][idx] = t
        half = np.where(e.is_count, self.band_count, self.band) * e.sd_q
        return StepResult(
            score=score,
            expected=np.where(e.first, np.nan, e.exp_q),
            alert=alert,
            warming=warming & ~excluded,
            lower=np.where(scored, np.maximum(e.exp_q - half, 0.0), np.nan),
            upper=np.where(scored, e.exp_q + half, np.nan),
        )


def _window_sums(A: dict[str, npt.NDArray[Any]], idx: IntArray, rpos: IntArray, at: IntArray, out: FloatArray) -> None:
    """Write into ``out`` (4, n, windows) each of the four rings' sums of its newest
    ``at + 1`` entries, for the series ``idx``: the rings are added up newest first one
    column at a time, as ``np.cumsum`` would (the same sums, bit for bit), for all four
    rings and every series at once. A batch of series that all stepped together shares
    one ring position and so one column order; else each row is put in order first."""
    W = A[RINGS[0]].shape[1]
    rings = np.empty((len(RINGS), idx.size, W))
    if rpos.size and bool((rpos == rpos[0]).all()):
        order = (int(rpos[0]) - np.arange(W)) % W
        for k, name in enumerate(RINGS):
            rings[k] = A[name][idx]
    else:
        pairs = (rpos[:, None] - np.arange(W)[None, :]) % W
        for k, name in enumerate(RINGS):
            rings[k] = A[name][idx[:, None], pairs]
        order = np.arange(W)
    cols = order.tolist()
    ends: dict[int, list[int]] = {}  # newest entries summed -> the windows of that length
    for k, end in enumerate(at.tolist()):
        ends.setdefault(end, []).append(k)
    acc = rings[:, :, cols[0]].copy()
    for j in range(max(ends) + 1):
        if j:
            acc += rings[:, :, cols[j]]
        for k in ends.get(j, ()):
            out[:, :, k] = acc


def _z(is_count: BoolArray, is_ratio: BoolArray, a: FloatArray, b: FloatArray, v: FloatArray, nn: FloatArray) -> FloatArray:
    """Signed evidence of observed ``a`` against expected ``b`` with variance ``v``."""
    bad = np.isnan(a) | np.isnan(b) | np.isnan(v)
    a = np.where(bad, 0.0, a)
    b = np.where(bad, 0.0, b)
    v = np.where(bad, 1.0, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        if is_count.all():  # a batch of products only
            z = mu_.negbin_z(a, b, v)
        else:
            z = (a - b) / np.sqrt(v)
            if is_count.any():
                z = np.where(is_count, mu_.negbin_z(a, b, v), z)
        if is_ratio.any():
            nn = np.where(bad, 0.0, nn)
            pr = np.where(nn > 0, b / np.maximum(nn, 1e-12), 0.5)
            z_bin = mu_.binomial_z(a, nn, pr) * np.sqrt(np.maximum(b * (1.0 - pr), 1e-9) / v)
            z = np.where(is_ratio, z_bin, z)
    return np.where(bad, 0.0, z)
