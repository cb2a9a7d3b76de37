"""Log records made inside a span carry the trace's ids, whichever handler writes them
and whenever it was configured; ECS JSON is one setting away; masking covers
handlers added after install, and structlog gets the same."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from commerce_observe.testing import capture

CARD = "4111 1111 1111 1111"


@contextmanager
def root_handler(formatter: logging.Formatter | None = None) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if formatter is not None:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def ids(span: trace.Span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_stdlib_records_inside_a_span_carry_the_ids_even_for_a_later_handler() -> None:
    with capture(env={"OTEL_SERVICE_NAME": "checkout"}):
        # configured after install, as an application's main() does
        fmt = logging.Formatter("%(message)s|%(trace.id)s|%(transaction.id)s|%(span.id)s|%(service.name)s|%(card)s")
        with root_handler(fmt) as stream:
            tracer = trace.get_tracer("t")
            with tracer.start_as_current_span("order", kind=SpanKind.SERVER) as server:
                with tracer.start_as_current_span("charge") as child:
                    logging.getLogger("shop").warning("charging %s", CARD, extra={"card": CARD})
            logging.getLogger("shop").warning("outside", extra={"card": "none"})
    inside, outside = stream.getvalue().splitlines()
    trace_id, span_id = ids(child)
    _, txn_id = ids(server)
    message, t, x, s, service, card = inside.split("|")
    assert (t, x, s, service) == (trace_id, txn_id, span_id, "checkout")
    assert CARD not in message and CARD not in card
    assert outside.split("|")[:5] == ["outside", "None", "None", "None", "checkout"]


def test_ecs_json_is_one_setting_away() -> None:
    with root_handler() as stream:
        with capture(env={"OTEL_SERVICE_NAME": "checkout", "COMMERCE_OBSERVE_LOG_FORMAT": "ecs"}):
            with trace.get_tracer("t").start_as_current_span("order", kind=SpanKind.SERVER) as span:
                logging.getLogger("shop").error("paid with %s", CARD)
        logging.getLogger("shop").error("after shutdown")
    first, after = stream.getvalue().splitlines()
    doc = json.loads(first)
    trace_id, span_id = ids(span)
    assert doc["trace"]["id"] == trace_id and doc["span"]["id"] == span_id
    assert doc["transaction"]["id"] == span_id and doc["service"]["name"] == "checkout"
    assert doc["log.level"] == "error" and CARD not in first and "@timestamp" in doc
    assert after == "after shutdown", "shutdown restores the handler's own formatter"


def test_structlog_configured_after_install_gets_ids_and_masking() -> None:
    out = io.StringIO()
    try:
        with capture(env={"OTEL_SERVICE_NAME": "checkout"}):
            structlog.configure(processors=[structlog.processors.JSONRenderer()],
                                logger_factory=structlog.PrintLoggerFactory(out), cache_logger_on_first_use=False)
            with trace.get_tracer("t").start_as_current_span("order", kind=SpanKind.CONSUMER) as span:
                structlog.get_logger().info("paid", card_number=CARD, note=f"card {CARD}")
            assert len(structlog.get_config()["processors"]) == 2  # ours, before the renderer
        assert len(structlog.get_config()["processors"]) == 1  # and gone after shutdown
    finally:
        structlog.reset_defaults()
    event = json.loads(out.getvalue())
    trace_id, span_id = ids(span)
    assert (event["trace.id"], event["span.id"], event["transaction.id"]) == (trace_id, span_id, span_id)
    assert event["service.name"] == "checkout" and CARD not in out.getvalue()
