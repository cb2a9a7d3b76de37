"""Offline inputs for the ``alerts evaluate`` command: scores CSV, series CSV, audit report.

The online path feeds the engine directly (``observe_score`` from the detector,
``observe_findings`` from the auditor). Offline, the same facts come from files
other commands wrote: ``commerce-observe anomaly`` output (``timestamp,series,score``
plus ``actual,expected`` when present), its input CSV (payment failure ratios from
``payment_failures:<method>`` rows with ``numerator,denominator``) and the audit
JSON report (a list of findings, or ``{"findings": [...]}``, in
``audit.findings.to_dict`` shape). They are merged into one time-ordered stream
so buckets close, group and resolve exactly as they would have live.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from commerce_observe.monitor.audit.findings import Finding, Handling, Kind


@dataclass(frozen=True)
class ScoreRow:
    """A score read back from CSV; has the attributes the anomaly rule reads."""

    series: str
    timestamp: datetime
    score: float | None
    actual: float = math.nan
    expected: float | None = None


@dataclass(frozen=True)
class PaymentRow:
    timestamp: datetime
    method: str
    failures: int
    attempts: int


def parse_ts(text: str) -> datetime:
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is None or math.isfinite(value) else None


def read_scores(path: str) -> Iterator[ScoreRow]:
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            actual = _float(row.get("actual"))
            yield ScoreRow(row["series"], parse_ts(row["timestamp"]), _float(row.get("score")),
                           math.nan if actual is None else actual, _float(row.get("expected")))


def read_payments(path: str) -> Iterator[PaymentRow]:
    """``payment_failures:<method>`` rows of the anomaly input CSV (other rows are skipped)."""
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            series = row.get("series", "")
            num, den = _float(row.get("numerator")), _float(row.get("denominator"))
            if series.startswith("payment_failures:") and num is not None and den is not None:
                yield PaymentRow(parse_ts(row["timestamp"]), series.partition(":")[2], int(num), int(den))


def finding_from_dict(d: dict[str, Any]) -> Finding:
    handlings = tuple(
        Handling(h.get("stage", "?"), int(h.get("time_ns", 0)), h.get("trace_id", ""), h.get("span_id", ""),
                 h.get("partition"), h.get("offset"), h.get("error"))
        for h in d.get("handlings", ())
    )
    fields = ("event_id", "event_type", "consumer_group", "source", "destination", "sequence", "sequence_end",
              "partition", "offset",
              "order_id", "payment_id", "trace_id", "span_id", "published_ns", "latency_ms", "error")
    return Finding(Kind(d["kind"]), **{k: d.get(k) for k in fields}, handlings=handlings)


def read_findings(path: str) -> list[Finding]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    items = doc.get("findings", []) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of findings or an object with 'findings'")
    return [finding_from_dict(d) for d in items]
