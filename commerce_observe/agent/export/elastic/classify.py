"""Read a span's attributes the way Elastic APM groups work: type, subtype, action,
outcome, result and the structured ``context`` blocks.

Kibana's service map, dependency list and failure rates are driven by these
fields, not by the raw attributes, so the rules follow what APM Server itself
derives from OpenTelemetry data: messaging spans are ``messaging/<system>/<op>``,
HTTP client calls ``external/http``, database calls ``db/<system>/query``;
SERVER entry spans are ``request`` transactions and CONSUMER entry spans
``messaging`` transactions. Both old and current OTel attribute names are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.elastic.labels import first_int, first_str, truncate

Attrs = Mapping[str, AttributeValue]

MESSAGING_SYSTEM = ("messaging.system",)
MESSAGING_DESTINATION = ("messaging.destination.name", "messaging.destination")
MESSAGING_OPERATION = ("messaging.operation.type", "messaging.operation")
ROUTING_KEY = ("messaging.rabbitmq.destination.routing_key",)
HTTP_METHOD = ("http.request.method", "http.method")
HTTP_STATUS = ("http.response.status_code", "http.status_code")
HTTP_URL = ("url.full", "http.url")
HTTP_PATH = ("url.path", "http.target")
SERVER_HOST = ("server.address", "net.peer.name", "net.host.name")
SERVER_PORT = ("server.port", "net.peer.port", "net.host.port")
DB_SYSTEM = ("db.system.name", "db.system")
DB_NAME = ("db.namespace", "db.name")
DB_STATEMENT = ("db.query.text", "db.statement")
RPC_SYSTEM = ("rpc.system",)
#: Producer-side publish time (epoch ns) as the consumer saw it; gives ``message.age``.
MESSAGE_PUBLISHED_NS = ("commerce.message.published_ns",)

#: Every attribute the rules here read. A span with none of them (most commerce
#: spans) classifies by its kind alone, which the mapping precomputes.
CLASSIFY_KEYS = frozenset(
    MESSAGING_SYSTEM + MESSAGING_DESTINATION + MESSAGING_OPERATION + ROUTING_KEY + HTTP_METHOD + HTTP_STATUS
    + HTTP_URL + HTTP_PATH + SERVER_HOST + SERVER_PORT + DB_SYSTEM + DB_NAME + DB_STATEMENT + RPC_SYSTEM
    + MESSAGE_PUBLISHED_NS
)

_SEND_OPS = frozenset({"publish", "send", "create"})
_RECEIVE_OPS = frozenset({"receive"})


@dataclass(slots=True, frozen=True)
class Kind:
    """What Elastic calls the span: ``type``/``subtype``/``action``."""

    type: str
    subtype: str | None
    action: str | None


def messaging_action(kind: SpanKind, attrs: Attrs) -> str:
    op = first_str(attrs, MESSAGING_OPERATION)
    if op is not None:
        op = op.lower()
        if op in _SEND_OPS:
            return "send"
        if op in _RECEIVE_OPS:
            return "receive"
        return "process"
    return "send" if kind is SpanKind.PRODUCER else "process"


def span_kind(kind: SpanKind, attrs: Attrs) -> Kind:
    """Type/subtype/action of a non-entry span."""
    system = first_str(attrs, MESSAGING_SYSTEM)
    if system is not None or kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        return Kind("messaging", system.lower() if system else None, messaging_action(kind, attrs))
    db = first_str(attrs, DB_SYSTEM)
    if db is not None:
        return Kind("db", db.lower(), "query")
    if kind is SpanKind.CLIENT:
        if first_str(attrs, HTTP_METHOD) is not None:
            return Kind("external", "http", "request")
        rpc = first_str(attrs, RPC_SYSTEM)
        return Kind("external", rpc.lower() if rpc else None, None)
    return Kind("app", "internal", None)


def transaction_type(kind: SpanKind, attrs: Attrs) -> str:
    if kind is SpanKind.SERVER:
        return "request"
    if kind is SpanKind.CONSUMER:
        return "messaging"
    if first_str(attrs, MESSAGING_SYSTEM) is not None and messaging_action(kind, attrs) != "send":
        return "messaging"
    return "custom"


def outcome(error: bool, attrs: Attrs, *, entry: bool) -> str:
    """``failure`` on error; else from the HTTP status (a 4xx fails a client call,
    only a 5xx fails a server transaction, as Elastic's agents decide)."""
    if error:
        return "failure"
    status = first_int(attrs, HTTP_STATUS)
    if status is None:
        return "success"
    if status < 100 or status >= 600:
        return "unknown"
    return "failure" if status >= (500 if entry else 400) else "success"


def result(error: bool, attrs: Attrs) -> str:
    """``HTTP 2xx``-style when a status is known, else ``success`` / ``error``."""
    status = first_int(attrs, HTTP_STATUS)
    if status is not None and 100 <= status < 600:
        return f"HTTP {status // 100}xx"
    return "error" if error else "success"


def _host_port(attrs: Attrs) -> str | None:
    host = first_str(attrs, SERVER_HOST)
    if host is None:
        return None
    port = first_int(attrs, SERVER_PORT)
    return truncate(f"{host}:{port}" if port else host)


def message_context(attrs: Attrs, end_ns: int) -> dict[str, Any] | None:
    """``context.message``: queue name, routing key, age when the publish time is known."""
    queue = first_str(attrs, MESSAGING_DESTINATION)
    ctx: dict[str, Any] = {}
    if queue is not None:
        ctx["queue"] = {"name": truncate(queue)}
    routing_key = first_str(attrs, ROUTING_KEY)
    if routing_key is not None:
        ctx["routing_key"] = routing_key
    published = first_int(attrs, MESSAGE_PUBLISHED_NS)
    if published is not None and 0 < published <= end_ns:
        ctx["age"] = {"ms": (end_ns - published) // 1_000_000}
    return ctx or None


def span_context(k: Kind, attrs: Attrs, end_ns: int) -> dict[str, Any]:
    """``context`` of an exit span: destination service, and http / db / message."""
    ctx: dict[str, Any] = {}
    resource: str | None = None
    if k.type == "messaging":
        message = message_context(attrs, end_ns)
        if message is not None:
            ctx["message"] = message
        queue = message["queue"]["name"] if message and "queue" in message else None
        if k.subtype:
            resource = truncate(f"{k.subtype}/{queue}" if queue else k.subtype)
            ctx["service"] = {"target": {"type": k.subtype, "name": queue} if queue else {"type": k.subtype}}
    elif k.type == "db" and k.subtype:
        db_ctx: dict[str, Any] = {"type": "sql" if k.subtype in _SQL else k.subtype}
        name = first_str(attrs, DB_NAME)
        if name is not None:
            db_ctx["instance"] = name
        statement = first_str(attrs, DB_STATEMENT)
        if statement is not None:
            db_ctx["statement"] = truncate(statement, 10_000)
        ctx["db"] = db_ctx
        resource = truncate(f"{k.subtype}/{name}" if name else k.subtype)
        ctx["service"] = {"target": {"type": k.subtype, "name": name} if name else {"type": k.subtype}}
    elif k.type == "external" and k.subtype == "http":
        http: dict[str, Any] = {"method": truncate(first_str(attrs, HTTP_METHOD) or "")}
        url = first_str(attrs, HTTP_URL)
        if url is not None:
            http["url"] = url
        status = first_int(attrs, HTTP_STATUS)
        if status is not None:
            http["response"] = {"status_code": status}
        ctx["http"] = http
        resource = _host_port(attrs)
        if resource is not None:
            ctx["service"] = {"target": {"type": "http", "name": resource}}
    if resource is not None:
        ctx["destination"] = {"service": {"resource": resource, "type": k.type, "name": k.subtype or k.type}}
        address = first_str(attrs, SERVER_HOST)
        if address is not None:
            ctx["destination"]["address"] = truncate(address)
            port = first_int(attrs, SERVER_PORT)
            if port is not None:
                ctx["destination"]["port"] = port
    return ctx


_SQL = frozenset({"postgresql", "mysql", "sqlite", "mssql", "oracle", "mariadb", "db2", "other_sql"})


def transaction_context(kind: SpanKind, attrs: Attrs, end_ns: int) -> dict[str, Any]:
    """``context`` of an entry span: request/response for HTTP, message for consumers."""
    ctx: dict[str, Any] = {}
    method = first_str(attrs, HTTP_METHOD)
    if method is not None:
        request: dict[str, Any] = {"method": truncate(method)}
        path = first_str(attrs, HTTP_PATH)
        url = first_str(attrs, HTTP_URL)
        if url is not None or path is not None:
            request["url"] = {"full": truncate(url)} if url is not None else {"pathname": truncate(path or "")}
        ctx["request"] = request
        status = first_int(attrs, HTTP_STATUS)
        if status is not None:
            ctx["response"] = {"status_code": status}
    if kind is SpanKind.CONSUMER or first_str(attrs, MESSAGING_SYSTEM) is not None:
        message = message_context(attrs, end_ns)
        if message is not None:
            ctx["message"] = message
    return ctx
