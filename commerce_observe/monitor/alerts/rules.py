"""The three kinds of rule, each turning one observation into an alert candidate.

A rule only answers "does this observation breach, and how would the alert read?".
Remembering what is already firing, grouping and resolving is the engine's job,
so every rule stays a small pure function that is easy to test and to explain.

Globs (``fnmatch``) select series, payment methods and topics, so one rule can
cover every product (``orders:*``) and another can be stricter for one of them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from commerce_observe.monitor.anomaly.severity import CRITICAL, severity

from .model import Alert

if TYPE_CHECKING:
    from commerce_observe.monitor.audit.findings import Finding, Links

#: What each series prefix of the anomaly bucketiser measures, and where.
_SERIES = {
    "orders": ("orders", "product"),
    "revenue": ("revenue", "currency"),
    "payment_failures": ("payment failures", "payment method"),
}

_AUDIT_WORDS = {"LOST": "lost", "UNDELIVERED": "undelivered", "DUPLICATE": "duplicated", "LATE": "late", "GAP": "missing (sequence gap)"}
_AUDIT_SEVERITY = {"LOST": "critical", "UNDELIVERED": "critical", "GAP": "minor", "DUPLICATE": "minor", "LATE": "warning"}


class ScoreLike(Protocol):
    """What the rule reads from ``commerce_observe.monitor.anomaly.Score`` (duck-typed: no numpy import)."""

    @property
    def series(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def score(self) -> float | None: ...
    @property
    def actual(self) -> float: ...
    @property
    def expected(self) -> float | None: ...


def describe_series(series: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``orders:sku-1`` -> ("orders", (("product", "sku-1"),)); unknown names stay whole."""
    prefix, sep, rest = series.partition(":")
    if sep and prefix in _SERIES:
        what, label = _SERIES[prefix]
        if rest == "__all__":
            return what, (("scope", "all products"),)
        return what, ((label, rest),)
    return series, (("series", series),)


@dataclass(frozen=True)
class AnomalyRule:
    """Anomaly score of a series (glob) at or over ``threshold``; ``direction`` any/drop/spike."""

    name: str
    series: str = "*"
    threshold: float = CRITICAL  # by default only a critical score pages
    direction: str = "any"
    resolve_after: int = 3

    def evaluate(self, s: ScoreLike) -> Alert | None:
        if s.score is None or s.score < self.threshold or not fnmatch.fnmatchcase(s.series, self.series):
            return None
        dropped = s.expected is not None and s.actual < s.expected
        # unknown direction (no expected value, e.g. the anomaly CLI's CSV) passes: better a page than a missed outage
        known = s.expected is not None
        if known and ((self.direction == "drop" and not dropped) or (self.direction == "spike" and dropped)):
            return None
        what, where = describe_series(s.series)
        verb = "dropped" if dropped else "spiked" if s.expected is not None else "anomalous"
        vs = f"{s.actual:g} vs {s.expected:.1f} expected" if s.expected is not None else f"value {s.actual:g}"
        return Alert(
            key=f"{self.name}|{s.series}", rule=self.name, title=f"{what} {verb}",
            severity=severity(s.score, below="warning"),  # an alert is at least a warning
            where=where, since=s.timestamp, measure=f"anomaly score {s.score:.0f}/100 ({vs})", value=float(s.score),
        )


@dataclass(frozen=True)
class FailureRatioRule:
    """Payment failures / attempts over ``threshold`` for a method (glob), given ``min_attempts``."""

    name: str
    method: str = "*"
    threshold: float = 0.1
    min_attempts: int = 20
    resolve_after: int = 3

    def evaluate(self, ts: datetime, method: str, failures: int, attempts: int) -> Alert | None:
        if attempts < self.min_attempts or attempts <= 0 or not fnmatch.fnmatchcase(method, self.method):
            return None
        ratio = failures / attempts
        if ratio <= self.threshold:
            return None
        return Alert(
            key=f"{self.name}|{method}", rule=self.name, title="payment failures high",
            severity="critical" if ratio >= 2 * self.threshold else "minor",
            where=(("payment method", method),), since=ts,
            measure=f"{ratio:.1%} failed ({failures} of {attempts} attempts; threshold {self.threshold:.1%})",
            value=ratio,
        )


@dataclass(frozen=True)
class AuditRule:
    """``min_count`` or more audit findings of ``kinds`` on a topic (glob) in one bucket."""

    name: str
    kinds: tuple[str, ...] = ("LOST", "UNDELIVERED", "DUPLICATE", "LATE")
    topic: str = "*"
    min_count: int = 1
    resolve_after: int = 1
    max_links: int = 5

    def matches(self, f: Finding) -> bool:
        return f.kind.value in self.kinds and fnmatch.fnmatchcase(f.destination or "", self.topic)

    def group_key(self, f: Finding) -> str:
        return f"{self.name}|{f.kind.value}|{f.destination or '?'}|{f.consumer_group or '*'}"

    def evaluate(self, ts: datetime, found: Sequence[Finding], links: Links) -> Alert | None:
        """``found``: matching findings of one group key (same kind, topic, consumer group)."""
        if len(found) < self.min_count or not found:
            return None
        first = found[0]
        kind = first.kind.value
        where: list[tuple[str, str]] = [("topic", first.destination or "?")]
        if first.consumer_group:
            where.append(("consumer group", first.consumer_group))
        types = sorted({f.event_type for f in found if f.event_type})
        if types:
            where.append(("event type", ", ".join(types)))
        published = [f.published_ns for f in found if f.published_ns]
        since = datetime.fromtimestamp(min(published) / 1e9, ts.tzinfo) if published else ts
        details: list[str] = []
        trace_links: list[tuple[str, str]] = []
        for f in found:
            ids = " ".join(f"{k}={v}" for k, v in (("order", f.order_id), ("payment", f.payment_id)) if v)
            extra = f" latency {f.latency_ms:.0f} ms" if f.latency_ms is not None else ""
            details.append(f"event {f.ref or '?'} {ids}{extra}".rstrip())
            if len(trace_links) < self.max_links * 2:
                for backend, url in links.for_trace(f.trace_id).items():
                    trace_links.append((f"{backend} trace {f.trace_id}", url))
        noun = "event" if len(found) == 1 else "events"
        return Alert(
            key=self.group_key(first), rule=self.name, title=f"events {_AUDIT_WORDS.get(kind, kind.lower())}",
            severity=_AUDIT_SEVERITY.get(kind, "minor"), where=tuple(where), since=since,
            measure=f"{len(found)} {noun} {_AUDIT_WORDS.get(kind, kind.lower())}", value=float(len(found)),
            links=tuple(trace_links), details=tuple(details),
        )


Rule = AnomalyRule | FailureRatioRule | AuditRule
