"""NDJSON of store documents (:mod:`commerce_observe.store.documents`), one per line, checked.

What a line must hold is what the stores need to count it: ``event.id``,
``@timestamp`` (ISO 8601; without an offset it is UTC, and it is rewritten as
UTC milliseconds so every store reads the same instant), ``commerce.record`` and
``event.action``; an item needs its product and quantity, an aggregate a whole
``commerce.aggregate.count``. Every document goes through the privacy masker
first: a card number or e-mail in an exported file does not reach the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from commerce_observe.agent.privacy import Masker
from commerce_observe.monitor.importer.csv_rows import Tally
from commerce_observe.monitor.importer.validation import BadRow, parse_timestamp, shown
from commerce_observe.store import documents as d
from commerce_observe.store.aggregates import ACTIONS, AGGREGATE, COUNT, from_document

RECORDS = (d.EVENT, d.ITEM, d.MESSAGE, d.FINDING, d.ANOMALY, d.ALERT, AGGREGATE)


def _problem(doc: Any) -> tuple[str | None, str] | None:
    """(field, what is wrong) for a document the stores could not count, else None."""
    if not isinstance(doc, dict):
        return None, "not a JSON object"
    for key in ("event.id", "event.action", d.RECORD):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            return key, "missing" if value is None else f"not a non-empty string: {shown(str(value))}"
    if doc[d.RECORD] not in RECORDS:
        return d.RECORD, f"unknown record {shown(doc[d.RECORD])} (expected one of {', '.join(RECORDS)})"
    ts = doc.get("@timestamp")
    if not isinstance(ts, str):
        return "@timestamp", "missing" if ts is None else "not an ISO 8601 string"
    try:
        doc["@timestamp"] = d.iso_ns(parse_timestamp(ts) * 1_000_000)
    except ValueError as exc:
        return "@timestamp", str(exc)
    if doc[d.RECORD] == d.ITEM:
        if not isinstance(doc.get(d.PRODUCT_ID), str):
            return d.PRODUCT_ID, "an item needs its product id"
        quantity = doc.get(d.PRODUCT_QUANTITY)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            return d.PRODUCT_QUANTITY, "an item needs a whole quantity >= 0"
    for key in ("commerce.amount", d.PRODUCT_REVENUE, d.LATENCY_MS):
        value = doc.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return key, f"not a number: {shown(str(value))}"
    if doc[d.RECORD] == AGGREGATE:
        if doc["event.action"] not in ACTIONS:
            return "event.action", f"an aggregate stands for one of {', '.join(ACTIONS)}"
        try:
            from_document(doc)
        except KeyError:
            return COUNT, "missing"
        except (ValueError, TypeError) as exc:
            return COUNT, str(exc)
    return None


def document_batches(fh: IO[str], tally: Tally, size: int, masker: Masker) -> Iterator[list[dict[str, Any]]]:
    """Checked, masked documents in batches; a bad line goes to ``tally`` (raised or counted)."""
    out: list[dict[str, Any]] = []
    for line_no, line in enumerate(fh, 1):
        if not line.strip():
            continue
        tally.rows += 1
        try:
            doc = json.loads(line)
        except ValueError as exc:
            problem: tuple[str | None, str] | None = (None, f"not JSON ({exc.args[0].split(':')[0]})")
        else:
            problem = _problem(doc)
        if problem is not None:
            if out and not tally.skip_bad:
                yield out  # the lines before a bad one are stored: a second run counts them once
                out = []
            tally.refuse(BadRow(tally.path, line_no, *problem))
            continue
        out.append(masker.mask_attributes(doc))
        if len(out) >= size:
            yield out
            out = []
    if out:
        yield out
