"""Facts the message-client integrations report through the hub.

The Kafka and RabbitMQ wrappers emit one :class:`MessageFact` per message and
stage; the audit trail, loss detection and live metrics subscribe to it. Its fields
are exactly what an audit record needs, so the audit writer stores it as it comes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class Stage(str, enum.Enum):
    PUBLISHED = "published"  # the application handed the message to the client
    ACKED = "acked"  # the broker acknowledged it (partition/offset known)
    SEND_FAILED = "send_failed"  # the client reported the send failed
    HANDLED = "handled"  # the consumer's handler finished without raising
    HANDLE_FAILED = "handle_failed"  # the consumer's handler raised

    @property
    def role(self) -> str:
        return "producer" if self in (Stage.PUBLISHED, Stage.ACKED, Stage.SEND_FAILED) else "consumer"


@dataclass(slots=True)
class MessageFact:
    """One message at one stage (treat as immutable). Build it with :func:`message_fact`,
    by keyword.

    Not ``frozen``: a frozen dataclass pays an ``object.__setattr__`` per field in
    ``__init__``, and two facts are built per produced message.

    ``event_id``/``sequence``/``source`` come from the CloudEvents headers
    (``ce_id``, ``ce_sequence``, ``ce_source``) that the producer side adds;
    ``published_ns`` is the producer's ``ce_time`` as seen by the consumer, for
    end-to-end latency. Times are epoch nanoseconds.
    """

    stage: Stage
    system: str  # "kafka" or "rabbitmq" (OTel messaging.system)
    destination: str  # topic, or exchange/routing key
    event_id: str | None
    event_type: str | None
    source: str | None
    sequence: int | None
    trace_id: str
    span_id: str
    time_ns: int
    partition: int | None = None
    offset: int | None = None
    consumer_group: str | None = None
    published_ns: int | None = None
    order_id: str | None = None
    payment_id: str | None = None
    error: str | None = None


def message_fact(stage: Stage, system: str, destination: str, event_id: str | None, event_type: str | None,
                 source: str | None, sequence: int | None, trace_id: str, span_id: str, time_ns: int,
                 partition: int | None = None, offset: int | None = None, consumer_group: str | None = None,
                 published_ns: int | None = None, order_id: str | None = None, payment_id: str | None = None,
                 error: str | None = None) -> MessageFact:
    """A :class:`MessageFact`, for callers that name every field (``message_fact(stage=..., ...)``).

    Why a function: calling the class itself with many keywords goes through
    ``type.__call__``, which packs them into a dict for ``__init__`` and costs about
    four times the positional call (``benchmarks/message_fact.py``); a plain
    function takes keywords at the vectorcall's price and passes them on by position.
    """
    return MessageFact(stage, system, destination, event_id, event_type, source, sequence, trace_id, span_id,
                       time_ns, partition, offset, consumer_group, published_ns, order_id, payment_id, error)


@dataclass(slots=True)
class Checkpoint:
    """"Offsets (or acks) covering what I reported so far are about to be sent."

    Emitted by the client integrations right before a Kafka offset commit, a RabbitMQ
    ack or a producer ``flush()`` returns. The hub is synchronous, so a listener that
    keeps records (the audit trail) makes them durable before the commit goes out:
    with ``wait`` it does so before returning (bounded: it never blocks for long, and
    lets the commit proceed if it cannot); without, it sets ``durable`` to a cheap
    test that turns true once they are (used where the client commits on its own
    schedule and the integration holds back what may be committed). No listener:
    ``durable`` stays None, nothing to wait for.
    """

    system: str
    wait: bool = True
    durable: Callable[[], bool] | None = None
