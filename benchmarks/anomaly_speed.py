"""Speed and memory of the vectorised detector path, and of the CLI.

Measures (printed, not asserted):
* learning three months (13 weeks) of hourly history for N series (default 10,000),
* scoring one new bucket for all N series,
* model memory per series,
* ``--cli``: ``commerce-observe anomaly`` over 200 products x 105 days hourly
  (504,000 rows), today's CLI (git revision ``benchmarks/_baseline.BASELINE_REV``)
  and this one, each in a fresh interpreter, in the same run;
* ``--instructions``: instructions (callgrind, see ``_callgrind.py``) of scoring 9
  buckets of N series after ``--weeks`` of history, the detector at ``--baseline``
  and this one, each in its own child (the same whatever the machine's load);
  ``--cli --instructions``: instructions of the whole CLI process (start-up, reading,
  scoring, writing) on 200 products x ``--days`` days, at ``--baseline`` and this tree.

    .venv/bin/python benchmarks/anomaly_speed.py [--series 10000] [--weeks 13] [--cli [--days 105]] [--instructions] [--baseline REV]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CHILD = "--count-child"  # internal: ``--count-child TREE`` scores under callgrind with TREE's package
if CHILD in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index(CHILD) + 1])

from benchmarks import _callgrind  # noqa: E402
from benchmarks._baseline import BASELINE_REV, ROOT, baseline_tree, env_for  # noqa: E402
from commerce_observe.monitor.anomaly import AnomalyDetector, Settings  # noqa: E402


def write_shop_csv(path: Path, products: int = 200, days: int = 105) -> int:
    """Hourly orders of ``products`` products over ``days`` days; returns the row count."""
    rng = np.random.default_rng(1)
    base = np.exp(rng.normal(0.0, 1.3, products))
    hod = np.arange(24)
    prof = 0.2 + np.exp(-0.5 * ((hod - 12.5) / 2.0) ** 2) + np.exp(-0.5 * ((hod - 20) / 2.0) ** 2)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    names = [f"orders:sku-{i:04d}" for i in range(products)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "series", "value"])
        for t in range(days * 24):
            ts = (t0 + timedelta(hours=t)).isoformat()
            w.writerows(zip([ts] * products, names, rng.poisson(base * prof[t % 24]).tolist()))
    return days * 24 * products


def time_cli(src: Path, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one CLI run in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "commerce_observe", "anomaly", str(src),
                    "-o", str(out), "--no-progress"], check=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_bench(baseline: str = BASELINE_REV) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "shop.csv"
        rows = write_shop_csv(src)
        old_wall, old_cpu = time_cli(src, Path(tmp) / "old.csv", env_for(baseline_tree(baseline)))
        new = [time_cli(src, Path(tmp) / "new.csv", env_for(ROOT)) for _ in range(3)]
        wall, cpu = min(w for w, _ in new), min(c for _, c in new)
        print(f"CLI, {rows} rows (200 products x 105 days hourly, {os.path.getsize(src) / 2**20:.0f} MiB), "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
        print(f"  the CLI at {baseline}: {old_wall:.1f} s wall, {old_cpu:.1f} s CPU ({1e6 * old_cpu / rows:.1f} us/row)")
        print(f"  this CLI, best of 3: {wall:.2f} s wall, {cpu:.2f} s CPU ({1e6 * cpu / rows:.1f} us/row)  "
              f"[target <= 3 s]; {old_cpu / cpu:.1f}x less CPU")


def count_bench(series: int, weeks: int, baseline: str) -> None:
    why = _callgrind.unavailable()
    if why:
        print(f"instructions: not counted ({why})")
        return
    trees = {baseline: baseline_tree(baseline), "this tree": ROOT}
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, tree in trees.items():
            out = Path(tmp) / name.replace(" ", "_")
            out.mkdir()
            argv = [__file__, CHILD, str(tree), "--series", str(series), "--weeks", str(weeks)]
            counts[name] = _callgrind.run(argv, "all", str(out))["score"] / 9
    old, new = counts[baseline], counts["this tree"]
    print(f"score one bucket of {series} series after {weeks} week(s) of history, instructions (callgrind): "
          f"{baseline} {old / 1e6:.1f} M, this tree {new / 1e6:.1f} M ({new / old:.3f}x)")


def count_cli(days: int, baseline: str) -> None:
    """Instructions of the whole CLI process on 200 products x ``days`` days, each tree in its own child."""
    why = _callgrind.unavailable()
    if why:
        print(f"instructions: not counted ({why})")
        return
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "shop.csv"
        rows = write_shop_csv(src, days=days)
        for name, tree in ((baseline, baseline_tree(baseline)), ("this tree", ROOT)):
            out = Path(tmp) / name.replace(" ", "_")
            out.mkdir()
            argv = [__file__, CHILD, str(tree), "--cli", "--cli-input", str(src)]
            counts[name] = _callgrind.run(argv, "all", str(out))["cli"]
    old, new = counts[baseline], counts["this tree"]
    print(f"the CLI on {rows} rows (200 products x {days} days hourly), instructions of the whole process "
          f"(callgrind): {baseline} {old / 1e9:.2f} G, this tree {new / 1e9:.2f} G ({new / old:.3f}x)")


def cli_child(src: str) -> None:
    """The CLI in this process (under callgrind), then the window's mark."""
    from commerce_observe.monitor.cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        cli_main(["anomaly", src, "-o", str(Path(tmp) / "out.csv"), "--no-progress"])
    _callgrind.mark("cli")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--weeks", type=int, default=13)
    ap.add_argument("--cli", action="store_true", help="time the CLI on 504,000 rows instead")
    ap.add_argument("--days", type=int, default=105, help="--cli --instructions: days of the CLI's input")
    ap.add_argument("--cli-input", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--instructions", action="store_true", help="count scoring instructions beside --baseline")
    ap.add_argument(CHILD, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--baseline", default=BASELINE_REV, help="git revision of the CLI to compare with")
    args = ap.parse_args(argv)
    if args.cli_input:
        cli_child(args.cli_input)
        return 0
    if args.cli and args.instructions:
        count_cli(args.days, args.baseline)
        return 0
    if args.cli:
        cli_bench(args.baseline)
        return 0
    if args.instructions:
        count_bench(args.series, args.weeks, args.baseline)
        return 0
    S, T = args.series, args.weeks * 168
    rng = np.random.default_rng(0)
    base = np.exp(rng.normal(0, 1.3, S))
    hod = np.arange(24)
    prof = 0.3 + np.exp(-0.5 * ((hod - 12.5) / 2.0) ** 2) + np.exp(-0.5 * ((hod - 20) / 2.0) ** 2)
    det = AnomalyDetector(Settings())
    idx = det.series_index([f"orders:sku-{i}" for i in range(S)])
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    gen = gen_cpu = 0.0
    start, start_cpu = time.perf_counter(), time.process_time()
    for t in range(T):
        g, g_cpu = time.perf_counter(), time.process_time()
        x = rng.poisson(base * prof[t % 24]).astype(np.float64)
        gen += time.perf_counter() - g
        gen_cpu += time.process_time() - g_cpu
        det.update_batch_idx(t0 + timedelta(hours=t), idx, x)
    learn = time.perf_counter() - start - gen
    learn_cpu = time.process_time() - start_cpu - gen_cpu
    # one new bucket for every series
    times, cpu = [], []
    _callgrind.mark("learn")
    for k in range(9):
        x = rng.poisson(base * prof[(T + k) % 24]).astype(np.float64)
        s, c = time.perf_counter(), time.process_time()
        det.update_batch_idx(t0 + timedelta(hours=T + k), idx, x)
        times.append(time.perf_counter() - s)
        cpu.append(time.process_time() - c)
    _callgrind.mark("score")
    if args.count_child:
        return 0
    bps = det.bytes_per_series
    print(f"series={S} buckets={T} (hourly, {args.weeks} weeks)")
    print(f"learn history: {learn:.1f} s wall, {learn_cpu:.1f} s CPU ({1000 * learn_cpu / T:.2f} ms CPU per bucket of {S} series)")
    print(f"score one bucket of {S} series: median {1000 * float(np.median(times)):.1f} ms wall, "
          f"{1000 * float(np.median(cpu)):.1f} ms CPU  [target <= 20 ms]; load average {os.getloadavg()[0]:.1f}")
    print(f"model memory: {bps} bytes per series ({bps * S / 2**20:.1f} MiB for {S} series, "
          f"plus the series name and one dict entry each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
