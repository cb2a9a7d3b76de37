"""Why a burst or a drop on a sparse product is found later than an oracle finds it, and what
the detector scores after promotions (issue 14): this tree's hourly detector over a synthetic
shop's products, with the adaptive stretches' state recorded (:mod:`.runs`).

    .venv/bin/python benchmarks/shop/sparse_trace.py [--seeds 0,1,2] [--products 300] [--all] [--promotions]

Per sparse burst or drop the oracle can find and the detector does not find within 2 buckets
of it (``--all``: every one): the oracle's and the detector's first critical hour, then per
hour from 3 h before the start to 2 h after the end: the orders, the true rate without the
incident, the detector's expectation and negative-binomial dispersion, its score, and each
stretch's counts / expectation, variance, length and z (up, down, the run of zeros, sharp up).
The oracle sums the orders from the start at the true rate with the shop's own noise; the
detector has its own expectation and its uncertainty, and chooses the start itself: the
table shows which of these costs the time. ``--promotions``: the peak score of each promoted
product in the 48 hours after its promotion (in the calendar or unannounced).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.shop.child import TZ  # noqa: E402
from benchmarks.shop.evaluate import CRITICAL, findable_at  # noqa: E402
from benchmarks.shop.generate import SHAPE, Shop, generate, product_count, seed_list  # noqa: E402
from benchmarks.shop.incidents import FINE  # noqa: E402
from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings, runs  # noqa: E402
from commerce_observe.monitor.anomaly import mathutil as mu_  # noqa: E402

KINDS = ("sparse_burst", "sparse_drop")
STRETCHES = ("up", "down", "zeros", "sharp up")
_step = runs.step

Row = tuple[float, float, float, list[tuple[float, float, float, float, float]]]


def _record(rows: dict[int, dict[int, Row]], hour: list[int]) -> Any:
    """runs.step, also keeping per watched series and hour: expectation, variance, dispersion
    and each stretch's counts, expectation, variance, length and z."""

    def step(A: Any, idx: Any, s: Any, t: Any, x: Any, xa: Any, e: Any, scored: Any, visits: Any) -> Any:
        a, b, v = _step(A, idx, s, t, x, xa, e, scored, visits)
        z = mu_.negbin_z(a, b, v)
        pos = {int(i): p for p, i in enumerate(idx)}
        for j, out in rows.items():
            p = pos.get(j)
            if p is not None:
                st = [(float(a[p, c]), float(b[p, c]), float(v[p, c]), float(A["run"][j, 4, c]), float(z[p, c]))
                      for c in range(len(STRETCHES))]
                out[hour[0]] = (float(e.exp_q[p]), float(e.var_q[p]), float(e.k[p]), st)
        return a, b, v

    return step


def _run(shop: Shop, watch: list[int]) -> tuple[np.ndarray, dict[int, dict[int, Row]]]:
    det = AnomalyDetector(Settings(timezone=TZ), Calendar.from_json(json.dumps(shop.calendar), TZ))
    names = [f"orders:{p}" for p in shop.products]
    idx = det.series_index(names)
    counts = shop.hourly(shop.counts5)
    rows: dict[int, dict[int, Row]] = {int(idx[j]): {} for j in watch}
    hour = [0]
    scores = np.full(counts.shape, np.nan)
    runs.step = _record(rows, hour)
    try:
        for t in range(counts.shape[0]):
            hour[0] = t
            ok = ~np.isnan(counts[t])
            scores[t, ok] = det.update_batch_idx(shop.t0 + t * timedelta(hours=1), idx[ok], counts[t, ok])[0]
    finally:
        runs.step = _step
    return scores, rows


def trace(seed: int, n_products: int, every: bool) -> list[str]:
    shop = generate(seed, n_products)
    incs = [inc for inc in shop.incidents if inc.kind in KINDS]
    cols = [shop.products.index(inc.series[0].split(":", 1)[1]) for inc in incs]
    scores, rows = _run(shop, cols)
    counts = shop.hourly(shop.counts5)
    tz = ZoneInfo(TZ)
    lines = []
    for inc, j in zip(incs, cols):
        true = shop.normal_h[:, j]
        fb = findable_at(inc, counts[:, j], true, true**2 / (SHAPE * FINE))
        h0, h1 = inc.start // FINE, -(-inc.end // FINE)
        hit = np.nonzero(np.nan_to_num(scores[h0 : h1 + 6, j]) >= CRITICAL)[0]
        first = None if not hit.size else h0 + int(hit[0])
        if not every and (fb is None or (first is not None and first <= fb + 2)):
            continue
        daily = np.nansum(true[h0 - 7 * 24 : h0]) / 7
        lines.append(f"seed {seed} {inc.kind} {inc.series[0]} ({daily:.0f} a day), {5 * (inc.end - inc.start)} min from "
                     f"+{5 * (inc.start % FINE)} min into its first hour: oracle {_h(fb, h0)}, detector {_h(first, h0)} "
                     "(hours from the start)")
        for h in range(h0 - 3, min(h1 + 2, len(true))):
            r = rows[j].get(h)
            if r is None:
                continue
            m, _, k, st = r
            local = (shop.t0 + timedelta(hours=h)).astimezone(tz)
            inside = "*" if h0 <= h < h1 else " "
            lines.append(f"   {inside}{h - h0:+3d} h {local:%a %H}:00 x {counts[h, j]:3.0f} true {true[h]:5.2f} expected {m:5.2f} "
                         f"k {k:.3f} score {np.nan_to_num(scores[h, j]):5.1f} | "
                         + " | ".join(f"{n} {c[0]:.0f}/{c[1]:.2f} v {c[2]:.2f} n {c[3]:.0f} z {c[4]:+.2f}"
                                      for n, c in zip(STRETCHES, st) if c[3] > 0))
    return lines


def promotions(seed: int, n_products: int) -> list[str]:
    """The peak score of each promoted product in the 48 hours after its promotion."""
    shop = generate(seed, n_products)
    ends: list[tuple[str, int, int]] = [("unannounced", shop.products.index(n.split(":", 1)[1]), b)
                                        for n, _, b in shop.unannounced]
    for ev in shop.calendar:
        if ev["scope"] != "*":
            end = int((datetime.fromisoformat(ev["end"]) - shop.t0) // timedelta(minutes=5))
            ends.append(("calendar", shop.products.index(ev["scope"].split(":", 1)[1]), end))
    scores, _ = _run(shop, [])
    counts = shop.hourly(shop.counts5)
    lines = []
    for kind, j, b in sorted(ends, key=lambda e: e[2]):
        h = -(-b // FINE)
        daily = np.nansum(counts[h - 8 * 24 : h - 24, j]) / 7
        peak = float(np.nanmax(np.nan_to_num(scores[h : h + 48, j]))) if h < len(scores) else float("nan")
        lines.append(f"seed {seed} {kind} {shop.products[j]} ({daily:.0f} a day) ends h{h}: peak score in the 48 h after {peak:.1f}")
    return lines


def _h(b: int | None, h0: int) -> str:
    return "-" if b is None else f"+{b - h0} h"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4, 5, 6, 7])
    ap.add_argument("--products", type=product_count, default=300)
    ap.add_argument("--all", action="store_true", help="every sparse burst and drop, not only the findable ones found late")
    ap.add_argument("--promotions", action="store_true", help="the peak score in the 48 h after each promotion instead")
    args = ap.parse_args(argv)
    for seed in args.seeds:
        lines = promotions(seed, args.products) if args.promotions else trace(seed, args.products, args.all)
        for line in lines:
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
