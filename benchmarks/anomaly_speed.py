"""Speed and memory of the vectorised detector path.

Measures (printed, not asserted):
* learning three months (13 weeks) of hourly history for N series (default 10,000),
* scoring one new bucket for all N series,
* model memory per series.

    .venv/bin/python benchmarks/anomaly_speed.py [--series 10000] [--weeks 13]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commerce_observe.monitor.anomaly import AnomalyDetector, Settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--weeks", type=int, default=13)
    args = ap.parse_args(argv)
    S, T = args.series, args.weeks * 168
    rng = np.random.default_rng(0)
    base = np.exp(rng.normal(0, 1.3, S))
    hod = np.arange(24)
    prof = 0.3 + np.exp(-0.5 * ((hod - 12.5) / 2.0) ** 2) + np.exp(-0.5 * ((hod - 20) / 2.0) ** 2)
    det = AnomalyDetector(Settings())
    idx = det.series_index([f"orders:sku-{i}" for i in range(S)])
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    gen = 0.0
    start = time.perf_counter()
    for t in range(T):
        g = time.perf_counter()
        x = rng.poisson(base * prof[t % 24]).astype(np.float64)
        gen += time.perf_counter() - g
        det.update_batch_idx(t0 + timedelta(hours=t), idx, x)
    learn = time.perf_counter() - start - gen
    # one new bucket for every series
    times = []
    for k in range(5):
        x = rng.poisson(base * prof[(T + k) % 24]).astype(np.float64)
        s = time.perf_counter()
        det.update_batch_idx(t0 + timedelta(hours=T + k), idx, x)
        times.append(time.perf_counter() - s)
    bps = det.bytes_per_series
    print(f"series={S} buckets={T} (hourly, {args.weeks} weeks)")
    print(f"learn history: {learn:.1f} s total ({1000 * learn / T:.2f} ms per bucket of {S} series)  [target <= 60 s]")
    print(f"score one bucket of {S} series: median {1000 * float(np.median(times)):.1f} ms  [target <= 100 ms]")
    print(f"model memory: {bps} bytes per series ({bps * S / 2**20:.1f} MiB for {S} series, "
          f"plus the series name and one dict entry each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
