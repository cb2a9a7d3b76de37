"""Attribute and header names used by every messaging integration, spelled once.

Span attributes follow the OpenTelemetry messaging semantic conventions (both the
current ``messaging.operation.type`` and the older ``messaging.operation``, which
Elastic APM and older Zipkin dashboards still read) and the OpenTelemetry
CloudEvents conventions for the event's source and type (its id is
``messaging.message.id``; attributes are not repeated: each one costs on every span). Two facts have no standard name
and live in the ``commerce.*`` namespace: the per-producer sequence and the
end-to-end latency.

Headers are the CloudEvents Kafka/AMQP *binary* binding (``ce_`` prefix): a
consumer written with any CloudEvents SDK reads the same identity we do.
"""

from __future__ import annotations

from typing import Final

SYSTEM: Final = "messaging.system"
DESTINATION: Final = "messaging.destination.name"
OPERATION_TYPE: Final = "messaging.operation.type"
OPERATION: Final = "messaging.operation"
MESSAGE_ID: Final = "messaging.message.id"
BODY_SIZE: Final = "messaging.message.body.size"
KAFKA_KEY: Final = "messaging.kafka.message.key"
KAFKA_OFFSET: Final = "messaging.kafka.offset"
CONSUMER_GROUP: Final = "messaging.consumer.group.name"
PARTITION: Final = "messaging.destination.partition.id"
SUBSCRIPTION: Final = "messaging.destination.subscription.name"
RABBITMQ_ROUTING_KEY: Final = "messaging.rabbitmq.destination.routing_key"
RABBITMQ_DELIVERY_TAG: Final = "messaging.rabbitmq.message.delivery_tag"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

CE_EVENT_SOURCE: Final = "cloudevents.event_source"
CE_EVENT_TYPE: Final = "cloudevents.event_type"

SEQUENCE: Final = "commerce.message.sequence"
#: Publication (``ce_time``, else the record's create time) to handled (the CONSUMER span's
#: end): the same measure as a LATE finding's latency and a HANDLED document's.
LATENCY_MS: Final = "commerce.message.latency_ms"
#: Publication to received (the CONSUMER span's start): the time the message waited.
RECEIVE_LATENCY_MS: Final = "commerce.message.receive_latency_ms"
OUTCOME: Final = "commerce.message.outcome"

# CloudEvents binary-binding headers (lower case: the carriers index lower case).
H_ID: Final = "ce_id"
H_TYPE: Final = "ce_type"
H_SOURCE: Final = "ce_source"
H_SPECVERSION: Final = "ce_specversion"
H_TIME: Final = "ce_time"
H_SEQUENCE: Final = "ce_sequence"

#: Every trace-context header name any supported format uses (lower case): a
#: record carrying one of these but yielding no parent had *broken* context.
TRACE_HEADERS: Final = frozenset(
    {"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled",
     "x-b3-flags", "x-b3-parentspanid", "elastic-apm-traceparent", "elasticapmtraceparent"}
)

KAFKA: Final = "kafka"
RABBITMQ: Final = "rabbitmq"
