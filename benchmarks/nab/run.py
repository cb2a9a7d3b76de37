"""Run our detector (``AnomalyDetector``, the one behind the CLI, with ``model="metric"``) over the NAB corpus under NAB's rules and score it with our scorer.

Rules kept: every file is read once, in time order; each point is scored from
the past only; the same settings for every file; the first 15% of a file (NAB's
probation, at most 750 rows) is the learning period, told to the detector the
same way NAB tells every detector (and the way ``--train-until`` does in our CLI).

    .venv/bin/python -m benchmarks.nab.run [--out /tmp/nab_ours] [--jobs 2] [--per-file]
    .venv/bin/python -m benchmarks.nab.run --perturb   # each setting nudged (+-1 bin, +-20%)
    .venv/bin/python -m benchmarks.nab.run --split     # 2-fold by file: choose on one half, report on the other
    .venv/bin/python -m benchmarks.nab.run --set mask_fraction=0   # any of the above with a setting changed

``--perturb`` scores the corpus with one setting changed at a time (the detector
is otherwise the default one) and prints the spread. ``--split`` cuts the files
into two halves (alternating within each category, by name), chooses among the
perturbation candidates on one half (best standard score there) and reports the
chosen settings on the other half twice: at the threshold chosen on the first
half (strict hold-out) and at the other half's own best threshold (as NAB scores).
"""

from __future__ import annotations

import argparse
import ast
import csv
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.nab import scorer  # noqa: E402
from commerce_observe.monitor.anomaly import AnomalyDetector, Settings  # noqa: E402
from commerce_observe.monitor.anomaly.metric import MetricDetector, MetricSettings  # noqa: E402

DETECTOR = "commerceObserve"
Overrides = dict[str, Any]
Scored = dict[str, tuple[scorer.FileLayout, scorer.FloatArray]]


def _read(nab_dir: str, rel: str) -> list[list[str]]:
    with open(Path(nab_dir) / "data" / rel, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))[1:]


def _detect(rows: list[list[str]], overrides: Overrides) -> list[float]:
    """The detector users run (``AnomalyDetector``, metric model), told the probation as
    its learning period; scores 0..100 back to NAB's 0..1."""
    metric = MetricSettings(learn_points=scorer.probation_length(len(rows)), **overrides)
    det = AnomalyDetector(Settings(model="metric", metric=metric))
    idx = det.series_index(["nab"])
    out = []
    prev = datetime.min.replace(tzinfo=timezone.utc)
    for ts, val in rows:
        # 8 files repeat or step back a timestamp (49 rows); NAB scores every row in file
        # order, so such a row is given the next second instead of being refused
        stamp = max(datetime.fromisoformat(ts).replace(tzinfo=timezone.utc), prev + timedelta(seconds=1))
        prev = stamp
        s = float(det.update_batch_idx(stamp, idx, np.array([float(val)])).score[0])
        out.append(0.0 if math.isnan(s) else s / 100.0)
    return out


def _detect_direct(rows: list[list[str]], overrides: Overrides) -> list[float]:
    """The same model without the ``AnomalyDetector`` wrapper (its per-point numpy calls
    cost ~4x the model): for the many runs of ``--perturb`` / ``--split``. The default
    candidate's figures there equal the plain run's, which goes through the wrapper."""
    det = MetricDetector(MetricSettings(learn_points=scorer.probation_length(len(rows)), **overrides))
    return [v or 0.0 for v in (det.update(float(val)) for _, val in rows)]


def run_file(args: tuple[str, str, str, Overrides]) -> tuple[str, int, float]:
    rel, nab_dir, out_dir, overrides = args
    t0 = time.perf_counter()
    rows = _read(nab_dir, rel)
    scores = _detect(rows, overrides)
    cat, name = rel.split("/")
    dest = Path(out_dir) / DETECTOR / cat
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / f"{DETECTOR}_{name}", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score"])
        for (ts, val), s in zip(rows, scores):
            w.writerow([ts, val, f"{s:.6f}"])
    return rel, len(rows), time.perf_counter() - t0


def _score_file(args: tuple[str, str, Overrides]) -> tuple[str, list[str], list[float]]:
    rel, nab_dir, overrides = args
    rows = _read(nab_dir, rel)
    return rel, [r[0] for r in rows], _detect_direct(rows, overrides)


def run_in_memory(overrides: Overrides, nab_dir: Path, windows: dict[str, list[tuple[str, str]]],
                  ex: ProcessPoolExecutor) -> Scored:
    out: Scored = {}
    for rel, ts, sc in ex.map(_score_file, [(f, str(nab_dir), overrides) for f in sorted(windows)]):
        out[rel] = (scorer.layout_for(ts, windows[rel]), np.asarray(sc, dtype=np.float64))
    return out


def score(scored: Scored, files: list[str], profiles: list[scorer.Profile],
          thresholds: dict[str, float] | None = None) -> dict[str, scorer.Result]:
    """Normalised scores on ``files``; at the given thresholds, else at each profile's best."""
    sel = [scored[f] for f in files]
    if thresholds is None:
        return scorer.score_files(sel, profiles)
    return {p.name: scorer.result_at(scorer.sweep_corpus(sel, p), p, thresholds[p.name]) for p in profiles}


def perturbations(base: MetricSettings) -> list[tuple[str, Overrides]]:
    """The default settings, then each one nudged: +-1 for bin counts and lengths, +-20% otherwise."""
    out: list[tuple[str, Overrides]] = [("default", {})]
    for name, step in (("levels", 1), ("pair_levels", 1), ("context_len", 1)):
        v = getattr(base, name)
        out += [(f"{name}={v - step}", {name: v - step}), (f"{name}={v + step}", {name: v + step})]
    for name in ("margin", "short_mean", "long_mean", "long_window", "rest_fraction", "rest_level", "mask_fraction",
                 "mask_ratio", "w_pair", "w_excursion", "tie", "w_season", "season_acf", "season_excess",
                 "season_short", "season_scale"):
        v = getattr(base, name)
        for f in (0.8, 1.2):
            nv = type(v)(round(v * f, 4)) if isinstance(v, float) else max(1, round(v * f))
            if name == "rest_level":
                nv = min(nv, 1.0)
            out.append((f"{name}={nv}", {name: nv}))
    for i, member in enumerate(base.ensemble):
        for key, mval in member:
            # counts +-1, the rest +-20%
            steps = (mval - 1, mval + 1) if key in ("levels", "context_len") else (round(mval * 0.8, 4), round(mval * 1.2, 4))
            for mv in steps:
                ens = tuple(tuple((k, mv if k == key else x) for k, x in m) if j == i else m for j, m in enumerate(base.ensemble))
                out.append((f"member {i} {key}={mv:g}", {"ensemble": ens}))
    for sh in (0.25, 0.5, 0.75):
        out.append((f"grid shift {sh} bin", {"shift": base.shift + sh}))
    return out


def halves(files: list[str]) -> tuple[list[str], list[str]]:
    a: list[str] = []
    b: list[str] = []
    by_cat: dict[str, list[str]] = {}
    for f in sorted(files):
        by_cat.setdefault(f.split("/")[0], []).append(f)
    flip = False
    for cat in sorted(by_cat):
        for f in by_cat[cat]:
            (b if flip else a).append(f)
            flip = not flip
    return a, b


def _fmt(res: dict[str, scorer.Result]) -> str:
    return " / ".join(f"{r.normalized:6.2f}" for r in res.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab-dir", type=Path, default=scorer.NAB_DIR)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "nab_ours")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--perturb", action="store_true", help="score with each setting nudged")
    ap.add_argument("--split", action="store_true", help="2-fold hold-out by file (over the same candidates)")
    ap.add_argument("--per-file", action="store_true",
                    help="each file's windows found, false detections and loss (standard profile, its best threshold)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a MetricSettings value for every run (e.g. mask_fraction=0: the detector before the mask)")
    args = ap.parse_args(argv)
    base: Overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in MetricSettings.__dataclass_fields__:
            ap.error(f"--set {item}: no such setting")
        try:
            base[name] = type(getattr(MetricSettings(), name))(ast.literal_eval(value))  # 0 -> 0.0 for a float
        except (ValueError, TypeError, SyntaxError):
            ap.error(f"--set {item}: {value!r} is not a value of that setting")
    t0 = time.perf_counter()
    if args.perturb or args.split:
        windows = scorer.load_windows(args.nab_dir)
        profiles = scorer.load_profiles(args.nab_dir)
        files = sorted(windows)
        cands = [(label, {**base, **ov}) for label, ov in perturbations(MetricSettings(**base))]
        runs: list[tuple[str, Scored]] = []
        std: list[float] = []
        with ProcessPoolExecutor(args.jobs) as ex:
            for label, ov in cands:
                runs.append((label, run_in_memory(ov, args.nab_dir, windows, ex)))
                if args.perturb:
                    res = score(runs[-1][1], files, profiles)
                    std.append(res["standard"].normalized)
                    print(f"{label:30s} {_fmt(res)}", flush=True)
        if args.perturb:
            print(f"standard over {len(std)} variants: min {min(std):.2f} median {statistics.median(std):.2f} max {max(std):.2f}")
        if args.split:
            a, b = halves(files)
            # every candidate at each half's own best thresholds, scored once
            on = {name: [score(sc, half, profiles) for _, sc in runs] for name, half in (("A", a), ("B", b))}
            for name_c, choose, name_r, report in (("A", a, "B", b), ("B", b, "A", a)):
                i = max(range(len(runs)), key=lambda j: on[name_c][j]["standard"].normalized)
                on_choose = on[name_c][i]
                thr = {k: r.threshold for k, r in on_choose.items()}
                print(f"choose on {name_c} ({len(choose)} files): {runs[i][0]}  {name_c}: {_fmt(on_choose)}")
                print(f"  report on {name_r} ({len(report)} files), {name_c}'s thresholds: {_fmt(score(runs[i][1], report, profiles, thr))}")
                print(f"  report on {name_r}, {name_r}'s own best thresholds:  {_fmt(on[name_r][i])}")
                print(f"  default settings on {name_r} (own thresholds):        {_fmt(on[name_r][0])}")
        print(f"profiles: standard / reward_low_FP_rate / reward_low_FN_rate; {time.perf_counter() - t0:.0f}s")
        return 0
    files = sorted(scorer.load_windows(args.nab_dir))
    with ProcessPoolExecutor(args.jobs) as ex:
        done = list(ex.map(run_file, [(f, str(args.nab_dir), str(args.out), base) for f in files]))
    n_points = sum(d[1] for d in done)
    el = time.perf_counter() - t0
    scored = scorer.load_results_dir(args.out / DETECTOR, DETECTOR, args.nab_dir)
    profiles = scorer.load_profiles(args.nab_dir)
    res = scorer.score_files(scored, profiles)
    print(f"{len(done)} files, {n_points} points in {el:.1f}s")
    for r in res.values():
        print(f"{DETECTOR} {r.profile:20s} normalized={r.normalized:6.2f} raw={r.raw:8.3f} threshold={r.threshold:.4f}")
    if args.per_file:
        print(scorer.file_table(files, scored, profiles[0], res[profiles[0].name].threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
