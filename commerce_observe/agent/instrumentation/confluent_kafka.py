"""confluent-kafka: the same spans and headers as kafka-python, on a C extension.

``Producer`` and ``Consumer`` are C types whose methods cannot be replaced, so the
patch wraps the *names* ``confluent_kafka.Producer``/``Consumer``: constructing
one returns an instance of a thin Python subclass (created once per original
class) that overrides ``produce`` / ``poll`` / ``consume`` / ``close``.
``isinstance(p, confluent_kafka.Producer)`` still holds. A ``Producer`` name taken
with ``from confluent_kafka import Producer`` *before* instrumenting keeps the
original class (documented in docs/integrations/kafka.md).

The span ends in the delivery callback: ours wraps the application's per-message
``on_delivery``/``callback`` (or the producer-level ``on_delivery`` from the
config, which a per-message callback would otherwise silently replace) and always
calls it after recording.
"""

from __future__ import annotations

from typing import Any

from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.consumer import Tracker, begin_delivery, kafka_consumer_info, tracker_for
from commerce_observe.agent.messaging.producer import Publication, begin_publish, cached_endpoint, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC_BINARY
_CREATE_TIME = 1  # confluent_kafka.TIMESTAMP_CREATE_TIME

_subclasses: dict[tuple[type, str], type] = {}


def _conf(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The config dict a client was built with (positional dict and/or keywords)."""
    conf: dict[str, Any] = dict(args[0]) if args and isinstance(args[0], dict) else {}
    conf.update(kwargs)
    return conf


def _delivery_callback(publication: Publication, user: Any) -> Any:
    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            publication.failed(str(err))
        else:
            publication.acked(msg.partition(), msg.offset())
        if user is not None:
            user(err, msg)

    return on_delivery


class _ProducerMixin:
    _co_conf: dict[str, Any]

    def produce(self, topic: Any, *args: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        if not isinstance(topic, str) or len(args) > 3:  # callback/headers given positionally: rare, untouched
            return parent.produce(topic, *args, **kwargs)
        headers = kwargs.get("headers")
        if isinstance(headers, dict):
            headers = list(headers.items())
        carrier = KafkaHeaders(list(headers) if headers and isinstance(headers, (list, tuple)) else None)
        conf = self._co_conf
        endpoint = cached_endpoint(self) or endpoint_for(
            self, sc.KAFKA, str(conf.get("client.id") or "confluent-kafka"), conf.get("bootstrap.servers"))
        key = args[1] if len(args) > 1 else kwargs.get("key")
        publication = begin_publish(endpoint, topic, carrier, FORMATS, key=key)
        if publication is None:
            return parent.produce(topic, *args, **kwargs)
        user = kwargs.pop("on_delivery", None) or kwargs.pop("callback", None) or conf.get("on_delivery")
        kwargs["on_delivery"] = _delivery_callback(publication, user)
        kwargs["headers"] = carrier.headers
        try:
            return parent.produce(topic, *args, **kwargs)
        except BaseException as exc:
            publication.failed(exc)
            raise


def _open(consumer: Any, msg: Any, tracker: Tracker) -> Any:
    info = tracker.info
    if info is None:  # the config, read once per consumer
        conf = consumer._co_conf
        info = tracker.info = kafka_consumer_info(conf.get("group.id"), conf.get("bootstrap.servers"))
    stamp = msg.timestamp()
    return begin_delivery(
        msg, sc.KAFKA, msg.topic(), KafkaHeaders(msg.headers()), partition=msg.partition(),
        offset=msg.offset(), key=msg.key(), group=info[0], server=info[1],
        timestamp_ms=stamp[1] if stamp and stamp[0] == _CREATE_TIME else None,
    )


class _ConsumerMixin:
    _co_conf: dict[str, Any]

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        tracker = tracker_for(self)
        tracker.settle()
        parent: Any = super()
        msg = parent.poll(*args, **kwargs)
        if msg is not None and msg.error() is None:
            delivery = _open(self, msg, tracker)
            if delivery is not None:
                tracker.activate(delivery)
        return msg

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        tracker = tracker_for(self)
        tracker.settle()
        parent: Any = super()
        msgs = parent.consume(*args, **kwargs)
        for msg in msgs or ():
            if msg.error() is None:
                delivery = _open(self, msg, tracker)
                if delivery is not None:
                    tracker.add(delivery)
        return msgs

    def close(self, *args: Any, **kwargs: Any) -> Any:
        tracker_for(self).settle()
        parent: Any = super()
        return parent.close(*args, **kwargs)


def _factory(mixin: type) -> Any:
    def construct(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not isinstance(wrapped, type):
            return wrapped(*args, **kwargs)
        key = (wrapped, mixin.__name__)
        cls = _subclasses.get(key)
        if cls is None:
            cls = _subclasses.setdefault(key, type(wrapped.__name__, (mixin, wrapped), {
                "__module__": wrapped.__module__, "__doc__": wrapped.__doc__}))
        obj = cls(*args, **kwargs)
        obj._co_conf = _conf(args, kwargs)
        return obj

    return construct


class ConfluentKafkaInstrumentor(Instrumentor):
    name = "confluent_kafka"
    module = "confluent_kafka"
    requirements = ("confluent-kafka >= 2.3",)

    def patches(self) -> list[Patch]:
        return [
            Patch("confluent_kafka", "Producer", _factory(_ProducerMixin)),
            Patch("confluent_kafka", "Consumer", _factory(_ConsumerMixin)),
        ]


INSTRUMENTOR = ConfluentKafkaInstrumentor
