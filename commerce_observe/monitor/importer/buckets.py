"""The bucket size of pre-aggregated history: given (``--bucket 1h``) or read from the data.

Read from the data means the smallest gap between two distinct timestamps of the
file: a warehouse export has one row per bucket and key, so every timestamp is a
bucket start and the closest two are one bucket apart (a quiet night only makes
some gaps longer, never shorter). A file with a single timestamp has no gap: the
bucket must then be given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from commerce_observe.monitor.importer.validation import BadInput, Timestamps

UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)\s*$")


def parse_bucket(text: str) -> int:
    """``30s``, ``15m``, ``1h``, ``1d`` -> seconds (ValueError naming the accepted forms)."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a bucket size: {text!r} (expected a number and a unit: 30s, 15m, 1h, 1d)")
    return int(match.group(1)) * UNITS[match.group(2)]


def format_bucket(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def smallest_gap_s(distinct_ms: Iterable[int]) -> int | None:
    """The smallest gap in seconds between distinct timestamps, or None with fewer than two."""
    ordered = sorted(distinct_ms)
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    return min(gaps) // 1000 if gaps else None


def infer_bucket(path: str, rows: Iterator[list[str]], column: int) -> int:
    """The smallest gap in seconds between the timestamps of a CSV file's ``column`` (read once, header skipped).

    Bad timestamps are left for the import pass to report with their line.
    """
    next(rows, None)
    seen = {row[column] for row in rows if len(row) > column}
    parse = Timestamps()
    for value in seen:
        try:
            parse(value)
        except ValueError:
            continue
    gap = smallest_gap_s(parse.distinct)
    if gap is None:
        raise BadInput(f"{path}: cannot read the bucket size from a single timestamp; give it with --bucket (1h, 1d...)")
    if gap < 1:
        raise BadInput(f"{path}: timestamps less than a second apart: not per-bucket aggregates?")
    return gap
