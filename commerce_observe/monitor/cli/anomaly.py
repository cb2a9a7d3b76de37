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

from commerce_observe.monitor.cli.errors import UsageError, input_file, output_file, positive, zone

# numpy and the detector are imported inside run(): registering the command stays cheap


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "anomaly",
        help="score time series (orders, revenue, failure ratios) for anomalies",
        description=__doc__,
    )
    p.add_argument("input", type=input_file, help="CSV with timestamp,series,value[,numerator,denominator] ('-' for stdin)")
    p.add_argument("-o", "--output", type=output_file, default="-", help="output CSV ('-': stdout)")
    p.add_argument("--calendar", type=input_file, help="JSON list of known events [{start,end,scope,name}]")
    p.add_argument("--train-until", type=_time_arg, help="learn only (emit no scores) before this ISO 8601 time")
    p.add_argument("--timezone", type=zone, default="UTC", help="shop time zone for seasonality")
    p.add_argument("--min-history", type=positive, default=72, help="points before a series is scored")
    p.add_argument("--state", type=output_file, help="model file: loaded if it exists, saved at the end")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is one on stderr only when stderr is a terminal)")
    p.set_defaults(func=run)


def _parse_ts(text: str, tz: ZoneInfo) -> datetime:
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def _time_arg(raw: str) -> str:
    """An ISO 8601 time, checked now, read in the shop's time zone later."""
    try:
        _parse_ts(raw, ZoneInfo("UTC"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {raw!r} (ISO 8601 like 2026-05-01T12:00)") from None
    return raw


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


def _groups(reader: csv.DictReader[str], tz: ZoneInfo) -> Iterator[tuple[datetime, list[dict[str, str]]]]:
    cur_key: str | None = None
    cur_ts: datetime | None = None
    rows: list[dict[str, str]] = []
    for row in reader:
        key = row.get("timestamp", "")
        if key != cur_key:
            if rows and cur_ts is not None:
                yield cur_ts, rows
            cur_key, rows = key, []
            try:
                cur_ts = _parse_ts(key, tz)
            except ValueError:
                raise UsageError(f"input row {reader.line_num}: not a timestamp: {key!r}") from None
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


class _LazyCsv:
    """The output CSV, opened and given its header only when there is something to write
    (or at a successful end): a run that fails prints no header and leaves no half file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def _start(self) -> Any:
        if self._writer is None:
            self._fh = sys.stdout if self.path == "-" else open(self.path, "w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh, lineterminator="\n")  # \n, not csv's default \r\n
            self._writer.writerow(["timestamp", "series", "score"])
        return self._writer

    def row(self, values: list[str]) -> None:
        self._start().writerow(values)

    def finish(self) -> None:
        self._start()
        self.close()

    def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
        self._fh = None


def _detector(args: argparse.Namespace) -> Any:
    """Calendar and model, loaded before any output so their errors come first."""
    from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings

    tz = ZoneInfo(args.timezone)
    try:
        calendar = Calendar.load(args.calendar, tz) if args.calendar else Calendar()
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"calendar {args.calendar}: {type(exc).__name__}: {exc}") from None
    if args.state and os.path.exists(args.state):
        try:
            return AnomalyDetector.load(args.state, calendar)
        except (ValueError, KeyError, OSError, EOFError) as exc:
            raise UsageError(f"state {args.state}: not a model file saved by anomaly ({type(exc).__name__})") from None
    return AnomalyDetector(Settings(timezone=args.timezone, min_history=args.min_history), calendar)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from commerce_observe._internal.selfstats import stats
    from commerce_observe.monitor.anomaly.detector import BAD_INPUT

    tz = ZoneInfo(args.timezone)
    det = _detector(args)
    train_until = _parse_ts(args.train_until, tz) if args.train_until else None

    fin: IO[str] = sys.stdin if args.input == "-" else open(args.input, newline="", encoding="utf-8")
    total = os.path.getsize(args.input) if args.input != "-" else 0
    progress = _Progress(total, enabled=not args.no_progress and total > 0 and sys.stderr.isatty())
    bad_before = stats.get(BAD_INPUT)
    points = 0
    out = _LazyCsv(args.output)
    try:
        read = [0]

        def lines() -> Iterator[str]:
            for line in fin:
                read[0] += len(line)
                yield line

        reader = csv.DictReader(lines())
        if reader.fieldnames is None or not {"timestamp", "series"} <= set(reader.fieldnames):
            raise UsageError(f"{args.input}: the input CSV needs columns timestamp,series,value")
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
                        out.row([stamp, s.series, f"{s.score:.2f}"])
            if total:
                progress.show(read[0], points)
        progress.end()
        out.finish()
    finally:
        out.close()
        if fin is not sys.stdin:
            fin.close()
    if args.state:
        det.save(args.state)
    bad = stats.get(BAD_INPUT) - bad_before
    if bad:
        print(f"anomaly: ignored {bad} invalid points (counter {BAD_INPUT})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m commerce_observe.monitor.cli.anomaly``)."""
    from commerce_observe.monitor.cli import main as cli_main

    return cli_main(["anomaly", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
