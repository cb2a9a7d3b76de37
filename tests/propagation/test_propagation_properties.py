"""Property tests: nothing raises, every format round-trips alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from commerce_observe.agent.propagation import (
    AmqpHeaders,
    CommercePropagator,
    Format,
    HttpHeaders,
    KafkaHeaders,
    extract,
    inject,
)

NAMES = [
    "traceparent", "tracestate", "b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId",
    "X-B3-Sampled", "X-B3-Flags", "elastic-apm-traceparent", "elasticapmtraceparent",
    "HTTP_TRACEPARENT", "HTTP_B3", "HTTP_X_B3_TRACEID",
]
anything = st.one_of(
    st.none(), st.binary(max_size=700), st.text(max_size=700), st.integers(), st.floats(),
    st.lists(st.text(max_size=20), max_size=3), st.booleans(),
    st.from_regex(r"[0-9a-f-]{0,80}", fullmatch=True), st.binary(min_size=29, max_size=29),
)
headers = st.lists(st.tuples(st.sampled_from(NAMES), anything), max_size=12)

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)
span_ids = st.integers(min_value=1, max_value=(1 << 64) - 1)


@settings(max_examples=400)
@given(headers)
def test_arbitrary_headers_never_raise(items: list[tuple[str, object]]) -> None:
    # strict mode is on (conftest): any internal exception would surface here
    for ctx in (
        extract(KafkaHeaders(items)),  # type: ignore[arg-type]
        extract(AmqpHeaders(dict(items))),
        extract(HttpHeaders(dict(items))),
        CommercePropagator().extract(dict(items)),
    ):
        sc = trace.get_current_span(ctx).get_span_context()
        assert sc.is_valid or sc == trace.INVALID_SPAN_CONTEXT


@given(trace_ids, span_ids, st.booleans(), st.sampled_from(list(Format.KAFKA | Format.TEXT)), st.sampled_from(["kafka", "amqp", "http"]))
def test_each_format_alone_round_trips(trace_id: int, span_id: int, sampled: bool, fmt: Format, kind: str) -> None:
    if kind == "http" and fmt is Format.ELASTIC_BINARY:
        return
    sc = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(int(sampled)))
    ctx = trace.set_span_in_context(NonRecordingSpan(sc))
    if kind == "kafka":
        kafka = KafkaHeaders(None)
        inject(kafka, ctx, formats=fmt)
        back = extract(KafkaHeaders(kafka.headers))
    elif kind == "amqp":
        amqp = AmqpHeaders(None)
        inject(amqp, ctx, formats=fmt)
        back = extract(AmqpHeaders(amqp.headers))
    else:
        http: dict[str, str] = {}
        inject(HttpHeaders(http), ctx, formats=fmt)
        back = extract(HttpHeaders(http))
    got = trace.get_current_span(back).get_span_context()
    assert (got.trace_id, got.span_id, got.trace_flags.sampled, got.is_remote) == (trace_id, span_id, sampled, True)


@given(st.integers(min_value=1, max_value=(1 << 64) - 1), span_ids, st.sampled_from(["1", "0", "d"]))
def test_brave_64bit_b3_single(trace_id: int, span_id: int, state: str) -> None:
    value = f"{trace_id:016x}-{span_id:016x}-{state}"
    sc = trace.get_current_span(extract(HttpHeaders({"b3": value}))).get_span_context()
    assert (sc.trace_id, sc.span_id, sc.trace_flags.sampled) == (trace_id, span_id, state != "0")


def test_empty_context_default() -> None:
    assert extract(HttpHeaders({})) == Context()


traceparent_like = st.one_of(
    st.from_regex(r"[0-9a-fA-F]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.{0,3})?", fullmatch=True),
    st.from_regex(r"00-[0-9a-f0 -]{32}-[0-9a-f0 -]{16}-[0-9a-f]{2}", fullmatch=True),
    st.text(max_size=60),
)


@settings(max_examples=400)
@given(traceparent_like)
def test_kafka_traceparent_fast_path_agrees_with_the_text_parser(text: str) -> None:
    # parse_traceparent_00 takes raw Kafka bytes without decoding them: where it answers,
    # it must say what parse_traceparent says of the text; the full parser decides the rest.
    from commerce_observe.agent.propagation import formats

    raw = text.encode("utf-8")
    fast = formats.parse_traceparent_00(raw)
    if fast is not None:
        assert fast == formats.parse_traceparent(text)
    if text.isascii() and text.isprintable() and text == text.strip(" \t"):
        kafka = trace.get_current_span(extract(KafkaHeaders([("traceparent", raw)]))).get_span_context()
        http = trace.get_current_span(extract(HttpHeaders({"traceparent": text}))).get_span_context()
        assert kafka == http


@settings(max_examples=300)
@given(headers, st.sampled_from(NAMES + ["ce_id", "CE_ID", "baggage", "absent"]))
def test_lookup_reads_what_get_reads(items: list[tuple[str, object]], name: str) -> None:
    """``lookup()`` (the consumer's way to read several headers) answers as ``get`` does,
    last duplicate winning and names case-insensitive, for every carrier."""
    for carrier in (KafkaHeaders(items), AmqpHeaders(dict(items)), HttpHeaders(dict(items))):  # type: ignore[arg-type]
        assert carrier.lookup()(name.lower()) is carrier.get(name.lower())


kafka_names = st.sampled_from(["ce_id", "ce_type", "ce_time", "traceparent", "tracestate", "b3", "baggage",
                               "CE_ID", "Traceparent", "X-B3-TraceId", "content-type"])


@settings(max_examples=400)
@given(st.lists(st.tuples(kafka_names, st.binary(max_size=8)), max_size=12))
def test_kafka_index_is_the_checked_loops(items: list[tuple[str, bytes]]) -> None:
    """``KafkaHeaders``' index, whichever fast path builds it (only our lower-case names:
    the list itself; otherwise the comprehension), is the checked loop's: names lowered,
    the last duplicate winning."""
    expected: dict[str, object] = {}
    for key, value in items:
        expected[key.lower()] = value
    carrier = KafkaHeaders(items)
    assert set(carrier.names()) == set(expected)
    assert {name: carrier.get(name) for name in expected} == expected


valid_traceparents = st.builds(
    lambda t, s, flags: f"00-{t:032x}-{s:016x}-{flags:02x}".encode(),
    st.integers(min_value=0, max_value=(1 << 128) - 1), st.integers(min_value=0, max_value=(1 << 64) - 1),
    st.integers(min_value=0, max_value=255),
)
trace_items = st.lists(st.one_of(
    st.tuples(st.sampled_from(NAMES), anything),
    st.tuples(st.just("traceparent"), valid_traceparents),
    st.tuples(st.just("tracestate"), st.sampled_from([b"a=1,b=2", b"bad state", b"", "k=v"])),
), max_size=6)


@settings(max_examples=500)
@given(trace_items)
def test_extract_parent_through_lookup_is_the_general_search(items: list[tuple[str, object]]) -> None:
    """``extract_parent(carrier, carrier.lookup())`` (a version-00 ``traceparent`` read
    without the general search) finds what ``extract_parent(carrier)`` finds."""
    import random

    from commerce_observe.agent.propagation import extract_parent

    random.seed(7)  # a B3 deny (``b3: 0``) makes up fresh ids: the same ones both times
    general = extract_parent(KafkaHeaders(items))  # type: ignore[arg-type]
    carrier = KafkaHeaders(items)  # type: ignore[arg-type]
    random.seed(7)
    fast = extract_parent(carrier, carrier.lookup())
    if general is None:
        assert fast is None
        return
    assert fast is not None
    assert (fast, fast.is_remote, fast.is_valid, fast.trace_flags, fast.trace_state) == (
        general, general.is_remote, general.is_valid, general.trace_flags, general.trace_state)


def test_names_indexed_as_they_are_are_lower_case_and_cover_the_messaging_headers() -> None:
    """``KafkaHeaders`` skips ``str.lower`` for the names in ``LOWER_CASE_NAMES``: each must
    be its own lower case; mixed-case spellings of them are still found."""
    from commerce_observe.agent.messaging import semconv as sc
    from commerce_observe.agent.propagation.carriers import LOWER_CASE_NAMES

    assert all(name == name.lower() for name in LOWER_CASE_NAMES)
    ce_names = {sc.H_ID, sc.H_TYPE, sc.H_SOURCE, sc.H_SPECVERSION, sc.H_TIME, sc.H_SEQUENCE}
    assert ce_names | sc.TRACE_HEADERS | {"baggage"} == LOWER_CASE_NAMES
    carrier = KafkaHeaders([("CE_ID", b"a"), ("Traceparent", b"t"), ("ce_type", b"x"), ("X-B3-Sampled", b"1")])
    assert [carrier.get(n) for n in ("ce_id", "traceparent", "ce_type", "x-b3-sampled")] == [b"a", b"t", b"x", b"1"]


@settings(max_examples=300)
@given(st.integers(min_value=-1, max_value=(1 << 129)), st.integers(min_value=-1, max_value=(1 << 65)),
       st.booleans(), st.booleans(), st.booleans())
def test_make_span_context_is_what_the_constructor_builds(trace_id: int, span_id: int, remote: bool, sampled: bool,
                                                          with_state: bool) -> None:
    """``make_span_context`` (``tuple.__new__`` on the checked API range) builds the
    ``SpanContext`` the constructor builds, validity included."""
    from opentelemetry.trace.span import DEFAULT_TRACE_STATE, TraceState

    from commerce_observe.agent._compat.otel_api import make_span_context

    flags = TraceFlags(1 if sampled else 0)
    state = TraceState([("vendor", "x")]) if with_state else DEFAULT_TRACE_STATE
    made = SpanContext(trace_id, span_id, remote, flags, state)
    built = make_span_context(trace_id, span_id, remote, flags, state)
    assert type(built) is SpanContext and tuple(built) == tuple(made)
    assert (built.is_valid, built.is_remote, built.trace_state, built.trace_flags) == (
        made.is_valid, made.is_remote, made.trace_state, made.trace_flags)
