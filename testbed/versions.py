"""The one place where the test bed's server versions are pinned.

Each version here was fetched from Maven Central (or Debian) and started on the
project's machine kind; change one only after `python -m testbed up` passes with it.
"""

from __future__ import annotations

ZIPKIN = "3.6.1"
"""io.zipkin:zipkin-server exec jar; runs on the default Java 17."""

KAFKA = "4.3.1"
"""org.apache.kafka:kafka_2.13 (KRaft combined mode); 4.4.0 needs unserved packages."""

SLF4J = "2.0.17"
"""slf4j-api forced over the 1.7 that Kafka's poms resolve to, so the binding below works."""

LOG4J = "2.25.4"
"""Matches the log4j-core that kafka_2.13 4.3.1 pulls in; provides the SLF4J 2 binding."""

ELASTICSEARCH = "9.2.0"
"""org.elasticsearch.distribution.integ-test-zip:elasticsearch zip; needs Java 21+."""

ELASTICSEARCH_JAVA_HOMES = (
    "/usr/lib/jvm/temurin-25-jdk-amd64",
    "/usr/lib/jvm/temurin-21-jdk-amd64",
    "/usr/lib/jvm/java-21-openjdk-amd64",
)
"""Where to look for a Java 21+ for Elasticsearch 9 (override with TESTBED_ES_JAVA_HOME)."""

RABBITMQ_DEBIAN_PACKAGE = "rabbitmq-server"
"""Debian bookworm ships 3.10.8; the test bed runs its scripts as its own node."""

MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

JAEGER = "1.75.0"
"""github.com/jaegertracing/jaeger module; its cmd/jaeger is Jaeger v2 (an OpenTelemetry
Collector distribution) built with the machine's Go from the Go module proxy."""
