"""Starlette and FastAPI (and httpx) against the real Zipkin: exactly one SERVER span
per request whichever component owns it, route and commerce ids, errors,
propagation from httpx, and the switch that turns the integration off."""

from __future__ import annotations

import asyncio

import fastapi
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support import zipkin as z

pytestmark = pytest.mark.zipkin


def fastapi_app(**kwargs: object) -> fastapi.FastAPI:
    app = fastapi.FastAPI(**kwargs)  # type: ignore[arg-type]

    @app.get("/orders/{order_id}")
    def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    @app.post("/payments/{payment_id}/capture")
    def capture(payment_id: str) -> None:
        raise RuntimeError(f"card declined for {payment_id}")

    return app


def starlette_app() -> Starlette:
    async def get_order(request: Request) -> JSONResponse:
        return JSONResponse({"order_id": request.path_params["order_id"]})

    return Starlette(routes=[Route("/orders/{order_id}", get_order)])


def _one_server(zipkin_url: str, trace_id: str) -> dict[str, object]:
    spans = z.trace(zipkin_url, trace_id, lambda s: bool(z.by_kind(s, "SERVER")) and bool(z.by_kind(s, "CLIENT")))
    servers = z.by_kind(spans, "SERVER")
    assert len(servers) == 1, f"expected one SERVER span, got {[s['name'] for s in servers]}"
    (client_span,) = z.by_kind(spans, "CLIENT")
    assert servers[0]["parentId"] == client_span["id"], "server span is not the child of the httpx span"
    return servers[0]


@pytest.mark.parametrize("app_factory", [
    pytest.param(lambda: fastapi_app(), id="fastapi-native-telemetry"),
    pytest.param(lambda: fastapi_app(telemetry={"tracing": False}), id="fastapi-asgi-middleware"),
    pytest.param(starlette_app, id="starlette"),
])
def test_one_server_span_with_route_and_order_id(zipkin_url: str, app_factory: object) -> None:
    service = z.unique_service("asgi")
    app = app_factory()  # type: ignore[operator]  # built before install: the wrap is on the class
    with z.installed(zipkin_url, service) as runtime:
        tracer = runtime.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("checkout") as root, TestClient(app) as client:
            assert client.get("/orders/ord-5").json() == {"order_id": "ord-5"}
        trace_id = format(root.get_span_context().trace_id, "032x")
    server = _one_server(zipkin_url, trace_id)
    assert server["name"] == "get /orders/{order_id}"
    tags = server["tags"]
    assert isinstance(tags, dict)
    assert tags["http.route"] == "/orders/{order_id}"
    assert tags["commerce.order.id"] == "ord-5"
    assert tags.get("http.response.status_code", tags.get("http.status_code")) == "200"


@pytest.mark.parametrize("telemetry", [None, {"tracing": False}], ids=["native", "middleware"])
def test_fastapi_exception_is_recorded(zipkin_url: str, telemetry: dict[str, bool] | None) -> None:
    service = z.unique_service("fastapi-err")
    app = fastapi_app(telemetry=telemetry) if telemetry else fastapi_app()
    with z.installed(zipkin_url, service) as runtime:
        tracer = runtime.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("checkout") as root, TestClient(app, raise_server_exceptions=False) as client:
            assert client.post("/payments/pay-3/capture").status_code == 500
        trace_id = format(root.get_span_context().trace_id, "032x")
    server = _one_server(zipkin_url, trace_id)
    tags = server["tags"]
    assert isinstance(tags, dict)
    assert tags["commerce.payment.id"] == "pay-3"
    assert "error" in tags
    annotations = server.get("annotations") or []
    assert isinstance(annotations, list)
    assert any("exception.type=RuntimeError" in a["value"] for a in annotations)


def test_async_httpx_propagates(zipkin_url: str) -> None:
    service = z.unique_service("httpx-async")
    app = starlette_app()

    async def call() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
            return (await client.get("/orders/ord-8")).status_code

    with z.installed(zipkin_url, service) as runtime:
        tracer = runtime.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("checkout") as root:
            assert asyncio.run(call()) == 200
        trace_id = format(root.get_span_context().trace_id, "032x")
    server = _one_server(zipkin_url, trace_id)
    assert server["tags"]["commerce.order.id"] == "ord-8"  # type: ignore[index]


def test_disabled_by_setting(zipkin_url: str) -> None:
    service = z.unique_service("starlette-off")
    app = starlette_app()
    with z.installed(zipkin_url, service, COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS="starlette") as runtime:
        tracer = runtime.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("checkout") as root, TestClient(app) as client:
            assert client.get("/orders/ord-1").status_code == 200
        trace_id = format(root.get_span_context().trace_id, "032x")
    spans = z.trace(zipkin_url, trace_id, lambda s: bool(z.by_kind(s, "CLIENT")) and bool(z.named(s, "checkout")))
    assert not z.by_kind(spans, "SERVER")
