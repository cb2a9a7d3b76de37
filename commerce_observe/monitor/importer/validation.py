"""What a bad row is, and the field parsers that find one.

Every refusal is a :class:`BadRow` naming the file, the line and the field, so
the one line the command prints tells the user exactly what to fix. The parsers
are small functions the readers call on the slow path only: the fast path
converts a whole row inside one ``try`` and, when that fails, asks
:func:`first_bad_field` which field it was (a bad row costs a second look; a good
row costs nothing extra).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from commerce_observe.agent.privacy import Masker

MAX_TIMESTAMPS_CACHED = 200_000


class BadInput(Exception):
    """A user's input is unusable: the message is one line, the command exits 2."""


class BadRow(BadInput):
    """One row (CSV line or NDJSON line) that cannot be imported."""

    def __init__(self, path: str, line: int, field: str | None, problem: str) -> None:
        where = f"{path} line {line}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = path, line, field, problem


def shown(value: str, limit: int = 40) -> str:
    """A cell as quoted in a message: short, one line, card numbers and e-mails masked."""
    text = Masker().mask_text(value.replace("\n", " "))
    return repr(text if len(text) <= limit else text[:limit] + "...")


def whole(value: str) -> int:
    """A count: a whole number >= 0 (``12`` or ``12.0`` as warehouses write floats)."""
    if not value.strip():
        raise ValueError("empty")
    try:
        n = int(value)
    except ValueError:
        try:
            f = float(value)
        except ValueError:
            f = math.nan
        if not f.is_integer():
            raise ValueError(f"not a whole number: {shown(value)}") from None
        n = int(f)
    if n < 0:
        raise ValueError(f"a count cannot be negative: {shown(value)}")
    return n


def milli(value: str) -> int:
    """An amount in thousandths (``19.99`` -> 19990); any finite number (net revenue can be negative)."""
    if not value.strip():
        raise ValueError("empty")
    try:
        f = float(value)
    except ValueError:
        f = math.nan
    if not math.isfinite(f):
        raise ValueError(f"not a number: {shown(value)}")
    return round(f * 1000)


def parse_timestamp(value: str) -> int:
    """ISO 8601 with an offset (``2024-03-01T10:00:00+01:00``, ``...Z``), or without one meaning UTC,
    as epoch milliseconds."""
    if not value.strip():
        raise ValueError("empty")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read Z
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {shown(value)}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp() * 1000)


class Timestamps:
    """Timestamp strings to epoch ms, each distinct string parsed once.

    Why a cache: a warehouse export repeats one bucket's timestamp on every
    product's row (300 products: 300 times), so parsing dominates without it. The
    distinct values also give the smallest gap between buckets for free.
    """

    def __init__(self) -> None:
        self.cache: dict[str, int] = {}
        self.distinct: set[int] = set()
        self.overflowed = False

    def __call__(self, value: str) -> int:
        ms = self.cache.get(value)
        if ms is None:
            ms = parse_timestamp(value)
            if len(self.cache) >= MAX_TIMESTAMPS_CACHED:
                self.cache.clear()
                self.overflowed = True  # raw, unbucketed data: too many to remember
            self.cache[value] = ms
            if not self.overflowed:
                self.distinct.add(ms)
        return ms


Check = Callable[[str], object]


def first_bad_field(path: str, line: int, row: Sequence[str], fields: Sequence[tuple[int, str, Check]],
                    width: int) -> BadRow:
    """The :class:`BadRow` for a row whose fast conversion failed: which field, and why."""
    if len(row) != width:
        missing = len(row) < width
        return BadRow(path, line, None, f"{len(row)} fields, the header has {width}"
                      + (" (a field is missing)" if missing else " (an extra field; quote values holding a comma)"))
    for index, name, check in fields:
        value = row[index]
        try:
            check(value)
        except (ValueError, OverflowError) as exc:
            return BadRow(path, line, name, str(exc))
    return BadRow(path, line, None, "cannot be read")
