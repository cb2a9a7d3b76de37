"""Flask: one SERVER span per request, named after the matched route.

Two wraps, because Flask knows two things at two moments:

* ``Flask.wsgi_app`` sees the request first (headers to extract the caller's
  context from) and the status last (through ``start_response``): it owns the span;
* ``Flask.dispatch_request`` runs after routing, inside the request context:
  ``request.url_rule.rule`` is the route template and ``request.view_args`` its
  path parameters (``order_id`` → ``commerce.order.id``), and an exception raised
  by the view passes through it before Flask turns it into a 500.

The span ends when ``wsgi_app`` returns; a streamed body produced later by the
server is not timed (see docs/integrations/flask.md).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from commerce_observe.agent.instrumentation.base import Patch
from commerce_observe.agent.instrumentation.web.elastic_apm_coexistence import ServerInstrumentor
from commerce_observe.agent.instrumentation.web import server
from commerce_observe.agent.instrumentation.web.server import ServerRequest

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

_CURRENT = "commerce_observe.server_request"


def _wsgi_app(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    environ, start_response = _wsgi_args(*args, **kwargs)
    if not isinstance(environ, dict) or _CURRENT in environ:
        return wrapped(*args, **kwargs)
    request = server.begin(environ, environ.get("REQUEST_METHOD"), server.wsgi_attributes(environ), state.propagation)
    if request is None:
        return wrapped(*args, **kwargs)
    environ[_CURRENT] = request

    def traced_start_response(status: str, headers: Any, *rest: Any) -> Any:
        request.status(server.status_code(status))
        return start_response(status, headers, *rest)

    request.enter()
    try:
        result = wrapped(environ, traced_start_response)
    except BaseException as exc:
        request.end(exc)
        raise
    request.end()
    return result


def _wsgi_args(environ: Any, start_response: Any, *_rest: Any, **_kw: Any) -> tuple[Any, Any]:
    return environ, start_response


def _dispatch_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = _current_request()
    if request is None:
        return wrapped(*args, **kwargs)
    flask_request = sys.modules["flask"].request
    rule = flask_request.url_rule
    request.route(rule.rule if rule is not None else None, flask_request.view_args)
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        if not _is_http_exception(exc):
            request.error(exc)
        raise


def _current_request() -> ServerRequest | None:
    """Our request for the active Flask request context, if we started one."""
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return None
    found = flask.request.environ.get(_CURRENT)
    if isinstance(found, ServerRequest) and trace.get_current_span() is found.span:
        return found
    return None


def _is_http_exception(exc: BaseException) -> bool:
    """``abort(404)`` and friends are answers, not failures."""
    exceptions = sys.modules.get("werkzeug.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.HTTPException)


class FlaskInstrumentor(ServerInstrumentor):
    name = "flask"
    module = "flask"
    requirements = ("flask >= 2.2",)

    def patches(self) -> Sequence[Patch]:
        return (
            Patch("flask.app", "Flask.wsgi_app", self.bind(_wsgi_app)),
            Patch("flask.app", "Flask.dispatch_request", _dispatch_request),
        )


INSTRUMENTOR = FlaskInstrumentor
