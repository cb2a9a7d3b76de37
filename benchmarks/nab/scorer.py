"""Our own implementation of the Numenta Anomaly Benchmark scoring rules.

Written from NAB's published description (Lavin & Ahmad 2015, "Evaluating
real-time anomaly detection algorithms") and checked against the shipped
reference results; no NAB code is used.

Rules implemented:

* every labelled anomaly window is scored once: the *earliest* detection inside
  it earns ``tpWeight * sigma(pos) / sigma(-1)`` where ``pos`` runs from -1 at the
  window's left edge to ~0 at its right edge and ``sigma`` is the scaled sigmoid
  ``2 / (1 + exp(5 x)) - 1``; a window without detection costs ``-fnWeight``;
* every detection outside a window costs ``fpWeight * sigma(d)`` where ``d`` is
  the distance past the previous window's right edge in window widths (so a
  late detection just after a window costs almost nothing), or the full
  ``-fpWeight`` when there is no previous window or ``d > 3``;
* the first 15% of each file (at most 750 rows) is probation: nothing scored;
* one threshold for the whole corpus, chosen to maximise the summed raw score;
* normalised score ``100 * (raw - null) / (perfect - null)`` where the null
  detector detects nothing (``-fnWeight`` per window) and the perfect detector
  detects every window at its left edge (``+tpWeight`` per window).

Usage::

    python -m benchmarks.nab.scorer --results /work/shared/benchmarks/nab/results --detector numenta [--per-file]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

NAB_DIR = Path(os.environ.get("NAB_DIR", "/work/shared/benchmarks/nab"))
PROBATION_PERCENT = 0.15

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


def load_profiles(nab_dir: Path = NAB_DIR) -> list[Profile]:
    with open(nab_dir / "config" / "profiles.json", encoding="utf-8") as fh:
        raw = json.load(fh)
    out = []
    for name, body in raw.items():
        cm = body["CostMatrix"]
        out.append(Profile(name, float(cm["tpWeight"]), float(cm["fpWeight"]), float(cm["fnWeight"])))
    return out


def load_windows(nab_dir: Path = NAB_DIR) -> dict[str, list[tuple[str, str]]]:
    with open(nab_dir / "labels" / "combined_windows.json", encoding="utf-8") as fh:
        raw = json.load(fh)
    return {k: [(w[0], w[1]) for w in v] for k, v in raw.items()}


def scaled_sigmoid(x: FloatArray) -> FloatArray:
    """NAB's scaled sigmoid: +0.987 at x=-1, 0 at x=0, -1 beyond x=3."""
    val = 2.0 / (1.0 + np.exp(np.clip(5.0 * x, -60.0, 60.0))) - 1.0
    return np.where(x > 3.0, -1.0, val)


def probation_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that are not scored (NAB: min(15%, 15% of 5000))."""
    return int(min(math.floor(percent * n_rows), percent * 5000))


def _to_datetime64(values: list[str]) -> npt.NDArray[np.datetime64]:
    return np.array([v.strip().replace(" ", "T") for v in values], dtype="datetime64[us]")


@dataclass
class FileLayout:
    """Per-file geometry that does not depend on the detector or the profile."""

    n: int
    probation: int
    # window index (0..k-1) per row, -1 outside windows
    window_of_row: npt.NDArray[np.int64]
    # position in window (TP rows) or past the previous window (FP rows), NaN if no previous window
    position: FloatArray
    windows: list[tuple[int, int]]


def layout_for(timestamps: list[str], windows: list[tuple[str, str]]) -> FileLayout:
    ts = _to_datetime64(timestamps)
    n = len(ts)
    idx_windows: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        lo = int(np.searchsorted(ts, _to_datetime64([start])[0], side="left"))
        hi = int(np.searchsorted(ts, _to_datetime64([end])[0], side="right")) - 1
        idx_windows.append((lo, hi))
    window_of_row = np.full(n, -1, dtype=np.int64)
    position = np.full(n, np.nan)
    rows = np.arange(n, dtype=np.float64)
    prev_right: int | None = None
    prev_width = 0.0
    cursor = 0
    for k, (lo, hi) in enumerate(idx_windows):
        width = float(hi - lo + 1)
        # FP rows between the previous window and this one
        if prev_right is not None:
            seg = slice(cursor, lo)
            position[seg] = np.abs(prev_right - rows[seg]) / max(prev_width - 1.0, 1.0)
        window_of_row[lo : hi + 1] = k
        position[lo : hi + 1] = -(hi - rows[lo : hi + 1] + 1.0) / width
        prev_right, prev_width, cursor = hi, width, hi + 1
    if prev_right is not None:
        seg = slice(cursor, n)
        position[seg] = np.abs(prev_right - rows[seg]) / max(prev_width - 1.0, 1.0)
    return FileLayout(n, probation_length(n), window_of_row, position, idx_windows)


@dataclass
class CorpusSweep:
    """Everything needed to score one detector on one profile at any threshold."""

    thresholds: FloatArray  # distinct candidate thresholds, descending
    scores: FloatArray  # raw corpus score at each threshold
    n_windows: int


def sweep_corpus(files: list[tuple[FileLayout, FloatArray]], profile: Profile) -> CorpusSweep:
    """Raw corpus score for every candidate threshold (a point is detected if score >= t)."""
    max_tp = float(scaled_sigmoid(np.array([-1.0]))[0])
    ev_score: list[FloatArray] = []
    ev_delta: list[FloatArray] = []
    n_windows = 0
    for lay, scores in files:
        n_windows += len(lay.windows)
        scored = np.arange(lay.n) >= lay.probation
        # false positives: each detection outside windows contributes independently
        fp_rows = scored & (lay.window_of_row < 0)
        pos = lay.position[fp_rows]
        fp_val = np.where(np.isnan(pos), -1.0, scaled_sigmoid(np.nan_to_num(pos, nan=0.0)))
        ev_score.append(scores[fp_rows])
        ev_delta.append(fp_val * profile.fp)
        # windows: only the earliest detection counts
        for k, (lo, hi) in enumerate(lay.windows):
            rows = np.arange(max(lo, lay.probation), hi + 1)
            if rows.size == 0:
                continue
            s = scores[rows]
            order = np.lexsort((rows, -s))  # by score desc, then earlier first
            earliest = np.minimum.accumulate(rows[order])
            tp_val = scaled_sigmoid(lay.position[earliest]) * profile.tp / max_tp
            delta = np.diff(tp_val, prepend=-profile.fn)  # first detection swaps -fn for tp
            keep = delta != 0.0
            keep[0] = True
            ev_score.append(s[order][keep])
            ev_delta.append(delta[keep])
    all_s = np.concatenate(ev_score)
    all_d = np.concatenate(ev_delta)
    order = np.argsort(-all_s, kind="stable")
    all_s, all_d = all_s[order], all_d[order]
    cum = np.cumsum(all_d) - profile.fn * n_windows
    # state at threshold t = after including every event with score >= t
    last_of_value = np.r_[all_s[1:] != all_s[:-1], True]
    thresholds = np.r_[np.inf, all_s[last_of_value]]
    raw = np.r_[-profile.fn * n_windows, cum[last_of_value]]
    return CorpusSweep(thresholds, raw, n_windows)


@dataclass(frozen=True)
class Result:
    profile: str
    threshold: float
    raw: float
    normalized: float


def best_result(sweep: CorpusSweep, profile: Profile) -> Result:
    i = int(np.argmax(sweep.scores))
    null = -profile.fn * sweep.n_windows
    perfect = profile.tp * sweep.n_windows
    raw = float(sweep.scores[i])
    return Result(profile.name, float(sweep.thresholds[i]), raw, 100.0 * (raw - null) / (perfect - null))


def raw_at(sweep: CorpusSweep, threshold: float) -> float:
    """Raw score when every point scoring at least ``threshold`` is a detection."""
    return float(sweep.scores[int(np.nonzero(sweep.thresholds >= threshold)[0][-1])])


def result_at(sweep: CorpusSweep, profile: Profile, threshold: float) -> Result:
    """Score at a fixed threshold (e.g. the one NAB's own optimiser published)."""
    null = -profile.fn * sweep.n_windows
    perfect = profile.tp * sweep.n_windows
    raw = raw_at(sweep, threshold)
    return Result(profile.name, threshold, raw, 100.0 * (raw - null) / (perfect - null))


def read_scores_csv(path: Path) -> tuple[list[str], FloatArray]:
    ts: list[str] = []
    vals: list[float] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        col = header.index("anomaly_score")
        for row in reader:
            ts.append(row[0])
            vals.append(float(row[col]))
    return ts, np.asarray(vals, dtype=np.float64)


@dataclass(frozen=True)
class FileResult:
    """One file's share of a corpus score at a given threshold."""

    windows: int
    detected: int  # windows with a detection (the earliest one is scored)
    false_positives: int  # detections outside every window (after probation)
    raw: float  # this file's part of the corpus raw score (the parts sum to it)
    perfect: float  # what a perfect detector would score on this file


def file_results(files: list[tuple[FileLayout, FloatArray]], profile: Profile, threshold: float) -> list[FileResult]:
    """Per-file breakdown of :func:`result_at`: where a detector gains and loses points."""
    out = []
    for lay, scores in files:
        raw = raw_at(sweep_corpus([(lay, scores)], profile), threshold)
        hit = (scores >= threshold) & (np.arange(lay.n) >= lay.probation)
        detected = sum(1 for lo, hi in lay.windows if hit[max(lo, lay.probation) : hi + 1].any())
        fps = int((hit & (lay.window_of_row < 0)).sum())
        out.append(FileResult(len(lay.windows), detected, fps, raw, profile.tp * len(lay.windows)))
    return out


def file_table(names: list[str], files: list[tuple[FileLayout, FloatArray]], profile: Profile, threshold: float) -> str:
    """The per-file breakdown as text, biggest loss against a perfect detector first."""
    res = file_results(files, profile, threshold)
    lines = [f"{profile.name} at threshold {threshold:.4f}: loss = perfect - raw (a missed window costs "
             f"{profile.tp + profile.fn:g}, a false detection up to {profile.fp:g})"]
    for name, r in sorted(zip(names, res), key=lambda nr: nr[1].raw - nr[1].perfect):
        lines.append(f"  {name:62s} windows {r.detected}/{r.windows}  false {r.false_positives:3d}  "
                     f"raw {r.raw:7.3f}  loss {r.perfect - r.raw:6.3f}")
    missed = sum(r.windows - r.detected for r in res)
    fps = sum(r.false_positives for r in res)
    lines.append(f"  total: {missed} of {sum(r.windows for r in res)} windows missed, {fps} false detections, "
                 f"raw {sum(r.raw for r in res):.3f}")
    return "\n".join(lines)


def load_results_dir(results_dir: Path, detector: str, nab_dir: Path = NAB_DIR) -> list[tuple[FileLayout, FloatArray]]:
    """Read ``results_dir/<category>/<detector>_<file>.csv`` for every labelled file."""
    windows = load_windows(nab_dir)
    files: list[tuple[FileLayout, FloatArray]] = []
    for rel, wins in sorted(windows.items()):
        cat, name = rel.split("/")
        ts, scores = read_scores_csv(results_dir / cat / f"{detector}_{name}")
        files.append((layout_for(ts, wins), scores))
    return files


def score_results_dir(
    results_dir: Path, detector: str, nab_dir: Path = NAB_DIR, profiles: list[Profile] | None = None
) -> dict[str, Result]:
    return score_files(load_results_dir(results_dir, detector, nab_dir), profiles or load_profiles(nab_dir))


def score_files(files: list[tuple[FileLayout, FloatArray]], profiles: list[Profile]) -> dict[str, Result]:
    return {p.name: best_result(sweep_corpus(files, p), p) for p in profiles}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=NAB_DIR / "results")
    ap.add_argument("--detector", required=True)
    ap.add_argument("--nab-dir", type=Path, default=NAB_DIR)
    ap.add_argument("--per-file", action="store_true", help="each file's windows found, false detections and loss (standard profile)")
    args = ap.parse_args(argv)
    files = load_results_dir(args.results / args.detector, args.detector, args.nab_dir)
    profiles = load_profiles(args.nab_dir)
    res = score_files(files, profiles)
    for r in res.values():
        print(f"{args.detector:16s} {r.profile:20s} normalized={r.normalized:7.2f} raw={r.raw:9.3f} threshold={r.threshold:.6g}")
    if args.per_file:
        print(file_table(sorted(load_windows(args.nab_dir)), files, profiles[0], res[profiles[0].name].threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
