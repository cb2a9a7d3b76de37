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

Commits (see :mod:`commerce_observe.agent.messaging.commits`): librdkafka commits
in its own thread, from the offsets *stored* - by default automatically, as
``poll`` returns each message. So when the audit trail is on and the application
left ``enable.auto.offset.store`` unset (with auto-commit on, the default), the
consumer is built with it off, and the wrapper stores the offset of each record
once it is handled *and* its record is durable (checked at each ``poll`` /
``consume``; the writer's round bounds the lag). An application that stores offsets
itself (``store_offsets``) gets the same: the store is held until durable.
``commit`` settles what it covers, checkpoints, then commits; ``close`` settles,
checkpoints and stores before librdkafka's final commit; ``Producer.flush`` ends
with a checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.commits import checkpoint, durable_later, keeps_records, settle_covered
from commerce_observe.agent.messaging.consumer import Tracker, begin_delivery, kafka_consumer_info, tracker_for
from commerce_observe.agent.messaging.producer import Publication, begin_publish, cached_endpoint, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

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
    _co_state: AgentState

    def produce(self, topic: Any, *args: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        if not isinstance(topic, str) or len(args) > 3:  # callback/headers given positionally: rare, untouched
            return parent.produce(topic, *args, **kwargs)
        headers = kwargs.get("headers")
        if isinstance(headers, dict):
            headers = list(headers.items())
        carrier = KafkaHeaders(list(headers) if headers and isinstance(headers, (list, tuple)) else None)
        conf = self._co_conf
        state = self._co_state
        endpoint = cached_endpoint(state, self) or endpoint_for(
            state, self, sc.KAFKA, str(conf.get("client.id") or "confluent-kafka"), conf.get("bootstrap.servers"))
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

    def flush(self, *args: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        left = parent.flush(*args, **kwargs)
        checkpoint(self._co_state, sc.KAFKA)  # every delivery callback ran inside flush: their records are reported
        return left


_AUTO_STORE = "enable.auto.offset.store"


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("false", "0", "no", "off")


def _hold_store(state: AgentState, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any], bool]:
    """A consumer's config with librdkafka's automatic offset store off, when the trail
    needs it (records kept, auto-commit on, the application did not choose)."""
    conf = _conf(args, kwargs)
    if _AUTO_STORE in conf:
        return args, kwargs, not _truthy(conf[_AUTO_STORE])  # it stores itself: hold those
    if not _truthy(conf.get("enable.auto.commit", True)) or not keeps_records(state):
        return args, kwargs, False
    if args and isinstance(args[0], dict):
        return (dict(args[0], **{_AUTO_STORE: False}), *args[1:]), kwargs, True
    return args, dict(kwargs, **{_AUTO_STORE: False}), True


class _HeldOffsets:
    """Offsets to store once the records they cover are durable: ``waiting`` (not yet
    asked about), ``marked`` (covered by ``mark``, a durability test)."""

    __slots__ = ("state", "waiting", "marked", "mark")

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self.waiting: dict[tuple[str, int], int] = {}
        self.marked: dict[tuple[str, int], int] = {}
        self.mark: Any = None

    def add(self, topic: str, partition: int, end: int) -> None:
        key = (topic, partition)
        if end > self.waiting.get(key, -1):
            self.waiting[key] = end

    def release(self, store: Any, durable_now: bool = False) -> None:
        """Store what is durable; put a mark on what waits. ``durable_now``: a barrier just ran."""
        if self.mark is not None and (durable_now or self.mark()):
            marked, self.marked, self.mark = self.marked, {}, None
            _store(store, marked)
        if self.waiting and self.mark is None:
            mark = None if durable_now else durable_later(self.state, sc.KAFKA)
            if mark is None:
                waiting, self.waiting = self.waiting, {}
                _store(store, waiting)
            else:
                self.mark, self.marked, self.waiting = mark, self.waiting, {}


def _store(store: Any, offsets: dict[tuple[str, int], int]) -> None:
    if not offsets:
        return
    import confluent_kafka

    try:
        store(offsets=[confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()])
    except Exception as exc:  # partitions revoked meanwhile, consumer closed: the next owner re-reads them
        stats.record_failure("messaging.offset_store_failed", "storing held offsets failed: %r", exc)


def _ended(pending: list[Any], held: _HeldOffsets) -> None:
    """Hold the next offsets of the deliveries in ``pending`` that are finished."""
    for delivery in pending:
        if delivery.done and delivery.partition is not None and delivery.offset is not None:
            held.add(delivery.stream, delivery.partition, delivery.offset + 1)


def _commit_covered(message: Any, offsets: Any) -> dict[tuple[str, int], int] | None:
    if message is not None:
        return {(message.topic(), message.partition()): message.offset() + 1}
    if offsets is not None:
        return {(tp.topic, tp.partition): tp.offset for tp in offsets}
    return None


def _open(state: AgentState, consumer: Any, msg: Any, tracker: Tracker) -> Any:
    info = tracker.info
    if info is None:  # the config, read once per consumer
        conf = consumer._co_conf
        info = tracker.info = kafka_consumer_info(state, conf.get("group.id"), conf.get("bootstrap.servers"))
    stamp = msg.timestamp()
    return begin_delivery(
        state, msg, sc.KAFKA, msg.topic(), KafkaHeaders(msg.headers()), partition=msg.partition(),
        offset=msg.offset(), key=msg.key(), group=info[0], server=info[1],
        timestamp_ms=stamp[1] if stamp and stamp[0] == _CREATE_TIME else None,
    )


class _ConsumerMixin:
    _co_conf: dict[str, Any]
    _co_state: AgentState
    _co_held: _HeldOffsets | None = None

    def _co_settle(self, tracker: Tracker) -> None:
        held = self._co_held
        if held is None:
            tracker.settle()
            return
        pending = list(tracker.pending)
        tracker.settle()
        _ended(pending, held)
        parent: Any = super()
        held.release(parent.store_offsets)

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        state = self._co_state
        tracker = tracker_for(state, self)
        self._co_settle(tracker)
        parent: Any = super()
        msg = parent.poll(*args, **kwargs)
        if msg is not None and msg.error() is None:
            delivery = _open(state, self, msg, tracker)
            if delivery is not None:
                tracker.activate(delivery)
        return msg

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        state = self._co_state
        tracker = tracker_for(state, self)
        self._co_settle(tracker)
        parent: Any = super()
        msgs = parent.consume(*args, **kwargs)
        for msg in msgs or ():
            if msg.error() is None:
                delivery = _open(state, self, msg, tracker)
                if delivery is not None:
                    tracker.add(delivery)
        return msgs

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        """The records the commit covers are handled, and durable before it is sent."""
        parent: Any = super()
        try:
            covered = _commit_covered(kwargs.get("message"), kwargs.get("offsets"))
        except Exception:
            covered = None
        state = self._co_state
        tracker = tracker_for(state, self)
        pending = list(tracker.pending)
        settle_covered(tracker, covered)
        checkpoint(state, sc.KAFKA)
        if self._co_held is not None:
            _ended(pending, self._co_held)
            self._co_held.release(parent.store_offsets, durable_now=True)
        return parent.commit(*args, **kwargs)

    def store_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """The application stores offsets itself: held until the records they cover are durable."""
        parent: Any = super()
        held = self._co_held
        try:
            covered = _commit_covered(kwargs.get("message"), kwargs.get("offsets"))
        except Exception:
            covered = None
        if held is None or args or covered is None:  # positional or odd arguments: as given
            return parent.store_offsets(*args, **kwargs)
        settle_covered(tracker_for(self._co_state, self), covered)
        for (topic, partition), end in covered.items():
            held.add(topic, partition, end)
        held.release(parent.store_offsets)
        return None

    def close(self, *args: Any, **kwargs: Any) -> Any:
        state = self._co_state
        tracker = tracker_for(state, self)
        parent: Any = super()
        pending = list(tracker.pending)
        tracker.settle()
        if self._co_held is not None:
            _ended(pending, self._co_held)
            checkpoint(state, sc.KAFKA)
            self._co_held.release(parent.store_offsets, durable_now=True)
        return parent.close(*args, **kwargs)


def _factory(mixin: type) -> Any:
    def construct(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        if not isinstance(wrapped, type):
            return wrapped(*args, **kwargs)
        key = (wrapped, mixin.__name__)
        cls = _subclasses.get(key)
        if cls is None:
            cls = _subclasses.setdefault(key, type(wrapped.__name__, (mixin, wrapped), {
                "__module__": wrapped.__module__, "__doc__": wrapped.__doc__}))
        held = False
        if mixin is _ConsumerMixin:
            args, kwargs, held = _hold_store(state, args, kwargs)
        obj = cls(*args, **kwargs)
        obj._co_conf = _conf(args, kwargs)
        obj._co_state = state  # the agent state this client reports to
        if held:
            obj._co_held = _HeldOffsets(state)
        return obj

    return construct


class ConfluentKafkaInstrumentor(Instrumentor):
    name = "confluent_kafka"
    module = "confluent_kafka"
    requirements = ("confluent-kafka >= 2.3",)

    def patches(self) -> list[Patch]:
        bind = self.bind
        return [
            Patch("confluent_kafka", "Producer", bind(_factory(_ProducerMixin))),
            Patch("confluent_kafka", "Consumer", bind(_factory(_ConsumerMixin))),
        ]


INSTRUMENTOR = ConfluentKafkaInstrumentor
