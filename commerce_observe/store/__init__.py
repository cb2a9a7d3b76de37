"""The monitoring store: the document shapes and their backends (SQLite, Elasticsearch).

Shared by both halves: the agent writes event documents here (when configured to ship
straight to a store), the monitor writes findings and scores and reads every figure
back. Importing this package starts nothing: stores and the shipper are created by
the caller.
"""

from commerce_observe.store.aggregates import Aggregate
from commerce_observe.store.documents import (
    alert_document, anomaly_document, event_documents, finding_document, message_document,
)
from commerce_observe.store.kafka_io import AUDIT_TOPIC, EVENTS_TOPIC, Shipper
from commerce_observe.store.overview import summary
from commerce_observe.store.queries import MetricsQuery, SeriesPoint, TimeRange
from commerce_observe.store.store import EventStore, StoreUnavailable, WriteResult, open_store

__all__ = [
    "AUDIT_TOPIC", "Aggregate", "EVENTS_TOPIC", "EventStore", "MetricsQuery", "SeriesPoint", "Shipper", "StoreUnavailable",
    "TimeRange",
    "WriteResult", "alert_document", "anomaly_document", "event_documents", "finding_document", "message_document", "open_store",
    "summary",
]
