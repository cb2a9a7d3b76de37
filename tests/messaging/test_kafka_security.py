"""Every Kafka client we create speaks SASL (PLAIN, SCRAM-SHA-256/512) over TLS with
a CA file and a client certificate, configured by the COMMERCE_OBSERVE_KAFKA_* settings.

Against the test bed broker's SASL_SSL listener (its own CA, SCRAM users created at
format time, client certificates requested): the audit sink writes and the audit
reader reads back; the events publisher publishes and the shipper ships; the watch's
consumer reads; a wrong password is refused, so the listener really checks.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from commerce_observe._internal.kafka_security import KafkaSecurity
from commerce_observe.agent.audit.kafka_sink import KafkaSink, read_kafka
from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.audit.sinks import SinkUnavailable
from commerce_observe.agent.reporting.publisher import KafkaEventPublisher
from commerce_observe.config import load_config
from commerce_observe.monitor.watch.kafka_source import KafkaSource
from commerce_observe.store.kafka_io import Shipper
from commerce_observe.store.sqlite_store import SqliteStore
from tests.monitoring import dataset
from tests.support.waiting import wait_for


def security(tb: dict[str, str], mechanism: str, **changes: str) -> KafkaSecurity:
    env = {
        "COMMERCE_OBSERVE_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "COMMERCE_OBSERVE_KAFKA_SASL_MECHANISM": mechanism,
        "COMMERCE_OBSERVE_KAFKA_SASL_USERNAME": tb["sasl_username"],
        "COMMERCE_OBSERVE_KAFKA_SASL_PASSWORD": tb["sasl_password"],
        "COMMERCE_OBSERVE_KAFKA_SSL_CA_LOCATION": tb["ca_file"],
        "COMMERCE_OBSERVE_KAFKA_SSL_CERTIFICATE_LOCATION": tb["client_cert"],
        "COMMERCE_OBSERVE_KAFKA_SSL_KEY_LOCATION": tb["client_key"],
    } | changes
    return KafkaSecurity.from_config(load_config(env))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_audit_sink_and_reader_over_sasl_ssl(kafka_sasl_ssl: dict[str, str], unique_topic: str,
                                             mechanism: str) -> None:
    sec = security(kafka_sasl_ssl, mechanism)
    bootstrap = kafka_sasl_ssl["sasl_ssl_bootstrap"]
    lines = [encode(fact) for fact in dataset.facts()][:50]
    sink = KafkaSink(bootstrap, unique_topic, security=sec, delivery_timeout_s=20)
    sink.write(lines)
    sink.close()
    read = [line for batch in read_kafka(bootstrap, unique_topic, security=sec) for line in batch]
    assert sorted(read) == sorted(lines)


def test_publisher_shipper_and_watch_consumer_over_sasl_ssl(kafka_sasl_ssl: dict[str, str], unique_topic: str,
                                                            tmp_path: Path) -> None:
    sec = security(kafka_sasl_ssl, "SCRAM-SHA-512")
    bootstrap = kafka_sasl_ssl["sasl_ssl_bootstrap"]
    docs = [doc for doc in dataset.documents() if doc["commerce.record"] == "event"][:40]
    publisher = KafkaEventPublisher(bootstrap, unique_topic, sec)
    publisher(docs)
    publisher.close()
    shipper = Shipper(SqliteStore(str(tmp_path / "m.db")), bootstrap, group_id=unique_topic + "-g",
                      topics=(unique_topic,), security=sec)
    deadline = time.monotonic() + 60
    while shipper.total.written < len(docs) and time.monotonic() < deadline:
        shipper.poll_once(200)
    shipper.close()
    assert shipper.total.written == len(docs)
    source = KafkaSource(bootstrap, {}, 0, events_topic=unique_topic, audit_topic=unique_topic + "-audit",
                         group_id=unique_topic + "-w", commit=False, security=sec)
    def assigned() -> bool:
        source.consumer.poll(200)
        return bool(source.consumer.assignment())

    try:
        wait_for("the watch consumer's partitions over SASL_SSL", assigned, 60, 0.1)
    finally:
        source.consumer.close()


def test_a_wrong_password_is_refused(kafka_sasl_ssl: dict[str, str], unique_topic: str) -> None:
    sec = security(kafka_sasl_ssl, "SCRAM-SHA-512", COMMERCE_OBSERVE_KAFKA_SASL_PASSWORD="wrong")
    sink = KafkaSink(kafka_sasl_ssl["sasl_ssl_bootstrap"], unique_topic, security=sec, delivery_timeout_s=3)
    with pytest.raises(SinkUnavailable):
        sink.write([encode(dataset.facts()[0])])
    sink.close()


def test_settings_map_to_each_client_library() -> None:
    sec = KafkaSecurity.from_config(load_config({
        "COMMERCE_OBSERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "COMMERCE_OBSERVE_KAFKA_SASL_MECHANISM": "scram-sha-256",
        "COMMERCE_OBSERVE_KAFKA_SASL_USERNAME": "u", "COMMERCE_OBSERVE_KAFKA_SASL_PASSWORD": "p",
        "COMMERCE_OBSERVE_KAFKA_SSL_CA_LOCATION": "/ca.pem",
        "COMMERCE_OBSERVE_KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "none"}))
    assert sec.librdkafka() == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
                                "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": "/ca.pem",
                                "ssl.endpoint.identification.algorithm": "none"}
    assert sec.kafka_python() == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
                                  "sasl_plain_username": "u", "sasl_plain_password": "p", "ssl_cafile": "/ca.pem",
                                  "ssl_check_hostname": False}
    assert KafkaSecurity.from_config(load_config({})).librdkafka() == {}
