"""Django against the real Zipkin, with Django's own test clients (WSGI and ASGI
paths): route, status, errors, commerce ids, propagation, and the off switch."""

from __future__ import annotations

import asyncio

import django
import pytest
import wrapt
from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import path

from tests.support import zipkin as z

pytestmark = pytest.mark.zipkin


def get_order(request: HttpRequest, order_id: str) -> JsonResponse:
    return JsonResponse({"order_id": order_id})


def capture_payment(request: HttpRequest, payment_id: str) -> JsonResponse:
    raise RuntimeError(f"insufficient funds for {payment_id}")


def missing(request: HttpRequest) -> JsonResponse:
    raise Http404("no such order")


urlpatterns = [
    path("orders/<str:order_id>/", get_order),
    path("payments/<str:payment_id>/capture", capture_payment),
    path("missing", missing),
]

if not settings.configured:
    settings.configure(
        DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
        MIDDLEWARE=[], INSTALLED_APPS=[], DATABASES={}, LOGGING_CONFIG=None,
    )
    django.setup()

from django.test import AsyncClient, Client  # noqa: E402  (needs settings)


def test_server_span_with_route_and_order_id(zipkin_url: str) -> None:
    trace_id, parent = z.new_trace_id(), "1111111111111111"
    with z.installed(zipkin_url, z.unique_service("django")):
        resp = Client().get("/orders/ord-77/", HTTP_TRACEPARENT=z.traceparent(trace_id, parent))
        assert resp.status_code == 200
    server = z.server_span(zipkin_url, trace_id)
    assert server["name"] == "get /orders/<str:order_id>/"
    assert server["parentId"] == parent
    tags = server["tags"]
    assert isinstance(tags, dict)
    assert tags["http.route"] == "/orders/<str:order_id>/"
    assert tags["commerce.order.id"] == "ord-77"
    assert tags["http.response.status_code"] == "200"


def test_async_client_path(zipkin_url: str) -> None:
    trace_id = z.new_trace_id()
    with z.installed(zipkin_url, z.unique_service("django-async")):
        resp = asyncio.run(AsyncClient().get("/orders/ord-78/", headers={"traceparent": z.traceparent(trace_id)}))
        assert resp.status_code == 200
    assert z.server_span(zipkin_url, trace_id)["tags"]["commerce.order.id"] == "ord-78"


def test_view_exception_is_an_error_and_404_is_not(zipkin_url: str) -> None:
    failing, absent = z.new_trace_id(), z.new_trace_id()
    with z.installed(zipkin_url, z.unique_service("django-err")):
        client = Client(raise_request_exception=False)
        assert client.post("/payments/pay-9/capture", HTTP_TRACEPARENT=z.traceparent(failing)).status_code == 500
        assert client.get("/missing", HTTP_TRACEPARENT=z.traceparent(absent)).status_code == 404
    server = z.server_span(zipkin_url, failing)
    tags = server["tags"]
    assert isinstance(tags, dict)
    assert tags["commerce.payment.id"] == "pay-9"
    assert tags["http.response.status_code"] == "500"
    assert "insufficient funds for pay-9" in tags["error"]
    not_found = z.server_span(zipkin_url, absent)["tags"]
    assert isinstance(not_found, dict)
    assert not_found["http.response.status_code"] == "404" and "error" not in not_found


def test_disabled_by_setting(zipkin_url: str) -> None:
    from django.core.handlers.base import BaseHandler

    trace_id = z.new_trace_id()
    with z.installed(zipkin_url, z.unique_service("django-off"),
                     COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS="django") as runtime:
        assert not isinstance(vars(BaseHandler)["get_response"], wrapt.FunctionWrapper)
        assert Client().get("/orders/ord-1/", HTTP_TRACEPARENT=z.traceparent(trace_id)).status_code == 200
        from commerce_observe.agent.propagation import HttpHeaders, extract

        ctx = extract(HttpHeaders({"traceparent": z.traceparent(trace_id)}))
        runtime.tracer_provider.get_tracer("test").start_span("marker", context=ctx).end()
    spans = z.trace(zipkin_url, trace_id, lambda s: bool(z.named(s, "marker")))
    assert not z.by_kind(spans, "SERVER")
