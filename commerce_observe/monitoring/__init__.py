"""Commerce monitoring: events and audit records in a store, the same figures from any store.

Importing this package starts nothing: stores, the shipper, the publisher and
the metric readers are created by the caller (or by ``attach``).
"""

from commerce_observe.monitoring.attach import Attachment, attach
from commerce_observe.monitoring.documents import anomaly_document, event_documents, finding_document, message_document
from commerce_observe.monitoring.kafka_io import AUDIT_TOPIC, EVENTS_TOPIC, KafkaEventPublisher, Shipper
from commerce_observe.monitoring.live_metrics import LiveMetrics, attach_metrics, prometheus_provider
from commerce_observe.monitoring.queries import MetricsQuery, TimeRange, summary
from commerce_observe.monitoring.store import EventStore, StoreUnavailable, WriteResult, open_store

__all__ = [
    "AUDIT_TOPIC", "Attachment", "EVENTS_TOPIC", "EventStore", "KafkaEventPublisher", "LiveMetrics", "MetricsQuery",
    "Shipper", "StoreUnavailable", "TimeRange", "WriteResult", "anomaly_document", "attach", "attach_metrics",
    "event_documents", "finding_document", "message_document", "open_store", "prometheus_provider", "summary",
]
