"""Django: one SERVER span per request, under WSGI, ASGI and the test clients.

``BaseHandler.get_response`` (and ``get_response_async``) is the one place every
request passes through whichever handler serves it: ``WSGIHandler``,
``ASGIHandler``, and ``django.test.Client``/``AsyncClient``. No settings change
is needed (the contrib instrumentor inserts a middleware into ``settings``,
which must happen before Django reads them). The span covers the whole
middleware chain; after it, ``request.resolver_match`` holds the route
(``orders/<str:order_id>/``, reported as ``/orders/<str:order_id>/``) and the
view's keyword arguments, which carry the commerce ids.

Django turns a view's exception into a 500 response inside ``get_response``, in
``response_for_exception``: that is wrapped too, to record the exception on the
span when the answer is a server error (a ``Http404`` is an answer, not a failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from commerce_observe._internal.selfstats import guard
from commerce_observe.agent.instrumentation.base import Patch
from commerce_observe.agent.instrumentation.web.elastic_apm_coexistence import ServerInstrumentor
from commerce_observe.agent.instrumentation.web import server
from commerce_observe.agent.instrumentation.web.server import FAILED, ServerRequest

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

_CURRENT = "_commerce_observe_request"


def _begin(state: AgentState, request: Any) -> ServerRequest | None:
    meta = getattr(request, "META", None)
    if not isinstance(meta, dict) or getattr(request, _CURRENT, None) is not None:
        return None
    started = server.begin(meta, getattr(request, "method", None), server.wsgi_attributes(meta), state.propagation)
    if started is not None:
        setattr(request, _CURRENT, started)
        started.enter()
    return started


def _finish(started: ServerRequest, request: Any, response: Any, exc: BaseException | None) -> None:
    with guard(FAILED, "reading Django's route"):
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None)
        if isinstance(route, str) and route:
            started.route(route if route.startswith("/") else "/" + route, getattr(match, "kwargs", None))
        elif match is not None:
            started.route(None, getattr(match, "kwargs", None))
        if response is not None:
            started.status(getattr(response, "status_code", None))
    started.end(exc)


def _get_response(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = args[0] if args else kwargs.get("request")
    started = _begin(state, request)
    if started is None:
        return wrapped(*args, **kwargs)
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        _finish(started, request, None, exc)
        raise
    _finish(started, request, response, None)
    return response


def _get_response_async(state: AgentState, wrapped: Any, instance: Any,
                        args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    async def traced() -> Any:
        request = args[0] if args else kwargs.get("request")
        started = _begin(state, request)
        if started is None:
            return await wrapped(*args, **kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _finish(started, request, None, exc)
            raise
        _finish(started, request, response, None)
        return response

    return traced()


def _response_for_exception(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    response = wrapped(*args, **kwargs)
    request = args[0] if args else kwargs.get("request")
    exc = args[1] if len(args) > 1 else kwargs.get("exc")
    started = getattr(request, _CURRENT, None)
    if isinstance(started, ServerRequest) and isinstance(exc, BaseException) \
            and getattr(response, "status_code", 0) >= 500 and trace.get_current_span() is started.span:
        started.error(exc)
    return response


class DjangoInstrumentor(ServerInstrumentor):
    name = "django"
    module = "django.core.handlers.base"
    requirements = ("django >= 3.2",)

    def patches(self) -> Sequence[Patch]:
        return (
            Patch("django.core.handlers.base", "BaseHandler.get_response", self.bind(_get_response)),
            Patch("django.core.handlers.base", "BaseHandler.get_response_async", self.bind(_get_response_async)),
            Patch("django.core.handlers.exception", "response_for_exception", _response_for_exception),
        )


INSTRUMENTOR = DjangoInstrumentor
