"""Consumer side, shared by every client: one CONSUMER span per message, ended when
the application is *done* with it.

"Consumed" means the handler finished, not that the record was polled. So a
:class:`Delivery` (span + identity) is opened when the client hands out a record
and closed with HANDLED or HANDLE_FAILED by whichever comes first:

* the application's explicit :class:`handling` block around its work (exact);
* implicitly, when the application asks the same consumer for more (next
  record, next poll) or closes it: the previous records are then taken as
  handled — unless :func:`defer` said their outcome comes later;
* implicitly, when the application commits or acks offsets that cover them
  (:mod:`commerce_observe.agent.messaging.commits`).

Iteration (``for msg in consumer``, ``getone``) also makes the record's span the
current one while the application works on it, so its own spans and domain
events join the producer's trace.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent._lightspan import LightSpan
from commerce_observe.agent.messaging import cloudevents as ce
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.consumer_attributes import constant_attributes, vet
from commerce_observe.agent.messaging.facts import MessageFact, Stage, message_fact
from commerce_observe.agent.messaging.producer import split_server
from commerce_observe.agent.messaging.spans import add_clean, merge_clean, start_child_of_remote, start_span
from commerce_observe.agent.propagation import BAGGAGE_HEADER, Carrier, extract, extract_parent

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

FAILED = "messaging.consumer_failed"
NEW_TRACE = "messaging.consume_new_trace"
BROKEN_CONTEXT = "messaging.consume_broken_context"
EVICTED = "messaging.pending_evicted"

#: Deliveries still open (``AgentState.deliveries``), by ``id(record)`` (the Delivery
#: holds the record, so the id cannot be reused while registered), are bounded: an
#: application that defers and never reports must not grow them forever.
MAX_OPEN = 65_536


class Delivery:
    """One received message and its CONSUMER span.

    The identity for the :class:`MessageFact` is kept as plain fields and the fact
    built only at :meth:`finish`, and only when the hub has a listener for it.
    """

    __slots__ = ("state", "span", "record", "system", "stream", "event_id", "event_type", "source",
                 "sequence", "partition", "offset", "group", "published", "explicit", "deferred", "done", "_context")

    def __init__(self, state: AgentState, span: trace.Span, record: object, system: str, stream: str,
                 event_id: str | None, event_type: str | None, source: str | None, sequence: int | None,
                 partition: int | None, offset: int | None, group: str | None, published: int | None) -> None:
        self.state = state
        self.span = span
        self._context: Context | None = None
        self.record = record
        self.system = system
        self.stream = stream
        self.event_id = event_id
        self.event_type = event_type
        self.source = source
        self.sequence = sequence
        self.partition = partition
        self.offset = offset
        self.group = group
        self.published = published
        self.explicit = False
        self.deferred = False
        self.done = False

    @property
    def context(self) -> Context:
        """A context whose current span is this one, built when first asked for (to make
        it current): records a ``poll`` hands out and nobody activates never need one."""
        context = self._context
        if context is None:
            context = self._context = trace.set_span_in_context(self.span)
        return context

    def _fact(self, stage: Stage, now: int, error: str | None) -> MessageFact:
        ctx = self.span.get_span_context()
        return message_fact(
            stage=stage, system=self.system, destination=self.stream, event_id=self.event_id,
            event_type=self.event_type, source=self.source, sequence=self.sequence,
            trace_id="%032x" % ctx.trace_id, span_id="%016x" % ctx.span_id, time_ns=now,  # %: half format()'s cost
            partition=self.partition, offset=self.offset, consumer_group=self.group, published_ns=self.published,
            error=error,
        )

    def finish(self, error: BaseException | None = None) -> None:
        """End the span and report HANDLED (``error`` None) or HANDLE_FAILED, once."""
        if self.done:
            return
        self.done = True
        state = self.state
        state.deliveries.pop(id(self.record), None)
        span = self.span
        text = None
        if error is not None:
            text = f"{type(error).__name__}: {error}"
            span.set_status(Status(StatusCode.ERROR, text))
            span.record_exception(error)
        now = time.time_ns()  # one clock read for the span's end, its latency and the fact
        if self.published is not None:
            if type(span) is LightSpan:  # a float under a key _begin vetted: the span stays vetted
                span.add_float(sc.LATENCY_MS, (now - self.published) / 1e6)
            else:
                add_clean(span, {sc.LATENCY_MS: (now - self.published) / 1e6})
        span.end(now)
        the_hub = state.hub
        if not the_hub.has_listeners(MessageFact):
            return
        the_hub.emit(self._fact(Stage.HANDLE_FAILED if error is not None else Stage.HANDLED, now, text))


def kafka_consumer_info(state: AgentState, group: Any,
                        servers: object) -> tuple[Any, tuple[str | None, int | None]]:
    """What a Kafka wrapper keeps in :attr:`Tracker.info`, from a consumer's config read once:
    its group and the first server (the span's ``server.*``).

    The bootstrap setting is also noted as given, string or list, for the default
    audit cluster, as the producer's :class:`~commerce_observe.agent.messaging.producer.Endpoint`
    does: the first server alone drops the others and loses an IPv6 host's brackets.
    """
    state.kafka.note(servers)
    return group, split_server(servers)


def begin_delivery(state: AgentState, record: object, system: str, destination: str, carrier: Carrier, *,
                   partition: int | None = None, offset: int | None = None, key: object = None,
                   group: str | None = None, server: tuple[str | None, int | None] = (None, None),
                   timestamp_ms: int | None = None, stream: str | None = None,
                   attributes: dict[str, AttributeValue] | None = None, message_id: object = None) -> Delivery | None:
    """Open the CONSUMER span for ``record``, child of the producer's context, in ``state``.

    ``message_id``: the id the producer gave the message in the protocol itself (AMQP's
    ``message_id`` property), the event id of a message without a usable ``ce_id``
    (another producer's): so a message handled twice can still be told apart from
    two messages.

    A record without usable trace headers still gets a span, in a new trace
    (counted; ``messaging.consume_broken_context`` when headers were there but bad).
    Returns None (counted) when our code failed; strict mode re-raises.
    """
    try:
        return _begin(state, record, system, destination, carrier, partition, offset, key, group, server,
                      timestamp_ms, stream or destination, attributes, message_id)
    except Exception as exc:
        stats.swallow(FAILED, "consumer instrumentation failed: %r", exc)
        return None




#: A ``ce_time`` outside [2000-01-01, now + a day] is a broken clock or a broken peer,
#: not a publication time: taken as one, it would make every such message LATE.
_EARLIEST_NS = 946_684_800 * 1_000_000_000
_SKEW_NS = 86_400 * 1_000_000_000


def _begin(state: AgentState, record: object, system: str, destination: str, carrier: Carrier, partition: int | None,
           offset: int | None, key: object, group: str | None, server: tuple[str | None, int | None],
           timestamp_ms: int | None, stream: str, extra: dict[str, AttributeValue] | None,
           message_id: object) -> Delivery:
    now = time.time_ns()
    # The span starts straight from the parent's span context; only W3C baggage (which
    # a sampler may read) needs the whole extracted context.
    parent: Context | None = None
    remote: SpanContext | None = None
    policy = state.propagation
    # Our carriers hand out their index's ``dict.get``: the ``ce_*`` reads below are C calls.
    lookup = getattr(carrier, "lookup", None)
    get = lookup() if lookup is not None else carrier.get
    if policy.baggage and get(BAGGAGE_HEADER) is not None:
        empty = Context()
        parent = extract(carrier, empty, policy)  # returns ``empty`` itself when there is no usable parent
        found = parent is not empty
    else:
        remote = extract_parent(carrier, get)
        found = remote is not None
    if not found:
        stats.incr(NEW_TRACE)
        if not sc.TRACE_HEADERS.isdisjoint(carrier.names()):
            stats.incr(BROKEN_CONTEXT)
    # Peer-set headers: whatever they hold (not UTF-8, huge, Arabic-Indic digits for a
    # number, an AMQP array nested thousands deep) reads as absent and is counted; it
    # never costs the message its span or its HANDLED record.
    text = ce.header_text
    event_id = text(get(sc.H_ID))
    if event_id is None and message_id is not None:
        event_id = text(message_id) or None
    type_header = text(get(sc.H_TYPE))
    source = text(get(sc.H_SOURCE))
    raw = text(get(sc.H_SEQUENCE))
    sequence = ce.checked(ce.parse_sequence(raw), raw)
    raw = text(get(sc.H_TIME))
    published = ce.parse_time(raw)
    if raw is not None and (published is None or not _EARLIEST_NS <= published <= now + _SKEW_NS):
        published = ce.checked(None, raw)
    if published is None and timestamp_ms is not None and timestamp_ms > 0:
        published = timestamp_ms * 1_000_000

    constant = constant_attributes(state, system, destination, group, server)
    name = constant.name
    attrs = constant.attrs.copy()
    if event_id is not None:
        attrs[sc.MESSAGE_ID] = event_id
    if source is not None:
        attrs[sc.CE_EVENT_SOURCE] = source
    if type_header is not None:
        attrs[sc.CE_EVENT_TYPE] = type_header
    if sequence is not None:
        attrs[sc.SEQUENCE] = sequence
    partition_text = None
    if partition is not None and partition >= 0:
        partition_text = attrs[sc.PARTITION] = str(partition)
    if offset is not None and offset >= 0:
        attrs[sc.KAFKA_OFFSET] = offset
    key_text: str | None = None
    if isinstance(key, (bytes, bytearray, str)):
        try:
            key_text = attrs[sc.KAFKA_KEY] = key if isinstance(key, str) else bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            pass
    if published is not None:
        attrs[sc.RECEIVE_LATENCY_MS] = (now - published) / 1e6
    rest = merge_clean(attrs, extra) if extra else None
    # attrs: all str/int/float/bool
    span = (start_span(state, name, parent, SpanKind.CONSUMER, now, attrs) if parent is not None
            else start_child_of_remote(state, name, remote, SpanKind.CONSUMER, now, attrs))
    if rest and span.is_recording():
        span.set_attributes(rest)  # validated
    elif not extra and type(span) is LightSpan and span.attributes is attrs:  # as built here (no wrapper's
        span.vetted = vet(span, constant, event_id, source, type_header, key_text, partition_text, sequence,
                          offset)  # attributes, no sampler's, none cut)
    delivery = Delivery(state, span, record, system, stream, event_id, ce.event_type_of(type_header),
                        source, sequence, partition, offset, group, published)
    deliveries = state.deliveries
    if len(deliveries) >= MAX_OPEN:
        _evict(deliveries)
    deliveries[id(record)] = delivery
    return delivery


def _evict(deliveries: dict[int, Delivery]) -> None:
    try:
        oldest = deliveries.pop(next(iter(deliveries)))
    except (StopIteration, KeyError, RuntimeError):
        return
    stats.incr(EVICTED)
    oldest.done = True
    oldest.span.set_attribute(sc.OUTCOME, "unknown")
    oldest.span.end()


class Tracker:
    """The open implicit deliveries of one consumer (or channel), and the active one."""

    __slots__ = ("pending", "active", "token", "owner", "busy", "info", "held", "__weakref__")

    def __init__(self) -> None:
        #: What the client wrapper reads once per consumer (config: group, servers).
        self.info: Any = None
        self.pending: list[Delivery] = []
        self.active: Delivery | None = None
        self.token: Any = None
        #: The asyncio task that attached ``token`` (async clients set it): a token can
        #: only be detached in the context that attached it.
        self.owner: object = None
        self.busy = False  # a client method that calls another traced one is running
        #: Acks held while a channel dispatches deliveries, sent after one checkpoint
        #: (pika; see :mod:`commerce_observe.agent.messaging.commits`); None: not holding.
        self.held: list[Any] | None = None

    def settle(self) -> None:
        """The application asked for more: what it got before is handled."""
        self.release()
        pending, self.pending = self.pending, []
        for delivery in pending:
            if not (delivery.explicit or delivery.deferred):
                delivery.finish()

    def disown(self, task: object) -> None:
        """Called by async wrappers with the running task: a current-span token that
        another task attached cannot be detached from here, so it is dropped (that
        task's context keeps the span current until the task ends)."""
        if self.token is not None and self.owner is not task:
            self.token = None
            self.active = None

    def release(self) -> None:
        """The loop was left (break or exception): stop being current, keep the outcome open.

        Whether the handler raised cannot be seen from here; the record is settled
        by the next request to the consumer or its close (or by :class:`handling`).
        """
        if self.token is not None:
            token, self.token = self.token, None
            otel_context.detach(token)
        self.active = None

    def add(self, delivery: Delivery) -> None:
        self.pending.append(delivery)

    def activate(self, delivery: Delivery) -> None:
        """Make ``delivery``'s span current until the next :meth:`settle`."""
        self.pending.append(delivery)
        self.active = delivery
        self.token = otel_context.attach(delivery.context)


def tracker_for(state: AgentState, consumer: Any) -> Tracker:
    """The :class:`Tracker` of ``consumer`` (or channel) in ``state``."""
    trackers = state.trackers
    tracker = trackers.get(consumer)
    if tracker is None:
        tracker = trackers.setdefault(consumer, Tracker())
    return tracker


def delivery_of(state: AgentState, record: object) -> Delivery | None:
    """The open delivery in ``state`` of a record handed out by an instrumented consumer."""
    delivery = state.deliveries.get(id(record))
    return delivery if delivery is not None and delivery.record is record else None
