"""Starlette and FastAPI: OpenTelemetry's ASGI middleware around every application.

The SERVER span itself (context extraction through the global textmap, which
``install()`` set to :class:`~commerce_observe.agent.propagation.CommercePropagator`;
status; exceptions; websocket support) is the contrib
``opentelemetry-instrumentation-asgi`` middleware. What this module adds:

* *where* it goes: ``Starlette.__call__`` is wrapped, so every application is
  traced whether it was built before or after ``import commerce_observe.auto``,
  and FastAPI (whose ``__call__`` ends in ``super().__call__``) is covered by the
  same single wrap; the contrib FastAPI/Starlette instrumentors instead replace
  the classes, which misses applications created earlier;
* the route: the span is named ``"GET /orders/{order_id}"`` and carries
  ``http.route`` and the ``commerce.*`` ids from the path parameters (the rule of
  :mod:`commerce_observe.agent.instrumentation.web.routes`), matched before the span starts.

FastAPI releases with native OpenTelemetry tracing start their own SERVER span
when a tracer provider is configured (ours is, once installed). Two SERVER spans
per request would be wrong, so when ``scope["fastapi.telemetry"]`` holds FastAPI's
span we stand aside: no middleware, and we only add to FastAPI's span what it
lacks, the ``commerce.*`` ids and the exception event (it records the error type
only). ``FastAPI(telemetry={"tracing": False})`` gives the span back to the
middleware. A mounted sub-application sees the scope marked and is not traced twice.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import Context

from commerce_observe._internal.selfstats import guard
from commerce_observe.agent.instrumentation.base import Patch
from commerce_observe.agent.instrumentation.web.elastic_apm_coexistence import ServerInstrumentor
from commerce_observe.agent.instrumentation.web.routes import route_attributes, span_name
from commerce_observe.agent.instrumentation.web.server import sanitize_method, span_method

_MARK = "commerce_observe.traced"
FAILED = "web.asgi_route_failed"

# app -> its middleware; the middleware holds the app only weakly, so an
# application dropped by the user is collected together with its entry.
_middlewares: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _route_details(app: Any, scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(span name, attributes) from the first route that fully matches ``scope``."""
    method = span_method(sanitize_method(scope.get("method")))
    if scope.get("type") == "websocket":
        method = "WEBSOCKET"
    with guard(FAILED, "matching the ASGI route"):
        full = sys.modules["starlette.routing"].Match.FULL
        for route in getattr(app, "routes", ()):
            match, child = route.matches(scope)
            if match == full:
                template = getattr(route, "path", None)
                return span_name(method, template), route_attributes(template, child.get("path_params"))
    return method, {}


def _middleware_for(app: Any, call: Callable[..., Any]) -> Any:
    middleware = _middlewares.get(app)
    if middleware is None:
        # Imported here, not at the top: this module must not import web libraries.
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        ref = weakref.ref(app)

        async def untraced(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope[_MARK] = True
            target = ref()
            if target is not None:
                await call(target, scope, receive, _recording_send(send))

        middleware = OpenTelemetryMiddleware(
            untraced,
            default_span_details=lambda scope: _route_details(ref(), scope),
            exclude_spans=["receive", "send"],
        )
        _middlewares[app] = middleware
    return middleware


def _call_args(scope: Any, receive: Any, send: Any) -> tuple[Any, Any, Any]:
    return scope, receive, send


def _recording_send(send: Any) -> Any:
    """Record the exception behind a 5xx on the current SERVER span.

    Both FastAPI's span and the middleware's end when the last body message is
    sent, before the exception leaves Starlette's error middleware; but that
    middleware sends the 500 from inside its ``except`` block, so at the
    ``http.response.start`` of a 5xx the exception being handled is
    ``sys.exc_info()`` and the span is still open and current.
    """

    async def traced_send(message: Any) -> None:
        if isinstance(message, dict) and message.get("type") == "http.response.start" \
                and message.get("status", 0) >= 500:
            handled = sys.exc_info()[1]
            if handled is not None:
                with guard(FAILED, "recording the exception on the server span"):
                    trace.get_current_span().record_exception(handled)
        await send(message)

    return traced_send


async def _enrich(wrapped: Any, instance: Any, span: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Inside FastAPI's own SERVER span: add the commerce ids and the exception."""
    scope[_MARK] = True
    with guard(FAILED, "enriching FastAPI's span"):
        span.set_attributes(_route_details(instance, scope)[1])
    await wrapped(scope, receive, _recording_send(send))


async def _serve(middleware: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Run the middleware in an empty context: a server request's parent is what its
    headers say, never a span that happens to be current in-process (an in-process
    test client, an app called from a task). The contrib middleware would otherwise
    make the span INTERNAL; FastAPI's native telemetry does the same."""
    token = context.attach(Context())
    try:
        await middleware(scope, receive, send)
    finally:
        context.detach(token)


def _call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    scope, receive, send = _call_args(*args, **kwargs)
    if not isinstance(scope, dict) or scope.get("type") not in ("http", "websocket") or scope.get(_MARK):
        return wrapped(*args, **kwargs)
    native = getattr(scope.get("fastapi.telemetry"), "span", None)
    if native is not None:
        return _enrich(wrapped, instance, native, scope, receive, send)
    original = getattr(wrapped, "__func__", None)
    if original is None:
        return wrapped(*args, **kwargs)
    return _serve(_middleware_for(instance, original), scope, receive, send)


class StarletteInstrumentor(ServerInstrumentor):
    """Also FastAPI's: ``FastAPI`` is a ``Starlette`` (see the module docstring)."""

    name = "starlette"
    module = "starlette.applications"
    requirements = ("starlette >= 0.20", "opentelemetry-instrumentation-asgi >= 0.46b0")

    def patches(self) -> Sequence[Patch]:
        return (Patch("starlette.applications", "Starlette.__call__", _call),)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        _middlewares.clear()


INSTRUMENTOR = StarletteInstrumentor
