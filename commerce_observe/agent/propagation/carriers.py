"""Carrier adapters: one small class per way messages carry headers.

Every client wrapper (Kafka, RabbitMQ, HTTP) wraps its headers in one of these and
hands it to :func:`~commerce_observe.agent.propagation.extract` /
:func:`~commerce_observe.agent.propagation.inject`; no wrapper has its own getter or
setter, so they cannot drift apart.

All lookups are case-insensitive: Kafka and AMQP header names are case-sensitive
on the wire, but Brave writes ``X-B3-TraceId`` while proxies and other agents
lower-case, and a trace lost to a capital letter is a bug report. Each adapter
builds its lower-case index lazily, once, on first lookup (a handful of headers:
cheaper than scanning per name). When a name occurs twice the last one wins, as
Brave's ``lastHeader`` does for Kafka.

Injection never overwrites what the application set: :meth:`Carrier.names`
gives the lower-case names already present and the injector skips those formats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Set as AbstractSet
from typing import Protocol

from commerce_observe._internal.selfstats import stats

from . import formats as f
from .formats import Format

INVALID_CARRIER = "propagation.invalid_carrier"

#: Header names already in lower case that messages carry most (the trace formats',
#: ``baggage`` and the CloudEvents ``ce_*`` ones the messaging layer writes): indexed
#: as they are, without a ``str.lower`` per name and record. Any other name is lowered.
LOWER_CASE_NAMES: frozenset[str] = frozenset(
    {f.TRACEPARENT, f.TRACESTATE, f.B3, f.B3_TRACE_ID.lower(), f.B3_SPAN_ID.lower(), f.B3_PARENT_SPAN_ID.lower(),
     f.B3_SAMPLED.lower(), f.B3_FLAGS.lower(), f.ELASTIC_TRACEPARENT, f.ELASTIC_BINARY_HEADER, "baggage",
     "ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time", "ce_sequence"}
)


class Carrier(Protocol):
    """What :func:`extract` and :func:`inject` need from a carrier."""

    #: Formats written when ``inject`` gets no explicit ``formats``.
    default_formats: Format

    def get(self, name: str) -> object:
        """Raw value of header ``name`` (given lower-case), or ``None``."""
        ...

    def names(self) -> AbstractSet[str]:
        """Lower-case names of the headers present."""
        ...

    def set(self, name: str, value: str | bytes) -> None:
        """Add a header (the injector has already checked it is absent)."""
        ...


def _key_text(key: object) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray)):
        try:
            return bytes(key).decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


class _Indexed:
    """What the three carriers share: a lower-case name index, built lazily from
    ``_build`` (each carrier's own reading of its headers) and dropped on ``set``."""

    __slots__ = ("_index",)
    _index: dict[str, object] | None

    def _build(self) -> dict[str, object]:
        raise NotImplementedError

    def get(self, name: str) -> object:
        index = self._index
        if index is None:
            index = self._build()
        return index.get(name)

    def names(self) -> AbstractSet[str]:
        index = self._index
        if index is None:
            index = self._build()
        return index.keys()

    def lookup(self) -> Callable[[str], object]:
        """:meth:`get` as the index's own ``dict.get`` (one C call per name), for a
        caller that reads several headers in a row and sets none meanwhile."""
        index = self._index
        if index is None:
            index = self._build()
        return index.get


class KafkaHeaders(_Indexed):
    """Kafka record headers: ``list[tuple[str, bytes]]`` (kafka-python, aiokafka,
    confluent-kafka; ASGI scopes use the same shape with ``bytes`` names).

    ``headers`` may be ``None`` (confluent-kafka gives ``None`` when a record has no
    headers): reading then finds nothing and :meth:`set` creates the list, which
    the wrapper reads back from :attr:`headers` to pass to ``produce``.
    """

    default_formats = Format.KAFKA
    __slots__ = ("headers",)

    def __init__(self, headers: list[tuple[str, bytes]] | None) -> None:
        self.headers = headers
        self._index: dict[str, object] | None = None

    def _build(self) -> dict[str, object]:
        headers = self.headers
        if headers and type(headers) is list:
            # Fast paths: every item a ``(str, value)`` pair, as kafka-python and
            # aiokafka hand them out. Only names of LOWER_CASE_NAMES, each once (a
            # message we or our peers wrote): the list is the index, one ``dict()`` and
            # one C-level subset test. Otherwise one C-level comprehension. An item of
            # any other shape makes it raise or come out short; the checked loop below
            # then decides (duplicates also come out short: same result, slower).
            try:
                known = LOWER_CASE_NAMES
                index: dict[str, object] = dict(headers)
                if len(index) == len(headers) and index.keys() <= known:
                    self._index = index
                    return index
                index = {(key if key in known else key.lower()): value
                         for key, value in headers if type(key) is str}
            except (TypeError, ValueError, AttributeError):
                index = {}
            if len(index) == len(headers):
                self._index = index
                return index
        index = {}
        if headers:
            if not isinstance(headers, (list, tuple)):
                stats.incr(INVALID_CARRIER)
                headers = ()
            for item in headers:
                if isinstance(item, tuple) and len(item) == 2:
                    key = _key_text(item[0])
                    if key is not None:
                        index[key.lower()] = item[1]
        self._index = index
        return index

    def set(self, name: str, value: str | bytes) -> None:
        if self.headers is None:
            self.headers = []
        self.headers.append((name, value.encode("ascii") if isinstance(value, str) else value))
        self._index = None


class AmqpHeaders(_Indexed):
    """AMQP message headers (pika ``BasicProperties.headers``): ``dict`` whose
    values are ``str`` or ``bytes`` (and, from other peers, anything).

    ``headers`` may be ``None``; :meth:`set` then creates the dict, to be read back
    from :attr:`headers` into the properties.
    """

    default_formats = Format.TEXT
    __slots__ = ("headers",)

    def __init__(self, headers: MutableMapping[str, object] | None) -> None:
        self.headers = headers
        self._index: dict[str, object] | None = None

    def _build(self) -> dict[str, object]:
        index: dict[str, object] = {}
        headers = self.headers
        if headers:
            if not (type(headers) is dict or isinstance(headers, Mapping)):
                stats.incr(INVALID_CARRIER)
            else:
                for key, value in headers.items():
                    text = _key_text(key)
                    if text is not None:
                        index[text.lower()] = value
        self._index = index
        return index

    def set(self, name: str, value: str | bytes) -> None:
        if self.headers is None:
            self.headers = {}
        self.headers[name] = value
        self._index = None


class HttpHeaders(_Indexed):
    """HTTP headers: any mapping (dict, ``requests``' case-insensitive dict,
    ``http.client`` messages) or a WSGI ``environ``, where ``traceparent`` arrives
    as ``HTTP_TRACEPARENT`` and ``X-B3-TraceId`` as ``HTTP_X_B3_TRACEID``.

    Binary values cannot travel in HTTP headers, so the Elastic binary format is
    not in :attr:`default_formats` and :meth:`set` refuses ``bytes`` (counted).
    """

    default_formats = Format.TEXT
    __slots__ = ("headers",)

    def __init__(self, headers: Mapping[str, object]) -> None:
        self.headers = headers
        self._index: dict[str, object] | None = None

    def _build(self) -> dict[str, object]:
        index: dict[str, object] = {}
        headers = self.headers
        if not (type(headers) is dict or isinstance(headers, Mapping)):
            stats.incr(INVALID_CARRIER)
        elif headers:
            for key, value in headers.items():
                text = _key_text(key)
                if text is None:
                    continue
                if text[:5] == "HTTP_":
                    # WSGI CGI-style name; setdefault keeps a real header name first.
                    index.setdefault(text[5:].lower().replace("_", "-"), value)
                else:
                    index[text.lower()] = value
        self._index = index
        return index

    def set(self, name: str, value: str | bytes) -> None:
        headers = self.headers
        # ``type(...) is dict`` first: the ABC isinstance check costs more than the set.
        if isinstance(value, bytes) or not (type(headers) is dict or isinstance(headers, MutableMapping)):
            stats.incr(INVALID_CARRIER)
            return
        headers[name] = value
        self._index = None
