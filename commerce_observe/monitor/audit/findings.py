"""What the auditor reports: one finding per event (and consumer group) that went wrong.

A count reconciliation says *that* 3 of 10,000 messages were lost; a finding says
*which* one (event id, type, order/payment id) and hands over the trace id, with
links into Zipkin and Kibana APM, so the trace shows where the message stopped.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from commerce_observe.agent.audit import record as rec


class Kind(str, enum.Enum):
    LOST = "LOST"  # acknowledged by the broker, never handled by a group that consumes its destination
    UNDELIVERED = "UNDELIVERED"  # the send failed, or was never acknowledged
    DUPLICATE = "DUPLICATE"  # handled more than once by the same group
    LATE = "LATE"  # first handling came more than the SLA after publication
    GAP = "GAP"  # sequence numbers of a (source, destination) with no producer record, or a window of
    # the trail a process could not record (its spool was full): its events are not judged LOST


@dataclass(frozen=True, slots=True)
class Handling:
    """One consumer-side record of an event: where to look for it in a trace."""

    stage: str
    time_ns: int
    trace_id: str
    span_id: str
    partition: int | None
    offset: int | None
    error: str | None = None


@dataclass(frozen=True)
class Finding:
    kind: Kind
    event_id: str | None
    event_type: str | None = None
    consumer_group: str | None = None
    source: str | None = None
    destination: str | None = None
    sequence: int | None = None
    sequence_end: int | None = None  # GAP: last missing number (inclusive)
    # a message without a usable ce_id (another producer's): no event id, known by topic, partition, offset
    partition: int | None = None
    offset: int | None = None
    order_id: str | None = None
    payment_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    published_ns: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    handlings: tuple[Handling, ...] = field(default=())

    def sort_key(self) -> tuple[int, int, str, str, int]:
        return (list(Kind).index(self.kind), self.published_ns or 0, self.ref, self.consumer_group or "", self.sequence or 0)

    @property
    def ref(self) -> str:
        """What names the event: its id; else ``topic/partition@offset`` (a message of
        another producer), or ``source->destination#sequence`` (a GAP)."""
        if self.event_id:
            return self.event_id
        if self.offset is not None:
            return f"{self.destination}/{self.partition}@{self.offset}"
        if self.sequence is not None:
            return f"{self.source}->{self.destination}#{self.sequence}"
        return ""


class Links:
    """Builds trace links from configurable base URLs (None: that backend is left out)."""

    def __init__(self, zipkin_ui: str | None = None, kibana: str | None = None) -> None:
        self.zipkin_ui = zipkin_ui.rstrip("/") if zipkin_ui else None
        self.kibana = kibana.rstrip("/") if kibana else None

    def for_trace(self, trace_id: str | None) -> dict[str, str]:
        if not trace_id:
            return {}
        out: dict[str, str] = {}
        if self.zipkin_ui:
            out["zipkin"] = f"{self.zipkin_ui}/zipkin/traces/{trace_id}"
        if self.kibana:
            out["kibana"] = f"{self.kibana}/app/apm/link-to/trace/{trace_id}"
        return out


def handling_of(line: bytes) -> Handling:
    f = line.split(b"\t")
    return Handling(
        rec.CODE_STAGE[f[rec.STAGE]].value, int(f[rec.TIME]), rec.unescape(f[rec.TRACE_ID]), rec.unescape(f[rec.SPAN_ID]),
        int(f[rec.PARTITION]) if f[rec.PARTITION] else None, int(f[rec.OFFSET]) if f[rec.OFFSET] else None,
        rec.unescape(f[rec.ERROR]) if f[rec.ERROR] else None,
    )


def from_line(kind: Kind, line: bytes, **extra: Any) -> Finding:
    """A finding whose identity and trace come from one audit line (the best one we hold).

    A consumer line without an event id (another producer's message) is named by its
    topic, partition and offset instead.
    """
    r = rec.decode(line)
    values: dict[str, Any] = dict(
        event_id=r.event_id or None, event_type=r.event_type, source=r.source, destination=r.destination,
        sequence=r.sequence, order_id=r.order_id, payment_id=r.payment_id, trace_id=r.trace_id,
        span_id=r.span_id, published_ns=r.published_ns if r.role == "consumer" else r.time_ns, error=r.error,
    )
    if not r.event_id:
        values.update(partition=r.partition, offset=r.offset)
    values.update(extra)
    return Finding(kind, **values)


def producer_ids(pline: bytes | None) -> dict[str, str]:
    """The order and payment ids (and event type) a producer's line holds, for a finding
    built from a consumer's line: consumers do not know them, the producer's records do."""
    if pline is None:
        return {}
    f = pline.split(b"\t")
    if len(f) != rec.N_FIELDS:
        return {}
    return {name: rec.unescape(f[i]) for name, i in (("order_id", rec.ORDER_ID), ("payment_id", rec.PAYMENT_ID),
                                                      ("event_type", rec.EVENT_TYPE)) if f[i]}


def to_dict(f: Finding, links: Links) -> dict[str, Any]:
    """JSON shape of a finding: stable keys, nulls dropped, links per trace."""
    out: dict[str, Any] = {"kind": f.kind.value}
    for name in ("event_id", "event_type", "consumer_group", "order_id", "payment_id", "source", "destination",
                 "sequence", "sequence_end", "partition", "offset", "trace_id", "span_id", "published_ns",
                 "latency_ms", "error"):
        value = getattr(f, name)
        if value is not None:
            out[name] = value
    if f.trace_id:
        out["links"] = links.for_trace(f.trace_id)
    if f.handlings:
        out["handlings"] = [
            {k: v for k, v in (("stage", h.stage), ("time_ns", h.time_ns), ("trace_id", h.trace_id), ("span_id", h.span_id),
                               ("partition", h.partition), ("offset", h.offset), ("error", h.error),
                               ("links", links.for_trace(h.trace_id))) if v is not None}
            for h in f.handlings
        ]
    return out


def report_to_hub(findings: Iterable[Finding]) -> None:
    """Tell the installed runtime's hub about released findings (``FindingReported``),
    so its live metrics count them (``commerce_findings_total{kind}``); a no-op when
    nothing listens."""
    from commerce_observe.agent.current import hub
    from commerce_observe.agent.reporting.live_metrics import FindingReported

    the_hub = hub()
    if the_hub.has_listeners(FindingReported):
        for finding in findings:
            the_hub.emit(FindingReported(finding.kind.value))
