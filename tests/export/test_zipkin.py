"""Spans from a TracerProvider reach a REAL Zipkin and read back with the right
structure; the file exporter writes the same structure; both encoders agree."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from commerce_observe.agent.export import zipkin_encode as ze
from commerce_observe.agent.export.file import FileExporter
from commerce_observe.agent.export.memory import InMemoryExporter
from commerce_observe.agent.export.pipeline import ExportPipeline
from commerce_observe.agent.export.record import EventRecord
from commerce_observe.agent.export.zipkin import ZipkinExporter
from tests.export.helpers import SERVICE, RedactingMasker, provider
from tests.support.apm_intake import span_record
from tests.support.zipkin import read_trace


def _make_trace(tracer: trace.Tracer) -> tuple[int, dict[str, int]]:
    ids: dict[str, int] = {}
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes={"http.request.method": "POST"}) as root:
        with tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER, attributes={
            "messaging.system": "kafka", "server.address": "127.0.0.1", "server.port": 9092,
            "messaging.destination.name": "orders", "email": "x@y.z",
        }) as producer:
            producer.add_event("commerce.order.created", {"commerce.order.id": "o-1", "commerce.amount": "12.50"})
            ids["producer"] = producer.get_span_context().span_id
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT, attributes={"peer.service": "PSP"}) as client:
            client.set_status(Status(StatusCode.ERROR, "card declined"))
            ids["client"] = client.get_span_context().span_id
        ids["root"] = root.get_span_context().span_id
        return root.get_span_context().trace_id, ids


def _check(spans: list[dict[str, object]], trace_id: int, ids: dict[str, int]) -> None:
    by_id = {s["id"]: s for s in spans}
    root, producer, client = (by_id[format(ids[k], "016x")] for k in ("root", "producer", "client"))
    for span in (root, producer, client):
        assert span["traceId"] == format(trace_id, "032x") and len(span["traceId"]) == 32  # type: ignore[arg-type]
        assert span["localEndpoint"] == {"serviceName": SERVICE}
        assert not span.get("shared")
    assert "parentId" not in root and root["kind"] == "SERVER"
    assert producer["parentId"] == root["id"] and producer["kind"] == "PRODUCER"
    assert producer["remoteEndpoint"] == {"serviceName": "kafka", "ipv4": "127.0.0.1", "port": 9092}
    tags = producer["tags"]
    assert isinstance(tags, dict)
    assert tags["messaging.destination.name"] == "orders" and tags["server.port"] == "9092"
    assert tags["email"] == "[REDACTED]"
    annotations = producer["annotations"]
    assert isinstance(annotations, list) and len(annotations) == 1
    assert annotations[0]["value"] == "commerce.order.created commerce.order.id=o-1 commerce.amount=12.50"
    assert client["kind"] == "CLIENT" and client["remoteEndpoint"] == {"serviceName": "psp"}
    assert client["tags"]["error"] == "card declined"  # type: ignore[index]


def test_spans_reach_real_zipkin_and_read_back(zipkin_url: str) -> None:
    zipkin = ZipkinExporter(f"{zipkin_url}/api/v2/spans", timeout_s=10)
    pipeline = ExportPipeline([zipkin], RedactingMasker(), max_queue_size=256, max_export_batch_size=64, schedule_delay_ms=50)
    tp, tracer = provider(pipeline)
    trace_id, ids = _make_trace(tracer)
    assert pipeline.force_flush(30_000)
    _check(read_trace(zipkin_url, format(trace_id, "032x"), 3), trace_id, ids)
    assert pipeline.stats()["zipkin"]["exported"] == 3
    tp.shutdown()


def test_py_zipkin_encoder_reaches_real_zipkin(zipkin_url: str) -> None:
    zipkin = ZipkinExporter(f"{zipkin_url}/api/v2/spans", timeout_s=10, encoder="py_zipkin", gzip_body=True)
    pipeline = ExportPipeline([zipkin], RedactingMasker(), max_queue_size=256, max_export_batch_size=64, schedule_delay_ms=50)
    tp, tracer = provider(pipeline)
    trace_id, ids = _make_trace(tracer)
    assert pipeline.force_flush(30_000)
    _check(read_trace(zipkin_url, format(trace_id, "032x"), 3), trace_id, ids)
    tp.shutdown()


def test_file_exporter_writes_the_same_structure(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    pipeline = ExportPipeline([FileExporter(str(path))], RedactingMasker(), max_queue_size=256, max_export_batch_size=64, schedule_delay_ms=50)
    tp, tracer = provider(pipeline)
    first, ids = _make_trace(tracer)
    second, _ = _make_trace(tracer)
    assert pipeline.force_flush(30_000)
    every = json.loads(path.read_text())
    assert len(every) == 6
    one = json.loads((tmp_path / "traces.traces" / f"{first:032x}.json").read_text())
    assert {s["traceId"] for s in one} == {f"{first:032x}"}  # a Lens "Upload JSON" file: one trace
    _check(one, first, ids)
    assert (tmp_path / "traces.traces" / f"{second:032x}.json").exists()
    tp.shutdown()


def test_file_exporter_rolls_over_whole_traces(tmp_path: Path) -> None:
    exporter = FileExporter(str(tmp_path / "t.json"), max_spans=4)
    for n in range(5):
        exporter.export([span_record(trace_id=n + 1, span_id=10 * n + k + 1) for k in range(2)])
    assert len(json.loads((tmp_path / "t.json").read_text())) == 4
    assert sorted(p.name for p in (tmp_path / "t.traces").iterdir()) == [f"{4:032x}.json", f"{5:032x}.json"]


_values = st.one_of(st.text(max_size=20), st.integers(-(2**40), 2**40), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False), st.lists(st.text(max_size=5), max_size=3))
_attrs = st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(SpanKind)),
    attrs=_attrs,
    events=st.lists(st.tuples(st.sampled_from(["commerce.order.created", "exception"]), _attrs), max_size=3),
    start_us=st.integers(1_600_000_000_000_000, 1_900_000_000_000_000),
    duration_ns=st.integers(0, 10**10),
    error=st.booleans(),
    parent=st.one_of(st.none(), st.integers(1, 2**64 - 1)),
)
def test_lean_and_py_zipkin_encoders_agree(kind: SpanKind, attrs: dict[str, object], events: list[tuple[str, dict[str, object]]],
                                           start_us: int, duration_ns: int, error: bool, parent: int | None) -> None:
    start = start_us * 1000
    record = span_record(
        trace_id=2**127 + 5, span_id=2**63 + 7, parent_span_id=parent, kind=kind, attributes=attrs,
        start_ns=start, end_ns=start + duration_ns, error=error, status_description="bad" if error else None,
        events=tuple(EventRecord(name, start + i * 1000, a) for i, (name, a) in enumerate(events)),
    )
    lean = json.loads(ze.encode_lean([record], ze.EndpointCache()))
    model = json.loads(ze.encode_py_zipkin([record], ze.EndpointCache()))
    assert lean == model
    assert lean[0]["traceId"] == format(2**127 + 5, "032x")


def test_memory_exporter_clear() -> None:
    mem = InMemoryExporter()
    assert mem.export([span_record()])
    assert len(mem.get_finished()) == 1
    mem.clear()
    assert mem.get_finished() == []
