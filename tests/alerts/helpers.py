"""Small builders shared by the alert tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from commerce_observe.monitor.audit.findings import Finding, Kind

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class FakeScore:
    """Shaped like commerce_observe.monitor.anomaly.Score (what AnomalyRule reads)."""

    series: str
    timestamp: datetime
    score: float | None
    actual: float = 0.0
    expected: float | None = 10.0


def finding(kind: str, eid: str, *, topic: str = "orders", group: str = "billing", at: datetime = T0, trace: str | None = "ab" * 16,
            order: str | None = "o-1", latency_ms: float | None = None) -> Finding:
    return Finding(Kind(kind), eid, event_type="order.created", consumer_group=group, destination=topic, order_id=order,
                   trace_id=trace, published_ns=int(at.timestamp() * 1e9), latency_ms=latency_ms)
