"""Elastic APM exporter end to end: real intake requests through elastic-apm's
transport to a local receiver.

Every payload is validated against the official intake v2 JSON schemas, because
no APM Server can run here; the receiver answers 400 on any violation, as APM
Server would, and each test also asserts that no violation was recorded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.elastic_apm import ElasticApmExporter
from commerce_observe.agent.export.record import EventRecord
from tests.support.apm_intake import T0_NS, IntakeReceiver, span_record

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SERVER, INTERNAL, PRODUCER = 0x00F067AA0BA902B7, 0x1111111111111111, 0x2222222222222222

Factory = Callable[..., ElasticApmExporter]


@pytest.fixture
def receiver() -> Iterator[IntakeReceiver]:
    with IntakeReceiver() as r:
        yield r


@pytest.fixture
def make_exporter() -> Iterator[Factory]:
    made: list[ElasticApmExporter] = []

    def make(url: str, **kwargs: Any) -> ElasticApmExporter:
        kwargs.setdefault("timeout_s", 2.0)
        exporter = ElasticApmExporter(url, kwargs.pop("service_name", "checkout"), **kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def _checkout_trace() -> list[Any]:
    """SERVER (root) -> INTERNAL -> PRODUCER(kafka), children ending first."""
    common = {"trace_id": TRACE, "transaction_id": SERVER}
    producer = span_record(
        **common, span_id=PRODUCER, parent_span_id=INTERNAL, name="orders publish", kind=SpanKind.PRODUCER,
        start_ns=T0_NS + 5_000_000, end_ns=T0_NS + 9_000_000,
        attributes={"messaging.system": "kafka", "messaging.destination.name": "orders",
                    "messaging.operation.type": "publish", "commerce.order.id": "ord-1"},
    )
    internal = span_record(
        **common, span_id=INTERNAL, parent_span_id=SERVER, name="place order",
        start_ns=T0_NS + 2_000_000, end_ns=T0_NS + 10_000_000,
        events=(EventRecord("commerce.order.created", T0_NS + 3_000_000, {"commerce.order.id": "ord-1"}),),
    )
    server = span_record(
        **common, span_id=SERVER, name="POST /orders", kind=SpanKind.SERVER,
        end_ns=T0_NS + 12_000_000,
        attributes={"http.request.method": "POST", "url.path": "/orders", "http.response.status_code": 201},
        events=(EventRecord("commerce.order.created", T0_NS + 3_000_000, {}),),
    )
    return [producer, internal, server]


def test_trace_becomes_one_transaction_and_its_spans(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """SERVER -> internal -> PRODUCER: one transaction, two spans, right parent and
    transaction ids. Payloads are validated against the official schemas (no APM
    Server can run here)."""
    exporter = make_exporter(receiver.url, environment="staging")
    assert exporter.export(_checkout_trace()) is True

    assert receiver.problems() == []
    request = receiver.requests[-1]
    assert [t for t, _ in request.events] == ["metadata", "span", "span", "transaction"]
    (txn,) = receiver.events("transaction")
    producer, internal = receiver.events("span")
    assert txn["id"] == f"{SERVER:016x}" and "parent_id" not in txn
    assert txn["trace_id"] == producer["trace_id"] == internal["trace_id"] == f"{TRACE:032x}"
    assert (txn["type"], txn["result"], txn["outcome"]) == ("request", "HTTP 2xx", "success")
    assert txn["span_count"] == {"started": 2, "dropped": 0}
    assert txn["context"]["request"] == {"method": "POST", "url": {"pathname": "/orders"}}
    assert txn["marks"] == {"events": {"commerce_order_created": 3.0}}
    assert txn["timestamp"] == T0_NS // 1000 and txn["duration"] == 12.0

    assert internal["parent_id"] == f"{SERVER:016x}" and internal["transaction_id"] == f"{SERVER:016x}"
    assert (internal["type"], internal["subtype"]) == ("app", "internal")
    assert internal["context"]["tags"]["otel_events"] == "commerce.order.created"
    assert producer["parent_id"] == f"{INTERNAL:016x}" and producer["transaction_id"] == f"{SERVER:016x}"
    assert (producer["type"], producer["subtype"], producer["action"]) == ("messaging", "kafka", "send")
    assert producer["context"]["message"] == {"queue": {"name": "orders"}}
    assert producer["context"]["destination"]["service"]["resource"] == "kafka/orders"
    assert producer["context"]["service"]["target"] == {"type": "kafka", "name": "orders"}
    assert "tags" not in producer["context"]  # attributes go once, as otel.attributes
    assert producer["otel"]["span_kind"] == "PRODUCER"
    assert producer["otel"]["attributes"]["commerce.order.id"] == "ord-1"
    assert stats.get("export.elastic_apm.exported") == 3


def test_consumer_with_remote_parent_is_a_transaction_under_the_remote_span(
    receiver: IntakeReceiver, make_exporter: Factory
) -> None:
    """A CONSUMER span whose parent came in a message header becomes a ``messaging``
    transaction whose parent_id is that remote span. Validated against the official
    schemas (no APM Server can run here)."""
    remote, consumer = 0x3333333333333333, 0x4444444444444444
    record = span_record(
        trace_id=TRACE, span_id=consumer, parent_span_id=remote, parent_is_remote=True, name="orders process",
        kind=SpanKind.CONSUMER, end_ns=T0_NS + 4_000_000,
        attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                    "messaging.rabbitmq.destination.routing_key": "order.created",
                    "commerce.message.published_ns": T0_NS - 250_000_000},
    )
    assert make_exporter(receiver.url).export([record])
    (txn,) = receiver.events("transaction")
    assert receiver.problems() == []
    assert txn["id"] == f"{consumer:016x}" and txn["parent_id"] == f"{remote:016x}"
    assert txn["trace_id"] == f"{TRACE:032x}"
    assert (txn["type"], txn["result"], txn["outcome"]) == ("messaging", "success", "success")
    assert txn["context"]["message"] == {"queue": {"name": "orders"}, "routing_key": "order.created", "age": {"ms": 254}}


def test_errors_give_failure_outcome_and_error_events(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """Failed spans: outcome failure, result ``HTTP 5xx``/``error``, and each
    ``exception`` event an intake ``error`` tied to trace, transaction and span.
    Validated against the official schemas (no APM Server can run here)."""
    server, client = 0x5555555555555555, 0x6666666666666666
    exc = EventRecord("exception", T0_NS + 6_000_000, {
        "exception.type": "PaymentDeclined", "exception.message": "card declined",
        "exception.stacktrace": "Traceback ...", "exception.escaped": True})
    batch = [
        span_record(trace_id=TRACE, span_id=client, parent_span_id=server, transaction_id=server, name="GET psp",
                    kind=SpanKind.CLIENT, attributes={"http.request.method": "GET", "http.response.status_code": 404,
                                                      "url.full": "https://psp.example/pay", "server.address": "psp.example",
                                                      "server.port": 443},
                    events=(exc,), error=True),
        span_record(trace_id=TRACE, span_id=server, name="POST /pay", kind=SpanKind.SERVER, error=True,
                    attributes={"http.request.method": "POST", "http.response.status_code": 502},
                    events=(EventRecord("commerce.payment.failed", T0_NS + 7_000_000, {}),)),
        span_record(trace_id=TRACE, span_id=0x7777777777777777, name="nightly job", error=True),
    ]
    assert make_exporter(receiver.url).export(batch)
    assert receiver.problems() == []
    span = receiver.events("span")[0]
    pay, job = receiver.events("transaction")
    (error,) = receiver.events("error")
    assert (span["type"], span["subtype"], span["action"], span["outcome"]) == ("external", "http", "request", "failure")
    assert span["context"]["http"] == {"method": "GET", "url": "https://psp.example/pay", "response": {"status_code": 404}}
    assert span["context"]["destination"]["service"]["resource"] == "psp.example:443"
    assert (pay["outcome"], pay["result"]) == ("failure", "HTTP 5xx")
    assert pay["marks"]["events"] == {"commerce_payment_failed": 7.0}
    assert (job["outcome"], job["result"], job["type"]) == ("failure", "error", "custom")
    assert error["trace_id"] == f"{TRACE:032x}"
    assert error["transaction_id"] == f"{server:016x}" and error["parent_id"] == f"{client:016x}"
    assert error["exception"]["type"] == "PaymentDeclined" and error["exception"]["handled"] is False
    assert error["timestamp"] == (T0_NS + 6_000_000) // 1000


def test_metadata_first_with_service_identity(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """The metadata line: sanitised service name, environment, version and labels
    from the resource, agent python. Validated against the official schemas (no
    APM Server can run here)."""
    resource = {"service.version": "1.4.2", "deployment.environment.name": "prod", "team.name": "payments",
                "service.instance.id": "pod-7"}
    exporter = make_exporter(receiver.url, service_name="checkout.api", resource=resource)
    assert exporter.export([span_record()])
    assert receiver.problems() == []
    (meta,) = receiver.events("metadata")
    assert meta["service"]["name"] == "checkout_api"
    assert meta["service"]["environment"] == "prod" and meta["service"]["version"] == "1.4.2"
    assert meta["service"]["agent"]["name"] == "python"
    assert meta["service"]["language"]["name"] == "python"
    assert meta["service"]["node"] == {"configured_name": "pod-7"}
    assert meta["labels"] == {"team_name": "payments"}
    assert meta["process"]["pid"] > 0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"secret_token": "s3cr3t"}, "Bearer s3cr3t"),
        ({"api_key": "a2V5OnNlY3JldA=="}, "ApiKey a2V5OnNlY3JldA=="),
        ({"api_key": "a2V5", "secret_token": "ignored"}, "ApiKey a2V5"),
    ],
)
def test_authorization_header(receiver: IntakeReceiver, make_exporter: Factory, kwargs: dict[str, str],
                              expected: str) -> None:
    """Secret token -> ``Bearer``, API key -> ``ApiKey`` (preferred when both are set).
    Payloads validated against the official schemas (no APM Server can run here)."""
    assert make_exporter(receiver.url, **kwargs).export([span_record()])
    assert receiver.requests[-1].headers["authorization"] == expected
    assert receiver.requests[-1].headers["content-encoding"] == "gzip"
    assert receiver.problems() == []


def test_backend_down_returns_false_and_counts(make_exporter: Factory) -> None:
    """Nothing listening: export returns False without raising, and says so in the
    counters. (The schema-validated receiver is not involved: nothing arrives.)"""
    with IntakeReceiver() as gone:
        url = gone.url
    exporter = make_exporter(url)
    assert exporter.export([span_record()]) is False
    assert stats.get("export.elastic_apm.failed") == 1
    assert stats.get("export.elastic_apm.send_failed") == 1


def test_server_error_status_returns_false(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """APM Server answering 503: the batch is reported undelivered. Payloads are
    still validated against the official schemas (no APM Server can run here)."""
    receiver.status = 503
    assert make_exporter(receiver.url).export([span_record()]) is False
    assert stats.get("export.elastic_apm.send_failed") == 1
    assert receiver.problems() == []


def test_sending_resumes_after_backend_recovery(make_exporter: Factory) -> None:
    """Backend down for a while (the transport backs off), then up again on the same
    port: later spans arrive. Payloads validated against the official schemas (no
    APM Server can run here)."""
    with IntakeReceiver() as first:
        port, url = first.port, first.url
    exporter = make_exporter(url)
    assert exporter.export([span_record(span_id=1)]) is False
    assert exporter.export([span_record(span_id=2)]) is False  # second failure: 1 s back-off starts
    assert exporter.export([span_record(span_id=3)]) is False
    assert stats.get("export.elastic_apm.backoff") == 1
    with IntakeReceiver(port=port) as back:
        deadline = time.monotonic() + 10
        while not exporter.export([span_record(span_id=4)]):
            assert time.monotonic() < deadline, "exporter never recovered"
            time.sleep(0.2)
        assert exporter.export([span_record(span_id=5)]) is True
        ids = [t["id"] for t in back.events("transaction")]
        assert ids[-2:] == [f"{4:016x}", f"{5:016x}"]
        assert back.problems() == []


def test_shutdown_refuses_later_batches(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """Sending happens on the caller's (the pipeline worker's) thread: elastic-apm's own
    sender thread is never started. shutdown() is idempotent and later exports are
    refused and counted. Payloads validated against the official schemas (no APM
    Server can run here)."""
    exporter = make_exporter(receiver.url)
    assert exporter.export([span_record()])
    assert not any(t.name == "eapm event processor thread" for t in threading.enumerate())
    exporter.shutdown()
    exporter.shutdown()
    assert exporter.export([span_record()]) is False
    assert stats.get("export.elastic_apm.failed") == 1
    assert receiver.problems() == []


def test_batch_is_one_gzip_request_with_compact_lines(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """One request per batch: metadata first, one compact JSON line per event, gzip.
    Validated against the official schemas (no APM Server can run here)."""
    batch = [span_record(span_id=i, name=f"job {i}") for i in range(1, 51)]
    assert make_exporter(receiver.url).export(batch)
    (request,) = receiver.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert [t for t, _ in request.events] == ["metadata"] + ["transaction"] * 50
    assert receiver.problems() == []


def test_large_batch_is_split_into_several_requests(
    receiver: IntakeReceiver, make_exporter: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the body size limit a batch goes as several requests, each starting with
    metadata; all must be accepted. Validated against the official schemas."""
    import commerce_observe.agent.export.elastic_apm as module

    monkeypatch.setattr(module, "MAX_REQUEST_BYTES", 4096)
    batch = [span_record(span_id=i, attributes={"commerce.note": "x" * 500}) for i in range(1, 21)]
    assert make_exporter(receiver.url).export(batch)
    assert len(receiver.requests) > 1
    assert all(r.events[0][0] == "metadata" for r in receiver.requests)
    assert sorted(t["id"] for t in receiver.events("transaction")) == [f"{i:016x}" for i in range(1, 21)]
    assert stats.get("export.elastic_apm.exported") == 20
    assert receiver.problems() == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_exports_with_its_own_pid(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """An exporter used in the parent (pooled connection open) keeps working in a
    forked child: fresh pool and lock, metadata with the child's pid. The child's
    spans reach the receiver, which validates them against the official schemas."""
    exporter = make_exporter(receiver.url)
    assert exporter.export([span_record(span_id=1)])
    held = exporter._lock
    held.acquire()  # as if the parent's worker were mid-export at fork time
    try:
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                code = 0 if exporter.export([span_record(span_id=2, name="child work")]) else 3
            finally:
                os._exit(code)
    finally:
        held.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert exporter.export([span_record(span_id=3)])  # the parent still works too

    by_id = {data["id"]: request for request in receiver.requests for t, data in request.events if t == "transaction"}
    child_meta = by_id[f"{2:016x}"].events[0][1]
    parent_meta = by_id[f"{3:016x}"].events[0][1]
    assert child_meta["process"]["pid"] == pid
    assert child_meta["process"]["ppid"] == os.getpid()
    assert parent_meta["process"]["pid"] == os.getpid()
    assert receiver.problems() == []


def test_empty_batch_is_a_no_op(receiver: IntakeReceiver, make_exporter: Factory) -> None:
    """No spans, no request (nothing to validate against the schemas)."""
    assert make_exporter(receiver.url).export([]) is True
    assert receiver.requests == []
