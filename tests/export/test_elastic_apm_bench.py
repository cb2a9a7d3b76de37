"""Per-span CPU cost of the Elastic APM exporter's own work: mapping each span to its
NDJSON line, and building the request body (join + gzip level 1), all on the
exporter's thread.

Prints the numbers (``pytest -s tests/export/test_elastic_apm_bench.py``) and fails
only on a gross regression. Sending is left out on purpose: the local receiver's
schema validation would dominate any wall-clock figure. The bodies built here are
not sent, so nothing needs validating against the intake schemas (the other tests
do that, since no APM Server can run here).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import SpanKind

from commerce_observe.agent.export.elastic.transport import gzip_body
from commerce_observe.agent.export.elastic_apm import ElasticApmExporter
from commerce_observe.agent.export.record import EventRecord
from tests.support.apm_intake import T0_NS, span_record

KINDS = (SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CLIENT)
EXTRA: dict[SpanKind, dict[str, Any]] = {
    SpanKind.SERVER: {"http.request.method": "POST", "url.path": "/orders", "http.response.status_code": 201},
    SpanKind.INTERNAL: {},
    SpanKind.PRODUCER: {"messaging.system": "kafka", "messaging.destination.name": "orders",
                        "messaging.operation.type": "publish"},
    SpanKind.CLIENT: {"db.system": "postgresql", "db.name": "shop", "db.statement": "SELECT 1"},
}


def _batch(n: int = 512) -> list[Any]:
    """Checkout-shaped traces of four spans, three commerce attributes each."""
    out = []
    for i in range(n):
        root, kind = 10_000 + (i // 4) * 4 + 1, KINDS[i % 4]
        attrs = {"commerce.order.id": f"ord-{i}", "commerce.event.type": "order.created", "commerce.amount": 12.5}
        attrs.update(EXTRA[kind])
        out.append(span_record(
            span_id=root + i % 4, transaction_id=root, parent_span_id=None if i % 4 == 0 else root, kind=kind,
            attributes=attrs, events=(EventRecord("commerce.order.created", T0_NS, {}),) if i % 4 == 1 else (),
        ))
    return out


def test_mapping_and_body_cost_per_span() -> None:
    """Mapping to NDJSON lines + gzip stay in the low tens of microseconds per span."""
    exporter = ElasticApmExporter("http://127.0.0.1:9", "bench")
    batch, rounds = _batch(), 20
    try:
        start = time.process_time()
        for _ in range(rounds):
            exporter._encode(batch)
        mapping = (time.process_time() - start) / (rounds * len(batch))

        start = time.process_time()
        for _ in range(rounds):
            bodies = [gzip_body(body) for body in exporter._bodies(batch)]
        total = (time.process_time() - start) / (rounds * len(batch))
    finally:
        exporter.shutdown()
    assert bodies
    print(f"\nElastic APM per span (exporter thread): map + NDJSON lines {mapping * 1e6:.1f} us, "
          f"join + gzip {(total - mapping) * 1e6:.1f} us, total {total * 1e6:.1f} us")
    assert mapping < 500e-6 and total < 600e-6
