"""This tree's hourly detector over the synthetic shop's products and shop total, in-process:
the tuning loop of issue 14 (seconds a seed, where ``commerce_synthetic.py`` takes minutes).

    .venv/bin/python benchmarks/shop/hourly.py [--seeds 0,1,2,3,4,5,6,7] [--products 300] [--jobs 2]

Per seed and summed: declines in time of findable and within a day of their 30 % point, each
decline's first critical hour after that point, false alerts (series, day), and the decline
test's **null tail**: its own score (as the detector pays for it) at its highest on a product
outside that product's incidents (and a day after them), in the evaluated weeks; critical is
75. The other kinds on one product: found and in time of findable, as ``commerce_synthetic.py``
scores them. Outages need the 5-minute buckets and payment failures, which are not run here.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.shop.child import TZ  # noqa: E402
from benchmarks.shop.evaluate import CRITICAL, GRACE, evaluate  # noqa: E402
from benchmarks.shop.generate import generate, product_count, seed_list  # noqa: E402
from benchmarks.shop.incidents import DAY, FINE  # noqa: E402
from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings, decline  # noqa: E402
from commerce_observe.monitor.anomaly import mathutil  # noqa: E402

KINDS = ("sparse_burst", "sparse_drop", "page_broken", "bot_spike", "price_error")


def run(seed: int, n_products: int) -> dict[str, Any]:
    shop = generate(seed, n_products)
    det = AnomalyDetector(Settings(timezone=TZ), Calendar.from_json(json.dumps(shop.calendar), TZ))
    names = [f"orders:{p}" for p in shop.products] + ["orders:__all__"]
    counts = np.concatenate([shop.hourly(shop.counts5), shop.hourly(np.nansum(shop.counts5, axis=1))[:, None]], axis=1)
    idx = det.series_index(names)
    column = np.zeros(int(idx.max()) + 1, dtype=np.int64)
    column[idx] = np.arange(len(names))
    z_decline = np.zeros(counts.shape)
    scores = np.full(counts.shape, np.nan)
    alerts = np.zeros(counts.shape, dtype=bool)
    step, now = decline.step, [0]

    def recording(A: Any, ix: Any, s: Any, sl: Any, x: Any, e: Any, scored: Any, excluded: Any) -> Any:
        ready, z = step(A, ix, s, sl, x, e, scored, excluded)
        z_decline[now[0], column[ix[ready]]] = z
        return ready, z

    setattr(decline, "step", recording)  # the bank calls decline.step: record its z, every series and hour
    try:
        for now[0] in range(counts.shape[0]):
            ok = ~np.isnan(counts[now[0]])
            res_t = det.update_batch_idx(shop.t0 + now[0] * timedelta(hours=1), idx[ok], counts[now[0], ok], None)
            scores[now[0], ok], alerts[now[0], ok] = res_t.score, res_t.alert
    finally:
        setattr(decline, "step", step)
    res = evaluate(shop, {"orders_h": scores, "orders_h_alert": alerts})
    surprise = np.maximum(mathutil.surprise(z_decline) - decline.TWO - float(det.bank.adjust_count), 0.0)
    own = np.asarray(mathutil.to_score(surprise))
    own[: shop.train_until // FINE] = 0.0
    hours = []
    for inc in shop.incidents:
        j = names.index(inc.series[0]) if inc.series[0] in names else None
        if j is None:
            continue
        end = len(own) if inc.kind == "decline" else (inc.end + GRACE + DAY) // FINE + 1
        own[inc.start // FINE : end, j] = 0.0
        if inc.kind == "decline":
            hit = np.nonzero(np.nan_to_num(scores[inc.start // FINE :, j]) >= CRITICAL)[0]
            hours.append(f"{inc.series[0]} {'-' if not hit.size else f'{int(hit[0]) + (inc.start - inc.at_30) // FINE:+d}'}")
    tail = int(np.argmax(own[:, :-1].max(axis=0)))
    return {
        "seed": seed, "hours": hours, "null": (float(own[:, tail].max()), names[tail]),
        "false": [f"{n} day {a // DAY}" for n, a in res.false_at],
        **{f"{k}:{kind}": sum(getattr(res, k).get(kind, [])) for k in ("found", "findable", "near_findable", "within2")
           for kind in ("decline", *KINDS)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4, 5, 6, 7])
    ap.add_argument("--products", type=product_count, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    with ProcessPoolExecutor(args.jobs) as pool:
        out = list(pool.map(run, args.seeds, [args.products] * len(args.seeds)))
    total: dict[str, int] = {}
    for o in out:
        for k, v in o.items():
            if ":" in k:
                total[k] = total.get(k, 0) + v
        print(f"seed {o['seed']}: declines in time of findable {o['near_findable:decline']}/{o['findable:decline']}, "
              f"hours after the 30 % point {', '.join(o['hours'])}; false alerts {o['false'] or 'none'}; "
              f"decline null tail {o['null'][0]:.0f} ({o['null'][1]})")
    print(f"{len(out)} seeds: declines in time of findable {total['near_findable:decline']}/{total['findable:decline']}, "
          f"within a day of the 30 % point {total['within2:decline']}/{sum(len(o['hours']) for o in out)}; "
          f"false alerts {sum(len(o['false']) for o in out)}; decline null tail {max(o['null'][0] for o in out):.0f}")
    print("  " + ", ".join(f"{kind} found {total[f'found:{kind}']}, in time of findable "
                           f"{total[f'near_findable:{kind}']}/{total[f'findable:{kind}']}" for kind in KINDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
