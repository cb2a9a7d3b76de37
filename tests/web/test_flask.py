"""Flask (and requests) against the real Zipkin: route, status, errors, commerce ids,
propagation in and out, and the switch that turns the integration off."""

from __future__ import annotations

import flask
import pytest
import requests
import wrapt
from opentelemetry import trace as otel_trace

from commerce_observe.agent.propagation import HttpHeaders, extract
from tests.support import zipkin as z
from tests.web.servers import wsgi_server

pytestmark = pytest.mark.zipkin


def make_app() -> flask.Flask:
    app = flask.Flask("shop")
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/orders/<order_id>")
    def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    @app.post("/payments/<payment_id>/capture")
    def capture(payment_id: str) -> tuple[str, int]:
        raise RuntimeError(f"gateway timeout for {payment_id}")

    @app.get("/missing")
    def missing() -> str:
        flask.abort(404)

    return app


def test_server_span_with_route_status_and_commerce_ids(zipkin_url: str) -> None:
    service = z.unique_service("flask")
    trace_id, parent = z.new_trace_id(), "00f067aa0ba902b7"
    with z.installed(zipkin_url, service):
        client = make_app().test_client()
        resp = client.get("/orders/ord-42", headers={"traceparent": z.traceparent(trace_id, parent)})
        assert resp.status_code == 200
    server = z.server_span(zipkin_url, trace_id)
    assert server["name"] == "get /orders/<order_id>"
    assert server["parentId"] == parent
    assert server["localEndpoint"]["serviceName"] == service
    tags = server["tags"]
    assert tags["http.route"] == "/orders/<order_id>"
    assert tags["commerce.order.id"] == "ord-42"
    assert tags["http.response.status_code"] == "200"
    assert tags["http.request.method"] == "GET"
    assert "error" not in tags


def test_view_exception_is_an_error_span_and_404_is_not(zipkin_url: str) -> None:
    service = z.unique_service("flask")
    failing, missing = z.new_trace_id(), z.new_trace_id()
    with z.installed(zipkin_url, service):
        client = make_app().test_client()
        assert client.post("/payments/pay-7/capture", headers={"traceparent": z.traceparent(failing)}).status_code == 500
        assert client.get("/missing", headers={"traceparent": z.traceparent(missing)}).status_code == 404
    server = z.server_span(zipkin_url, failing)
    assert server["tags"]["commerce.payment.id"] == "pay-7"
    assert server["tags"]["http.response.status_code"] == "500"
    assert "gateway timeout for pay-7" in server["tags"]["error"]
    assert any(a["value"].startswith("exception exception.type=RuntimeError") for a in server.get("annotations", []))
    not_found = z.server_span(zipkin_url, missing)
    assert not_found["tags"]["http.response.status_code"] == "404"
    assert "error" not in not_found["tags"]


def test_requests_propagates_to_a_real_flask_server(zipkin_url: str) -> None:
    service = z.unique_service("flask-requests")
    with z.installed(zipkin_url, service):
        with wsgi_server(make_app()) as base:
            tracer = otel_trace.get_tracer("test")
            with tracer.start_as_current_span("checkout") as root:
                assert requests.get(f"{base}/orders/ord-9", timeout=5).json() == {"order_id": "ord-9"}
            trace_id = format(root.get_span_context().trace_id, "032x")
    spans = z.trace(zipkin_url, trace_id, lambda s: len(s) >= 3)
    (client_span,) = z.by_kind(spans, "CLIENT")
    (server,) = z.by_kind(spans, "SERVER")
    assert server["parentId"] == client_span["id"], "server span is not the child of the requests span"
    assert client_span["tags"]["url.full"].endswith("/orders/ord-9")
    assert client_span["tags"]["http.response.status_code"] == "200"
    assert server["tags"]["commerce.order.id"] == "ord-9"


def test_disabled_by_setting(zipkin_url: str) -> None:
    service = z.unique_service("flask-off")
    trace_id = z.new_trace_id()
    with z.installed(zipkin_url, service, COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS="flask,requests") as runtime:
        assert "flask" not in {i.name for i in runtime.instrumentors}
        client = make_app().test_client()
        headers = {"traceparent": z.traceparent(trace_id)}
        assert client.get("/orders/ord-1", headers=headers).status_code == 200
        ctx = extract(HttpHeaders(headers))
        otel_trace.get_tracer("test").start_span("marker", context=ctx).end()
    spans = z.trace(zipkin_url, trace_id, lambda s: bool(z.named(s, "marker")))
    assert not z.by_kind(spans, "SERVER")
    assert not isinstance(vars(flask.Flask)["wsgi_app"], wrapt.FunctionWrapper)
