"""SASL and TLS for every Kafka client commerce_observe itself creates.

One set of settings, named after librdkafka's properties
(``COMMERCE_OBSERVE_KAFKA_SECURITY_PROTOCOL``, ``..._SASL_MECHANISM``,
``..._SASL_USERNAME``, ``..._SASL_PASSWORD``, ``..._SSL_CA_LOCATION``,
``..._SSL_CERTIFICATE_LOCATION``, ``..._SSL_KEY_LOCATION``, ``..._SSL_KEY_PASSWORD``,
``..._SSL_ENDPOINT_IDENTIFICATION_ALGORITHM``), turned into each client library's own
options: librdkafka's for the confluent-kafka audit sink and audit reader,
kafka-python's for the events publisher, the shipper and the watch's consumer. The
application's own Kafka clients keep their own settings: we only wrap them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: str | None = None
    ssl_check_hostname: bool = True

    @classmethod
    def from_config(cls, config: Any | None = None) -> KafkaSecurity:
        """From the settings (default: the environment, read now)."""
        if config is None:
            from commerce_observe.config import load_config

            config = load_config(lenient=True)
        return cls(
            protocol=config.kafka_security_protocol, sasl_mechanism=config.kafka_sasl_mechanism,
            sasl_username=config.kafka_sasl_username, sasl_password=config.kafka_sasl_password,
            ssl_ca_location=config.kafka_ssl_ca_location,
            ssl_certificate_location=config.kafka_ssl_certificate_location,
            ssl_key_location=config.kafka_ssl_key_location, ssl_key_password=config.kafka_ssl_key_password,
            ssl_check_hostname=config.kafka_ssl_endpoint_identification_algorithm == "https",
        )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def librdkafka(self) -> dict[str, Any]:
        """confluent-kafka (librdkafka) configuration entries; empty for PLAINTEXT."""
        out: dict[str, Any] = {}
        if self.protocol == "PLAINTEXT":
            return out
        out["security.protocol"] = self.protocol
        if self.sasl:
            out.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username or "",
                        "sasl.password": self.sasl_password or ""})
        if self.tls:
            for key, value in (("ssl.ca.location", self.ssl_ca_location),
                               ("ssl.certificate.location", self.ssl_certificate_location),
                               ("ssl.key.location", self.ssl_key_location),
                               ("ssl.key.password", self.ssl_key_password)):
                if value:
                    out[key] = value
            out["ssl.endpoint.identification.algorithm"] = "https" if self.ssl_check_hostname else "none"
        return out

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python keyword arguments; empty for PLAINTEXT."""
        out: dict[str, Any] = {}
        if self.protocol == "PLAINTEXT":
            return out
        out["security_protocol"] = self.protocol
        if self.sasl:  # kafka-python names the SCRAM credentials sasl_plain_* too
            out.update({"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                        "sasl_plain_password": self.sasl_password})
        if self.tls:
            for key, value in (("ssl_cafile", self.ssl_ca_location), ("ssl_certfile", self.ssl_certificate_location),
                               ("ssl_keyfile", self.ssl_key_location), ("ssl_password", self.ssl_key_password)):
                if value:
                    out[key] = value
            out["ssl_check_hostname"] = self.ssl_check_hostname
        return out
