"""SpanRecord to Zipkin v2 JSON, built on py-zipkin's span model.

Two encoders produce the same JSON (a test holds them to it):

* :func:`encode_py_zipkin` builds py-zipkin ``Span`` objects and lets py-zipkin's
  own v2 JSON encoder serialise them, one ``json.dumps`` per span;
* :func:`encode_lean` builds the same dicts directly and serialises the whole
  batch with one ``json.dumps``. It is the default because it costs a fraction of
  the CPU (figures in docs/export.md); py-zipkin still builds and validates every
  ``Endpoint`` (:class:`EndpointCache`), and the model-based path stays available
  (``ZipkinExporter(encoder="py_zipkin")``).

Mapping decisions (docs/export.md has the reasons):

* ids: 128-bit trace id as 32 hex digits, span/parent ids as 16;
* kind: SERVER/CLIENT/PRODUCER/CONSUMER; INTERNAL is Zipkin's "local" (no kind);
* tags: attribute values as strings (booleans lowercase, sequences as JSON
  arrays); ``otel.scope.name``; error spans get ``error`` (the masked status
  description, or ``ERROR``) and ``otel.status_code=ERROR``;
* annotations: one per event, ``name`` then `` key=value`` per attribute
  (stack traces left out), so a domain event reads as
  ``commerce.order.created commerce.order.id=o-1 ...``; repeated identical texts get
  a ``#n`` suffix because Zipkin's model keys annotations by text;
* ``shared`` is never set: OpenTelemetry gives every server span its own id, and
  ``shared`` means "same id as the client span", which never happens here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from commerce_observe.agent._compat.py_zipkin import Encoding, Endpoint, Kind, Span, create_endpoint, get_encoder
from commerce_observe.agent.export.record import EventRecord, SpanRecord

_KIND = {
    SpanKind.SERVER: Kind.SERVER,
    SpanKind.CLIENT: Kind.CLIENT,
    SpanKind.PRODUCER: Kind.PRODUCER,
    SpanKind.CONSUMER: Kind.CONSUMER,
    SpanKind.INTERNAL: Kind.LOCAL,
}
_OUTGOING = frozenset({SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER})
_REMOTE_SERVICE_KEYS = ("peer.service", "messaging.system", "db.system", "rpc.system")
_REMOTE_HOST_KEYS = ("network.peer.address", "net.sock.peer.addr", "net.peer.ip", "server.address", "net.peer.name")
_REMOTE_PORT_KEYS = ("server.port", "network.peer.port", "net.peer.port", "net.sock.peer.port")
_CLIENT_HOST_KEYS = ("client.address", "network.peer.address", "net.peer.ip", "net.sock.peer.addr")
_CLIENT_PORT_KEYS = ("client.port", "network.peer.port", "net.peer.port")
_ANNOTATION_SKIP = frozenset({"exception.stacktrace"})
MAX_ANNOTATION_CHARS = 1024
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def tag_value(value: object) -> str:
    """An attribute value as Zipkin's string tag."""
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return int.__repr__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Sequence):
        return _compact(list(value))
    if isinstance(value, Mapping):
        return _compact(dict(value))
    return str(value)


def _first(attrs: Mapping[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


class EndpointCache:
    """py-zipkin ``Endpoint`` objects (and their JSON) for the few peers a service has."""

    def __init__(self, limit: int = 1024) -> None:
        self._endpoints: dict[tuple[object, object, object], Endpoint | None] = {}
        self._json: dict[Endpoint, dict[str, Any]] = {}
        self._local_json: dict[str, dict[str, Any]] = {}
        self._limit = limit

    def get(self, service: object, host: object, port: object) -> Endpoint | None:
        key = (service, host, port)
        hit = self._endpoints.get(key, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        try:
            port_num = int(port) if port is not None else None  # type: ignore[call-overload]
        except (TypeError, ValueError):
            port_num = None
        endpoint: Endpoint | None = create_endpoint(
            port=port_num, service_name=str(service).lower() if service else None,
            host=str(host) if host else None, use_defaults=False,
        )
        if endpoint is not None and not (endpoint.service_name or endpoint.ipv4 or endpoint.ipv6 or endpoint.port):
            endpoint = None
        if len(self._endpoints) >= self._limit:
            self._endpoints.clear()
            self._json.clear()
            self._local_json.clear()
        self._endpoints[key] = endpoint
        return endpoint

    def local(self, service: str) -> Endpoint:
        endpoint = self.get(service, None, None)
        return endpoint if endpoint is not None else Endpoint(service, None, None, None)

    def local_json(self, service: str) -> dict[str, Any]:
        hit = self._local_json.get(service)
        if hit is None:
            hit = self._local_json[service] = self.as_json(self.local(service))
        return hit

    def remote(self, record: SpanRecord) -> Endpoint | None:
        attrs = record.attributes
        if record.kind in _OUTGOING:
            service = _first(attrs, _REMOTE_SERVICE_KEYS)
            host = _first(attrs, _REMOTE_HOST_KEYS)
            if service is None and host is not None:
                service = attrs.get("server.address") or attrs.get("net.peer.name")
            port = _first(attrs, _REMOTE_PORT_KEYS)
        elif record.kind is SpanKind.SERVER:
            service, host, port = None, _first(attrs, _CLIENT_HOST_KEYS), _first(attrs, _CLIENT_PORT_KEYS)
        else:
            return None
        if service is None and host is None:
            return None
        return self.get(service, host, port)

    def as_json(self, endpoint: Endpoint) -> dict[str, Any]:
        """The v2 JSON object, with the same field rules as py-zipkin's encoder."""
        hit = self._json.get(endpoint)
        if hit is None:
            hit = {}
            if endpoint.service_name:
                hit["serviceName"] = endpoint.service_name
            if endpoint.port:
                hit["port"] = endpoint.port
            if endpoint.ipv4 is not None:
                hit["ipv4"] = endpoint.ipv4
            if endpoint.ipv6 is not None:
                hit["ipv6"] = endpoint.ipv6
            self._json[endpoint] = hit
        return hit


def annotation_texts(events: Sequence[EventRecord]) -> list[tuple[str, int]]:
    """(text, timestamp in microseconds) per event, texts made unique."""
    out: list[tuple[str, int]] = []
    for event in events:
        pairs = [
            f"{key}={value if type(value) is str else tag_value(value)}"
            for key, value in event.attributes.items()
            if key not in _ANNOTATION_SKIP
        ]
        text = f"{event.name} {' '.join(pairs)}" if pairs else event.name
        out.append((text[:MAX_ANNOTATION_CHARS], event.timestamp_ns // 1000))
    if len(out) > 1:
        seen: dict[str, int] = {}
        for i, (text, ts) in enumerate(out):
            n = seen[text] = seen.get(text, 0) + 1
            if n > 1:
                out[i] = (f"{text} #{n}", ts)
    return out


def tags(record: SpanRecord) -> dict[str, str]:
    out = {key: value if type(value) is str else tag_value(value) for key, value in record.attributes.items()}
    if record.scope_name:
        out["otel.scope.name"] = record.scope_name
    if record.error:
        out["otel.status_code"] = "ERROR"
        out["error"] = record.status_description or "ERROR"
    return out


def _times(record: SpanRecord) -> tuple[int, int]:
    start_us = record.start_ns // 1000
    return start_us, max(1, record.end_ns // 1000 - start_us)


def _seconds(us: int) -> float:
    """Float seconds that py-zipkin's ``int(seconds * 1e6)`` turns back into ``us``
    exactly: the half-microsecond absorbs float rounding, which otherwise truncates
    some values one microsecond short."""
    return (us + 0.5) / 1e6


def to_py_zipkin(record: SpanRecord, endpoints: EndpointCache) -> Span:
    """The record as py-zipkin's v2 span model (timestamps in float seconds)."""
    start_us, duration_us = _times(record)
    return Span(
        trace_id=record.trace_id_hex,
        name=record.name,
        parent_id=format(record.parent_span_id, "016x") if record.parent_span_id is not None else None,
        span_id=record.span_id_hex,
        kind=_KIND.get(record.kind, Kind.LOCAL),
        timestamp=_seconds(start_us),
        duration=_seconds(duration_us),
        local_endpoint=endpoints.local(record.service_name),
        remote_endpoint=endpoints.remote(record),
        annotations={text: _seconds(ts) for text, ts in annotation_texts(record.events)},
        tags=tags(record),  # type: ignore[arg-type]
    )


def encode_py_zipkin(records: Sequence[SpanRecord], endpoints: EndpointCache) -> bytes:
    encoder = get_encoder(Encoding.V2_JSON)
    encoded = [encoder.encode_span(to_py_zipkin(r, endpoints)) for r in records]
    return encoder.encode_queue(encoded).encode("utf-8")  # type: ignore[union-attr]


def to_json_dict(record: SpanRecord, endpoints: EndpointCache) -> dict[str, Any]:
    """The record as a Zipkin v2 JSON object (what :func:`encode_lean` serialises)."""
    start_us, duration_us = _times(record)
    span: dict[str, Any] = {"traceId": record.trace_id_hex, "id": record.span_id_hex}
    if record.name:
        span["name"] = record.name
    if record.parent_span_id is not None:
        span["parentId"] = format(record.parent_span_id, "016x")
    span["timestamp"] = start_us
    span["duration"] = duration_us
    kind = _KIND.get(record.kind, Kind.LOCAL).value
    if kind is not None:
        span["kind"] = kind
    span["localEndpoint"] = endpoints.local_json(record.service_name)
    remote = endpoints.remote(record)
    if remote is not None:
        span["remoteEndpoint"] = endpoints.as_json(remote)
    span_tags = tags(record)
    if span_tags:
        span["tags"] = span_tags
    if record.events:
        span["annotations"] = [{"timestamp": ts, "value": text} for text, ts in annotation_texts(record.events)]
    return span


_esc = json.encoder.encode_basestring_ascii  # C; what json.dumps writes
#: by the SpanKind member's ``_value_`` (hashing an Enum member is a Python-level call)
_KIND_TEXT = {k.value: (f',"kind":"{v.value}"' if v.value is not None else "") for k, v in _KIND.items()}
#: Tag names we set ourselves; a record whose attributes use one takes the dict path,
#: where ours override theirs exactly as in :func:`tags`.
_OUR_TAGS = frozenset({"otel.scope.name", "otel.status_code", "error"})


class JsonText:
    """Escaped JSON text of the strings that repeat from span to span (tag names,
    endpoints): each is escaped once; bounded."""

    def __init__(self, limit: int = 4096) -> None:
        self.keys: dict[str, str] = {}
        self.endpoints: dict[tuple[tuple[str, Any], ...], str] = {}
        #: service name -> ``,"localEndpoint":{...}`` (every span has one; few services)
        self.locals: dict[str, str] = {}
        self._limit = limit

    def key(self, key: str) -> str:
        hit = self.keys.get(key)
        if hit is None:
            if len(self.keys) >= self._limit:
                self.keys.clear()
            hit = self.keys[key] = _esc(key) + ":"
        return hit

    def local(self, service: str, endpoints: EndpointCache) -> str:
        hit = self.locals.get(service)
        if hit is None:
            if len(self.locals) >= self._limit:
                self.locals.clear()
            hit = self.locals[service] = ',"localEndpoint":' + self.endpoint(endpoints.local_json(service))
        return hit

    def endpoint(self, value: dict[str, Any]) -> str:
        ident = tuple(value.items())  # a few fields; by content, never by id (ids are reused)
        hit = self.endpoints.get(ident)
        if hit is None:
            if len(self.endpoints) >= self._limit:
                self.endpoints.clear()
            hit = self.endpoints[ident] = json.dumps(value, separators=(",", ":"))
        return hit


def span_json(record: SpanRecord, endpoints: EndpointCache, text: JsonText) -> str:
    """:func:`to_json_dict` written straight as JSON text: the same object, without
    building dicts (about half the CPU, and no garbage for the collector)."""
    attrs = record.attributes
    if not _OUR_TAGS.isdisjoint(attrs):
        return json.dumps(to_json_dict(record, endpoints), separators=(",", ":"))
    start_us = record.start_ns // 1000
    duration_us = max(1, record.end_ns // 1000 - start_us)
    out = ['{"traceId":"', format(record.trace_id, "032x"), '","id":"', format(record.span_id, "016x"), '"']
    if record.name:
        out += (',"name":', _esc(record.name))
    if record.parent_span_id is not None:
        out += (',"parentId":"', format(record.parent_span_id, "016x"), '"')
    local = text.locals.get(record.service_name) or text.local(record.service_name, endpoints)
    kind = record.kind
    out += (',"timestamp":', str(start_us), ',"duration":', str(duration_us), _KIND_TEXT.get(kind._value_, ""), local)
    if kind is not SpanKind.INTERNAL:
        remote = endpoints.remote(record)
        if remote is not None:
            out += (',"remoteEndpoint":', text.endpoint(endpoints.as_json(remote)))
    sep = ',"tags":{'
    keys = text.keys
    for k, v in attrs.items():
        out += (sep, keys.get(k) or text.key(k), _esc(v if type(v) is str else tag_value(v)))
        sep = ","
    if record.scope_name:
        out += (sep, '"otel.scope.name":', _esc(record.scope_name))
        sep = ","
    if record.error:
        out += (sep, '"otel.status_code":"ERROR","error":', _esc(record.status_description or "ERROR"))
        sep = ","
    if sep == ",":
        out.append("}")
    if record.events:
        sep = ',"annotations":['
        for value, ts in annotation_texts(record.events):
            out += (sep, '{"timestamp":', str(ts), ',"value":', _esc(value), "}")
            sep = ","
        out.append("]")
    out.append("}")
    return "".join(out)


def encode_lean(records: Sequence[SpanRecord], endpoints: EndpointCache, text: JsonText | None = None) -> bytes:
    text = text if text is not None else JsonText()
    return ("[" + ",".join([span_json(r, endpoints, text) for r in records]) + "]").encode("utf-8")
