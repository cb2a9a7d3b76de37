"""Vectorised state of many series and the one-step score-then-learn update.

Each series keeps a fixed set of numbers (see :data:`BYTES_PER_SERIES`), so memory
is bounded no matter how long the detector runs. A step scores the new points of
a batch of series that share one timestamp *before* learning from them, so a
score only ever depends on the past and is final when returned.

Model per series (one of three kinds):

* ``COUNT`` (orders per bucket): expected ``mu = (level + slope) * season``, with a
  damped Holt level/trend on de-seasonalised counts and a multiplicative season:
  hour-of-week factor once that slot has been seen, else hour-of-day x weekday.
  Noise is Poisson with a learned over-dispersion ``phi >= 1`` (negative-binomial
  like tails), tested with the signed root deviance so that sparse long-tail
  products with many zero buckets get honest tails.
* ``VALUE`` (revenue, any non-negative amount): same expectation, Gaussian noise
  with a learned residual variance.
* ``RATIO`` (payment failures / attempts): exponentially weighted failure rate
  ``p`` with a weak prior and learned beta-binomial over-dispersion; the test is
  the binomial deviance of the failures in the bucket given its attempts, so one
  failure out of two attempts at night is weak evidence and 300/1000 is not.

Evidence is taken over the last 1, 3 and 6 buckets (sums of winsorised points,
so one spike cannot carry a longer window) and turned into a Bonferroni-adjusted
surprise ``-log10 p`` -> score.
Learning is robust: inputs are winsorised to ``mu +- 4 sigma`` and points scoring
``>= learn_score`` only move the model with weight ``anomaly_weight``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from commerce_observe.monitor.anomaly.severity import CRITICAL

from . import mathutil as mu_

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

KIND_UNSET = 0
KIND_COUNT = 1
KIND_VALUE = 2
KIND_RATIO = 3
KIND_NAMES = {KIND_COUNT: "count", KIND_VALUE: "value", KIND_RATIO: "ratio"}


@dataclass(frozen=True)
class Settings:
    """Detector settings; the same for every series."""

    bucket_seconds: int = 3600
    timezone: str = "UTC"
    #: updates a series needs before it is scored (``warming_up`` until then)
    min_history: int = 72
    level_alpha: float = 0.04
    trend_beta: float = 0.004
    trend_damping: float = 0.98
    #: per visit of an hour-of-day slot (visited once a day)
    daily_alpha: float = 0.12
    #: weekday factor, per bucket
    weekday_alpha: float = 0.01
    #: per visit of an hour-of-week slot (visited once a week)
    weekly_alpha: float = 0.3
    disp_alpha: float = 0.02
    ratio_alpha: float = 0.03
    #: largest share by which one bucket may raise a mature level (plus one unit's worth)
    level_step: float = 0.1
    #: relative model error added to the noise (covers paydays and other unmodelled swings)
    rel_noise: float = 0.08
    windows: tuple[int, ...] = (1, 3, 6)
    learn_score: float = 50.0
    anomaly_weight: float = 0.05
    alert_score: float = CRITICAL
    #: buckets after a critical point in which further critical points are not new alerts
    alert_cooldown: int = 12
    #: failure ratios only alert upwards
    ratio_upper_only: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = list(self.windows)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        d = dict(d)
        d["windows"] = tuple(d.get("windows", (1, 3, 6)))
        return cls(**d)


@dataclass
class StepResult:
    score: FloatArray  # NaN when not scored
    expected: FloatArray
    alert: BoolArray
    warming: BoolArray
    lower: FloatArray  # NaN when not scored
    upper: FloatArray


# (name, dtype, trailing shape) of every per-series array
def _layout(w: int) -> list[tuple[str, Any, tuple[int, ...]]]:
    return [
        ("kind", np.int8, ()),
        ("n", np.int64, ()),
        ("last_t", np.int64, ()),
        ("last_alert", np.int64, ()),
        ("level", np.float64, ()),
        ("slope", np.float64, ()),
        ("disp", np.float64, ()),
        ("ra", np.float64, ()),
        ("rb", np.float64, ()),
        ("fh", np.float64, (24,)),
        ("fw", np.float64, (7,)),
        ("fhw", np.float32, (168,)),
        ("visits", np.uint8, (168,)),
        ("ring_a", np.float64, (w,)),
        ("ring_b", np.float64, (w,)),
        ("ring_v", np.float64, (w,)),
        ("ring_n", np.float64, (w,)),
        ("rpos", np.int32, ()),
    ]


NEVER = np.int64(-(2**62))


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


@dataclass
class Bank:
    """Arrays of per-series state, grown by doubling."""

    settings: Settings
    capacity: int = 0
    size: int = 0
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.arrays:
            self._alloc(max(self.capacity, 16))

    @property
    def ring_len(self) -> int:
        return max(self.settings.windows)

    def _alloc(self, cap: int) -> None:
        new: dict[str, npt.NDArray[Any]] = {}
        for name, dt, shape in _layout(self.ring_len):
            arr = np.zeros((cap, *shape), dtype=dt)
            if name in ("fh", "fw", "fhw"):
                arr[...] = 1.0
            if name in ("last_t", "last_alert"):
                arr[...] = NEVER
            if name.startswith("ring_"):
                arr[...] = np.nan
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

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.arrays[name]

    # ------------------------------------------------------------------ step
    def step(
        self,
        idx: IntArray,
        t: int,
        hod: int,
        dow: int,
        how: int,
        x: FloatArray,
        den: FloatArray,
        excluded: BoolArray,
    ) -> StepResult:
        """Score then learn one point for each series in ``idx`` (all at time ``t``).

        ``x`` is the value (or the numerator for ratio series), ``den`` the
        denominator (NaN for non-ratio series). ``excluded`` points (known calendar
        events) are neither scored nor learned. Inputs must already be valid.
        """
        s = self.settings
        A = self.arrays
        m = idx.size
        kind = A["kind"][idx]
        n = A["n"][idx]
        is_ratio = kind == KIND_RATIO
        is_count = kind == KIND_COUNT
        first = n == 0

        # ---- expectation -------------------------------------------------
        level = A["level"][idx]
        slope = A["slope"][idx]
        fh = A["fh"][idx, hod]
        fw = A["fw"][idx, dow]
        visited = A["visits"][idx, how] > 0
        season = np.where(visited, A["fhw"][idx, how].astype(np.float64), fh * fw)
        season = np.maximum(season, 0.02)
        base = np.maximum(level + slope, 0.0)
        mu = base * season
        disp = A["disp"][idx]

        ra = A["ra"][idx]
        rb = A["rb"][idx]
        p = (ra + 0.01) / (rb + 0.1)
        p = np.clip(p, 1e-4, 1.0 - 1e-4)
        nn = np.where(is_ratio, den, 0.0)

        # expected and variance of the tested quantity (count / value / failures)
        exp_q = np.where(is_ratio, nn * p, mu)
        var_count = np.maximum(mu, 0.05) * np.maximum(disp, 1.0)
        var_value = np.maximum(disp, 1e-12)
        var_ratio = np.maximum(nn * p * (1.0 - p), 1e-9) * np.maximum(disp, 1.0)
        var_q = np.where(is_ratio, var_ratio, np.where(is_count, var_count, var_value))
        var_q = var_q + (s.rel_noise * exp_q) ** 2
        sd_q = np.sqrt(var_q)

        warming = n < s.min_history
        scored = ~warming & ~excluded & ~first

        # winsorised observation for window sums (one spike cannot carry a window)
        lo = exp_q - 3.0 * sd_q
        hi = exp_q + 3.0 * sd_q + np.where(is_count | is_ratio, 1.0, 0.0)
        xa = np.clip(x, np.maximum(lo, 0.0), hi)

        # ---- ring buffer (current point included) --------------------------
        W = self.ring_len
        rpos = A["rpos"][idx]
        ok_ring = scored
        A["ring_a"][idx, rpos] = np.where(ok_ring, xa, np.nan)
        A["ring_b"][idx, rpos] = np.where(ok_ring, exp_q, np.nan)
        A["ring_v"][idx, rpos] = np.where(ok_ring, var_q, np.nan)
        A["ring_n"][idx, rpos] = np.where(ok_ring, nn, np.nan)
        A["rpos"][idx] = (rpos + 1) % W

        # ---- evidence ------------------------------------------------------
        best = np.zeros(m)
        if scored.any():
            for w in s.windows:
                if w == 1:
                    sa, sb, sv, sn = x, exp_q, var_q, nn
                else:
                    cols = (rpos[:, None] - np.arange(w)[None, :]) % W
                    rows = idx[:, None]
                    sa = A["ring_a"][rows, cols].sum(axis=1)
                    sb = A["ring_b"][rows, cols].sum(axis=1)
                    sv = A["ring_v"][rows, cols].sum(axis=1)
                    sn = A["ring_n"][rows, cols].sum(axis=1)
                z = self._z(kind, sa, sb, sv, sn)
                z = np.nan_to_num(z, nan=0.0)
                up = mu_.surprise(z)
                down = np.where(is_ratio & s.ratio_upper_only, 0.0, mu_.surprise(-z))
                best = np.maximum(best, np.maximum(up, down))
            n_tests = len(s.windows) * 2
            best = best - np.log10(n_tests)
        score = np.where(scored, mu_.to_score(best), np.nan)

        # ---- alerts (one per incident) ---------------------------------------
        crit = scored & (score >= s.alert_score)
        last_alert = A["last_alert"][idx]
        alert = crit & ((n - last_alert) > s.alert_cooldown)
        A["last_alert"][idx] = np.where(crit, n, last_alert)

        # ---- learning --------------------------------------------------------
        learn = ~excluded
        visits_now = A["visits"][idx, how].astype(np.int64)
        # robust learning only where the model is mature (this hour-of-week seen twice);
        # before that a wrong first guess must not lock itself in
        mature = scored & ((visits_now >= 3) | is_ratio)
        wgt = np.where(mature & (score >= s.learn_score), s.anomaly_weight, 1.0)
        wgt = np.where(learn, wgt, 0.0)
        # winsorise what is learned from
        ulo = np.maximum(exp_q - 4.0 * sd_q, 0.0)
        uhi = exp_q + 4.0 * sd_q + np.where(is_count | is_ratio, 2.0, 0.0)
        xu = np.where(mature, np.clip(x, ulo, uhi), x)
        # faster learning while young: running mean for the first 1/alpha points
        n1 = n.astype(np.float64) + 1.0

        # level / trend on de-seasonalised value
        y = xu / season
        # sparse series average over more buckets so the level never collapses between sales
        a_l = np.maximum(np.maximum(s.level_alpha * np.where(is_count, base / (base + 0.5), 1.0), 0.002), 1.0 / n1) * wgt
        pred = level + slope
        # a bucket moves the level in proportion to what it can tell: a quiet slot (season < 1)
        # carries little information, so one sale in a night slot whose factor is near its
        # floor cannot multiply the level (x / 0.02 = 50 x the level). And no single bucket
        # lifts a level (after its first day) by more than ``level_step`` of itself plus one unit's worth.
        step = a_l * np.minimum(season, 1.0) * (y - pred)
        cap = s.level_step * np.maximum(pred, 0.0) + a_l
        step = np.where(n1 > 24, np.minimum(step, cap), step)
        new_level = np.where(first, x, pred + step)
        b = s.trend_beta * wgt * (n1 > 24)
        new_slope = s.trend_damping * slope + b * (new_level - level - slope)
        nonratio = ~is_ratio & learn
        A["level"][idx] = np.where(nonratio, np.maximum(new_level, 1e-3), level)
        A["slope"][idx] = np.where(nonratio & ~first, new_slope, slope)

        # seasonal factors; sparse series learn their shape more slowly
        conf = np.where(is_count, base / (base + 1.0), 1.0)
        r = np.clip(xu / np.maximum(base, 1e-6), 0.0, 20.0)
        upd = nonratio & ~first
        # the hour-of-week profile starts once a day of level is known
        upd_w = upd & (n1 > 24)
        a_h = (np.maximum(s.daily_alpha, 24.0 / (n1 + 24.0)) * conf * wgt) * upd
        new_fh = fh + a_h * (r / np.maximum(fw, 0.05) - fh)
        a_w = (s.weekday_alpha * conf * wgt) * upd
        new_fw = fw + a_w * (r / np.maximum(fh, 0.05) - fw)
        fhw_old = np.where(visited, A["fhw"][idx, how].astype(np.float64), fh * fw)
        a_hw = (np.maximum(s.weekly_alpha, 1.0 / (visits_now + 1.0)) * conf * wgt) * upd
        new_fhw = fhw_old + a_hw * (r - fhw_old)
        A["fh"][idx, hod] = new_fh
        A["fw"][idx, dow] = new_fw
        A["fhw"][idx, how] = np.where(upd_w, new_fhw, A["fhw"][idx, how])
        A["visits"][idx, how] = np.where(
            upd_w, np.minimum(A["visits"][idx, how].astype(np.int64) + 1, 255), A["visits"][idx, how]
        ).astype(np.uint8)
        # keep the hour-of-day and weekday profiles at mean 1 (the level carries the scale)
        if upd.any():
            ui = idx[upd]
            A["fh"][ui] /= np.maximum(A["fh"][ui].mean(axis=1, keepdims=True), 1e-6)
            A["fw"][ui] /= np.maximum(A["fw"][ui].mean(axis=1, keepdims=True), 1e-6)

        # dispersion / variance
        a_d = np.maximum(s.disp_alpha, 1.0 / n1) * wgt
        e_count = np.minimum((xu - mu) ** 2 / np.maximum(mu, 0.5), 100.0)
        e_value = (xu - mu) ** 2
        new_disp_nonratio = np.where(
            first,
            np.where(is_count, 1.0, (0.1 * np.abs(x)) ** 2 + 1e-9),
            disp + a_d * (np.where(is_count, e_count, e_value) - disp),
        )

        # ratio: EW sums of failures and attempts, beta-binomial over-dispersion
        a_r = np.maximum(s.ratio_alpha, 1.0 / n1) * wgt
        ku = np.where(is_ratio, xu, 0.0)
        new_ra = ra + a_r * (ku - ra)
        new_rb = rb + a_r * (nn - rb)
        e_ratio = np.minimum((ku - nn * p) ** 2 / np.maximum(nn * p * (1.0 - p), 1e-3), 50.0)
        new_disp_ratio = np.where(first, 1.0, disp + a_d * (e_ratio - disp))
        ratio_learn = is_ratio & learn
        A["ra"][idx] = np.where(ratio_learn, new_ra, ra)
        A["rb"][idx] = np.where(ratio_learn, new_rb, rb)
        A["disp"][idx] = np.where(
            ratio_learn, new_disp_ratio, np.where(nonratio, new_disp_nonratio, disp)
        )
        A["n"][idx] = n + learn.astype(np.int64)
        A["last_t"][idx] = t
        expected = np.where(first, np.nan, exp_q)
        half = band_z(len(s.windows) * 2, s.alert_score) * sd_q
        lower = np.where(scored, np.maximum(exp_q - half, 0.0), np.nan)
        upper = np.where(scored, exp_q + half, np.nan)
        return StepResult(score=score, expected=expected, alert=alert, warming=warming & ~excluded, lower=lower, upper=upper)

    @staticmethod
    def _z(kind: npt.NDArray[np.int8], a: FloatArray, b: FloatArray, v: FloatArray, nn: FloatArray) -> FloatArray:
        """Signed evidence of observed ``a`` against expected ``b`` with variance ``v``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            z_gauss = (a - b) / np.sqrt(v)
            # Poisson deviance, rescaled by (Poisson variance / model variance)
            z_pois = mu_.poisson_z(np.nan_to_num(a), np.nan_to_num(b)) * np.sqrt(np.maximum(b, 0.05) / v)
            pr = np.where(nn > 0, b / np.maximum(nn, 1e-12), 0.5)
            z_bin = mu_.binomial_z(np.nan_to_num(a), np.nan_to_num(nn), np.nan_to_num(pr, nan=0.5)) * np.sqrt(
                np.maximum(b * (1.0 - pr), 1e-9) / v
            )
        z = np.where(kind == KIND_COUNT, z_pois, np.where(kind == KIND_RATIO, z_bin, z_gauss))
        bad = np.isnan(a) | np.isnan(b) | np.isnan(v)
        return np.where(bad, 0.0, z)
