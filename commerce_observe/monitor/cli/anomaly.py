"""``commerce-observe anomaly``: score a CSV of series with the online detector.

Input CSV (time order): ``timestamp,series,value`` and optionally
``numerator,denominator`` for ratio series. Rows are grouped into buckets of
``--bucket`` (default 1h; rows of one series inside one bucket are summed).
Output CSV: ``timestamp,series,score,actual,expected,lower,upper,alert`` for every
scored point (warming-up, calendar-excluded, training-period and rejected points
are not written); ``lower..upper`` is the band outside which one bucket alone scores
critical, ``alert`` is 1 on the first critical point of an incident.
Warnings on stderr: count series with missing buckets (probably missing zero rows),
calendar events whose scope matches no series.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from commerce_observe.monitor.cli.errors import UsageError, input_file, output_file, positive, zone

if TYPE_CHECKING:
    from commerce_observe.monitor.cli.anomaly_table import Table

# numpy, the table reader and the detector are imported inside run(): registering the
# command stays cheap

HEADER = "timestamp,series,score,actual,expected,lower,upper,alert\n"


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
    p.add_argument("--bucket", type=bucket, default="1h", help="bucket size, 1m to 1d (5m, 15m, 1h, 1d or seconds)")
    p.add_argument("--model", choices=("commerce", "metric"), default="commerce",
                   help="commerce: orders, amounts, failure ratios; metric: machine metrics")
    p.add_argument("--min-history", type=positive, help="buckets before a series is scored (default: three days' worth, at least 14)")
    p.add_argument("--state", type=output_file, help="model file: loaded if it exists, saved at the end")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is one on stderr only when stderr is a terminal)")
    p.set_defaults(func=run)


def bucket(raw: str) -> int:
    """A bucket size: ``5m``, ``15m``, ``1h``, ``1d`` or seconds; 1 minute to 1 day, dividing a day."""
    units = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
    text = raw.strip().lower()
    num = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(num):] or "s"
    if unit not in units or not num.isdigit():
        raise argparse.ArgumentTypeError(f"bucket {raw!r}: use e.g. 5m, 15m, 1h, 1d or a number of seconds")
    sec = int(num) * units[unit]
    if not 60 <= sec <= 86400 or 86400 % sec or (sec > 3600 and sec % 3600):
        raise argparse.ArgumentTypeError(f"bucket {raw!r}: must be 1 minute to 1 day and divide a day evenly (whole hours above an hour)")
    return sec


def _time_arg(raw: str) -> str:
    """An ISO 8601 time, checked now, read in the shop's time zone later."""
    from commerce_observe.monitor.cli.anomaly_table import parse_ts

    try:
        parse_ts(raw, ZoneInfo("UTC"))
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


def _warn_input(table: Table, calendar: Any) -> None:
    if table.gaps:
        worst = max(table.gaps, key=lambda k: table.gaps[k])
        print(f"anomaly: warning: {len(table.gaps)} count series have buckets without a row "
              f"({worst} misses {table.gaps[worst]}); write 0 for a bucket without sales, "
              f"a missing row is not scored", file=sys.stderr)
    for ev in calendar.events:
        if not any(ev.covers_series(n) for n in table.names):
            print(f"anomaly: warning: calendar event {ev.name} (scope {ev.scope}) matches no series", file=sys.stderr)


def _detector(args: argparse.Namespace, tz: ZoneInfo) -> Any:
    """Calendar and model, loaded before any output so their errors come first."""
    from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings

    try:
        calendar = Calendar.load(args.calendar, tz) if args.calendar else Calendar()
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"calendar {args.calendar}: {type(exc).__name__}: {exc}") from None
    if args.state and os.path.exists(args.state):
        try:
            det = AnomalyDetector.load(args.state, calendar)
        except (ValueError, KeyError, OSError, EOFError) as exc:
            raise UsageError(f"state {args.state}: not a model file saved by anomaly ({type(exc).__name__}: {exc})") from None
        if det.settings.bucket_seconds != args.bucket:
            raise UsageError(f"state {args.state}: learned on {det.settings.bucket_seconds} s buckets, not {args.bucket} s")
        return det
    return AnomalyDetector(Settings(model=args.model, timezone=args.timezone, bucket_seconds=args.bucket,
                                    min_history=args.min_history), calendar)


def run(args: argparse.Namespace) -> int:
    # a run allocates millions of small objects (cells, lines) and frees none of them
    # in cycles: the cyclic collector would only walk them over and over
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        if gc_was_on:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from commerce_observe._internal.selfstats import stats
    from commerce_observe.monitor.anomaly.detector import BAD_INPUT
    from commerce_observe.monitor.cli.anomaly_table import parse_ts, read_table

    tz = ZoneInfo(args.timezone)
    det = _detector(args, tz)
    train_until = parse_ts(args.train_until, tz) if args.train_until else None

    fin: IO[str] = sys.stdin if args.input == "-" else open(args.input, newline="", encoding="utf-8")
    try:
        table = read_table(fin, tz, args.bucket)
    finally:
        if fin is not sys.stdin:
            fin.close()
    if table.invalid:
        stats.incr(BAD_INPUT, table.invalid)
    _warn_input(table, det.calendar)
    ids = det.series_index(table.names)
    names = table.names
    bounds = table.bounds().tolist()
    nb = len(table.bucket_starts)
    progress = _Progress(nb, enabled=not args.no_progress and nb > 0 and sys.stderr.isatty())
    fout: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", newline="", encoding="utf-8")
    rejected = 0
    try:
        fout.write(HEADER)
        for b, ts in enumerate(table.bucket_starts):
            lo, hi = bounds[b], bounds[b + 1]
            sid = table.series_of[lo:hi]
            den = table.den[lo:hi]
            res = det.update_batch_idx(ts, ids[sid], table.value[lo:hi], den)
            rejected += len(res.rejected) - res.rejected.count(None)
            if train_until is None or ts >= train_until:
                ok = np.nonzero(~np.isnan(res.score))[0]
                line = table.stamps[b].replace("%", "%%") + ",%s,%.2f,%.10g,%.6g,%.6g,%.6g,%d\n"
                fout.write("".join([line % row for row in zip(
                    [names[s] for s in sid[ok].tolist()], res.score[ok].tolist(), table.value[lo:hi][ok].tolist(),
                    res.expected[ok].tolist(), res.lower[ok].tolist(), res.upper[ok].tolist(), res.alert[ok].tolist())]))
            progress.show(b + 1, hi)
        progress.end()
    finally:
        if fout is not sys.stdout:
            fout.close()
    if args.state:
        det.save(args.state)
    bad = rejected + table.invalid
    if bad:
        print(f"anomaly: ignored {bad} invalid points (counter {BAD_INPUT})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m commerce_observe.monitor.cli.anomaly``)."""
    from commerce_observe.monitor.cli import main as cli_main

    return cli_main(["anomaly", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
