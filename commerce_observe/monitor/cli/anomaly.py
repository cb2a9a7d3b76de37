"""``commerce-observe anomaly``: score a CSV of series with the online detector.

Input CSV (time order): ``timestamp,series,value`` and optionally
``numerator,denominator`` for ratio series. Output CSV: ``timestamp,series,score``
for every scored point (warming-up, calendar-excluded, training-period and
rejected points are not written).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

# numpy and the detector are imported inside run(): registering the command stays cheap


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "anomaly",
        help="score time series (orders, revenue, failure ratios) for anomalies",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="CSV with timestamp,series,value[,numerator,denominator] ('-' for stdin)")
    p.add_argument("-o", "--output", default="-", help="output CSV (default stdout)")
    p.add_argument("--calendar", help="JSON list of known events [{start,end,scope,name}]")
    p.add_argument("--train-until", help="learn only (emit no scores) before this timestamp")
    p.add_argument("--timezone", default="UTC", help="shop time zone for seasonality (default UTC)")
    p.add_argument("--min-history", type=int, default=72, help="points before a series is scored")
    p.add_argument("--state", help="model file: loaded if it exists, saved at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def _parse_ts(text: str, tz: ZoneInfo) -> datetime:
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.last = -1

    def show(self, done: int, points: int) -> None:
        if not self.enabled:
            return
        pct = min(100, int(100 * done / self.total))
        if pct != self.last:
            self.last = pct
            bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
            sys.stderr.write(f"\ranomaly [{bar}] {pct:3d}% {points} points")
            sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _groups(reader: Iterator[dict[str, str]], tz: ZoneInfo) -> Iterator[tuple[datetime, list[dict[str, str]]]]:
    cur_key: str | None = None
    cur_ts: datetime | None = None
    rows: list[dict[str, str]] = []
    for row in reader:
        key = row.get("timestamp", "")
        if key != cur_key:
            if rows and cur_ts is not None:
                yield cur_ts, rows
            cur_key, rows = key, []
            cur_ts = _parse_ts(key, tz)
        rows.append(row)
    if rows and cur_ts is not None:
        yield cur_ts, rows


def _num(text: str | None) -> float:
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from commerce_observe._internal.selfstats import stats
    from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings
    from commerce_observe.monitor.anomaly.detector import BAD_INPUT

    tz = ZoneInfo(args.timezone)
    calendar = Calendar.load(args.calendar, tz) if args.calendar else Calendar()
    if args.state and os.path.exists(args.state):
        det = AnomalyDetector.load(args.state, calendar)
    else:
        det = AnomalyDetector(Settings(timezone=args.timezone, min_history=args.min_history), calendar)
    train_until = _parse_ts(args.train_until, tz) if args.train_until else None

    fin: IO[str] = sys.stdin if args.input == "-" else open(args.input, newline="", encoding="utf-8")
    fout: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", newline="", encoding="utf-8")
    total = os.path.getsize(args.input) if args.input != "-" else 0
    progress = _Progress(total, enabled=not args.no_progress and total > 0)
    bad_before = stats.get(BAD_INPUT)
    points = 0
    try:
        read = [0]

        def lines() -> Iterator[str]:
            for line in fin:
                read[0] += len(line)
                yield line

        reader = csv.DictReader(lines())
        if reader.fieldnames is None or not {"timestamp", "series"} <= set(reader.fieldnames):
            print("anomaly: input CSV needs columns timestamp,series,value", file=sys.stderr)
            return 2
        out = csv.writer(fout)
        out.writerow(["timestamp", "series", "score"])
        for ts, rows in _groups(reader, tz):
            plain = [r for r in rows if _num(r.get("denominator")) != _num(r.get("denominator"))]
            ratio = [r for r in rows if not (_num(r.get("denominator")) != _num(r.get("denominator")))]
            results: list[Any] = []
            if plain:
                results += det.update_batch(ts, [r["series"] for r in plain], np.array([_num(r.get("value")) for r in plain]))
            if ratio:
                results += det.update_batch(
                    ts,
                    [r["series"] for r in ratio],
                    np.array([_num(r.get("numerator")) for r in ratio]),
                    np.array([_num(r.get("denominator")) for r in ratio]),
                )
            points += len(rows)
            if train_until is None or ts >= train_until:
                stamp = rows[0]["timestamp"]
                for s in results:
                    if s.score is not None:
                        out.writerow([stamp, s.series, f"{s.score:.2f}"])
            if total:
                progress.show(read[0], points)
        progress.end()
    finally:
        if fin is not sys.stdin:
            fin.close()
        if fout is not sys.stdout:
            fout.close()
    if args.state:
        det.save(args.state)
    bad = stats.get(BAD_INPUT) - bad_before
    if bad:
        print(f"anomaly: ignored {bad} invalid points (counter {BAD_INPUT})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m commerce_observe.monitor.cli.anomaly``)."""
    ap = argparse.ArgumentParser(prog="commerce-observe")
    sub = ap.add_subparsers(dest="command", required=True)
    register(sub)
    args = ap.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
