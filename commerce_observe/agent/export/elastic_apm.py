"""Elastic APM exporter: the shared span records as intake v2 events.

The pipeline's worker thread calls :meth:`ElasticApmExporter.export` with a batch,
already off the application thread. Mapping happens here
(``commerce_observe.agent.export.elastic.mapping``); then the exporter builds the whole
request body itself: the metadata line (encoded once per process), one line per
event from the C JSON encoder (compact separators), gzip level 1 once per
request. Delivery is elastic-apm's own transport (``send()``: pool, TLS, auth,
headers; its back-off state), called from this same thread, so the result of the
POST is known when ``export`` returns: no queue, no second thread, no flush
handshake. See ``elastic.transport`` for why no Client.

After ``os.fork()`` the child gets a fresh lock, a fresh connection pool and
metadata carrying its own pid (``os.register_at_fork``), so it can export too.

Nothing here raises for a backend or encoding problem; each is counted:

- ``export.elastic_apm.failed``: batches not delivered, whatever the reason
  (the pipeline counts their spans as dropped);
- ``export.elastic_apm.send_failed``: intake requests that failed (connection,
  timeout, HTTP >= 400), counted by the transport;
- ``export.elastic_apm.backoff``: batches refused unsent while the transport backs
  off after failures (0, 1, 4, 9 ... 36 s, elastic-apm's schedule);
- ``export.elastic_apm.mapping_failed``: spans that could not be encoded (skipped);
- ``export.elastic_apm.error``: anything else unexpected;
- ``export.elastic_apm.exported``: spans in delivered batches.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.elastic.mapping import (
    error_events, event_line, sample_rate_text, service_name, span_line, transaction_line,
)
from commerce_observe.agent.export.elastic.metadata import metadata_line
from commerce_observe.agent.export.elastic.transport import IntakeTransport, make_transport
from commerce_observe.agent.export.record import SpanRecord

__all__ = ["ElasticApmExporter"]

FAILED = "export.elastic_apm.failed"
BACKOFF = "export.elastic_apm.backoff"
MAPPING_FAILED = "export.elastic_apm.mapping_failed"
ERROR = "export.elastic_apm.error"
EXPORTED = "export.elastic_apm.exported"

#: Transactions whose children were seen but which were not exported yet; bounded so
#: transactions that never come (dropped, unsampled) cannot grow it without end.
_MAX_PENDING_COUNTS = 10_000
#: Uncompressed body size above which a batch is split into several requests.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class ElasticApmExporter:
    """Exports :class:`SpanRecord` batches to an APM Server's ``/intake/v2/events``."""

    name = "elastic_apm"

    def __init__(
        self,
        server_url: str,
        service_name: str,
        *,
        secret_token: str | None = None,
        api_key: str | None = None,
        environment: str | None = None,
        verify_server_cert: bool = True,
        resource: Mapping[str, AttributeValue] | None = None,
        timeout_s: float = 10.0,
        sample_rate: float = 1.0,
        global_labels: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self._service_raw = service_name
        self._foreign_services: dict[str, str] = {}
        self._child_counts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._sample_rate = sample_rate_text(sample_rate)
        self._metadata_args = (service_name, environment, resource, global_labels)
        self._metadata_line = metadata_line(*self._metadata_args)
        self._transport: IntakeTransport = make_transport(
            server_url,
            secret_token=secret_token,
            api_key=api_key,
            verify_server_cert=verify_server_cert,
            timeout_s=timeout_s,
        )
        after_fork_in_child(self._after_fork_in_child)

    # --- Exporter protocol --------------------------------------------------------

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        """Encode one batch and POST it; ``True`` once APM Server accepted it."""
        if not batch:
            return True
        try:
            with self._lock:
                if self._closed:
                    stats.record_failure(FAILED, "Elastic APM exporter used after shutdown")
                    return False
                if self._transport.in_backoff():
                    stats.record_failure(BACKOFF, "Elastic APM intake backing off after failures; batch dropped")
                    stats.incr(FAILED)
                    return False
                for body in self._bodies(batch):
                    if not self._transport.post(body):
                        stats.incr(FAILED)
                        return False
                stats.incr(EXPORTED, len(batch))
                return True
        except Exception as exc:
            stats.incr(FAILED)
            stats.swallow(ERROR, "Elastic APM export failed: %r", exc)
            return False

    def shutdown(self) -> None:
        """Refuse later batches and close pooled connections (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._transport.stop()  # nothing is buffered: only the pool to close
            except Exception as exc:
                stats.swallow(ERROR, "Elastic APM transport close failed: %r", exc)

    # --- internals ----------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """Runs in a forked child: the parent's worker may have held the lock and the
        pooled connections are the parent's; the pid in the metadata is the parent's."""
        self._lock = threading.Lock()  # the transport drops its pool itself
        try:
            self._metadata_line = metadata_line(*self._metadata_args)
        except Exception as exc:  # keep the parent's line rather than fail the fork
            stats.record_failure(ERROR, "Elastic APM metadata after fork failed: %r", exc)

    def _bodies(self, batch: Sequence[SpanRecord]) -> list[bytes]:
        """NDJSON bodies (metadata line first), split above ``MAX_REQUEST_BYTES``."""
        meta = self._metadata_line
        bodies: list[bytes] = []
        lines = [meta]
        size = len(meta)
        for line in self._encode(batch):
            if size + len(line) > MAX_REQUEST_BYTES and len(lines) > 1:
                bodies.append("".join(lines).encode())
                lines, size = [meta], len(meta)
            lines.append(line)
            size += len(line)
        if len(lines) > 1:
            bodies.append("".join(lines).encode())
        return bodies

    def _encode(self, batch: Sequence[SpanRecord]) -> list[str]:
        """NDJSON lines (each with its newline) for the batch's events, in order."""
        counts = self._child_counts
        for record in batch:
            if not record.is_entry:
                counts[record.transaction_id] = counts.get(record.transaction_id, 0) + 1
        while len(counts) > _MAX_PENDING_COUNTS:
            del counts[next(iter(counts))]
        own = self._service_raw
        rate = self._sample_rate
        out: list[str] = []
        for record in batch:
            try:
                service = None if record.service_name == own else self._other_service(record.service_name)
                if record.transaction_id == record.span_id:
                    out.append(transaction_line(record, counts.pop(record.span_id, 0), service, rate))
                else:
                    out.append(span_line(record, service, rate))
                if record.events:
                    errors = error_events(record)
                    if errors:
                        out.extend([event_line("error", e) for e in errors])
            except Exception as exc:
                stats.swallow(MAPPING_FAILED, "span %r not encodable for Elastic APM: %r", record.name, exc)
        return out

    def _other_service(self, raw: str) -> str:
        clean = self._foreign_services.get(raw)
        if clean is None:
            clean = self._foreign_services[raw] = service_name(raw)
        return clean
