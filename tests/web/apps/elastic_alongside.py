"""An app that also uses elastic-apm's own framework integration (run as a subprocess).

``python -m tests.web.apps.elastic_alongside FRAMEWORK TRACE_ID[,TRACE_ID...]``
serves one request per trace id through the framework's real test client, each
with a ``traceparent`` carrying that trace id, then flushes both agents.
"""

from __future__ import annotations

import sys
from typing import Any

import elasticapm

import commerce_observe
import commerce_observe.auto  # the one import, as an application would


def flask_requests(paths: list[tuple[str, dict[str, str]]]) -> None:
    import flask
    from elasticapm.contrib.flask import ElasticAPM

    app = flask.Flask("shop")
    ElasticAPM(app)

    @app.get("/orders/<order_id>")
    def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    client = app.test_client()
    for path, headers in paths:
        with client.get(path, headers=headers) as response:  # closing it ends elastic-apm's transaction
            assert response.status_code == 200


def django_requests(paths: list[tuple[str, dict[str, str]]]) -> None:
    import django
    from django.conf import settings
    from django.http import HttpRequest, JsonResponse
    from django.urls import path as route

    def get_order(request: HttpRequest, order_id: str) -> JsonResponse:
        return JsonResponse({"order_id": order_id})

    module = sys.modules[__name__]
    module.urlpatterns = [route("orders/<str:order_id>", get_order)]  # type: ignore[attr-defined]
    settings.configure(
        DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, DATABASES={},
        INSTALLED_APPS=["elasticapm.contrib.django"],
        MIDDLEWARE=["elasticapm.contrib.django.middleware.TracingMiddleware"],
    )
    django.setup()
    from django.test import Client

    client = Client()
    for path, headers in paths:
        assert client.get(path, headers=headers).status_code == 200


def starlette_requests(paths: list[tuple[str, dict[str, str]]]) -> None:
    from elasticapm.contrib.starlette import ElasticAPM, make_apm_client
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def get_order(request: Request) -> JSONResponse:
        return JSONResponse({"order_id": request.path_params["order_id"]})

    app = Starlette(routes=[Route("/orders/{order_id}", get_order)],
                    middleware=[Middleware(ElasticAPM, client=make_apm_client())])
    with TestClient(app) as client:
        for path, headers in paths:
            assert client.get(path, headers=headers).status_code == 200


def main(framework: str, trace_ids: list[str]) -> None:
    run: dict[str, Any] = {"flask": flask_requests, "django": django_requests, "starlette": starlette_requests}
    paths = [(f"/orders/ord-{i}", {"traceparent": f"00-{tid}-{i + 1:016x}-01"}) for i, tid in enumerate(trace_ids)]
    run[framework](paths)
    commerce_observe.shutdown()
    client = elasticapm.get_client()
    assert client is not None, "elastic-apm's integration created no client"
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
