"""SERVER spans for synchronous frameworks (Flask, Django), written once.

Starlette and FastAPI get theirs from OpenTelemetry's ASGI middleware; Flask's
and Django's contrib instrumentors are not released for the OpenTelemetry
version this package pins (see docs/integrations/flask.md), and what they would
add here is small: extract the caller's context (any format, through
:mod:`commerce_observe.agent.propagation`), start a SERVER span, name it after the
route once routing is done, and end it with the status code.

Attribute names follow the stable HTTP semantic conventions
(``http.request.method``, ``url.path``, ``http.route``,
``http.response.status_code``...), which the Elastic APM mapping reads first.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token
from typing import Final

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import guard
from commerce_observe.agent.instrumentation.web.routes import route_attributes, span_name
from commerce_observe.agent.propagation import ALL, HttpHeaders, Policy, extract

TRACER_NAME: Final = "commerce_observe.web"
FAILED: Final = "web.server_span_failed"

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def sanitize_method(method: str | None) -> str:
    """Known methods as is; anything else as ``_OTHER`` (bounded cardinality)."""
    upper = (method or "").upper()
    return upper if upper in _METHODS else "_OTHER"


def span_method(method: str) -> str:
    """A :func:`sanitize_method` result as a span name: ``_OTHER`` reads ``HTTP``
    (OpenTelemetry's HTTP span-name rule)."""
    return "HTTP" if method == "_OTHER" else method


class ServerRequest:
    """One request's SERVER span, current from :meth:`enter` until :meth:`end`."""

    __slots__ = ("span", "method", "_token", "_ended", "_failed")

    def __init__(self, span: Span, method: str) -> None:
        self.span = span
        self.method = method
        self._token: Token[Context] | None = None
        self._ended = False
        self._failed = False  # an exception's description outranks a bare 5xx

    def enter(self) -> None:
        self._token = context.attach(trace.set_span_in_context(self.span))

    def route(self, route: str | None, params: Mapping[str, object] | None) -> None:
        """Routing is done: rename the span and add ``http.route`` and commerce ids."""
        with guard(FAILED, "naming the server span"):
            if route:
                self.span.update_name(span_name(self.method, route))
            self.span.set_attributes(route_attributes(route, params))

    def status(self, code: int | None) -> None:
        if code is None:
            return
        self.span.set_attribute("http.response.status_code", code)
        if code >= 500 and not self._failed:
            self.span.set_status(Status(StatusCode.ERROR))

    def error(self, exc: BaseException) -> None:
        """Record an exception the framework turned into an error response."""
        with guard(FAILED, "recording a server error"):
            self._failed = True
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def end(self, exc: BaseException | None = None) -> None:
        """End the span (idempotent); ``exc`` escaped the framework itself."""
        if self._ended:
            return
        self._ended = True
        if exc is not None:
            self.error(exc)
        if self._token is not None:
            context.detach(self._token)
            self._token = None
        self.span.end()


def begin(headers: Mapping[str, object], method: str | None, attributes: Mapping[str, AttributeValue],
          policy: Policy = ALL) -> ServerRequest | None:
    """Start a SERVER span for a request whose headers (or WSGI environ) are given
    (baggage read as the agent's propagation ``policy`` says).

    Returns None when HTTP instrumentation is suppressed or the span could not be
    started; the framework then serves the request untraced.
    """
    if not is_http_instrumentation_enabled():
        return None
    request: ServerRequest | None = None
    with guard(FAILED, "starting a server span"):
        parent = extract(HttpHeaders(headers), None, policy)
        name = sanitize_method(method)
        attrs = dict(attributes)
        attrs["http.request.method"] = name
        tracer = trace.get_tracer(TRACER_NAME)
        span_title = span_method(name)
        span = tracer.start_span(span_title, parent, SpanKind.SERVER, attrs)
        request = ServerRequest(span, span_title)
    return request


def wsgi_attributes(environ: Mapping[str, object]) -> dict[str, AttributeValue]:
    """Request attributes read from a WSGI environ (or Django's ``request.META``)."""
    attrs: dict[str, AttributeValue] = {}
    for key, name in (("wsgi.url_scheme", "url.scheme"), ("PATH_INFO", "url.path"),
                      ("QUERY_STRING", "url.query"), ("REMOTE_ADDR", "client.address"),
                      ("HTTP_USER_AGENT", "user_agent.original"), ("SERVER_PROTOCOL", "network.protocol.version")):
        value = environ.get(key)
        if isinstance(value, str) and value:
            attrs[name] = value.removeprefix("HTTP/") if key == "SERVER_PROTOCOL" else value
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
    if isinstance(host, str) and host:
        address, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        attrs["server.address"] = address
        if port.isdigit():
            attrs["server.port"] = int(port)
    return attrs


def status_code(status: object) -> int | None:
    """The integer code of a WSGI status line (``"404 NOT FOUND"``) or an int."""
    if isinstance(status, int):
        return status
    if isinstance(status, str):
        head = status.split(" ", 1)[0]
        return int(head) if head.isdigit() else None
    return None
