"""Publish event documents to the Kafka events topic (read by the monitor's shipper).

Our own producer must not be traced as application messaging (that would audit the
telemetry topic and loop), so when commerce_observe has patched kafka-python we call
the original ``send`` it wrapped (``__wrapped__``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from commerce_observe.store import documents as d
from commerce_observe._internal.kafka_security import KafkaSecurity
from commerce_observe.store.kafka_io import EVENTS_TOPIC, original


class KafkaEventPublisher:
    """A batch sink: sends documents to the events topic and waits for the broker's acks.

    The producer is created at the first batch, on the reporting thread: creating
    it contacts the brokers, which ``install()`` must never wait for. Until it can
    be created, each batch fails (the batcher retries, then counts the drop).
    """

    def __init__(self, bootstrap: str, topic: str = EVENTS_TOPIC, security: KafkaSecurity | None = None,
                 **producer_config: Any) -> None:
        self._config: dict[str, Any] = {"acks": "all", "linger_ms": 20, "retries": 5, "compression_type": None,
                                        **(security or KafkaSecurity.from_config()).kafka_python()}
        self._config.update(producer_config)
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: Any = None

    def _ready(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, **self._config)
            self._send = original(KafkaProducer, "send")
        return self._producer

    def __call__(self, docs: Sequence[d.Document]) -> None:
        producer = self._ready()
        futures = [self._send(producer, self.topic, value=json.dumps(doc, separators=(",", ":")).encode(),
                              key=str(doc["event.id"]).encode()) for doc in docs]
        producer.flush()
        for f in futures:
            f.get(timeout=30)  # raises the send error: the batcher retries, then counts the drop

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
