"""A synthetic shop as a shop meets it, with labelled incidents (issue 14).

Thirteen weeks on a 5-minute grid in the shop's time zone (Europe/Berlin):

* several hundred products with Zipf-like popularity (top product ~500 a day, a long
  tail selling less than one a day), each with its own trend;
* daily and weekly cycles in local time (lunch and evening peaks, a different weekend);
* paydays (1st and 15th and the day after: x1.25);
* launches: products that appear during the run, with a first-week hype;
* promotions in the calendar (x2.5-4 for 1-3 days, one shop-wide sale) and unannounced
  ones (x2 for 1-2 days), each followed by a two-day dip (x0.8);
* banks' maintenance hours: card payments fail at 30 % from 01:00 to 01:30 every night;
* at least 20 labelled incidents in the last four weeks, starting at any minute: gradual
  declines, site-wide and payment-method outages shorter than an hour, bursts and drops
  on sparse products, broken product pages, bot spikes and price errors.

Negative-binomial noise (gamma-Poisson, shape 30). Product series are hourly (sums of
twelve 5-minute counts); the shop total and payment methods are given both hourly and
on 5-minute buckets.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from benchmarks.shop.incidents import FINE, METHODS, OWN_PRODUCTS, Incident, place

FloatArray = npt.NDArray[np.float64]
TZ = "Europe/Berlin"

WEEKS, TRAIN_WEEKS = 13, 9
#: products launched during the run (one launched after the training weeks is not live
#: in the evaluation weeks, so cannot carry an incident)
LAUNCHES = 6
#: the smallest shop: every incident has a product of its own even when every launch is late
MIN_PRODUCTS = OWN_PRODUCTS + LAUNCHES
SHAPE = 30.0  # gamma shape of each product's 5-minute rate (the negative-binomial noise)
CONCENTRATION = 200.0  # beta concentration of each 5-minute failure rate (beta-binomial failures)


@dataclass
class Shop:
    t0: datetime
    products: list[str]
    counts5: FloatArray  # (T5, P), NaN before a product's launch
    fail5: FloatArray  # (T5, M)
    att5: FloatArray  # (T5, M)
    incidents: list[Incident]
    calendar: list[dict[str, str]]
    unannounced: list[tuple[str, int, int]]  # (series, start, end) in 5-minute steps
    context: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)  # (T5,) or (T5, P) masks
    #: (T5 / 12, P) hourly expected orders without the incidents (what an oracle knows; NaN before a launch)
    normal_h: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    #: (T5,) the shop total's expected orders a 5-minute step without the incidents, and the
    #: variance its products' gamma rates add to the Poisson's (sum of rate^2 / SHAPE)
    normal_total5: FloatArray = field(default_factory=lambda: np.zeros(0))
    extra_var_total5: FloatArray = field(default_factory=lambda: np.zeros(0))
    #: (T5, M) each payment method's failure rate without the incidents
    normal_fail_rate5: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    train_until: int = TRAIN_WEEKS * 7 * 288

    @property
    def steps(self) -> int:
        return int(self.counts5.shape[0])

    def hourly(self, a: FloatArray) -> FloatArray:
        """Sum of twelve 5-minute steps (NaN where any is NaN)."""
        out: FloatArray = a.reshape(a.shape[0] // FINE, FINE, *a.shape[1:]).sum(axis=1)
        return out


def _daily(hours: FloatArray, weekend: npt.NDArray[np.bool_]) -> FloatArray:
    wk = 0.1 + 0.6 * np.exp(-0.5 * ((hours - 9.0) / 2.0) ** 2) + 1.3 * np.exp(-0.5 * ((hours - 12.5) / 0.9) ** 2) \
        + 1.1 * np.exp(-0.5 * ((hours - 20.0) / 1.8) ** 2)
    we = 0.15 + 1.0 * np.exp(-0.5 * ((hours - 11.5) / 3.0) ** 2) + 1.2 * np.exp(-0.5 * ((hours - 20.0) / 2.2) ** 2)
    out: FloatArray = np.where(weekend, 1.25 * we / 0.55, wk / 0.52)
    return out


def generate(seed: int, n_products: int = 300) -> Shop:
    if n_products < MIN_PRODUCTS:
        raise ValueError(f"a shop needs at least {MIN_PRODUCTS} products, not {n_products}")
    rng = np.random.default_rng(seed)
    tz = ZoneInfo(TZ)
    t0 = datetime(2024, 1, 1, tzinfo=tz).astimezone(timezone.utc)
    T5 = WEEKS * 7 * 288
    local = [(t0 + timedelta(minutes=5 * i)).astimezone(tz) for i in range(0, T5, FINE)]
    hod = np.repeat(np.array([d.hour for d in local], dtype=float), FINE) + np.tile(np.arange(FINE) / FINE, len(local))
    dow = np.repeat(np.array([d.weekday() for d in local]), FINE)
    dom = np.repeat(np.array([d.day for d in local]), FINE)
    season = _daily(hod, dow >= 5) / 24.0 / FINE  # per 5 minutes, mean ~1/288 of a day
    payday = np.where(np.isin(dom, (1, 2, 15, 16)), 1.25, 1.0)

    P = n_products
    products = [f"sku-{i:04d}" for i in range(P)]
    rank = rng.permutation(P) + 1
    daily = np.asarray(500.0 * rank ** -1.2, dtype=np.float64)  # orders a day: ~500 for the top product, < 1 for the 120 least popular
    trend = 1.0 + np.outer(np.arange(T5) / T5, rng.uniform(-0.3, 0.5, P))
    rate = daily[None, :] * trend * (season * payday)[:, None]
    ctx: dict[str, npt.NDArray[np.bool_]] = {"payday": np.isin(dom, (1, 2, 15, 16)), "night": (hod < 6)}
    ctx["maintenance"] = (hod >= 1.0) & (hod < 1.5)

    # launches: products that appear mid-run, with a first week of hype
    launched = np.zeros((T5, P), dtype=bool)
    for j in rng.choice(np.argsort(-daily)[10:150], LAUNCHES, replace=False):
        at = int(rng.integers(3 * 2016, 11 * 2016))
        rate[:at, j] = np.nan
        hype = 1.0 + 1.0 * np.exp(-np.arange(T5 - at) / 2016.0)
        rate[at:, j] *= hype
        launched[at : at + 2016, j] = True
    ctx["launch"] = launched

    calendar: list[dict[str, str]] = []
    unannounced: list[tuple[str, int, int]] = []
    after_promo = np.zeros((T5, P), dtype=bool)

    def promo(j: int | None, a: int, b: int, lift: float) -> None:
        cols = slice(None) if j is None else j
        rate[a:b, cols] *= lift
        rate[b : b + 576, cols] *= 0.8  # the dip after a promotion
        after_promo[b : b + 576, cols] = True

    def stamp(i: int) -> str:
        return (t0 + timedelta(minutes=5 * i)).isoformat()

    for k in range(10):  # announced, in the calendar
        j = int(rng.integers(0, P))
        a = int(rng.integers(2 * 2016, T5 - 900))
        b = a + int(rng.integers(288, 864))
        promo(j, a, b, float(rng.uniform(2.5, 4.0)))
        calendar.append({"start": stamp(a), "end": stamp(b), "scope": f"orders:{products[j]}", "name": f"promo-{k}"})
    a = 7 * 2016 + 4 * 288  # a shop-wide sale, announced
    promo(None, a, a + 288, 1.8)
    calendar.append({"start": stamp(a), "end": stamp(a + 288), "scope": "*", "name": "spring-sale"})
    for k in range(4):  # unannounced: the marketing team forgot the calendar
        j = int(rng.choice(np.argsort(-daily)[:60]))
        a = int(rng.integers(2 * 2016, T5 - 900))
        b = a + int(rng.integers(288, 576))
        promo(j, a, b, 2.0)
        unannounced.append((f"orders:{products[j]}", a, b))
    ctx["after_promotion"] = after_promo

    share = np.array([0.55, 0.25, 0.12, 0.08])
    fail_rate = np.tile(np.array([0.03, 0.02, 0.05, 0.015]), (T5, 1))
    fail_rate[ctx["maintenance"], 0] = 0.30
    normal = rate.copy()
    normal_fail_rate = fail_rate.copy()
    incidents = place(rng, rate, fail_rate, daily, products, TRAIN_WEEKS * 2016, T5, hod)
    lam = rng.gamma(SHAPE, np.nan_to_num(np.maximum(rate, 0.0)) / SHAPE)
    counts = rng.poisson(lam).astype(np.float64)
    counts[np.isnan(rate)] = np.nan
    total = np.nansum(counts, axis=1)  # a site outage takes the payment attempts down with the orders
    att = rng.poisson(total[:, None] * share[None, :] * 1.05).astype(np.float64)
    pr = np.clip(rng.beta(CONCENTRATION * fail_rate, CONCENTRATION * (1 - fail_rate)), 0, 1)
    fail = rng.binomial(att.astype(np.int64), pr).astype(np.float64)
    shop = Shop(t0, products, counts, fail, att, incidents, calendar, unannounced, ctx)
    shop.normal_h = shop.hourly(normal)
    shop.normal_total5 = np.nansum(normal, axis=1)
    shop.extra_var_total5 = np.nansum(normal**2, axis=1) / SHAPE
    shop.normal_fail_rate5 = normal_fail_rate
    return shop


def seed_list(text: str) -> list[int]:
    """``--seeds``: comma-separated integers (an ``argparse`` type: a bad value is one usage line)."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None


def product_count(text: str) -> int:
    """``--products``: an integer of at least ``MIN_PRODUCTS`` (an ``argparse`` type: else one usage line)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < MIN_PRODUCTS:
        raise argparse.ArgumentTypeError(f"a shop needs at least {MIN_PRODUCTS} products ({OWN_PRODUCTS} for incidents "
                                         f"of their own, {LAUNCHES} launches), not {n}")
    return n
