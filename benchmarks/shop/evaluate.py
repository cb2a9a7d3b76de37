"""Score a detector's run over the synthetic shop as a shop judges it.

* an incident is **found** when one of its series scores critical (>= 75) in a bucket
  overlapping it or the 6 hours after it (a decline: any time after it starts);
* **delay**: minutes from the incident's start (a decline: from the point where sales
  are 30 % down) to the end of the first critical bucket, i.e. when the score exists;
  ``within 2`` says whether that bucket is at most 2 buckets after the one holding the start
  (a decline: whether the score came within a day of the 30 % point);
* **precision** counts pages: each found incident is one true page, each alert
  (``Score.alert``) that overlaps no incident of its series (nor the 6 hours after) is a
  false page (an alert on the shop total during a product's incident is not false: the
  total moved too); alerts on unannounced promotions are counted apart, in neither;
* false alerts per product-week, and by what was going on: night, payday, launch week,
  the dip after a promotion, maintenance hours, the day after an incident, other; and on
  long-tail products (selling under one a day);
* **findable** (incidents on one product): the first hourly bucket at which an oracle that
  knows the product's rate without the incident and when the incident started would score
  it critical, testing the orders summed since the incident's first bucket (or its second:
  the first may be partial) against the negative binomial of that sum (the shop's own
  noise), with the detector's adjustment for its 9 tests;
  ``in time of findable``: the detector's first critical bucket is at most 2 buckets after
  that one (a decline: findable means the oracle scores it within a day of its 30 % point,
  and in time that the detector does too);
* **findable** (outages): the same oracle on 5-minute buckets, from the generator's own
  rates: a site outage's shortfall of the shop total (its products' gamma-Poisson noise
  summed), a payment outage's excess failures given the attempts (beta-binomial at the
  method's normal failure rate); ``in time of findable``: the detector's first critical score
  (on any of the incident's series and bucket sizes) exists at most 2 five-minute buckets
  after the oracle's. Outages missed, late, or not in time of findable are listed per seed
  with the oracle's time and the peak scores of their series; so are declines findable but not
  in time, with the hourly score over the day after their 30 % point.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from benchmarks.shop.generate import CONCENTRATION, SHAPE, Shop
from benchmarks.shop.incidents import DAY, FINE, METHODS, Incident
from commerce_observe.monitor.anomaly import mathutil

ORACLE_ADJUST = float(np.log10(9))  # the detector's Bonferroni adjustment (1, 3, 6, 12 buckets, two ways, decline)
DROPS = ("decline", "page_broken", "sparse_drop", "site_outage")
OUTAGES = ("site_outage", "payment_outage")

GRACE = 6 * FINE
CRITICAL = 75.0


@dataclass
class Grid:
    """One detector's scores of one series on one bucket size (``step``: 5-minute steps per bucket)."""

    series: str
    step: int
    scores: npt.NDArray[np.float64]
    alerts: npt.NDArray[np.bool_]


@dataclass
class Result:
    found: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    delay_min: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    within2: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    findable: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    near_findable: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    false_class: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_at: list[tuple[str, int]] = field(default_factory=list)  # (series, 5-minute step)
    false_by: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_product: int = 0
    unannounced: int = 0
    product_weeks: float = 0.0
    notes: list[str] = field(default_factory=list)  # outages missed, late or not in time of findable

    def merge(self, other: Result) -> None:
        for k, v in other.found.items():
            self.found[k] += v
        for k, w in other.delay_min.items():
            self.delay_min[k] += w
        for k, v in other.within2.items():
            self.within2[k] += v
        for k, v in other.findable.items():
            self.findable[k] += v
        for k, v in other.near_findable.items():
            self.near_findable[k] += v
        for k, n in other.false_class.items():
            self.false_class[k] += n
        for k, n in other.false_by.items():
            self.false_by[k] += n
        self.false_product += other.false_product
        self.false_at += other.false_at
        self.unannounced += other.unannounced
        self.notes += other.notes
        self.product_weeks += other.product_weeks


def grids(shop: Shop, out: dict[str, npt.NDArray[np.float64]]) -> list[Grid]:
    names = [f"orders:{p}" for p in shop.products] + ["orders:__all__"]
    pay = [f"payment_failures:{m}" for m in METHODS]
    g = [Grid(n, FINE, out["orders_h"][:, i], out["orders_h_alert"][:, i].astype(bool)) for i, n in enumerate(names)]
    if "pay_h" in out:
        g += [Grid(n, FINE, out["pay_h"][:, i], out["pay_h_alert"][:, i].astype(bool)) for i, n in enumerate(pay)]
    if "total_5" in out:
        g.append(Grid("orders:__all__", 1, out["total_5"][:, 0], out["total_5_alert"][:, 0].astype(bool)))
        g += [Grid(n, 1, out["pay_5"][:, i], out["pay_5_alert"][:, i].astype(bool)) for i, n in enumerate(pay[:2])]
    return g


def evaluate(shop: Shop, out: dict[str, npt.NDArray[np.float64]]) -> Result:
    res = Result()
    by_series: dict[str, list[Grid]] = defaultdict(list)
    for gr in grids(shop, out):
        by_series[gr.series].append(gr)
    covered: dict[str, list[tuple[int, int]]] = defaultdict(list)  # series -> incident spans incl. grace
    after: dict[str, list[tuple[int, int]]] = defaultdict(list)
    counts_h = shop.hourly(shop.counts5)
    product_idx = {f"orders:{p}": j for j, p in enumerate(shop.products)}
    for inc in shop.incidents:
        end = shop.steps if inc.kind == "decline" else inc.end + GRACE
        best: tuple[float, bool] | None = None
        first_hourly: int | None = None
        if inc.series[0].startswith("orders:"):  # a product's incident moves the shop total too
            covered["orders:__all__"].append((inc.start, end))
        for name in inc.series:
            covered[name].append((inc.start, end))
            after[name].append((end, end + DAY))
            for gr in by_series[name]:
                b0, b1 = inc.start // gr.step, min(-(-end // gr.step), len(gr.scores))
                hit = np.nonzero(np.nan_to_num(gr.scores[b0:b1]) >= CRITICAL)[0]
                if hit.size:
                    b = b0 + int(hit[0])
                    origin = inc.at_30 if inc.kind == "decline" else inc.start
                    delay = 5.0 * ((b + 1) * gr.step - origin)
                    cand = (delay, delay <= 24 * 60 if inc.kind == "decline" else b - b0 <= 2)
                    best = cand if best is None or cand[0] < best[0] else best
                    if gr.step == FINE and (first_hourly is None or b < first_hourly):
                        first_hourly = b
        if inc.kind in OUTAGES:
            fb = outage_findable_at(shop, inc)
            # in time: the detector's first critical score exists at most 2 five-minute buckets after the oracle's
            in_time = fb is not None and best is not None and best[0] <= 5.0 * (fb + 3 - inc.start)
            res.findable[inc.kind].append(fb is not None)
            if fb is not None:
                res.near_findable[inc.kind].append(in_time)
            if not (in_time and best is not None and best[1]):
                res.notes.append(_outage_note(inc, fb, best, by_series[inc.series[0]], end))
        if len(inc.series) == 1 and inc.series[0] in product_idx:
            j = product_idx[inc.series[0]]
            fb = findable_at(inc, counts_h[:, j], shop.normal_h[:, j], shop.normal_h[:, j] ** 2 / (SHAPE * FINE))
            if inc.kind == "decline":  # the bound is a day after the 30 % point, for the oracle too
                fb = fb if fb is not None and fb < inc.at_30 // FINE + 24 else None
                limit = inc.at_30 // FINE + 23
            else:
                limit = -1 if fb is None else fb + 2
            res.findable[inc.kind].append(fb is not None)
            if fb is not None:
                res.near_findable[inc.kind].append(first_hourly is not None and first_hourly <= limit)
                if inc.kind == "decline" and res.near_findable[inc.kind][-1] is False:
                    res.notes.append(_decline_note(inc, fb, first_hourly, by_series[inc.series[0]]))
        res.found[inc.kind].append(best is not None)
        if best is not None:
            res.delay_min[inc.kind].append(best[0])
            res.within2[inc.kind].append(best[1])
    promos: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for name, a, b in shop.unannounced:
        promos[name].append((a, b + GRACE))
    n_products = len(shop.products)
    sold = np.nansum(counts_h[: shop.train_until // FINE], axis=0) / (shop.train_until / DAY)
    for name, gs in by_series.items():
        for gr in gs:
            for alert in np.nonzero(gr.alerts)[0]:
                a, z = int(alert) * gr.step, (int(alert) + 1) * gr.step
                if a < shop.train_until:
                    continue
                if any(a < e and z > s for s, e in covered[name]):
                    continue
                if any(a < e and z > s for s, e in promos[name]):
                    res.unannounced += 1
                    continue
                res.false_by[_context(shop, name, a, z, after[name], product_idx.get(name))] += 1
                res.false_product += name in product_idx
                res.false_class[_series_class(name, sold, product_idx)] += 1
                res.false_at.append((name, a))
    res.product_weeks = n_products * (shop.steps - shop.train_until) / (7 * DAY)
    return res


def findable_at(inc: Incident, x: npt.NDArray[np.float64], m: npt.NDArray[np.float64], v: npt.NDArray[np.float64],
                step: int = FINE) -> int | None:
    """First bucket (of ``step`` 5-minute steps) at which an oracle knowing the normal mean ``m``
    and the variance ``v`` the noise adds to a Poisson's (negative: less) scores the incident critical."""
    b0 = inc.start // step
    b1 = len(x) if inc.kind == "decline" else -(-inc.end // step)
    sign = -1.0 if inc.kind in DROPS else 1.0
    cx = np.concatenate([[0.0], np.cumsum(x[b0:b1])])
    cm = np.concatenate([[0.0], np.cumsum(m[b0:b1])])
    cv = np.concatenate([[0.0], np.cumsum(v[b0:b1])])
    for b in range(1, b1 - b0 + 1):
        first = slice(0, min(b, 2))  # from the incident's first bucket, or its second (the first may be partial)
        sx, sm, sv = cx[b] - cx[first], cm[b] - cm[first], cv[b] - cv[first]
        z = sign * mathutil.negbin_z(sx, sm, sm + sv)
        if float(mathutil.surprise(z).max()) - ORACLE_ADJUST >= CRITICAL / mathutil.POINTS_PER_DECADE:
            return b0 + b - 1
    return None


def outage_findable_at(shop: Shop, inc: Incident) -> int | None:
    """:func:`findable_at` for an outage on its 5-minute series: a site outage's orders of the shop
    total (gamma-Poisson products summed), a payment outage's failures given the attempts
    (beta-binomial at the method's normal failure rate)."""
    if inc.kind == "site_outage":
        return findable_at(inc, np.nansum(shop.counts5, axis=1), shop.normal_total5, shop.extra_var_total5, step=1)
    m = METHODS.index(inc.series[0].split(":", 1)[1])
    n, p = shop.att5[:, m], shop.normal_fail_rate5[:, m]
    mean = n * p
    var = mean * (1.0 - p) * (1.0 + np.maximum(n - 1.0, 0.0) / (CONCENTRATION + 1.0))
    return findable_at(inc, shop.fail5[:, m], mean, var - mean, step=1)


def _outage_note(inc: Incident, fb: int | None, best: tuple[float, bool] | None, gs: list[Grid], end: int) -> str:
    """One line on an outage missed, late or not in time of findable: the oracle, the detector, the peak scores."""
    peaks = ", ".join(f"{'5-min' if gr.step == 1 else 'hourly'} "
                      f"{float(np.nanmax(gr.scores[inc.start // gr.step : -(-end // gr.step)])):.0f}" for gr in gs)
    oracle = "not findable" if fb is None else f"findable at +{5 * (fb + 1 - inc.start)} min"
    found = "missed" if best is None else f"first critical at +{best[0]:.0f} min"
    return (f"{inc.kind} {inc.series[0]} step {inc.start} ({5 * (inc.end - inc.start)} min): {oracle}, {found}; "
            f"peak score on {inc.series[0]}: {peaks}")


def _decline_note(inc: Incident, fb: int, first: int | None, gs: list[Grid]) -> str:
    """One line on a decline the oracle finds within a day of its 30 % point and the detector
    does not: both hours after that point and the hourly score every 3 h of that day
    (``benchmarks/shop/decline_trace.py`` says why)."""
    h30 = inc.at_30 // FINE
    sc = next(gr.scores for gr in gs if gr.step == FINE)
    traj = " ".join(f"{v:.0f}" for v in np.nan_to_num(sc[h30 : h30 + 24 : 3]))
    found = "missed" if first is None else f"first critical at +{first - h30} h"
    return (f"decline {inc.series[0]} step {inc.start}: findable at +{fb - h30} h after its 30 % point, {found}; "
            f"hourly score every 3 h of that day: {traj}")


def _series_class(name: str, sold: npt.NDArray[np.float64], product_idx: dict[str, int]) -> str:
    """Which kind of series: long tail (< 1 a day), sparse (1-100 a day), busy, shop total, payments."""
    j = product_idx.get(name)
    if j is None:
        return "payments" if name.startswith("payment_failures:") else "shop total"
    return "long tail" if sold[j] < 1.0 else "sparse" if sold[j] <= 100.0 else "busy"


def _context(shop: Shop, name: str, a: int, z: int, after: list[tuple[int, int]], j: int | None) -> str:
    c = shop.context
    if any(a < e and z > s for s, e in after):
        return "after incident"
    if j is not None and c["launch"][a:z, j].any():
        return "launch week"
    if j is not None and c["after_promotion"][a:z, j].any():
        return "after promotion"
    if name.startswith("payment_failures:") and c["maintenance"][a:z].any():
        return "maintenance"
    if c["payday"][a:z].any():
        return "payday"
    if c["night"][a:z].all():
        return "night"
    return "other"


def headline(res: Result) -> str:
    """The recall / precision / F1 line of :func:`summary`."""
    return next(line for line in summary(res) if line.lstrip().startswith("recall")).strip()


def summary(res: Result) -> list[str]:
    lines = []
    tp = sum(sum(v) for v in res.found.values())
    n = sum(len(v) for v in res.found.values())
    fp = sum(res.false_by.values())
    recall = tp / max(n, 1)
    precision = tp / max(tp + fp, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    for kind in sorted(res.found):
        f = res.found[kind]
        d = res.delay_min[kind]
        w = res.within2[kind]
        delay = f"median {np.median(d):6.0f} min" if d else "         -    "
        line = f"    {kind:15s} found {sum(f):2d}/{len(f):2d}  delay {delay}  within 2 buckets {sum(w)}/{len(f)}"
        if res.findable.get(kind):
            fb = res.findable[kind]
            line += f"  findable {sum(fb)}/{len(fb)}, in time of findable {sum(res.near_findable[kind])}/{sum(fb)}"
        lines.append(line)
    lines.append(f"    recall {recall:.2f}  precision {precision:.2f}  F1 {f1:.2f}  "
                 f"false alerts {fp} ({res.false_product / max(res.product_weeks, 1e-9):.4f} per product-week), "
                 f"on unannounced promotions {res.unannounced}")
    lines.append("    false alerts by context: " + ", ".join(f"{k} {v}" for k, v in sorted(res.false_by.items())) if fp else
                 "    false alerts by context: none")
    if fp:
        lines.append("    false alerts by series (long tail < 1 a day, sparse 1-100 a day, busy): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(res.false_class.items())))
    return lines
