"""Trace-context propagation, written once for every client wrapper.

Wrap the message's headers in a carrier adapter, then::

    ctx = extract(KafkaHeaders(record.headers))          # any format
    inject(KafkaHeaders(headers))                        # all formats for Kafka
    inject(HttpHeaders(req_headers), formats=Format.W3C) # a subset

See ``docs/propagation.md`` for formats, priority and counters.
"""

from __future__ import annotations

from .api import ALL, B3_DEBUG_KEY, BAGGAGE_HEADER, Policy, extract, extract_parent, inject, policy_for
from .carriers import AmqpHeaders, Carrier, HttpHeaders, KafkaHeaders
from .formats import Format
from .otel import CommercePropagator

__all__ = [
    "ALL",
    "AmqpHeaders",
    "B3_DEBUG_KEY",
    "BAGGAGE_HEADER",
    "Carrier",
    "CommercePropagator",
    "Format",
    "HttpHeaders",
    "KafkaHeaders",
    "Policy",
    "extract",
    "extract_parent",
    "inject",
    "policy_for",
]
