"""kafka-python consumers for the tests, subscribed the way the product's shipper
subscribes: after the client's metadata knows the topics (see
:func:`commerce_observe.monitoring.kafka_io.subscribe_when_known`)."""

from __future__ import annotations

from typing import Any

import kafka

from commerce_observe.monitoring.kafka_io import subscribe_when_known


def consumer(bootstrap: str, *topics: str, **config: Any) -> Any:
    """A ``KafkaConsumer`` subscribed to ``topics``; ``config`` as for ``KafkaConsumer``."""
    client = kafka.KafkaConsumer(bootstrap_servers=bootstrap, **config)
    subscribe_when_known(client, topics)
    return client
