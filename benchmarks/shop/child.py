"""Run one detector over a synthetic shop saved as ``.npz``; write its scores and alerts.

    python benchmarks/shop/child.py shop.npz out.npz [--fine]

Runs in a child interpreter whose ``PYTHONPATH`` chooses the detector (today's, from
a git revision, or this tree's), so both are measured on the same data in the same
run. Uses only ``AnomalyDetector``, ``Settings``, ``Calendar`` and ``update_batch_idx``
(score at position 0, alert at 2), which both versions have. ``--fine``: the shop total
and the two busiest payment methods also on 5-minute buckets (a second detector).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import numpy as np

from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings

TZ = "Europe/Berlin"


def _run(det: AnomalyDetector, names: list[str], t0: datetime, step: timedelta, values: np.ndarray,
         den: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    idx = det.series_index(names)
    T, S = values.shape
    scores = np.full((T, S), np.nan)
    alerts = np.zeros((T, S), dtype=bool)
    for t in range(T):
        ok = ~np.isnan(values[t])
        res = det.update_batch_idx(t0 + t * step, idx[ok], values[t, ok], None if den is None else den[t, ok])
        scores[t, ok] = res[0]
        alerts[t, ok] = res[2]
    return scores, alerts


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    fine = "--fine" in sys.argv[3:]
    d = np.load(src, allow_pickle=False)
    t0 = datetime.fromtimestamp(int(d["t0"]), timezone.utc)
    calendar = Calendar.from_json(bytes(d["calendar"]).decode("utf-8"), TZ)
    products = [str(p) for p in d["products"]]
    methods = [str(m) for m in d["methods"]]
    hourly = AnomalyDetector(Settings(timezone=TZ), calendar)
    out: dict[str, np.ndarray] = {}
    counts = np.concatenate([d["counts_h"], d["total_h"][:, None]], axis=1)
    names = [f"orders:{p}" for p in products] + ["orders:__all__"]
    out["orders_h"], out["orders_h_alert"] = _run(hourly, names, t0, timedelta(hours=1), counts, None)
    pay = [f"payment_failures:{m}" for m in methods]
    out["pay_h"], out["pay_h_alert"] = _run(hourly, pay, t0, timedelta(hours=1), d["fail_h"], d["att_h"])
    if fine:
        five = AnomalyDetector(Settings(timezone=TZ, bucket_seconds=300), calendar)
        step = timedelta(minutes=5)
        out["total_5"], out["total_5_alert"] = _run(five, ["orders:__all__"], t0, step, d["total_5"][:, None], None)
        out["pay_5"], out["pay_5_alert"] = _run(five, pay[:2], t0, step, d["fail_5"][:, :2], d["att_5"][:, :2])
    np.savez_compressed(dst, allow_pickle=False, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
