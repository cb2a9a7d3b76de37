"""kafka-python clients for the tests: topics created up front, and consumers subscribed
the way the product's shipper subscribes: after the client's metadata knows the topics
(see :func:`commerce_observe.store.kafka_io.subscribe_when_known`)."""

from __future__ import annotations

from typing import Any

import kafka

from commerce_observe.store.kafka_io import subscribe_when_known


def consumer(bootstrap: str, *topics: str, **config: Any) -> Any:
    """A ``KafkaConsumer`` subscribed to ``topics``; ``config`` as for ``KafkaConsumer``."""
    client = kafka.KafkaConsumer(bootstrap_servers=bootstrap, **config)
    subscribe_when_known(client, topics)
    return client


def create_topic(bootstrap: str, name: str, partitions: int, **topic_config: str) -> None:
    """Create ``name`` with ``partitions`` partitions, one replica (the test bed runs one
    broker) and ``topic_config`` (e.g. ``**{"max.message.bytes": "20000"}``).

    Tests create a topic themselves when its partition count or config matters: a topic
    the product or the broker auto-creates gets the defaults. Raises if the broker refuses,
    so a test never runs against a topic shaped other than it asked for.
    """
    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([kafka.admin.NewTopic(name, partitions, 1, topic_configs=topic_config)])
    finally:
        admin.close()
