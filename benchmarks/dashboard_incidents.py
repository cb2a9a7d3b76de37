"""The dashboard's incident panels on a store full of anomaly scores: time per refresh, and the shortlist's gain.

``commerce-observe watch`` stores a score for every series and every bucket (a week
of hourly buckets for 10,000 products is 1.7 million documents), and the page asks
for the abnormal ones every few seconds. This fills an SQLite store with ``--series``
series x ``--hours`` hourly scores (a few abnormal at random), then times, per view:

* the whole page summary (``overview.summary``), and the anomaly panel alone;
* the anomaly panel the naive way, as a baseline in the same run: every point of
  every series abnormal once in the range read and walked (what the shortlist avoids).

    python benchmarks/dashboard_incidents.py --series 2000 --hours 336
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commerce_observe.store import documents as d  # noqa: E402
from commerce_observe.store import incidents  # noqa: E402
from commerce_observe.store.overview import summary  # noqa: E402
from commerce_observe.store.queries import TimeRange  # noqa: E402
from commerce_observe.store.sqlite_schema import ABNORMAL  # noqa: E402
from commerce_observe.store.sqlite_store import SqliteStore, to_row  # noqa: E402


class Score:
    def __init__(self, series: str, timestamp: datetime, score: float, actual: float, expected: float) -> None:
        self.series, self.timestamp, self.score, self.actual, self.expected = series, timestamp, score, actual, expected


def fill(store: SqliteStore, series: int, hours: int, now: datetime, seed: int = 1) -> int:
    rnd = random.Random(seed)
    written = 0
    for h in range(hours):
        at = now - timedelta(hours=h)
        docs = [d.anomaly_document(Score(f"orders:sku-{i:05d}", at, 90.0 if rnd.random() < 0.002 else rnd.random() * 20,
                                         3.0, 4.0), band=(1.0, 7.0)) for i in range(series)]
        written += store.write_rows([to_row(doc) for doc in docs]).written
    return written


def naive(store: SqliteStore, r: TimeRange, limit: int = 20) -> list[Any]:
    """Every point of every series abnormal once in the range (the baseline)."""
    rows = store._conn().execute(
        f"""SELECT series, ts_ms, score, body FROM docs WHERE record = '{d.ANOMALY}' AND series IN (
          SELECT DISTINCT series FROM docs WHERE record = '{d.ANOMALY}' AND {ABNORMAL} AND ts_ms >= ? AND ts_ms < ?)
        AND ts_ms >= ? AND ts_ms < ? ORDER BY series, ts_ms""",
        (r.start_ms, r.end_ms, r.start_ms - incidents.SINCE_LOOKBACK_MS, r.end_ms))
    return incidents.anomaly_rows(rows, limit, lambda body: json.loads(body) if body else {})


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--hours", type=int, default=336, help="hourly scores per series (default two weeks)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "scores.db"))
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        t = time.perf_counter()
        n = fill(store, args.series, args.hours, now)
        print(f"{n:,} scores ({args.series:,} series x {args.hours} h) written in {time.perf_counter() - t:.1f} s")
        print("| view | page summary | anomaly panel | naive anomaly panel | naive / shortlist |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for minutes, bucket in ((60, 1), (1440, 15), (10080, 60)):
            r = TimeRange.last(minutes, now + timedelta(minutes=1))
            assert store.anomalies(r) == naive(store, r), "the shortlist must show what reading everything shows"
            page = median_ms(lambda: summary(store, r, bucket_minutes=bucket))
            fast = median_ms(lambda: store.anomalies(r))
            slow = median_ms(lambda: naive(store, r), repeat=3)
            print(f"| {minutes} min | {page:.1f} ms | {fast:.1f} ms | {slow:.1f} ms | {slow / max(fast, 1e-3):.1f}x |")
        store.close()


if __name__ == "__main__":
    main()
