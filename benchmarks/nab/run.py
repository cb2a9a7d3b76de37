"""Run our detector over the NAB corpus under NAB's rules and score it with our scorer.

Rules kept: every file is read once, in time order; each point is scored from
the past only; the same settings for every file; the first 15% of a file (NAB's
probation, at most 750 rows) is the learning period, told to the detector the
same way NAB tells every detector (and the way ``--train-until`` does in our CLI).

    .venv/bin/python -m benchmarks.nab.run [--out /tmp/nab_ours] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.nab import scorer  # noqa: E402
from commerce_observe.anomaly.metric import MetricDetector, MetricSettings  # noqa: E402

DETECTOR = "commerceObserve"


def run_file(args: tuple[str, str, str]) -> tuple[str, int, float]:
    rel, nab_dir, out_dir = args
    t0 = time.perf_counter()
    with open(Path(nab_dir) / "data" / rel, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    n = len(rows)
    det = MetricDetector(MetricSettings(learn_points=scorer.probation_length(n)))
    cat, name = rel.split("/")
    dest = Path(out_dir) / DETECTOR / cat
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / f"{DETECTOR}_{name}", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score"])
        for ts, val in rows:
            s = det.update(float(val))
            w.writerow([ts, val, f"{0.0 if s is None else s:.6f}"])
    return rel, n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab-dir", type=Path, default=scorer.NAB_DIR)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "nab_ours")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    files = sorted(scorer.load_windows(args.nab_dir))
    with ProcessPoolExecutor(args.jobs) as ex:
        done = list(ex.map(run_file, [(f, str(args.nab_dir), str(args.out)) for f in files]))
    n_points = sum(d[1] for d in done)
    el = time.perf_counter() - t0
    res = scorer.score_results_dir(args.out / DETECTOR, DETECTOR, args.nab_dir)
    print(f"{len(done)} files, {n_points} points in {el:.1f}s")
    for r in res.values():
        print(f"{DETECTOR} {r.profile:20s} normalized={r.normalized:6.2f} raw={r.raw:8.3f} threshold={r.threshold:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
