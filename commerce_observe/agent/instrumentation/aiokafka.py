"""aiokafka: PRODUCER span per ``send``, CONSUMER span per record, in asyncio.

``send`` is a coroutine returning a future: the span ends in the future's done
callback (``await fut`` and ``send_and_wait`` both go through it). ``getone`` —
which ``async for`` uses — makes the record's span current in the calling task
until the next request, as iteration does for kafka-python (context variables set
in an awaited coroutine stay set for its caller); ``getmany`` opens one span per
record, settled on the next fetch or ``stop()``.

Commits (see :mod:`commerce_observe.agent.messaging.commits`): ``commit`` settles
the records it covers; every commit the client sends - manual, the auto-commit
task's, on ``stop()`` or a rebalance - passes through
``GroupCoordinator._do_commit_offsets``, where it is capped below any record still
being handled implicitly (the auto-commit task runs while ``async for`` bodies
await) and preceded by a checkpoint. ``AIOKafkaProducer.flush`` ends with one.
"""

from __future__ import annotations

import asyncio

from typing import TYPE_CHECKING, Any

from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.commits import cap_offsets, checkpoint, settle_covered
from commerce_observe.agent.messaging.consumer import Delivery, Tracker, begin_delivery, kafka_consumer_info, tracker_for
from commerce_observe.agent.messaging.producer import Publication, begin_publish, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC_BINARY
_HEADERS_AT = 5  # send(topic, value, key, partition, timestamp_ms, headers)


def _servers(client: Any) -> Any:
    """Guarded: the bootstrap list lives on the internal client (``_client`` on a
    consumer, ``client`` on a producer)."""
    inner = getattr(client, "_client", None) or getattr(client, "client", None)
    return getattr(inner, "_bootstrap_servers", None)


def _send_args(topic: Any, value: Any = None, key: Any = None, partition: Any = None,
               timestamp_ms: Any = None, headers: Any = None, *_rest: Any) -> tuple[Any, Any, Any]:
    return topic, key, headers


async def _send(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    topic, key, headers = _send_args(*args, **kwargs)
    if not isinstance(topic, str):
        return await wrapped(*args, **kwargs)
    carrier = KafkaHeaders(list(headers) if isinstance(headers, (list, tuple)) else None)
    client_id = getattr(instance, "client_id", None) or "aiokafka"
    endpoint = endpoint_for(state, instance, sc.KAFKA, str(client_id), _servers(instance))
    publication = begin_publish(endpoint, topic, carrier, FORMATS, key=key)
    if publication is None:
        return await wrapped(*args, **kwargs)
    if len(args) > _HEADERS_AT:
        args = args[:_HEADERS_AT] + (carrier.headers,) + args[_HEADERS_AT + 1:]
    else:
        kwargs = dict(kwargs, headers=carrier.headers)
    try:
        future = await wrapped(*args, **kwargs)
    except BaseException as exc:
        publication.failed(exc)
        raise
    try:
        future.add_done_callback(lambda done: _settle(done, publication))
    except Exception as exc:
        publication.failed(f"cannot watch send future: {exc!r}")
    return future


def _settle(future: Any, publication: Publication) -> None:
    if future.cancelled():
        publication.failed("send cancelled")
        return
    error = future.exception()
    if error is not None:
        publication.failed(error)
    else:
        metadata = future.result()
        publication.acked(getattr(metadata, "partition", None), getattr(metadata, "offset", None))


def _open(state: AgentState, consumer: Any, record: Any, tracker: Tracker) -> Delivery | None:
    info = tracker.info
    if info is None:  # group and servers, read once per consumer
        info = tracker.info = kafka_consumer_info(state, getattr(consumer, "_group_id", None), _servers(consumer))
    return begin_delivery(
        state, record, sc.KAFKA, record.topic, KafkaHeaders(record.headers), partition=record.partition,
        offset=record.offset, key=record.key, group=info[0], server=info[1],
        timestamp_ms=record.timestamp if getattr(record, "timestamp_type", 0) == 0 else None,
    )


async def _getone(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker = tracker_for(state, instance)
    task = asyncio.current_task()
    tracker.disown(task)
    tracker.settle()
    record = await wrapped(*args, **kwargs)
    delivery = _open(state, instance, record, tracker)
    if delivery is not None:
        tracker.activate(delivery)
        tracker.owner = task
    return record


async def _getmany(state: AgentState, wrapped: Any, instance: Any,
                   args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker = tracker_for(state, instance)
    tracker.disown(asyncio.current_task())
    tracker.settle()
    batches = await wrapped(*args, **kwargs)
    if isinstance(batches, dict):
        for records in batches.values():
            for record in records:
                delivery = _open(state, instance, record, tracker)
                if delivery is not None:
                    tracker.add(delivery)
    return batches


async def _stop(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tracker = tracker_for(state, instance)
    tracker.disown(asyncio.current_task())  # stop() often runs in a shutdown task, not the consuming one
    tracker.settle()
    return await wrapped(*args, **kwargs)


def _next_offset(value: Any) -> int:
    """A commit map's value: an int, or an (offset, metadata) pair."""
    return value if isinstance(value, int) else int(value[0])


async def _commit(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``commit``: the records it covers are handled."""
    offsets = args[0] if args else kwargs.get("offsets")
    try:
        covered = None if offsets is None else {(tp.topic, tp.partition): _next_offset(v) for tp, v in offsets.items()}
    except Exception:  # not a map we know: aiokafka will say so; settle nothing
        return await wrapped(*args, **kwargs)
    tracker = tracker_for(state, instance)
    tracker.disown(asyncio.current_task())
    settle_covered(tracker, covered)
    return await wrapped(*args, **kwargs)


async def _send_commit(state: AgentState, wrapped: Any, instance: Any,
                       args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Every commit aiokafka sends: capped, and the trail made durable first."""
    if len(args) >= 2 and isinstance(args[1], dict) and args[1]:
        try:
            offsets = args[1]
            capped = cap_offsets(state, getattr(instance, "group_id", None),
                                 {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()})
            if any(capped[(tp.topic, tp.partition)] != meta.offset for tp, meta in offsets.items()):
                args = (args[0], {tp: meta._replace(offset=capped[(tp.topic, tp.partition)])
                                  for tp, meta in offsets.items()}, *args[2:])
        except Exception as exc:
            stats.record_failure("messaging.commit_hook_failed", "capping an aiokafka commit failed: %r", exc)
    checkpoint(state, sc.KAFKA)
    return await wrapped(*args, **kwargs)


async def _flush(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``AIOKafkaProducer.flush``: once every ack is in, its records are durable too."""
    result = await wrapped(*args, **kwargs)
    await asyncio.sleep(0)  # the send futures' done callbacks (our ACKED facts) run first
    checkpoint(state, sc.KAFKA)
    return result


class AiokafkaInstrumentor(Instrumentor):
    name = "aiokafka"
    module = "aiokafka"
    requirements = ("aiokafka >= 0.10",)

    def patches(self) -> list[Patch]:
        bind = self.bind
        return [
            Patch("aiokafka", "AIOKafkaProducer.send", bind(_send)),
            Patch("aiokafka", "AIOKafkaConsumer.getone", bind(_getone)),
            Patch("aiokafka", "AIOKafkaConsumer.getmany", bind(_getmany)),
            Patch("aiokafka", "AIOKafkaConsumer.stop", bind(_stop)),
            Patch("aiokafka", "AIOKafkaConsumer.commit", bind(_commit)),
            Patch("aiokafka.consumer.group_coordinator", "GroupCoordinator._do_commit_offsets", bind(_send_commit), optional=True),
            Patch("aiokafka", "AIOKafkaProducer.flush", bind(_flush)),
        ]


INSTRUMENTOR = AiokafkaInstrumentor
