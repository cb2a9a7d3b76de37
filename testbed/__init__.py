"""The project's test bed: real Zipkin, Kafka, Elasticsearch, RabbitMQ and OTLP (Jaeger, also over TLS) servers.

Not shipped in the wheel. `python -m testbed up|down|fetch|status`, and
`testbed.control` for tests that stop or restart a running server in place.
"""

from __future__ import annotations

from testbed.base import Server, TestbedError
from testbed.elasticsearch import Elasticsearch
from testbed.jaeger import Jaeger, JaegerTls
from testbed.kafka import Kafka
from testbed.nginx import EsTls
from testbed.rabbitmq import RabbitMQ
from testbed.zipkin import Zipkin

SERVICES: dict[str, type[Server]] = {
    cls.name: cls for cls in (Zipkin, Kafka, Elasticsearch, RabbitMQ, Jaeger, EsTls, JaegerTls)
}

__all__ = ["SERVICES", "Server", "TestbedError"]
