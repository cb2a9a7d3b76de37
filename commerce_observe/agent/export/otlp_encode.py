"""SpanRecord batches as an OTLP ``ExportTraceServiceRequest`` (protobuf bytes).

Why our own encoder: OpenTelemetry's ``encode_spans`` builds a protobuf message
object per span, attribute and value from SDK ``ReadableSpan`` objects; measured on
our span shape (8 attributes and an event with 8 more) it costs several times the
CPU of the whole Zipkin export (benchmarks/span_export.py). The OTLP wire format is
small and stable, so the records (already masked: this is the only input) are
written straight to bytes here, and OpenTelemetry's own OTLP exporters deliver them
(``otlp.py``). A test parses the result with the official ``opentelemetry-proto``
classes and compares every field.

Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``. Spans are grouped by resource, then by scope name.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.record import EventRecord, SpanRecord

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_SMALL = [bytes((n,)) for n in range(128)]
_MASK64 = (1 << 64) - 1
#: string values shorter than this (ASCII) are written as a cached head plus their bytes
_HEAD_MAX = 120
#: SpanKind's value -> the ``kind`` field (OTLP's enum is OpenTelemetry's value plus one);
#: keyed by the member's ``_value_``: hashing an Enum member is a Python-level call
_KIND = {k.value: b"\x30" + bytes((k.value + 1,)) for k in SpanKind}


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer (below 2**64)."""
    if n < 128:
        return _SMALL[n]
    if n < 16384:  # spans and events: two bytes
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else varint(n)) + payload


def _utf8(text: str) -> bytes:
    """UTF-8 that protobuf accepts: a lone surrogate becomes '?' instead of raising."""
    return text.encode() if text.isascii() else text.encode("utf-8", "replace")


def any_value(value: object) -> bytes:
    """An ``AnyValue`` message body for one attribute value."""
    if type(value) is str:
        return _field(b"\x0a", value.encode() if value.isascii() else _utf8(value))
    if value is True:
        return b"\x10\x01"
    if value is False:
        return b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value & _MASK64)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", any_value(v)) for v in value))
    return _field(b"\x0a", _utf8(str(value)))


class OtlpEncoder:
    """Encodes batches of records; keeps small caches, so one per exporter thread."""

    def __init__(self, key_cache_limit: int = 4096) -> None:
        #: key -> encoded ``KeyValue.key`` field plus the ``value`` field's tag: a
        #: service uses a few hundred attribute keys, so they are encoded once.
        self._keys: dict[str, bytes] = {}
        self._key_cache_limit = key_cache_limit
        #: field tag -> key -> by value length (< 120), the string attribute's field
        #: minus the value: looked up by the key's cached hash and a list index
        self._heads: dict[bytes, dict[str, list[bytes | None]]] = {}
        #: (field tag, key, bool or small int) -> the whole field
        self._consts: dict[tuple[bytes, str, object], bytes] = {}
        self._resources: dict[int, tuple[Mapping[str, AttributeValue], bytes]] = {}
        #: span and event names (a service has a few hundred) -> their encoded field
        self._names: dict[tuple[bytes, str], bytes] = {}

    def _key(self, key: str) -> bytes:
        if len(self._keys) >= self._key_cache_limit:
            self._keys.clear()
        hit = self._keys[key] = _field(b"\x0a", _utf8(key)) + b"\x12"
        return hit

    def _head(self, tag: bytes, key: str, n: int) -> bytes:
        """Everything of a string attribute's field but the value's bytes: the field tag
        and length, the key, the value's tags and lengths (they depend on ``n`` only)."""
        prefix = self._keys.get(key) or self._key(key)
        kv_len = len(prefix) + 3 + n
        head = tag + (_SMALL[kv_len] if kv_len < 128 else varint(kv_len)) + prefix + _SMALL[n + 2] + b"\x0a" + _SMALL[n]
        by_key = self._heads.setdefault(tag, {})
        row = by_key.get(key)
        if row is None:
            if len(by_key) >= self._key_cache_limit:
                by_key.clear()
            row = by_key[key] = [None] * _HEAD_MAX
        row[n] = head
        return head

    def _attributes(self, tag: bytes, attributes: Mapping[str, AttributeValue]) -> list[bytes]:
        """One ``KeyValue`` field (with ``tag``) per attribute.

        The common case, a short ASCII string, is one cached head (tag, lengths and key,
        which depend on the key and the value's length only) plus the value's bytes; a
        bool or small int is one cached field. This loop is most of the encoder's CPU.
        """
        heads = self._heads.get(tag) or self._heads.setdefault(tag, {})
        consts = self._consts
        out = []
        for k, v in attributes.items():
            if type(v) is str:
                n = len(v)
                if n < _HEAD_MAX and v.isascii():
                    row = heads.get(k)
                    head = row[n] if row is not None else None
                    out.append((head or self._head(tag, k, n)) + v.encode())
                    continue
            elif (type(v) is bool or type(v) is int) and 0 <= v < 128:
                key = (tag, k, v if type(v) is int else ("T" if v else "F"))
                field = consts.get(key)
                if field is None:
                    if len(consts) >= self._key_cache_limit:
                        consts.clear()
                    field = consts[key] = self._kv(tag, k, v)
                out.append(field)
                continue
            out.append(self._kv(tag, k, v))
        return out

    def _kv(self, tag: bytes, k: str, v: AttributeValue) -> bytes:
        """The general case: one attribute of any type as a tagged ``KeyValue`` field."""
        prefix = self._keys.get(k) or self._key(k)
        val = any_value(v)
        kv = prefix + varint(len(val)) + val
        n = len(kv)
        return tag + (_SMALL[n] if n < 128 else varint(n)) + kv

    def _resource(self, record: SpanRecord) -> bytes:
        """The encoded ``ResourceSpans.resource`` field for the record's resource."""
        resource = record.resource
        hit = self._resources.get(id(resource))
        if hit is None or hit[0] is not resource:
            if len(self._resources) > 64:
                self._resources.clear()
            attrs = dict(resource)
            attrs.setdefault("service.name", record.service_name)
            hit = (resource, _field(b"\x0a", b"".join(self._attributes(b"\x0a", attrs))))
            self._resources[id(resource)] = hit
        return hit[1]

    def _name(self, tag: bytes, name: str) -> bytes:
        key = (tag, name)
        hit = self._names.get(key)
        if hit is None:
            if len(self._names) >= self._key_cache_limit:
                self._names.clear()
            hit = self._names[key] = _field(tag, _utf8(name))
        return hit

    def _event(self, event: EventRecord) -> bytes:
        parts = [b"\x09", _pack_fixed64(event.timestamp_ns), self._names.get((b"\x12", event.name)) or
                 self._name(b"\x12", event.name)]
        parts.extend(self._attributes(b"\x1a", event.attributes))
        return _field(b"\x5a", b"".join(parts))

    def span(self, r: SpanRecord) -> bytes:
        """One ``Span`` message body."""
        parts = [b"\x0a\x10", r.trace_id.to_bytes(16, "big"), b"\x12\x08", r.span_id.to_bytes(8, "big")]
        if r.parent_span_id is not None:
            parts += (b"\x22\x08", r.parent_span_id.to_bytes(8, "big"))
        parts += (self._names.get((b"\x2a", r.name)) or self._name(b"\x2a", r.name), _KIND[r.kind._value_],
                  b"\x39", _pack_fixed64(r.start_ns), b"\x41", _pack_fixed64(r.end_ns))
        parts.extend(self._attributes(b"\x4a", r.attributes))
        for event in r.events:
            parts.append(self._event(event))
        if r.error:
            status = b"\x18\x02"  # STATUS_CODE_ERROR
            if r.status_description:
                status = _field(b"\x12", _utf8(r.status_description)) + status
            parts.append(_field(b"\x7a", status))
        # flags (field 16, fixed32): trace flags, HAS_IS_REMOTE, IS_REMOTE of the parent
        flags = (1 if r.sampled else 0) | 0x100 | (0x200 if r.parent_is_remote else 0)
        parts += (b"\x85\x01", flags.to_bytes(4, "little"))
        return b"".join(parts)

    def encode(self, batch: Sequence[SpanRecord]) -> bytes:
        """The ``ExportTraceServiceRequest`` for ``batch``, serialised."""
        groups: dict[int, tuple[SpanRecord, dict[str, list[bytes]]]] = {}
        span = self.span
        for r in batch:
            entry = groups.get(id(r.resource))
            if entry is None:
                entry = groups[id(r.resource)] = (r, {})
            body = span(r)
            n = len(body)
            entry[1].setdefault(r.scope_name, []).append(b"\x12" + (_SMALL[n] if n < 128 else varint(n)) + body)
        out = []
        for first, scopes in groups.values():
            scope_spans = [
                _field(b"\x12", _field(b"\x0a", _field(b"\x0a", _utf8(scope))) + b"".join(spans))
                for scope, spans in scopes.items()
            ]
            out.append(_field(b"\x0a", self._resource(first) + b"".join(scope_spans)))
        return b"".join(out)
