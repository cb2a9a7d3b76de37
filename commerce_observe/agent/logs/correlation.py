"""The ECS fields that tie a log line to its trace: ``trace.id``, ``transaction.id``,
``span.id``, ``service.name``.

One small object computes them for the current span, for stdlib records and
structlog events alike. A service writes several log lines per span, so the hex
strings of the last span seen are kept and reused: the common case is one context
lookup and one comparison (``benchmarks/log_correlation.py``).
"""

from __future__ import annotations

from opentelemetry import trace

from commerce_observe.agent._lightspan import TXN_ATTR

TRACE_ID = "trace.id"
TRANSACTION_ID = "transaction.id"
SPAN_ID = "span.id"
SERVICE_NAME = "service.name"
FIELDS = (TRACE_ID, TRANSACTION_ID, SPAN_ID, SERVICE_NAME)


class Correlation:
    """The correlation fields of the current span (``transaction.id``: its Elastic
    transaction, as the export pipeline decided at span start)."""

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self._last_span: object = None
        #: Outside a span the ids are None (not absent), so a format string naming
        #: ``%(trace.id)s`` works on every record; ECS and structlog leave them out.
        self._outside: dict[str, str | None] = dict.fromkeys(FIELDS) | {SERVICE_NAME: service_name}
        self._last_fields: dict[str, str | None] = self._outside

    def fields(self) -> dict[str, str | None]:
        """The fields for a record made now (do not mutate: it is shared)."""
        span = trace.get_current_span()
        if span is self._last_span:
            return self._last_fields
        ctx = span.get_span_context()
        if not ctx.is_valid:
            return self._outside
        span_id = ctx.span_id
        txn = getattr(span, TXN_ATTR, span_id)
        span_hex = "%016x" % span_id
        fields: dict[str, str | None] = {
            TRACE_ID: "%032x" % ctx.trace_id,
            TRANSACTION_ID: span_hex if txn == span_id else "%016x" % txn,
            SPAN_ID: span_hex,
            SERVICE_NAME: self.service_name,
        }
        # two assignments, not atomic together: a racing thread at worst recomputes
        self._last_fields, self._last_span = fields, span
        return fields
