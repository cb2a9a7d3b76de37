"""Store documents: one flat, ECS-style JSON object per thing worth counting.

Every store (SQLite, Elasticsearch) and the Kafka events topic carry the same
documents, so a document built in a service is counted identically wherever it
lands. Keys are dotted ECS names (``event.action``, ``trace.id``) plus our
``commerce.*`` names from :mod:`commerce_observe.agent.events.conventions`; Elasticsearch
expands the dots into objects, SQLite reads the few keys it has columns for.

Why one document per order line (``commerce.record = "item"``) instead of a
``nested`` items field: top-products is then a plain terms aggregation that
Kibana Lens can draw (Lens cannot aggregate nested fields), and the SQLite rollup
needs no JSON unpacking. ``event.id`` is the idempotency key everywhere: a
redelivered document is recognised by it and never counted twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final, Protocol

from commerce_observe.agent.events import conventions as cv
from commerce_observe.agent.events.model import DomainEvent, EventType

Document = dict[str, Any]

DATASET: Final = "commerce.events"
#: ``commerce.record`` values: what a document describes.
EVENT: Final = "event"
ITEM: Final = "item"
MESSAGE: Final = "message"
FINDING: Final = "finding"
ANOMALY: Final = "anomaly"
ALERT: Final = "alert"  # one state (firing / resolved) of an alert of the alert engine
#: ``event.action`` of item documents (they are not orders, so they get their own).
ITEM_ACTION: Final = "order.item"

PRODUCT_ID: Final = "commerce.product.id"
PRODUCT_QUANTITY: Final = "commerce.product.quantity"
PRODUCT_UNIT_PRICE: Final = "commerce.product.unit_price"
PRODUCT_REVENUE: Final = "commerce.product.revenue"
RECORD: Final = "commerce.record"
LATENCY_MS: Final = "commerce.message.latency_ms"
FINDING_KIND: Final = "commerce.finding.kind"
ALERT_ID: Final = "commerce.alert.id"
ALERT_STATUS: Final = "commerce.alert.status"
ANOMALY_SERIES: Final = "commerce.anomaly.series"
ANOMALY_METRIC: Final = "commerce.anomaly.metric"
ANOMALY_ENTITY: Final = "commerce.anomaly.entity"
ANOMALY_SCORE: Final = "commerce.anomaly.score"
ANOMALY_ACTUAL: Final = "commerce.anomaly.actual"
ANOMALY_EXPECTED: Final = "commerce.anomaly.expected"
ANOMALY_LOWER: Final = "commerce.anomaly.lower"
ANOMALY_UPPER: Final = "commerce.anomaly.upper"


def iso_ms(ts: datetime) -> str:
    """Millisecond UTC ISO-8601: the precision Elasticsearch's ``date`` keeps."""
    ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def iso_ns(ns: int) -> str:
    return iso_ms(datetime.fromtimestamp(ns / 1e9, timezone.utc))


def _base(ts: str, doc_id: str, record: str, action: str, service: str | None) -> Document:
    doc: Document = {"@timestamp": ts, "event.id": doc_id, "event.kind": "event", "event.dataset": DATASET,
                     "event.action": action, RECORD: record}
    if service:
        doc["service.name"] = service
    return doc


def _put(doc: Document, key: str, value: object) -> None:
    if value is not None:
        doc[key] = value


def event_documents(event: DomainEvent, service: str | None = None) -> list[Document]:
    """The event's own document, then one document per order line."""
    ts = iso_ms(event.occurred_at)
    doc = _base(ts, event.event_id, EVENT, event.type.value, service)
    doc["event.outcome"] = "failure" if event.type is EventType.PAYMENT_FAILED else "success"
    doc[cv.EVENT_TYPE] = event.type.value
    for key, value in ((cv.ORDER_ID, event.order_id), (cv.PAYMENT_ID, event.payment_id),
                       (cv.CURRENCY, event.currency), (cv.CUSTOMER_REF, event.customer_ref),
                       (cv.PAYMENT_METHOD, event.payment_method), ("trace.id", event.trace_id),
                       ("span.id", event.span_id)):
        _put(doc, key, value)
    total = event.total
    if total is not None:
        doc[cv.AMOUNT] = float(total)
    if event.reason is not None:
        doc[cv.FAILURE_REASON if event.type is EventType.PAYMENT_FAILED else cv.REASON] = event.reason
    if event.items:
        doc[cv.ITEM_COUNT] = len(event.items)
        doc[cv.PRODUCT_IDS] = [i.product_id for i in event.items]
    out = [doc]
    for n, item in enumerate(event.items):
        line = _base(ts, f"{event.event_id}.{n}", ITEM, ITEM_ACTION, service)
        line[cv.EVENT_ID] = event.event_id
        line[PRODUCT_ID] = item.product_id
        line[PRODUCT_QUANTITY] = item.quantity
        line[PRODUCT_UNIT_PRICE] = float(item.unit_price)
        line[PRODUCT_REVENUE] = float(item.unit_price * item.quantity)
        for key, value in ((cv.ORDER_ID, event.order_id), (cv.CURRENCY, event.currency),
                           ("trace.id", event.trace_id), ("span.id", event.span_id)):
            _put(line, key, value)
        out.append(line)
    return out


class AuditRecordLike(Protocol):
    """What :class:`commerce_observe.agent.audit.record.AuditRecord` and ``MessageFact`` share."""

    @property
    def stage(self) -> Any: ...
    @property
    def time_ns(self) -> int: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def event_type(self) -> str | None: ...
    @property
    def consumer_group(self) -> str | None: ...
    @property
    def published_ns(self) -> int | None: ...
    @property
    def destination(self) -> str: ...
    @property
    def system(self) -> str: ...
    @property
    def partition(self) -> int | None: ...
    @property
    def offset(self) -> int | None: ...
    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def order_id(self) -> str | None: ...
    @property
    def payment_id(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


def message_document(rec: AuditRecordLike, service: str | None = None) -> Document:
    """An audit record (or a MessageFact) as a document; latency only on handled records.

    Its id hashes every identifying field, so the same record shipped twice is one
    document while two real handlings (different times/offsets) stay two.
    """
    stage = str(getattr(rec.stage, "value", rec.stage))
    key = "|".join(str(x) for x in (stage, rec.time_ns, rec.event_id, rec.consumer_group, rec.destination,
                                    rec.partition, rec.offset, rec.span_id))
    doc = _base(iso_ns(rec.time_ns), "m:" + hashlib.sha1(key.encode()).hexdigest()[:24], MESSAGE,
                "message." + stage, service)
    doc["event.outcome"] = "failure" if stage in ("send_failed", "handle_failed") else "success"
    for k, v in ((cv.EVENT_ID, rec.event_id), (cv.EVENT_TYPE, rec.event_type), (cv.ORDER_ID, rec.order_id),
                 (cv.PAYMENT_ID, rec.payment_id), ("messaging.system", rec.system),
                 ("messaging.destination.name", rec.destination), ("messaging.consumer.group.name", rec.consumer_group),
                 ("commerce.message.partition", rec.partition), ("commerce.message.offset", rec.offset),
                 ("trace.id", rec.trace_id or None), ("span.id", rec.span_id or None), ("error.message", rec.error)):
        _put(doc, k, v)
    if stage == "handled" and rec.published_ns:
        doc[LATENCY_MS] = round(max(0, rec.time_ns - rec.published_ns) / 1e6, 3)
    return doc


def finding_document(finding: Any, service: str | None = None, now: datetime | None = None) -> Document:
    """An audit :class:`~commerce_observe.monitor.audit.findings.Finding` (LOST, DUPLICATE, ...) as an alert document."""
    kind = str(getattr(finding.kind, "value", finding.kind))
    ts = iso_ns(finding.published_ns) if finding.published_ns else iso_ms(now or datetime.now(timezone.utc))
    # a GAP by its first number, another producer's message (no event id) by topic, partition and offset
    ref = finding.event_id or (f"{finding.destination}/{finding.partition}@{finding.offset}"
                               if getattr(finding, "offset", None) is not None else finding.sequence)
    doc_id = f"f:{kind}:{ref}:{finding.consumer_group or ''}"
    doc = _base(ts, doc_id, FINDING, "finding." + kind.lower(), service)
    doc["event.kind"] = "alert"
    doc[FINDING_KIND] = kind
    for k, v in ((cv.EVENT_ID, finding.event_id), (cv.EVENT_TYPE, finding.event_type),
                 (cv.ORDER_ID, finding.order_id), (cv.PAYMENT_ID, finding.payment_id),
                 ("messaging.consumer.group.name", finding.consumer_group),
                 ("messaging.destination.name", finding.destination), ("trace.id", finding.trace_id),
                 ("span.id", finding.span_id), (LATENCY_MS, finding.latency_ms), ("error.message", finding.error),
                 ("commerce.message.partition", getattr(finding, "partition", None)),
                 ("commerce.message.offset", getattr(finding, "offset", None))):
        _put(doc, k, v)
    where = f" in group {finding.consumer_group}" if finding.consumer_group else ""
    doc["message"] = f"{kind} {finding.event_type or 'event'} {ref if ref is not None else ''}{where}".strip()
    return doc


def anomaly_document(score: Any, service: str | None = None, trace_id: str | None = None,
                     band: tuple[float, float] | None = None) -> Document:
    """An anomaly :class:`~commerce_observe.monitor.anomaly.score.Score` with what the dashboard draws.

    ``band`` is the expected range (low, high) around ``expected`` (else the score's
    own ``lower``/``upper`` when it has them). The series name ``orders:sku-1`` is
    also split into ``commerce.anomaly.metric`` and ``.entity`` so Kibana can group by
    product or payment method without parsing strings. Written for every scored
    bucket (low scores too): the dashboard needs the quiet points to say since when
    a series has been abnormal.
    """
    ts = iso_ms(score.timestamp)
    doc = _base(ts, f"a:{score.series}:{ts}", ANOMALY, "anomaly", service)
    doc["event.kind"] = "alert"
    metric, _, entity = str(score.series).partition(":")
    doc[ANOMALY_SERIES] = score.series
    doc[ANOMALY_METRIC] = metric
    _put(doc, ANOMALY_ENTITY, entity or None)
    _put(doc, ANOMALY_SCORE, score.score)
    doc[ANOMALY_ACTUAL] = float(score.actual)
    _put(doc, ANOMALY_EXPECTED, None if score.expected is None else float(score.expected))
    low, high = band if band is not None else (getattr(score, "lower", None), getattr(score, "upper", None))
    _put(doc, ANOMALY_LOWER, None if low is None else float(low))
    _put(doc, ANOMALY_UPPER, None if high is None else float(high))
    _put(doc, "trace.id", trace_id)
    expected = "" if score.expected is None else f" expected {float(score.expected):g}"
    doc["message"] = f"{score.series}: {float(score.actual):g}{expected} (score {score.score})"
    return doc


def alert_document(alert: Any, service: str | None = None) -> Document:
    """One state of an alert (:class:`~commerce_observe.monitor.alerts.model.Alert`): firing, or resolved.

    Stores are append-only by ``event.id``, so an alert is two documents, not one
    updated: ``al:firing:<id>`` when it starts (``@timestamp`` = its ``since``) and
    ``al:resolved:<id>`` when it ends (``@timestamp`` = ``ended``). ``commerce.alert.id``
    (rule key + since) ties them; an alert is *open* at T when its firing document
    is before T and no resolved one is. Writing either twice changes nothing.
    """
    status = str(getattr(alert.status, "value", alert.status))
    incident = hashlib.sha1(f"{alert.key}|{iso_ms(alert.since)}".encode()).hexdigest()[:20]
    at = alert.ended if status == "resolved" and alert.ended is not None else alert.since
    doc = _base(iso_ms(at), f"al:{status}:{incident}", ALERT, "alert." + status, service)
    doc["event.kind"] = "alert"
    where = ", ".join(f"{k} {v}" for k, v in alert.where) or "everywhere"
    for key, value in ((ALERT_ID, incident), ("commerce.alert.key", alert.key), ("commerce.alert.rule", alert.rule),
                       ("commerce.alert.title", alert.title), (ALERT_STATUS, status),
                       ("commerce.alert.severity", alert.severity), ("commerce.alert.since", iso_ms(alert.since)),
                       ("commerce.alert.where", where), ("commerce.alert.measure", alert.measure),
                       ("commerce.alert.value", float(alert.value))):
        doc[key] = value
    if alert.links:
        doc["commerce.alert.links"] = [[label, url] for label, url in alert.links]
    doc["message"] = f"{alert.title} ({where}): {alert.measure}"
    return doc


def timestamp_ms(doc: Mapping[str, Any]) -> int:
    """Epoch milliseconds of a document's ``@timestamp``."""
    raw = str(doc["@timestamp"]).replace("Z", "+00:00")
    return int(datetime.fromisoformat(raw).timestamp() * 1000 + 0.5)
