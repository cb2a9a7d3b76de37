"""CLIENT spans for outgoing HTTP calls (requests, httpx), written once.

The wrappers hand in the method, the URL and the request's header mapping; this
module starts the CLIENT span, writes the trace context into the headers in
every text format through :mod:`commerce_observe.agent.propagation` (a header the
application set itself is never overwritten), and ends the span with the status.

A 4xx answer is an error for a client span (the call did not do what the caller
asked) while it is not for a server span: that is the OpenTelemetry HTTP rule.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from contextvars import Token
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import guard
from commerce_observe.agent.instrumentation.web.server import sanitize_method, span_method
from commerce_observe.agent.propagation import ALL, HttpHeaders, Policy, inject

TRACER_NAME: Final = "commerce_observe.http_client"
FAILED: Final = "web.client_span_failed"


def _url_attributes(url: str) -> dict[str, AttributeValue]:
    """``url.full`` without credentials, plus ``server.address``/``server.port``."""
    parts = urlsplit(url)
    attrs: dict[str, AttributeValue] = {}
    host = parts.hostname
    netloc = host or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    attrs["url.full"] = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    if host:
        attrs["server.address"] = host
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port:
        attrs["server.port"] = port
    return attrs


class ClientCall:
    """One outgoing call's CLIENT span; current while the call runs."""

    __slots__ = ("span", "_token")

    def __init__(self, span: Span, ctx: Context) -> None:
        self.span = span
        self._token: Token[Context] | None = context.attach(ctx)

    def end(self, status: int | None = None, exc: BaseException | None = None) -> None:
        with guard(FAILED, "ending a client span"):
            if status is not None:
                self.span.set_attribute("http.response.status_code", status)
                if status >= 400:
                    self.span.set_status(Status(StatusCode.ERROR))
            if exc is not None:
                self.span.record_exception(exc)
                self.span.set_attribute("error.type", type(exc).__qualname__)
                self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        if self._token is not None:
            context.detach(self._token)
            self._token = None
        self.span.end()


def sent_request(request: Any, *_rest: Any, **_kw: Any) -> Any:
    """The request of a ``send(request, ...)`` call, given by position or by keyword."""
    return request


def call_through(call: ClientCall | None, wrapped: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    """Run the library's own send inside ``call``: its exception is recorded and
    re-raised unchanged, its response's status ends the span."""
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        call.end(exc=exc)
        raise
    call.end(getattr(response, "status_code", None))
    return response


def begin(method: str | None, url: str, headers: MutableMapping[str, str], policy: Policy = ALL) -> ClientCall | None:
    """Start the span and inject its context into ``headers`` in the formats the
    agent's propagation ``policy`` allows; None when suppressed.

    Suppression (``suppress_http_instrumentation()``) is how exporters keep their
    own HTTP calls out of the traces they send.
    """
    if not is_http_instrumentation_enabled():
        return None
    call: ClientCall | None = None
    with guard(FAILED, "starting a client span"):
        name = sanitize_method(method)
        attrs = _url_attributes(url)
        attrs["http.request.method"] = name
        tracer = trace.get_tracer(TRACER_NAME)
        span = tracer.start_span(span_method(name), kind=SpanKind.CLIENT, attributes=attrs)
        ctx = trace.set_span_in_context(span)
        inject(HttpHeaders(headers), ctx, policy=policy)
        call = ClientCall(span, ctx)
    return call
