"""Producer side, shared by every client: one PRODUCER span and one header set per message.

A client wrapper does three things: find its :class:`Endpoint` in the agent state
it was handed (who is sending, to which servers, reported where), call
:func:`begin_publish` with a carrier over a *copy* of the message headers, and
report the broker's answer on the returned :class:`Publication` (``acked`` / ``failed``). Everything that makes messages
findable by id — the span, trace headers in every format, the CloudEvents headers,
the sequence and the :class:`MessageFact` records — is decided here, once.

A message is tied to a domain event by :class:`publishing`, a context manager
over a context variable, rather than by a ``headers=`` helper: it works the same
for all four clients, for sends buried in library code, and in asyncio tasks.
"""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.events.model import DomainEvent, new_event_id
from commerce_observe.agent.events.recorder import event_attributes, span_context_of
from commerce_observe.agent.hub import Hub
from commerce_observe.agent.messaging import cloudevents as ce
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.facts import MessageFact, Stage, message_fact
from commerce_observe.agent.messaging.spans import add_clean, merge_clean, start_span
from commerce_observe.agent.propagation import Carrier, Format, KafkaHeaders, inject
from commerce_observe.agent.propagation.api import trace_headers

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

_event: ContextVar[DomainEvent | None] = ContextVar("commerce_observe.publishing", default=None)

FAILED = "messaging.producer_failed"


class publishing:
    """``with publishing(event):`` — messages sent in the block carry ``event``.

    They get the event's id as ``ce_id`` (so the consumer's audit record and the
    producer's domain event share one id), ``commerce.event.type`` as ``ce_type``
    and the event's ``commerce.*`` attributes on the PRODUCER span. ``None`` (what
    the event API returns for an invalid event) is accepted and ties nothing.

    With no span active, the block continues the event's own trace (the span it was
    recorded on, ``commerce <type>``): the event, its PRODUCER spans and everything
    downstream are one trace, so a finding's trace link shows the event itself.
    A span that is active stays the parent.
    """

    __slots__ = ("event", "_token", "_trace_token")

    def __init__(self, event: DomainEvent | None) -> None:
        self.event = event
        self._token: Token[DomainEvent | None] | None = None
        self._trace_token: Token[Context] | None = None

    def __enter__(self) -> DomainEvent | None:
        event = self.event
        self._token = _event.set(event)
        if event is not None and event.trace_id and not trace.get_current_span().get_span_context().is_valid:
            parent = span_context_of(event)
            if parent is not None:
                self._trace_token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(parent)))
        return event

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._trace_token is not None:
            otel_context.detach(self._trace_token)
            self._trace_token = None
        if self._token is not None:
            _event.reset(self._token)
            self._token = None


def current_event() -> DomainEvent | None:
    """The domain event the enclosing :class:`publishing` block ties messages to."""
    return _event.get()


def split_server(servers: object) -> tuple[str | None, int | None]:
    """First ``host[:port]`` of a bootstrap string or list (guarded: odd input gives Nones)."""
    if isinstance(servers, (list, tuple)):
        servers = servers[0] if servers else None
    if not isinstance(servers, str) or not servers:
        return None, None
    first = servers.split(",", 1)[0].strip()
    host, sep, port = first.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]") or None, int(port)
    return first, None


class Endpoint:
    """One producer instance: its CloudEvents source, its sequences, its servers, and
    the agent state its messages are reported to."""

    __slots__ = ("state", "system", "source", "source_header", "sequencer", "server_address", "server_port",
                 "constants", "__weakref__")

    def __init__(self, state: AgentState, system: str, label: str, servers: object) -> None:
        self.state = state
        self.system = system
        self.source = ce.source_for(state.service_name, label)
        self.source_header = (sc.H_SOURCE, self.source.encode())  #: the ``ce_source`` Kafka header, shared
        self.sequencer = ce.Sequencer()
        self.server_address, self.server_port = split_server(servers)
        if system == sc.KAFKA:
            state.kafka.note(servers)
        #: Per (destination, operation): the span name and the attributes all its messages share.
        self.constants: dict[tuple[str, str], tuple[str, dict[str, AttributeValue]]] = {}


def cached_endpoint(state: AgentState, client: Any) -> Endpoint | None:
    """The :class:`Endpoint` of ``client`` if it sent before (lets wrappers skip reading its config)."""
    return state.endpoints.get(client)


def endpoint_for(state: AgentState, client: Any, system: str, label: str, servers: Any) -> Endpoint:
    """The :class:`Endpoint` of ``client`` in ``state`` (created on its first message)."""
    endpoints = state.endpoints
    endpoint = endpoints.get(client)
    if endpoint is None:
        endpoint = endpoints.setdefault(client, Endpoint(state, system, label, servers))
    return endpoint


class Publication:
    """One message on its way: ends its span and reports once, on ack or failure."""

    __slots__ = ("span", "fact", "hub", "_done")

    def __init__(self, span: trace.Span, fact: MessageFact | None, hub: Hub) -> None:
        self.span = span
        self.fact = fact
        self.hub = hub
        self._done = False

    def on_ack(self, metadata: Any) -> None:
        """Future callback (kafka-python ``RecordMetadata``, aiokafka alike): a bound
        method, so a send needs no closure."""
        try:
            partition, offset = metadata.partition, metadata.offset
        except AttributeError:
            partition = offset = None
        self.acked(partition, offset)

    def acked(self, partition: int | None = None, offset: int | None = None) -> None:
        if self._done:
            return
        self._done = True
        span = self.span
        if partition is not None and partition >= 0:
            if offset is not None and offset >= 0:  # one attribute-lock round trip, not two
                add_clean(span, {sc.PARTITION: str(partition), sc.KAFKA_OFFSET: offset})
            else:
                add_clean(span, {sc.PARTITION: str(partition)})
        elif offset is not None and offset >= 0:
            add_clean(span, {sc.KAFKA_OFFSET: offset})
        if self.fact is None:
            span.end()
            return
        now = time.time_ns()  # one clock read for the span's end and the fact
        span.end(now)
        self._report(Stage.ACKED, partition, offset, None, now)

    def failed(self, error: BaseException | str) -> None:
        if self._done:
            return
        self._done = True
        span = self.span
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        span.set_status(Status(StatusCode.ERROR, text))
        if isinstance(error, BaseException):
            span.record_exception(error)
        now = time.time_ns()
        span.end(now)
        self._report(Stage.SEND_FAILED, None, None, text, now)

    def _report(self, stage: Stage, partition: int | None, offset: int | None, error: str | None,
                now: int) -> None:
        base = self.fact
        if base is None:
            return
        the_hub = self.hub
        if not the_hub.has_listeners(MessageFact):
            return
        the_hub.emit(message_fact(
            stage=stage, system=base.system, destination=base.destination, event_id=base.event_id,
            event_type=base.event_type, source=base.source, sequence=base.sequence, trace_id=base.trace_id,
            span_id=base.span_id, time_ns=now, partition=partition, offset=offset,
            order_id=base.order_id, payment_id=base.payment_id, error=error,
        ))


def begin_publish(endpoint: Endpoint, destination: str, carrier: Carrier, formats: Format, *,
                  operation: str = "send", key: object = None, stream: str | None = None,
                  attributes: dict[str, AttributeValue] | None = None) -> Publication | None:
    """Start the PRODUCER span, write all headers the application did not set, emit PUBLISHED.

    ``stream`` (default ``destination``) keys the sequence and names the fact's
    destination: for AMQP it is ``exchange/routing_key``, finer than the exchange
    the span is named after.

    Returns None (counted) if anything of ours failed; the caller then sends the
    message untouched. In strict mode the error propagates instead.
    """
    try:
        return _begin(endpoint, destination, carrier, formats, operation, key, stream or destination, attributes)
    except Exception as exc:
        stats.swallow(FAILED, "publishing instrumentation failed: %r", exc)
        return None


def _constant_attributes(endpoint: Endpoint, destination: str,
                         operation: str) -> tuple[str, dict[str, AttributeValue]]:
    """The span name and the attributes every message of ``endpoint`` to ``destination`` shares, built once."""
    key = (destination, operation)
    found = endpoint.constants.get(key)
    if found is None:
        attrs: dict[str, AttributeValue] = {
            sc.SYSTEM: endpoint.system,
            sc.DESTINATION: destination,
            sc.OPERATION_TYPE: "send" if operation == "send" else "publish",
            sc.OPERATION: "publish",
        }
        if endpoint.server_address is not None:
            attrs[sc.SERVER_ADDRESS] = endpoint.server_address
            if endpoint.server_port is not None:
                attrs[sc.SERVER_PORT] = endpoint.server_port
        found = (f"{operation} {destination}", attrs)
        if len(endpoint.constants) < 1024:  # bounded: destinations are few, but not trusted to be
            endpoint.constants[key] = found
    return found


_SPECVERSION_HEADER = (sc.H_SPECVERSION, ce.SPECVERSION.encode())
#: ``ce_type`` header tuples by type text (event types are a closed set; bounded anyway).
_TYPE_HEADERS: dict[str, tuple[str, bytes]] = {}


def _type_header(type_text: str) -> tuple[str, bytes]:
    found = _TYPE_HEADERS.get(type_text)
    if found is None:
        found = (sc.H_TYPE, type_text.encode())
        if len(_TYPE_HEADERS) < 256:
            _TYPE_HEADERS[type_text] = found
    return found


def _begin(endpoint: Endpoint, destination: str, carrier: Carrier, formats: Format, operation: str,
           key: object, stream: str, extra: dict[str, AttributeValue] | None) -> Publication:
    event = _event.get()
    now = time.time_ns()
    # Fast path: a Kafka record without application headers (the common case) gets
    # its whole header list built here at once, from cached header tuples where the
    # value is per producer or constant; anything else goes through the carrier.
    fresh = type(carrier) is KafkaHeaders and not carrier.headers
    ours: list[tuple[str, str]] = []
    event_id: str | None
    sequence: int | None
    if fresh:
        event_id = event.event_id if event is not None else new_event_id()
        type_header = ce.event_type_header(event.type.value if event is not None else None)
        source = endpoint.source
        sequence = endpoint.sequencer.next(stream)
    else:
        present: AbstractSet[str] = carrier.names()
        event_id = ce.header_text(carrier.get(sc.H_ID)) if sc.H_ID in present else None
        if event_id is None:
            event_id = event.event_id if event is not None else new_event_id()
            ours.append((sc.H_ID, event_id))
        if sc.H_TYPE in present:
            type_header = ce.header_text(carrier.get(sc.H_TYPE)) or ce.GENERIC_TYPE
        else:
            type_header = ce.event_type_header(event.type.value if event is not None else None)
            ours.append((sc.H_TYPE, type_header))
        if sc.H_SOURCE in present:
            source = ce.header_text(carrier.get(sc.H_SOURCE)) or endpoint.source
        else:
            source = endpoint.source
            ours.append((sc.H_SOURCE, source))
        if sc.H_SPECVERSION not in present:
            ours.append((sc.H_SPECVERSION, ce.SPECVERSION))
        if sc.H_TIME not in present:
            ours.append((sc.H_TIME, ce.format_time(now)))
        if sc.H_SEQUENCE in present:
            sequence = ce.parse_sequence(ce.header_text(carrier.get(sc.H_SEQUENCE)))
        else:
            sequence = endpoint.sequencer.next(stream)
            ours.append((sc.H_SEQUENCE, ce.format_sequence(sequence)))

    span_name, constants = _constant_attributes(endpoint, destination, operation)
    attrs = constants.copy()
    attrs[sc.MESSAGE_ID] = event_id
    attrs[sc.CE_EVENT_SOURCE] = source
    attrs[sc.CE_EVENT_TYPE] = type_header
    if sequence is not None:
        attrs[sc.SEQUENCE] = sequence
    if key is not None:
        if type(key) is bytes:
            try:
                attrs[sc.KAFKA_KEY] = key.decode("utf-8")
            except UnicodeDecodeError:
                pass
        else:
            text = key if type(key) is str else _utf8(key)
            if text is not None:
                attrs[sc.KAFKA_KEY] = text
    rest = merge_clean(attrs, extra)
    state = endpoint.state
    span = start_span(state, span_name, None, SpanKind.PRODUCER, now, attrs)  # attrs: all str/int
    if (event is not None or rest) and span.is_recording():
        if event is not None:
            span.set_attributes(event_attributes(event))  # may hold sequences: validated
        if rest:
            span.set_attributes(rest)
    ctx = span.get_span_context()
    tid = "%032x" % ctx.trace_id  # the % operator: half the cost of format()
    sid = "%016x" % ctx.span_id
    if fresh:
        headers = [(sc.H_ID, event_id.encode()), _type_header(type_header), endpoint.source_header,
                   _SPECVERSION_HEADER, (sc.H_TIME, ce.format_time(now).encode()),
                   (sc.H_SEQUENCE, b"%020d" % sequence)]  # type: ignore[str-format]
        if ctx.is_valid:  # the carrier has no header yet: nothing to skip
            headers += [(name, value.encode() if isinstance(value, str) else value)
                        for name, value in trace_headers(ctx, tid, sid, formats.value, policy=state.propagation)]
        carrier.headers = headers  # type: ignore[attr-defined]
    else:
        for name, value in ours:
            carrier.set(name, value)
        inject(carrier, trace.set_span_in_context(span), formats, state.propagation)

    fact = None
    the_hub = state.hub
    if the_hub.has_listeners(MessageFact):
        if event is None:
            fact = message_fact(stage=Stage.PUBLISHED, system=endpoint.system, destination=stream, event_id=event_id,
                               event_type=ce.event_type_of(type_header), source=source, sequence=sequence,
                               trace_id=tid, span_id=sid, time_ns=now)
        else:
            fact = message_fact(stage=Stage.PUBLISHED, system=endpoint.system, destination=stream, event_id=event_id,
                               event_type=event.type.value, source=source, sequence=sequence, trace_id=tid,
                               span_id=sid, time_ns=now, order_id=event.order_id, payment_id=event.payment_id)
        the_hub.emit(fact)
    return Publication(span, fact, the_hub)


def _utf8(value: object) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None
