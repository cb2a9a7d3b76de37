"""What a series expects next (:func:`expect`) and how it learns from a point (:func:`learn`).

Learning is robust: inputs are winsorised to ``mu +- 4 sigma`` once a slot is
mature and points scoring ``>= learn_score`` move the model with weight
``anomaly_weight``, so an incident is not learned as normal. A bucket moves the
level in proportion to its seasonal factor and no bucket raises it by more than
``level_step`` (issue 14: one sale in a night slot whose factor sat at its floor
used to double the level, and the next day's normal sales then scored as a drop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .settings import Settings

if TYPE_CHECKING:
    from .bank import Slots
    from .pool import Pool

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Arrays = dict[str, npt.NDArray[Any]]

KIND_COUNT, KIND_RATIO = 1, 3
#: squared orders per bucket the negative-binomial prior weighs: a product selling a few an
#: hour leans on ``nb_prior`` until weeks of data say otherwise
NB_PRIOR_WEIGHT = 2.0
#: rate per hour at which a series learns how well the pooled profile predicts it
POOL_FIT_ALPHA = 0.006
#: attempts' worth of the overall failure rate an hour-of-day rate is shrunk towards
RATIO_PRIOR = 30.0


@dataclass
class Expect:
    """The model's view of the next point of each series, before it is seen."""

    n: IntArray
    first: BoolArray
    is_count: BoolArray
    is_ratio: BoolArray
    level: FloatArray
    slope: FloatArray
    base: FloatArray  # level + slope, >= 0
    season: FloatArray  # full multiplicative season (payday included)
    own_w: FloatArray  # weight of the series' own hour-of-week factor against the pooled one
    own: FloatArray  # the series' own hour-of-week factor (payday excluded)
    pooled: FloatArray  # the pooled one (NaN: none)
    pooled0: FloatArray  # the pooled one, 0 for none (``np.nan_to_num``)
    exp_q: FloatArray  # expected count / value / failures
    var_q: FloatArray
    sd_q: FloatArray
    k: FloatArray  # negative-binomial dispersion incl. model error
    nn: FloatArray  # attempts (ratio), else 0
    p: FloatArray  # expected failure rate (ratio)
    p_all: FloatArray  # overall failure rate (ratio)
    units: FloatArray  # 2 for counts and ratios (whole units), 0 for values: slack above winsorising bounds
    # this bucket's slots as stored before the point is learned: visits of the hour-of-week slot,
    # hour-of-day, weekday, hour-of-week and day-of-month factors
    visits: npt.NDArray[np.uint8]
    fh: FloatArray
    fw: FloatArray
    fhw: npt.NDArray[np.float32]
    fdm: npt.NDArray[np.float32]


def blend_weight(s: Settings, base: FloatArray, season: FloatArray, k: FloatArray, visits: npt.NDArray[Any],
                 prior_var: FloatArray) -> FloatArray:
    """Weight of a series' own hour-of-week factor against the pooled one (:mod:`.pool`).

    Its own factor is an exponentially weighted mean of ``counts / level`` over the slot's
    visits: relative variance ``(1 / counts a visit + k) / visits`` (at most the visits the
    learning rate remembers); the pool's is ``prior_var`` (its own noise plus how far one
    series' shape may stray from it, ``Settings.season_spread``)."""
    per_visit = min(1.0, s.hours)
    conf = base / (base + 1.0)
    a = np.maximum(s.weekly_alpha * per_visit * conf, 1e-3)
    n_eff = np.maximum(np.minimum(visits * per_visit, (2.0 - a) / a), 0.5)
    counts = np.maximum(base * np.maximum(season, 0.02) / per_visit, 1e-3)
    var_own = (1.0 / counts + k) / n_eff
    return np.asarray(prior_var / (prior_var + var_own))


def expect(A: Arrays, idx: IntArray, t: int, sl: Slots, s: Settings, den: FloatArray, pool: Pool | None = None) -> Expect:
    """``pool``: hour-of-week profiles pooled per family, towards which count series' own are shrunk."""
    kind = A["kind"][idx]
    n = A["n"][idx]
    is_ratio = kind == KIND_RATIO
    is_count = kind == KIND_COUNT
    level = A["level"][idx]
    slope = A["slope"][idx]
    visits = A["visits"][idx, sl.how]
    fh, fw, fhw, fdm = A["fh"][idx, sl.hod], A["fw"][idx, sl.dow], A["fhw"][idx, sl.how], A["fdm"][idx, sl.dom]
    season = np.where(visits > 0, fhw, fh * fw)
    base = np.maximum(level + slope, 0.0)
    disp = A["disp"][idx]
    nb_den = A["nb_den"][idx]
    shrink = nb_den / (nb_den + NB_PRIOR_WEIGHT)
    k = shrink * np.clip(A["nb_num"][idx] / np.maximum(nb_den, 1e-12), 0.0, 3.0) + (1.0 - shrink) * s.nb_prior
    k = np.maximum(k, s.rel_noise**2)  # the measured dispersion includes model error; rel_noise is its floor
    own_w = np.ones(idx.size)
    pooled = np.full(idx.size, np.nan)
    pooled0 = np.zeros(idx.size)
    own = season
    if pool is not None and is_count.any():
        shape, pool_var = pool.prior(A["group"][idx].astype(np.int64), sl.how, t, s, base, season, visits)
        pooled = np.where(is_count, shape, np.nan)
        # the pool is only leaned on while it has predicted this series at least as well as its
        # own factors did (``pool_fit``): a product whose week looks unlike its family's keeps its own
        use = ~np.isnan(pooled) & (A["pool_fit"][idx] <= 0.0)
        own_w = np.where(use, blend_weight(s, base, season, k, visits, pool_var), 1.0)
        pooled0 = np.nan_to_num(pooled)
        season = np.where(use, own_w * season + (1.0 - own_w) * pooled0, season)
    season = np.maximum(season * fdm, 0.02)
    mu = base * season

    var = np.where(is_count, mu + k * mu * mu, np.maximum(disp, 1e-12) + (s.rel_noise * mu) ** 2)
    if is_ratio.any():
        p_all = np.clip((A["ra"][idx] + 0.01) / (A["rb"][idx] + 0.1), 1e-4, 1.0 - 1e-4)
        p = np.clip((A["pa"][idx, sl.hod] + RATIO_PRIOR * p_all) / (A["pb"][idx, sl.hod] + RATIO_PRIOR), 1e-4, 1.0 - 1e-4)
        nn = np.where(is_ratio, den, 0.0)
        exp_q = np.where(is_ratio, nn * p, mu)
        var = np.where(is_ratio, np.maximum(nn * p * (1.0 - p), 1e-9) * np.maximum(disp, 1.0) + (s.rel_noise * exp_q) ** 2, var)
    else:  # a batch without ratios (the failure rates are not needed)
        p_all = p = np.full(idx.size, np.nan)
        nn = np.zeros(idx.size)
        exp_q = mu
    # the tests use the model's variance as it is (a floor would read as over-dispersion
    # to the negative binomial); bands and winsorising use a floored deviation
    sd = np.sqrt(np.maximum(var, np.where(is_count, 0.05, 1e-12)))
    return Expect(n, n == 0, is_count, is_ratio, level, slope, base, season, own_w, own, pooled, pooled0, exp_q, var, sd, k, nn, p, p_all,
                  np.where(is_count | is_ratio, 2.0, 0.0), visits, fh, fw, fhw, fdm)


def learn(A: Arrays, idx: IntArray, sl: Slots, s: Settings, x: FloatArray, e: Expect,
          score: FloatArray, scored: BoolArray, excluded: BoolArray) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Learn from the points just scored (``score``: their short-window score). Returns what the
    pooled profile learns (:mod:`.pool`): which series, their payday-adjusted counts and levels."""
    learn_ = ~excluded
    first = e.first
    n1 = e.n.astype(np.float64) + 1.0
    visits_now = e.visits.astype(np.int64)
    # robust learning only where the model is mature (this hour-of-week seen twice, or a
    # week of history); before that a wrong first guess must not lock itself in
    mature = scored & ((visits_now >= 3) | e.is_ratio | (e.n >= 7 * s.buckets_per_day))
    wgt = np.where(mature & (score >= s.learn_score), s.anomaly_weight, 1.0)
    wgt = np.where(learn_, wgt, 0.0)
    units = e.units
    ulo = np.maximum(e.exp_q - 4.0 * e.sd_q, 0.0)
    xu = np.where(mature, np.minimum(np.maximum(x, ulo), e.exp_q + 4.0 * e.sd_q + units), x)
    nonratio = ~e.is_ratio & learn_
    upd = nonratio & ~first

    # level / trend on de-seasonalised value; sparse series average over more buckets
    a_level = s.per_bucket(s.level_alpha) * np.where(e.is_count, e.base / (e.base + 0.5), 1.0)
    a_l = np.maximum(np.maximum(a_level, 0.002), 1.0 / n1) * wgt
    pred = e.level + e.slope
    step = a_l * np.minimum(e.season, 1.0) * (xu / e.season - pred)
    cap = s.level_step * np.maximum(pred, 0.0) + a_l
    step = np.where(n1 > s.buckets_per_day, np.minimum(step, cap), step)
    new_level = np.where(first, x, pred + step)
    b = s.per_bucket(s.trend_beta) * wgt * (n1 > s.buckets_per_day)
    new_slope = s.trend_damping**s.hours * e.slope + b * (new_level - e.level - e.slope)
    A["level"][idx] = np.where(nonratio, np.maximum(new_level, 1e-3), e.level)
    A["slope"][idx] = np.where(upd, new_slope, e.slope)

    to_pool = _learn_season(A, idx, sl, s, xu, e, wgt, upd, n1, visits_now)
    # how much worse the pooled factor alone predicted this bucket than the series' own (the
    # difference of the two Poisson deviances), averaged over about a week
    has = upd & ~np.isnan(e.pooled)
    if has.any():
        unit = e.base * e.season / np.maximum(e.own_w * e.own + (1.0 - e.own_w) * e.pooled0, 1e-6)
        m_own = np.maximum(unit * e.own, 1e-6)
        m_pool = np.maximum(unit * e.pooled0, 1e-6)
        gap = 2.0 * (xu * np.log(m_own / m_pool) - (m_own - m_pool))
        a_f = s.per_bucket(POOL_FIT_ALPHA) * wgt
        fit = A["pool_fit"][idx]
        A["pool_fit"][idx] = np.where(has, fit + a_f * (gap - fit), fit)

    # noise: negative-binomial moments (counts), residual variance (values)
    a_d = np.maximum(s.per_bucket(s.disp_alpha), 1.0 / n1) * wgt
    mu = e.base * e.season
    # the noise is learned from winsorised points even before the slot is mature: one
    # spike must not teach a series that anything goes
    hi = e.exp_q + 4.0 * e.sd_q + units
    resid2 = (np.where(n1 > s.buckets_per_day, np.minimum(xu, hi), xu) - mu) ** 2
    cnt = upd & e.is_count
    # dispersion moments learn slowly (a quarter of the variance rate) and from at most a
    # 3-sigma residual per bucket: a few hours of an incident must not widen the tails
    a_k = np.maximum(s.per_bucket(s.disp_alpha) / 4.0, 1.0 / n1) * wgt
    e_k = np.minimum(resid2, 9.0 * e.var_q) - mu
    nb_num, nb_den = A["nb_num"][idx], A["nb_den"][idx]
    A["nb_num"][idx] = np.where(cnt, nb_num + a_k * (e_k - nb_num), nb_num)
    A["nb_den"][idx] = np.where(cnt, nb_den + a_k * (mu * mu - nb_den), nb_den)
    disp = A["disp"][idx]
    new_disp = np.where(first, np.where(e.is_count, 1.0, (0.1 * np.abs(x)) ** 2 + 1e-9), disp + a_d * (resid2 - disp))
    if e.is_ratio.any():
        new_disp = _learn_ratio(A, idx, sl, s, xu, e, wgt, learn_, n1, a_d, disp, new_disp)
    A["disp"][idx] = np.where(learn_, new_disp, disp)
    A["n"][idx] = e.n + learn_.astype(np.int64)
    return to_pool


def _learn_ratio(A: Arrays, idx: IntArray, sl: Slots, s: Settings, xu: FloatArray, e: Expect, wgt: FloatArray,
                 learn_: BoolArray, n1: FloatArray, a_d: FloatArray, disp: FloatArray, new_disp: FloatArray) -> FloatArray:
    """Ratios: EW sums of failures and attempts, overall and per hour of day; returns
    ``new_disp`` with the ratios' dispersion in it."""
    first = e.first
    a_r = np.maximum(s.per_bucket(s.ratio_alpha), 1.0 / n1) * wgt
    ku = np.where(e.is_ratio, xu, 0.0)
    ra, rb = A["ra"][idx], A["rb"][idx]
    e_ratio = np.minimum((ku - e.nn * e.p) ** 2 / np.maximum(e.nn * e.p * (1.0 - e.p), 1e-3), 50.0)
    rl = e.is_ratio & learn_
    A["ra"][idx] = np.where(rl, ra + a_r * (ku - ra), ra)
    A["rb"][idx] = np.where(rl, rb + a_r * (e.nn - rb), rb)
    keep = 1.0 - s.ratio_slot_alpha * min(1.0, s.hours) * wgt
    pa, pb = A["pa"][idx, sl.hod], A["pb"][idx, sl.hod]
    A["pa"][idx, sl.hod] = np.where(rl, pa * keep + wgt * ku, pa)
    A["pb"][idx, sl.hod] = np.where(rl, pb * keep + wgt * e.nn, pb)
    out: FloatArray = np.where(e.is_ratio, np.where(first, 1.0, disp + a_d * (e_ratio - disp)), new_disp)
    return out


def _learn_season(A: Arrays, idx: IntArray, sl: Slots, s: Settings, xu: FloatArray, e: Expect,
                  wgt: FloatArray, upd: BoolArray, n1: FloatArray,
                  visits_now: IntArray) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Hour-of-day, weekday, hour-of-week and day-of-month factors; sparse series learn slower.
    Returns the counts' share of the pooled profile (see :func:`learn`)."""
    conf = np.where(e.is_count, e.base / (e.base + 1.0), 1.0)
    r = np.clip(xu / np.maximum(e.base, 1e-6), 0.0, 20.0)
    fh = e.fh
    fw = e.fw
    fdm = e.fdm.astype(np.float64)
    visited = visits_now > 0
    per_visit = min(1.0, s.hours)  # sub-hour buckets visit an hour slot several times
    # the hour-of-week profile starts once a day of level is known
    upd_w = upd & (n1 > s.buckets_per_day)
    a_h = np.maximum(s.daily_alpha * per_visit, s.buckets_per_day / (n1 + s.buckets_per_day)) * conf * wgt * upd
    A["fh"][idx, sl.hod] = fh + a_h * (r / np.maximum(fw * fdm, 0.05) - fh)
    a_w = s.per_bucket(s.weekday_alpha) * conf * wgt * upd
    A["fw"][idx, sl.dow] = fw + a_w * (r / np.maximum(fh * fdm, 0.05) - fw)
    fh_fw = fh * fw
    fhw_old = np.where(visited, e.fhw, fh_fw)
    a_hw = np.maximum(s.weekly_alpha * per_visit, 1.0 / (visits_now + 1.0)) * conf * wgt * upd
    fhw = np.where(upd_w, fhw_old + a_hw * (r / np.maximum(fdm, 0.05) - fhw_old), e.fhw).astype(np.float32)
    A["fhw"][idx, sl.how] = fhw
    A["visits"][idx, sl.how] = np.where(upd_w, np.minimum(visits_now + 1, 255), visits_now).astype(np.uint8)
    pooled = upd_w & e.is_count
    pool_x = wgt * xu / np.maximum(fdm, 0.05)
    pool_m = wgt * e.base
    # paydays: the day-of-month factor moves ``monthly_alpha`` of the way to what a whole day
    # sold against its expectation, learned when the day is over (within the day it stays as
    # it was, so a day that goes wrong is judged against the month before, not against itself)
    if sl.day_start:
        dm = A["day_m"][idx]
        done = upd & (dm > 0)
        a_m = s.monthly_alpha * conf * done
        prev = A["fdm"][idx, sl.prev_dom].astype(np.float64)
        A["fdm"][idx, sl.prev_dom] = prev + a_m * (np.clip(A["day_x"][idx] / np.maximum(dm, 1e-9), 0.2, 5.0) - prev)
        A["day_x"][idx] = 0.0
        A["day_m"][idx] = 0.0
    grown = upd & (n1 > 7 * s.buckets_per_day)
    season_wo = np.maximum(np.where(visited, fhw, fh_fw), 0.05)
    A["day_x"][idx] += np.where(grown, wgt * xu, 0.0)
    A["day_m"][idx] += np.where(grown, wgt * e.base * season_wo, 0.0)
    # keep the hour-of-day, weekday and day-of-month profiles at mean 1 (the level carries the
    # scale); once a day is enough (they drift by a few per cent a day) and saves most of a step
    if sl.day_start and upd.any():
        ui = idx[upd]
        nd = s.day_slots
        A["fh"][ui, :nd] /= np.maximum(A["fh"][ui, :nd].mean(axis=1, keepdims=True), 1e-6)
        A["fw"][ui] /= np.maximum(A["fw"][ui].mean(axis=1, keepdims=True), 1e-6)
        A["fdm"][ui] /= np.maximum(A["fdm"][ui].mean(axis=1, keepdims=True), 1e-6)
    return pooled, pool_x, pool_m
