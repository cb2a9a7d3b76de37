"""Warehouse CSV rows to batches of :class:`~commerce_observe.store.aggregates.Aggregate` (orders) and
:class:`~commerce_observe.store.aggregates.PaymentBucket` (payments), fast.

The loops are written out per layout, with the whole row converted inside one
``try``: millions of rows must cost a few microseconds each (``csv`` parsing in C,
one dict lookup per timestamp, ``int``/``float`` on the cells, one hash for the
id). Only a row that fails is looked at again, field by field, to name the field
(:func:`~commerce_observe.monitor.importer.validation.first_bad_field`).

Rows with nothing to count (0 orders and no revenue, 0 attempts) are read and
counted but store nothing: an empty bucket is what a missing row means anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from commerce_observe.agent.privacy import Masker
from commerce_observe.monitor.importer.csv_layout import Layout
from commerce_observe.monitor.importer.validation import (
    BadRow, Check, Timestamps, first_bad_field, milli, parse_timestamp, whole,
)
from commerce_observe.store.aggregates import Aggregate, PaymentBucket, order_aggregate, payment_bucket_id


class RowReader(Protocol):
    """A ``csv.reader``: rows, and the line number of the row just read."""

    @property
    def line_num(self) -> int: ...
    def __iter__(self) -> Iterator[list[str]]: ...


@dataclass
class Tally:
    """What one file's import saw; raises the first bad row unless bad rows are skipped."""

    path: str
    skip_bad: bool = False
    rows: int = 0
    bad: int = 0
    first_bad: str | None = None

    def refuse(self, bad: BadRow) -> None:
        if not self.skip_bad:
            raise bad
        self.bad += 1
        if self.first_bad is None:
            self.first_bad = str(bad)


class Names:
    """Key cells (product ids, methods, currencies) stripped and privacy-masked, each distinct value once.

    A product id holding an e-mail address must not reach the store; masking
    every cell would cost more than the rest of the row, but keys repeat.
    """

    def __init__(self, masker: Masker, limit: int = 1_000_000) -> None:
        self._masker, self._limit = masker, limit
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        clean = self._seen.get(value)
        if clean is None:
            clean = self._masker.mask_text(value.strip())
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen[value] = clean
        return clean


def _reason(value: str) -> int:
    return whole(value) if value.strip() else 0


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("empty")
    return value


def _checks(layout: Layout, optional: dict[str, Check], required: dict[str, Check]) -> list[tuple[int, str, Check]]:
    both = {**required, **{k: v for k, v in optional.items() if k in layout.index}}
    return [(layout.index[name], name, check) for name, check in both.items()]


def order_batches(rows: RowReader, layout: Layout, tally: Tally, ts_of: Timestamps, names: Names,
                  bucket_s: int, currency: str, size: int) -> Iterator[list[Aggregate]]:
    """Orders CSV: one aggregate per row (``order.created`` x orders, revenue, product, currency)."""
    ix = layout.index
    i_ts, i_p, i_o, i_r = ix["timestamp"], ix["product_id"], ix["orders"], ix["revenue"]
    i_c, i_q = ix.get("currency"), ix.get("quantity")
    checks = _checks(layout, {"currency": _text, "quantity": whole},
                     {"timestamp": parse_timestamp, "product_id": _text, "orders": whole, "revenue": milli})
    width = layout.width
    out: list[Aggregate] = []
    for row in rows:
        if not row:
            continue
        tally.rows += 1
        try:
            if len(row) != width:
                raise IndexError
            ts = ts_of(row[i_ts])
            n = whole(row[i_o])
            revenue = float(row[i_r])
            product = names(row[i_p])
            cur = currency if i_c is None else names(row[i_c])
            quantity = None if i_q is None else whole(row[i_q])
            if not product or not cur or not math.isfinite(revenue):
                raise ValueError
        except (ValueError, IndexError, OverflowError):
            bad = first_bad_field(tally.path, rows.line_num, row, checks, width)
            if out and not tally.skip_bad:
                yield out  # the rows before a bad one are stored: a second run counts them once
                out = []
            tally.refuse(bad)
            continue
        if n or revenue:
            out.append(order_aggregate(ts, bucket_s, product, n, round(revenue * 1000), cur, quantity))
            if len(out) >= size:
                yield out
                out = []
    if out:
        yield out


def payment_batches(rows: RowReader, layout: Layout, tally: Tally, ts_of: Timestamps, names: Names,
                    bucket_s: int, size: int) -> Iterator[list[PaymentBucket]]:
    """Payments CSV: one bucket a row: authorized = attempts - failures, the failures per reason column
    (a JSON object, the reasons with failures only), the rest without a reason."""
    ix = layout.index
    i_ts, i_m, i_a, i_f = ix["timestamp"], ix["method"], ix["attempts"], ix["failures"]
    reasons = tuple((i, names(name)) for i, name in layout.reasons)
    keys = tuple((i, json.dumps(name) + ":") for i, name in reasons)  # each reason's JSON key, encoded once
    checks = _checks(layout, {}, {"timestamp": parse_timestamp, "method": _text, "attempts": whole,
                                  "failures": whole})
    checks += [(i, name, _reason) for i, name in reasons]
    width = layout.width
    out: list[PaymentBucket] = []
    for row in rows:
        if not row:
            continue
        tally.rows += 1
        try:
            if len(row) != width:
                raise IndexError
            ts = ts_of(row[i_ts])
            method = names(row[i_m])
            attempts, failures = whole(row[i_a]), whole(row[i_f])
            per_reason = [(key, whole(row[i])) for i, key in keys if row[i].strip()]
            if not method:
                raise ValueError
        except (ValueError, IndexError, OverflowError):
            bad = first_bad_field(tally.path, rows.line_num, row, checks, width)
            if out and not tally.skip_bad:
                yield out  # the rows before a bad one are stored: a second run counts them once
                out = []
            tally.refuse(bad)
            continue
        explained = sum(k for _, k in per_reason)
        if failures > attempts or explained > failures:
            field, problem = (("failures", f"{failures} failures out of {attempts} attempts") if failures > attempts
                              else (reasons[0][1], f"the reasons add up to {explained}, more than the {failures} failures"))
            if out and not tally.skip_bad:
                yield out
                out = []
            tally.refuse(BadRow(tally.path, rows.line_num, field, problem))
            continue
        failed = [key + str(k) for key, k in per_reason if k]
        authorized, unexplained = attempts - failures, failures - explained
        count = (authorized > 0) + (unexplained > 0) + len(failed)
        if count:
            out.append(PaymentBucket(payment_bucket_id(ts, method), ts, bucket_s, method, authorized, unexplained,
                                     "{" + ",".join(failed) + "}", count))
            if len(out) >= size:
                yield out
                out = []
    if out:
        yield out
