"""kafka-python: PRODUCER span per ``send``, CONSUMER span per record.

Produce: ``KafkaProducer.send`` gets a copy of the application's headers plus ours
(the caller's list is never mutated: a list reused across sends would otherwise
carry the previous message's context, which the never-overwrite rule then keeps);
the span ends in the future's callback (partition, offset) or errback.

Consume: ``for msg in consumer`` / ``next(consumer)`` make each record's span
current until the next record is requested; ``poll()`` opens one span per record
and closes the previous batch's on the next poll (see
:mod:`commerce_observe.agent.messaging.consumer`). ``__next__`` calls ``poll`` itself:
a per-consumer flag keeps those inner polls from being traced twice.

Commits (see :mod:`commerce_observe.agent.messaging.commits`): ``commit`` and
``commit_async`` settle the records they cover; every offset commit the client
sends - manual, auto-commit inside ``poll``, on close, before a rebalance - passes
through ``ConsumerCoordinator._send_offset_commit_request``, where it is capped
below any record still being handled implicitly and preceded by a checkpoint (the
audit trail fsyncs its journal). ``KafkaProducer.flush`` ends with a checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.commits import cap_offsets, checkpoint, settle_covered
from commerce_observe.agent.messaging.consumer import Tracker, begin_delivery, kafka_consumer_info, tracker_for
from commerce_observe.agent.messaging.producer import Publication, begin_publish, cached_endpoint, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC_BINARY
MODULE = "kafka"


def _config(client: Any, name: str) -> Any:
    """Guarded read of a client's config: internals may change between versions."""
    try:
        return client.config.get(name)
    except Exception:
        return None


def _send_args(topic: Any, value: Any = None, key: Any = None, headers: Any = None,
               *_rest: Any, **_kw: Any) -> tuple[Any, Any, Any]:
    return topic, key, headers


def _send(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    topic, key, headers = _send_args(*args, **kwargs)
    if not isinstance(topic, str):
        return wrapped(*args, **kwargs)
    carrier = KafkaHeaders(list(headers) if headers and isinstance(headers, (list, tuple)) else None)
    endpoint = cached_endpoint(state, instance) or endpoint_for(
        state, instance, sc.KAFKA, str(_config(instance, "client_id") or "kafka-python"), _config(instance, "bootstrap_servers"))
    publication = begin_publish(endpoint, topic, carrier, FORMATS, key=key)
    if publication is None:
        return wrapped(*args, **kwargs)
    if len(args) >= 4:
        args = args[:3] + (carrier.headers,) + args[4:]
    else:
        kwargs = dict(kwargs, headers=carrier.headers)
    try:
        future = wrapped(*args, **kwargs)
    except BaseException as exc:
        publication.failed(exc)
        raise
    _watch(future, publication)
    return future


def _watch(future: Any, publication: Publication) -> None:
    try:  # bound methods: no closure per message
        future.add_callback(publication.on_ack)
        future.add_errback(publication.failed)
    except Exception as exc:  # a future we do not know: still end the span
        publication.failed(f"cannot watch send future: {exc!r}")


def _consumer_info(state: AgentState, tracker: Tracker, instance: Any) -> tuple[Any, tuple[str | None, int | None]]:
    """Group id and first server of a consumer, read from its config once."""
    info = tracker.info
    if info is None:
        info = tracker.info = kafka_consumer_info(state, _config(instance, "group_id"), _config(instance, "bootstrap_servers"))
    return info  # type: ignore[no-any-return]


def _open(state: AgentState, instance: Any, record: Any, tracker: Tracker) -> Any:
    group, server = _consumer_info(state, tracker, instance)
    return begin_delivery(
        state, record, sc.KAFKA, record.topic, KafkaHeaders(record.headers),
        partition=record.partition, offset=record.offset, key=record.key, group=group, server=server,
        timestamp_ms=record.timestamp if getattr(record, "timestamp_type", 0) == 0 else None,
    )


def _next(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker = tracker_for(state, instance)
    tracker.settle()
    tracker.busy = True  # inline rather than ``with _Busy(...)``: one object less per record
    try:
        record = wrapped(*args, **kwargs)
    finally:
        tracker.busy = False
    delivery = _open(state, instance, record, tracker)
    if delivery is not None:
        tracker.activate(delivery)
    return record


def _iter(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    iterator = wrapped(*args, **kwargs)
    if iterator is not instance:
        return iterator
    return _iterate(state, instance)


def _iterate(state: AgentState, consumer: Any) -> Any:
    """``for msg in consumer``: when the loop is left, the record's span stops being current."""
    try:
        while True:
            try:
                record = next(consumer)
            except StopIteration:
                return
            yield record
    finally:
        tracker_for(state, consumer).release()


def _poll(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker = tracker_for(state, instance)
    if tracker.busy:
        return wrapped(*args, **kwargs)
    tracker.settle()
    batches = wrapped(*args, **kwargs)
    if isinstance(batches, dict):
        for records in batches.values():
            for record in records:
                delivery = _open(state, instance, record, tracker)
                if delivery is not None:
                    tracker.add(delivery)
    return batches


def _covered(offsets: Any) -> dict[tuple[str, int], int] | None:
    """{(topic, partition): next offset} of a commit's offsets dict (None: all consumed)."""
    if offsets is None:
        return None
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def _commit(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``commit`` / ``commit_async``: the records they cover are handled."""
    offsets = args[0] if args else kwargs.get("offsets")
    try:
        covered = _covered(offsets)
    except Exception:  # not the dict we know: the client will say so; settle nothing
        return wrapped(*args, **kwargs)
    settle_covered(tracker_for(state, instance), covered)
    return wrapped(*args, **kwargs)


def _send_commit(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Every offset commit the client sends: capped, and the trail made durable first."""
    if args and isinstance(args[0], dict) and args[0]:
        try:
            offsets = args[0]
            capped = cap_offsets(state, getattr(instance, "group_id", None), _covered(offsets) or {})
            if any(capped[(tp.topic, tp.partition)] != meta.offset for tp, meta in offsets.items()):
                args = ({tp: meta._replace(offset=capped[(tp.topic, tp.partition)]) for tp, meta in offsets.items()},
                        *args[1:])
        except Exception as exc:
            stats.record_failure("messaging.commit_hook_failed", "capping a kafka-python commit failed: %r", exc)
    checkpoint(state, sc.KAFKA)
    return wrapped(*args, **kwargs)


def _flush(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``KafkaProducer.flush``: once every ack is in, its records are durable too."""
    result = wrapped(*args, **kwargs)
    checkpoint(state, sc.KAFKA)
    return result


def _close(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker_for(state, instance).settle()
    return wrapped(*args, **kwargs)


class KafkaPythonInstrumentor(Instrumentor):
    name = "kafka_python"
    module = MODULE
    requirements = ("kafka-python >= 2.0",)

    def patches(self) -> list[Patch]:
        bind = self.bind
        return [
            Patch("kafka", "KafkaProducer.send", bind(_send)),
            Patch("kafka", "KafkaConsumer.__iter__", bind(_iter)),
            Patch("kafka", "KafkaConsumer.__next__", bind(_next)),
            Patch("kafka", "KafkaConsumer.poll", bind(_poll)),
            Patch("kafka", "KafkaConsumer.close", bind(_close)),
            Patch("kafka", "KafkaConsumer.commit", bind(_commit)),
            Patch("kafka", "KafkaConsumer.commit_async", bind(_commit)),
            Patch("kafka.coordinator.consumer", "ConsumerCoordinator._send_offset_commit_request", bind(_send_commit), optional=True),
            Patch("kafka", "KafkaProducer.flush", bind(_flush)),
        ]


INSTRUMENTOR = KafkaPythonInstrumentor
