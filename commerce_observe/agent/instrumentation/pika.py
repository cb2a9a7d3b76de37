"""pika (RabbitMQ): PRODUCER span per ``basic_publish``, CONSUMER span per delivery.

Publish: both ``BlockingChannel.basic_publish`` and the core
``Channel.basic_publish`` are wrapped (the async adapters use the core one); a
context variable marks the blocking call so its inner core call is not traced
twice. Headers go into a *copy* of the properties. The span ends when the call
returns: with publisher confirms on a blocking channel that is the broker's
ack (a nack or unroutable return raises, and is recorded as SEND_FAILED);
without confirms it only means "written to the connection".

Consume: the application's ``on_message_callback`` runs inside the delivery's
span and reports HANDLED / HANDLE_FAILED when it returns / raises (unless it
called :func:`~commerce_observe.agent.messaging.defer`). ``BlockingChannel`` registers
its own dispatcher with the core channel; that one is recognised and left alone,
so each delivery gets exactly one span, at the time the application handles it.
``BlockingChannel.basic_get`` behaves like a poll: settled by the next
``basic_get``, the next delivery on the channel, or ``close``.

``BlockingChannel.consume`` (the generator) is handled like kafka-python's
iterator: each yielded message opens its span, current while the loop body runs,
and is settled (HANDLED) when the application asks for the next item (a message
or the ``(None, None, None)`` of an inactivity timeout, which opens nothing),
when the generator ends, or on ``cancel()`` / ``close()`` / ``basic_get``.
Leaving the loop (``break``, an exception) only stops the span being current:
whether the body failed cannot be seen from the generator, so the outcome stays
open until ``cancel()`` (which pika asks for after leaving the loop), ``close()``
or a :class:`~commerce_observe.agent.messaging.handling` block settles it.

Acks (see :mod:`commerce_observe.agent.messaging.commits`): ``basic_ack`` settles
the deliveries it covers (by delivery tag, ``multiple`` included) - an ack inside
the callback is the application's word that it is done - and no ack, nack or
reject is sent before a checkpoint made their records durable. Inside a
``BlockingChannel`` dispatch round (the callbacks of every delivery pika had
buffered, up to the prefetch window) they are held and sent together after *one*
checkpoint at the end of the round, in order; outside one (``consume()``
generator, ``basic_get``) each pays its own checkpoint.

The asynchronous adapters (``SelectConnection``, ``AsyncioConnection``,
``TornadoConnection``: the core ``Channel`` on ``BaseConnection``) need no holding:
an ack there only appends its frame to the transport's write buffer, which the I/O
loop sends after the current callbacks return. So the core ``basic_ack`` /
``basic_nack`` / ``basic_reject`` settle like the blocking ones, and the end of the
data round that ran the callbacks (``Connection._on_data_available``: the frames of
one read) pays *one* checkpoint if any ack was made in it, before the loop can send
them; an ack made outside a round (a timer, another coroutine) pays its own
checkpoint at once.

The AMQP destination is the exchange (``amq.default`` for ""); sequences and
facts are per ``exchange/routing_key``. A message without a usable ``ce_id``
(another producer's) is identified by its AMQP ``message_id`` property when it has
one; without either it has no identity (the ``redelivered`` flag says the broker
delivered it before, not that anyone handled it) and its records are only counted.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context

from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.commits import checkpoint, keeps_records, settle_covered
from commerce_observe.agent.messaging.consumer import Delivery, begin_delivery, tracker_for
from commerce_observe.agent.messaging.producer import begin_publish, endpoint_for
from commerce_observe.agent.propagation import AmqpHeaders, Format

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC
_in_blocking_publish: ContextVar[bool] = ContextVar("commerce_observe.pika_publish", default=False)
#: Set while a ``BlockingChannel`` ack calls the core one (it was held or checkpointed already).
_in_blocking_ack: ContextVar[bool] = ContextVar("commerce_observe.pika_ack", default=False)
#: While a connection processes one read's frames (:func:`_data_round`): the acks made meanwhile.
_round_acks: ContextVar[list[bool] | None] = ContextVar("commerce_observe.pika_round", default=None)


def _server(channel: Any) -> tuple[str | None, int | None]:
    """Guarded: the connection parameters sit on the (impl) connection."""
    try:
        conn = channel.connection
        params = getattr(conn, "params", None) or conn._impl.params
        return str(params.host), int(params.port)
    except Exception:
        return None, None


def _names(exchange: Any, routing_key: Any) -> tuple[str, str]:
    destination = exchange if isinstance(exchange, str) and exchange else "amq.default"
    return destination, f"{exchange or ''}/{routing_key or ''}"


def _publish_args(exchange: Any, routing_key: Any, body: Any = None, properties: Any = None,
                  *_rest: Any, **_kw: Any) -> tuple[Any, Any, Any]:
    return exchange, routing_key, properties


def _publish(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _in_blocking_publish.get():
        return wrapped(*args, **kwargs)
    exchange, routing_key, properties = _publish_args(*args, **kwargs)
    import pika

    props = copy.copy(properties) if properties is not None else pika.BasicProperties()
    headers = props.headers
    carrier = AmqpHeaders(dict(headers) if isinstance(headers, dict) else None)
    destination, stream = _names(exchange, routing_key)
    host, port = _server(instance)
    endpoint = endpoint_for(state, instance, sc.RABBITMQ, "pika", f"{host}:{port}" if host else None)
    publication = begin_publish(endpoint, destination, carrier, FORMATS, operation="publish", stream=stream,
                                attributes={sc.RABBITMQ_ROUTING_KEY: str(routing_key)})
    if publication is None:
        return wrapped(*args, **kwargs)
    props.headers = carrier.headers
    if len(args) >= 4:
        args = args[:3] + (props,) + args[4:]
    else:
        kwargs = dict(kwargs, properties=props)
    token = _in_blocking_publish.set(True)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        publication.failed(exc)
        raise
    finally:
        _in_blocking_publish.reset(token)
    publication.acked()
    return result


def _open(state: AgentState, channel: Any, method: Any, properties: Any, queue: Any) -> Delivery | None:
    destination, stream = _names(method.exchange, method.routing_key)
    host, port = _server(channel)
    stamp = getattr(properties, "timestamp", None)
    attributes: dict[str, Any] = {sc.RABBITMQ_ROUTING_KEY: str(method.routing_key),
                                  sc.RABBITMQ_DELIVERY_TAG: int(method.delivery_tag)}
    if isinstance(queue, str):
        attributes[sc.SUBSCRIPTION] = queue
    # A queue is RabbitMQ's consumer group: its consumers compete, other queues get their own copy.
    return begin_delivery(state, method, sc.RABBITMQ, destination, AmqpHeaders(getattr(properties, "headers", None)),
                          group=queue if isinstance(queue, str) else None,
                          server=(host, port), stream=stream, attributes=attributes,
                          timestamp_ms=stamp * 1000 if isinstance(stamp, int) else None,
                          message_id=getattr(properties, "message_id", None))


def _traced_callback(state: AgentState, callback: Any, queue: Any) -> Any:
    def on_message(channel: Any, method: Any, properties: Any, body: Any) -> Any:
        tracker_for(state, channel).settle()  # a pending basic_get on this channel is done by now
        delivery = _open(state, channel, method, properties, queue)
        if delivery is None:
            return callback(channel, method, properties, body)
        tracker = tracker_for(state, channel)
        tracker.pending.append(delivery)  # so that an ack inside the callback settles it
        token = otel_context.attach(delivery.context)
        try:
            result = callback(channel, method, properties, body)
        except BaseException as exc:
            delivery.finish(exc)
            raise
        finally:
            otel_context.detach(token)
        if not delivery.deferred:
            delivery.finish()
        return result

    on_message.__wrapped__ = callback  # type: ignore[attr-defined]
    return on_message


def _consume(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    def bind(queue: Any, on_message_callback: Any, *rest: Any, **kw: Any) -> tuple[Any, Any]:
        return queue, on_message_callback

    queue, callback = bind(*args, **kwargs)
    owner = getattr(callback, "__self__", None)
    if not callable(callback) or type(owner).__name__ == "BlockingChannel":
        return wrapped(*args, **kwargs)  # BlockingChannel's own dispatcher: traced at dispatch
    traced = _traced_callback(state, callback, queue)
    if len(args) >= 2:
        args = (args[0], traced) + args[2:]
    else:
        kwargs = dict(kwargs, on_message_callback=traced)
    return wrapped(*args, **kwargs)


def _get(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker = tracker_for(state, instance)
    tracker.settle()
    result = wrapped(*args, **kwargs)
    try:
        method, properties, _body = result
    except (TypeError, ValueError):
        return result
    if method is not None:
        delivery = _open(state, instance, method, properties, args[0] if args else kwargs.get("queue"))
        if delivery is not None:
            tracker.activate(delivery)
    return result


def _ack_args(delivery_tag: int = 0, multiple: bool = False, *_rest: Any, **_kw: Any) -> tuple[int, bool]:
    return delivery_tag, multiple


def _covers(tag: int, multiple: bool) -> Any:
    def covers(delivery: Delivery) -> bool:
        own = getattr(delivery.record, "delivery_tag", None)
        if not isinstance(own, int):
            return False
        return own == tag or (multiple and (tag == 0 or own <= tag))

    return covers


def _settle_acked(state: AgentState, channel: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """An ack settles the deliveries of ``channel`` it covers (nack and reject settle nothing)."""
    if name == "basic_ack":
        try:
            tag, multiple = _ack_args(*args, **kwargs)
        except TypeError:
            return
        settle_covered(tracker_for(state, channel), None, _covers(tag, multiple))


def _ack(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``BlockingChannel.basic_ack`` / ``basic_nack`` / ``basic_reject``: settle (ack), then hold or checkpoint."""
    tracker = tracker_for(state, instance)
    name = getattr(wrapped, "__name__", "")
    _settle_acked(state, instance, name, args, kwargs)
    held = tracker.held
    if held is not None:
        held.append((name, args, kwargs))
        return None
    checkpoint(state, sc.RABBITMQ)
    token = _in_blocking_ack.set(True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _in_blocking_ack.reset(token)


def _core_ack(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The core ``Channel.basic_ack`` / ``basic_nack`` / ``basic_reject`` (the asynchronous
    adapters): settle (ack); inside a data round the round's end checkpoints before the
    frame can leave, outside one a checkpoint now."""
    if _in_blocking_ack.get():
        return wrapped(*args, **kwargs)  # a BlockingChannel's: held or checkpointed there
    _settle_acked(state, instance, getattr(wrapped, "__name__", ""), args, kwargs)
    acks = _round_acks.get()
    if acks is not None:
        acks.append(True)
    else:
        checkpoint(state, sc.RABBITMQ)
    return wrapped(*args, **kwargs)


def _data_round(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Connection._on_data_available``: the frames of one read from the socket, and
    the callbacks they run. An ack made meanwhile only joins the transport's write
    buffer, which the I/O loop sends once this returns: so one checkpoint here, at
    the end of the round, makes every record the round's acks cover durable before
    any of them is on the wire - without holding or reordering frames."""
    if not keeps_records(state):
        return wrapped(*args, **kwargs)
    acks: list[bool] = []
    token = _round_acks.set(acks)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _round_acks.reset(token)
        if acks:
            checkpoint(state, sc.RABBITMQ)


def _dispatch(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``BlockingChannel._dispatch_events``: acks of the round held, sent after one checkpoint."""
    tracker = tracker_for(state, instance)
    if tracker.held is not None or not keeps_records(state):
        return wrapped(*args, **kwargs)
    tracker.held = []
    try:
        return wrapped(*args, **kwargs)
    finally:
        held, tracker.held = tracker.held, None
        if held:
            _send_held(state, instance, held)


def _send_held(state: AgentState, channel: Any, held: list[Any]) -> None:
    checkpoint(state, sc.RABBITMQ)
    token = _in_blocking_ack.set(True)
    try:
        impl = channel._impl
        for name, args, kwargs in held:
            getattr(impl, name)(*args, **kwargs)
        channel._flush_output()
    except Exception as exc:  # channel closed meanwhile: the broker redelivers the unacked ones
        stats.record_failure("messaging.held_ack_failed", "sending %d held acks failed: %r", len(held), exc)
    finally:
        _in_blocking_ack.reset(token)


def _settle_first(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``close`` / ``cancel``: what the channel handed out before is handled."""
    tracker_for(state, instance).settle()
    return wrapped(*args, **kwargs)


def _consume_generator(state: AgentState, wrapped: Any, instance: Any,
                       args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    def bind(queue: Any, *rest: Any, **kw: Any) -> Any:
        return queue

    messages = wrapped(*args, **kwargs)
    if not isinstance(messages, Generator):
        return messages  # not the generator we know: leave it alone
    return _traced_messages(state, instance, messages, bind(*args, **kwargs))


Message = tuple[Any, Any, Any]


def _traced_messages(state: AgentState, channel: Any, messages: Generator[Message, None, None],
                     queue: Any) -> Iterator[Message]:
    """Yield pika's items; each message's span is current until the next item is asked for."""
    tracker = tracker_for(state, channel)
    try:
        while True:
            tracker.settle()  # the application asks for more: the previous message is handled
            try:
                item = next(messages)
            except StopIteration:  # cancelled (by the client or the broker)
                return
            method = item[0] if isinstance(item, tuple) and len(item) == 3 else None
            if method is not None:
                delivery = _open(state, channel, method, item[1], queue)
                if delivery is not None:
                    tracker.activate(delivery)
            yield item
    finally:
        # Left by break / exception / close: stop being current, outcome stays open.
        # Closed later from another context (garbage collection): its token is not ours to reset.
        active = tracker.active
        if active is not None and otel_context.get_current() is not active.context:
            tracker.token = None
        tracker.release()
        messages.close()


class PikaInstrumentor(Instrumentor):
    name = "pika"
    module = "pika"
    requirements = ("pika >= 1.3",)

    def patches(self) -> list[Patch]:
        blocking = "pika.adapters.blocking_connection"
        bind = self.bind
        return [
            Patch(blocking, "BlockingChannel.basic_publish", bind(_publish)),
            Patch("pika.channel", "Channel.basic_publish", bind(_publish)),
            Patch(blocking, "BlockingChannel.basic_consume", bind(_consume)),
            Patch("pika.channel", "Channel.basic_consume", bind(_consume)),
            Patch(blocking, "BlockingChannel.basic_get", bind(_get)),
            Patch(blocking, "BlockingChannel.consume", bind(_consume_generator)),
            Patch(blocking, "BlockingChannel.cancel", bind(_settle_first)),
            Patch(blocking, "BlockingChannel.close", bind(_settle_first)),
            Patch(blocking, "BlockingChannel.basic_ack", bind(_ack)),
            Patch(blocking, "BlockingChannel.basic_nack", bind(_ack)),
            Patch(blocking, "BlockingChannel.basic_reject", bind(_ack)),
            Patch(blocking, "BlockingChannel._dispatch_events", bind(_dispatch), optional=True),
            Patch("pika.channel", "Channel.basic_ack", bind(_core_ack)),
            Patch("pika.channel", "Channel.basic_nack", bind(_core_ack)),
            Patch("pika.channel", "Channel.basic_reject", bind(_core_ack)),
            # without it every core ack pays its own checkpoint (still before it is sent)
            Patch("pika.connection", "Connection._on_data_available", bind(_data_round), optional=True),
        ]


INSTRUMENTOR = PikaInstrumentor
