"""extract-any / inject-all through every carrier adapter."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.propagation import (
    B3_DEBUG_KEY,
    AmqpHeaders,
    CommercePropagator,
    Format,
    HttpHeaders,
    KafkaHeaders,
    extract,
    extract_parent,
    inject,
)

TRACE = 0x80F198EE56343BA864FE8B2A57D3EFF7
SPAN = 0xE457B5A2E4D86BD1
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def parent(ctx: Context) -> SpanContext:
    return trace.get_current_span(ctx).get_span_context()


def ctx_of(trace_id: int = TRACE, span_id: int = SPAN, sampled: bool = True, state: TraceState | None = None) -> Context:
    sc = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(int(sampled)), trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(sc))


def test_priority_w3c_before_b3_before_elastic() -> None:
    headers = {
        "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        "traceparent": TP,
        "elastic-apm-traceparent": "00-11111111111111111111111111111111-2222222222222222-01",
    }
    assert parent(extract(HttpHeaders(headers))).trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    del headers["traceparent"]
    assert parent(extract(HttpHeaders(headers))).trace_id == TRACE
    del headers["b3"]
    assert parent(extract(HttpHeaders(headers))).trace_id == 0x11111111111111111111111111111111


def test_invalid_w3c_falls_back_and_is_counted() -> None:
    headers = {"traceparent": "00-zz", "X-B3-TraceId": "463ac35c9f6413ad", "X-B3-SpanId": "e457b5a2e4d86bd1", "X-B3-Sampled": "0"}
    sc = parent(extract(HttpHeaders(headers)))
    assert (sc.trace_id, sc.span_id, sc.trace_flags.sampled, sc.is_remote) == (0x463AC35C9F6413AD, SPAN, False, True)
    assert stats.get("propagation.invalid_header") == 1


def test_nothing_valid_returns_the_context_unchanged() -> None:
    base = Context({"k": 1})
    assert extract(HttpHeaders({"traceparent": "nope"}), base) is base
    assert extract(KafkaHeaders(None), base) is base
    assert extract(KafkaHeaders(None)) == Context()


def test_kafka_headers_bytes_none_duplicates_and_case() -> None:
    headers: list[tuple[str, Any]] = [
        ("traceparent", None),  # confluent: empty header value
        ("X-B3-TRACEID", b"ffffffffffffffff"),
        ("x-b3-traceid", b"463ac35c9f6413ad"),  # last wins
        ("X-B3-SpanId", b"e457b5a2e4d86bd1"),
    ]
    sc = parent(extract(KafkaHeaders(headers)))
    assert sc.trace_id == 0x463AC35C9F6413AD and sc.trace_flags.sampled


def test_kafka_elastic_binary_only() -> None:
    data = bytes.fromhex("0000" "0af7651916cd43dd8448eb211c80319c" "01" "b7ad6b7169203331" "02" "00")
    sc = parent(extract(KafkaHeaders([("elasticapmtraceparent", data)])))
    assert sc.span_id == 0xB7AD6B7169203331 and not sc.trace_flags.sampled


def test_kafka_inject_all_into_none_creates_the_list() -> None:
    carrier = KafkaHeaders(None)
    inject(carrier, ctx_of())
    assert carrier.headers is not None
    names = [k for k, _ in carrier.headers]
    assert names == ["traceparent", "b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-Sampled", "elasticapmtraceparent"]
    assert all(isinstance(v, bytes) for _, v in carrier.headers)


def test_amqp_headers_str_and_bytes() -> None:
    sc = parent(extract(AmqpHeaders({"b3": b"463ac35c9f6413ad-e457b5a2e4d86bd1-d"})))
    assert sc.trace_id == 0x463AC35C9F6413AD
    props: dict[str, object] = {"order_id": "ord-000123"}
    inject(AmqpHeaders(props), ctx_of())
    assert props["traceparent"] == f"00-{TRACE:032x}-{SPAN:016x}-01"
    assert props["elastic-apm-traceparent"] == props["traceparent"]
    assert "elasticapmtraceparent" not in props


def test_wsgi_environ() -> None:
    environ = {"REQUEST_METHOD": "GET", "HTTP_TRACEPARENT": TP, "HTTP_TRACESTATE": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}
    sc = parent(extract(HttpHeaders(environ)))
    assert sc.span_id == 0xB7AD6B7169203331
    assert dict(sc.trace_state) == {"congo": "t61rcWkgMzE", "rojo": "00f067aa0ba902b7"}
    environ2 = {"HTTP_X_B3_TRACEID": "463ac35c9f6413ad", "HTTP_X_B3_SPANID": "e457b5a2e4d86bd1", "HTTP_X_B3_FLAGS": "1"}
    ctx = extract(HttpHeaders(environ2))
    assert parent(ctx).trace_flags.sampled and ctx.get(B3_DEBUG_KEY) is True


def test_inject_never_overwrites_case_insensitively() -> None:
    headers = {"TraceParent": "00-11111111111111111111111111111111-2222222222222222-01", "x-b3-sampled": "0"}
    inject(HttpHeaders(headers), ctx_of())
    assert headers["TraceParent"].startswith("00-1111")
    assert "traceparent" not in headers and "tracestate" not in headers
    assert "X-B3-TraceId" not in headers  # B3 multi group skipped whole
    assert headers["b3"].startswith(f"{TRACE:032x}")
    assert stats.get("propagation.inject_skipped_existing") == 2
    kafka = [("b3", b"0")]
    inject(KafkaHeaders(kafka), ctx_of(), formats=Format.B3_SINGLE)
    assert kafka == [("b3", b"0")]


def test_subset_and_http_name() -> None:
    headers: dict[str, str] = {}
    inject(HttpHeaders(headers), ctx_of(), formats=Format.ELASTIC)
    assert list(headers) == ["elastic-apm-traceparent"]
    kafka: list[tuple[str, bytes]] = []
    inject(KafkaHeaders(kafka), ctx_of(), formats=Format.ELASTIC_BINARY)
    assert [k for k, _ in kafka] == ["elasticapmtraceparent"] and len(kafka[0][1]) == 29


def test_binary_refused_on_http_and_counted() -> None:
    headers: dict[str, str] = {}
    inject(HttpHeaders(headers), ctx_of(), formats=Format.ELASTIC_BINARY)
    assert headers == {}
    assert stats.get("propagation.invalid_carrier") == 1


def test_tracestate_round_trip_and_invalid_dropped() -> None:
    state = TraceState([("es", "s:1"), ("rojo", "00f067aa0ba902b7")])
    headers: dict[str, str] = {}
    inject(HttpHeaders(headers), ctx_of(state=state), formats=Format.W3C)
    assert headers["tracestate"] == "es=s:1,rojo=00f067aa0ba902b7"
    assert dict(parent(extract(HttpHeaders(headers))).trace_state) == dict(state)
    bad = {"traceparent": TP, "tracestate": "UPPER=x"}
    sc = parent(extract(HttpHeaders(bad)))
    assert sc.is_valid and len(sc.trace_state) == 0
    assert stats.get("propagation.invalid_tracestate") == 1


def test_b3_debug_round_trip() -> None:
    ctx = extract(KafkaHeaders([("b3", b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")]))
    out: dict[str, str] = {}
    inject(HttpHeaders(out), ctx, formats=Format.B3_SINGLE | Format.B3_MULTI)
    assert out["b3"].endswith("-d") and out["X-B3-Flags"] == "1" and "X-B3-Sampled" not in out


def test_b3_deny_makes_an_unsampled_parent() -> None:
    sc = parent(extract(HttpHeaders({"b3": "0"})))
    assert sc.is_valid and sc.is_remote and not sc.trace_flags.sampled
    sc2 = parent(extract(HttpHeaders({"X-B3-Sampled": "0"})))
    assert sc2.is_valid and not sc2.trace_flags.sampled


def test_no_current_span_injects_nothing() -> None:
    headers: dict[str, str] = {}
    inject(HttpHeaders(headers), Context())
    assert headers == {}


@pytest.mark.parametrize("bad", [42, ["a", "b"], object(), b"\xff\xfe", "x" * 600, b"y" * 600])
def test_wrong_types_are_ignored_and_counted(bad: object) -> None:
    before = sum(stats.snapshot().values())
    assert extract(AmqpHeaders({"traceparent": bad})) == Context()
    assert sum(stats.snapshot().values()) == before + 1


def test_wrong_carrier_shapes() -> None:
    assert extract(KafkaHeaders(42)) == Context()  # type: ignore[arg-type]
    assert extract(AmqpHeaders("x")) == Context()  # type: ignore[arg-type]
    assert extract(KafkaHeaders([("traceparent",), 5, (b"\xff", b"x")])) == Context()  # type: ignore[list-item]
    assert stats.get("propagation.invalid_carrier") == 2


def test_commerce_propagator_with_otel_global_api() -> None:
    old = propagate.get_global_textmap()
    propagate.set_global_textmap(CommercePropagator())
    try:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, ctx_of())
        assert set(carrier) == {"traceparent", "b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-Sampled", "elastic-apm-traceparent"}
        # extract via OTel's default getter (case-sensitive dict) from a B3-only peer
        sc = parent(propagate.extract({"b3": carrier["b3"]}))
        assert (sc.trace_id, sc.span_id) == (TRACE, SPAN)
        # never overwrite an application header
        mine = {"Traceparent": TP}
        propagate.inject(mine, ctx_of())
        assert mine["Traceparent"] == TP and "traceparent" not in mine
        assert "b3" in CommercePropagator().fields
    finally:
        propagate.set_global_textmap(old)


def test_commerce_propagator_subset() -> None:
    carrier: dict[str, str] = {}
    CommercePropagator(Format.W3C | Format.ELASTIC_BINARY).inject(carrier, ctx_of())
    assert list(carrier) == ["traceparent"]


@pytest.mark.parametrize("headers", [
    [("traceparent", TP.encode()), ("tracestate", b"a=1,b=2")],
    [("b3", b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0")],
    [("elasticapmtraceparent", bytes.fromhex("0000" "0af7651916cd43dd8448eb211c80319c" "01" "b7ad6b7169203331" "02" "01"))],
    [("traceparent", b"00-bad")],
    [],
])
def test_extract_parent_is_the_span_context_extract_finds(headers: list[tuple[str, bytes]]) -> None:
    found = extract_parent(KafkaHeaders(headers))
    expected = parent(extract(KafkaHeaders(headers)))
    if not expected.is_valid:
        assert found is None
        return
    assert found == expected and found.is_remote
    assert (found.trace_flags, found.trace_state) == (expected.trace_flags, expected.trace_state)


def test_extract_parent_of_a_b3_deny_is_an_unsampled_parent() -> None:
    found = extract_parent(KafkaHeaders([("b3", b"0")]))
    assert found is not None and found.is_valid and not found.trace_flags.sampled
