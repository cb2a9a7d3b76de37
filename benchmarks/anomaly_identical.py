"""Not a speed: the detector's scores and learned state, and the anomaly CLI's output,
of this tree against those of git revision ``--baseline``, compared bitwise.

A speed-up of the detector must not move a single score. Each tree runs in its own
child interpreter (``PYTHONPATH`` at that tree) on the same data:

* the Python API on a few hundred series (counts from busy to a few a week, amounts,
  failure ratios, in three families) over several hundred buckets, hourly in UTC and
  15-minute buckets in Europe/Berlin (a daylight-saving change): most buckets step
  every series in one batch, some step a random part in a shuffled batch and the rest
  one by one (the rings' positions diverge), some leave series out (gaps); invalid
  points, duplicates in a batch, a calendar event and injected incidents are mixed in.
  Every output array of every step and every learned array at the end must be equal
  bit for bit.
* the CLI on the speed benchmark's 504,000 rows (``anomaly_speed.py --cli``) and on a
  small mixed file (ratios, amounts, several rows per bucket, a quoted cell, bad rows,
  ``Z`` and offset timestamps, 15-minute buckets in Europe/Berlin, a calendar,
  ``--train-until``): the output files must be equal byte for byte.

    .venv/bin/python benchmarks/anomaly_identical.py [--baseline main] [--no-cli]

Exits 1 on any difference (and says where).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CHILD = "--identical-child"  # internal: ``--identical-child TREE OUT`` runs the API scenarios
if CHILD in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index(CHILD) + 1])

from benchmarks._baseline import ROOT, baseline_tree, env_for  # noqa: E402

Arrays = dict[str, npt.NDArray[Any]]
FIELDS = ("score", "expected", "alert", "warming", "lower", "upper")


def _data(rng: np.random.Generator, n: int, buckets: int, per_day: int) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Names, values (buckets, n) and denominators (NaN: not a ratio) with incidents."""
    kinds = rng.choice(3, size=n, p=[0.7, 0.15, 0.15])
    names = [f"{('orders', 'revenue', 'payment_failures')[k]}:s-{i:03d}" for i, k in enumerate(kinds)]
    base = np.exp(rng.normal(0.0, 1.8, n))  # from a few a week to hundreds a bucket
    hod = np.arange(buckets) % per_day * (24.0 / per_day)
    day = 0.25 + np.exp(-0.5 * ((hod - 12.5) / 2.5) ** 2) + np.exp(-0.5 * ((hod - 20.0) / 2.0) ** 2)
    rate = base[None, :] * day[:, None] * (1.0 + 0.3 * (np.arange(buckets) // per_day % 7 >= 5))[:, None]
    for _ in range(n // 4):  # incidents: bursts, drops, outages, slow declines
        j, start = int(rng.integers(n)), int(rng.integers(buckets // 3, buckets))
        length = int(rng.integers(1, 3 * per_day))
        factor = float(rng.choice([0.0, 0.3, 3.0, 8.0]))
        rate[start:start + length, j] *= factor
    x = rng.poisson(rate).astype(np.float64)
    value = kinds == 1
    x[:, value] = np.round(rate[:, value] * rng.gamma(4.0, 0.25, (buckets, int(value.sum()))) * 19.99, 2)
    ratio = kinds == 2
    den = np.full((buckets, n), np.nan)
    den[:, ratio] = rng.poisson(rate[:, ratio] * 20.0 + 1.0)
    p = np.where(rng.random((buckets, int(ratio.sum()))) < 0.01, 0.4, 0.03)
    x[:, ratio] = rng.binomial(den[:, ratio].astype(np.int64), p)
    bad = rng.random((buckets, n)) < 0.001
    x[bad] = rng.choice([np.nan, -1.0, np.inf], size=int(bad.sum()))
    return names, x, den


def _run(settings: dict[str, Any], n: int, buckets: int, seed: int) -> Arrays:
    from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings

    s = Settings(**settings)
    rng = np.random.default_rng(seed)
    per_day = 86400 // s.bucket_seconds
    names, x, den = _data(rng, n, buckets, per_day)
    t0 = datetime(2024, 3, 20, tzinfo=timezone.utc)
    dt = timedelta(seconds=s.bucket_seconds)
    cal = Calendar.from_json([{"start": (t0 + dt * (buckets // 2)).isoformat(),
                               "end": (t0 + dt * (buckets // 2 + per_day // 2)).isoformat(),
                               "scope": "orders:s-0*", "name": "promo"}])
    det = AnomalyDetector(s, cal)
    ids = det.series_index(names)
    out: dict[str, list[npt.NDArray[Any]]] = {f: [] for f in FIELDS}
    for b in range(buckets):
        ts = t0 + dt * b
        mode = rng.random()
        if mode < 0.8:  # everyone in one batch, in order
            batches = [np.arange(n)]
        elif mode < 0.9:  # a shuffled part together, the others one by one
            order = rng.permutation(n)
            cut = int(rng.integers(1, n))
            batches = [order[:cut], *(order[i:i + 1] for i in range(cut, n))]
        elif mode < 0.97:  # some series have no row in this bucket
            batches = [np.sort(rng.choice(n, size=int(rng.integers(1, n)), replace=False))]
        else:  # a duplicate in the batch
            batches = [np.append(np.arange(n), int(rng.integers(n)))]
        for sel in batches:
            res = det.update_batch_idx(ts, ids[sel], x[b, sel], den[b, sel])
            for f in FIELDS:
                out[f].append(np.asarray(getattr(res, f)))
    arrays: Arrays = {f: np.concatenate(v) for f, v in out.items()}
    arrays.update({f"state.{k}": v[:det.bank.size] for k, v in det.bank.arrays.items()})
    arrays.update({f"pool.{k}": v for k, v in det.bank.pool.payload().items()})
    return arrays


SCENARIOS: list[tuple[str, dict[str, Any], int, int, int]] = [
    ("hourly UTC", {}, 300, 700, 1),
    ("15 min Europe/Berlin", {"bucket_seconds": 900, "timezone": "Europe/Berlin"}, 120, 1500, 2),
]


def child(out_dir: str) -> None:
    for i, (_, settings, n, buckets, seed) in enumerate(SCENARIOS):
        arrays: dict[str, Any] = _run(settings, n, buckets, seed)
        np.savez(Path(out_dir) / f"s{i}.npz", **arrays)


def _differences(old: Arrays, new: Arrays) -> list[str]:
    diffs = [f"{k}: only in one tree" for k in sorted(set(old) ^ set(new))]
    for k in sorted(set(old) & set(new)):
        a, b = old[k], new[k]
        if a.shape != b.shape or a.dtype != b.dtype:
            diffs.append(f"{k}: shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
        elif a.tobytes() != b.tobytes():
            bytes_a, bytes_b = (np.ascontiguousarray(v).view(np.uint8).reshape(v.size, -1) for v in (a, b))
            where = np.flatnonzero((bytes_a != bytes_b).any(axis=1))
            diffs.append(f"{k}: differs at {where.size} of {a.size} elements (first {where[:3].tolist()})")
    return diffs


def api_check(base: Path) -> bool:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        got = {}
        for name, tree in (("baseline", base), ("this tree", ROOT)):
            d = Path(tmp) / name.replace(" ", "_")
            d.mkdir()
            subprocess.run([sys.executable, __file__, CHILD, str(tree), str(d)], check=True, env=env_for(tree))
            got[name] = d
        for i, (label, _, n, buckets, _) in enumerate(SCENARIOS):
            with np.load(got["baseline"] / f"s{i}.npz") as a, np.load(got["this tree"] / f"s{i}.npz") as b:
                old, new = {k: a[k] for k in a.files}, {k: b[k] for k in b.files}
            diffs = _differences(old, new)
            scored = int((~np.isnan(new["score"])).sum()) if "score" in new else 0
            alerts = int(new["alert"].sum()) if "alert" in new else 0
            print(f"API, {label}, {n} series x {buckets} buckets ({scored} points scored, {alerts} alerts, "
                  f"{len(old)} arrays): {'identical' if not diffs else 'DIFFERENT'}")
            for diff in diffs[:20]:
                print(f"  {diff}")
            ok = ok and not diffs
    return ok


def _mixed_csv(path: Path) -> tuple[list[str], Path]:
    """A small CLI input touching every reading path; returns extra CLI arguments."""
    rng = np.random.default_rng(7)
    t0 = datetime(2024, 3, 25, tzinfo=timezone.utc)
    lines = ["timestamp,series,value,numerator,denominator"]
    for k in range(20 * 24 * 12):  # 20 days of 5-minute rows onto 15-minute buckets
        ts = t0 + timedelta(minutes=5 * k)
        stamp = ts.isoformat() if k % 3 else ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        for j in range(6):
            lines.append(f"{stamp},orders:p-{j},{rng.poisson(0.3 * (j + 1))},,")
        lines.append(f"{stamp},revenue:all,{rng.gamma(3.0, 10.0):.2f},,")
        att = int(rng.poisson(30))
        lines.append(f"{stamp},payment_failures:card,,{rng.binomial(att, 0.05)},{att}")
        if k % 500 == 7:
            lines.append(f"{stamp},orders:p-0,oops,,")
    lines[50] = lines[50].replace("orders:p-1", '"orders:p-1"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cal = path.with_suffix(".json")
    cal.write_text(json.dumps([{"start": "2024-04-02T10:00:00", "end": "2024-04-02T18:00:00",
                                "scope": "orders:*", "name": "sale"}]), encoding="utf-8")
    return ["--bucket", "15m", "--timezone", "Europe/Berlin", "--calendar", str(cal),
            "--train-until", "2024-03-29T00:00:00"], path


def _cli(tree: Path, src: Path, out: Path, extra: list[str]) -> bytes:
    done = subprocess.run([sys.executable, "-m", "commerce_observe", "anomaly", str(src), "-o", str(out),
                           "--no-progress", *extra], env=env_for(tree), cwd=tempfile.gettempdir(),
                          capture_output=True, check=True)
    return out.read_bytes() + b"\n--stderr--\n" + done.stderr


def cli_check(base: Path) -> bool:
    from benchmarks.anomaly_speed import write_shop_csv

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        shop = Path(tmp) / "shop.csv"
        rows = write_shop_csv(shop)
        extra, mixed = _mixed_csv(Path(tmp) / "mixed.csv")
        for label, src, args in ((f"shop benchmark, {rows} rows", shop, []), ("mixed input", mixed, extra)):
            old = _cli(base, src, Path(tmp) / "old.csv", args)
            new = _cli(ROOT, src, Path(tmp) / "new.csv", args)
            same = old == new
            lines = old.split(b"\n--stderr--\n")[0].count(b"\n") - 1
            print(f"CLI, {label}: {lines} output lines, {'identical' if same else 'DIFFERENT'}")
            if not same:
                a, b = old.splitlines(), new.splitlines()
                first = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), min(len(a), len(b)))
                print(f"  first difference at line {first + 1}:\n  {a[first:first + 1]}\n  {b[first:first + 1]}")
            ok = ok and same
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    ap.add_argument("--no-cli", action="store_true", help="the API scenarios only")
    ap.add_argument(CHILD, nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.identical_child:
        child(args.identical_child[1])
        return 0
    base = baseline_tree(args.baseline)
    ok = api_check(base)
    if not args.no_cli:
        ok = cli_check(base) and ok
    print("all identical" if ok else "DIFFERENCES FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
