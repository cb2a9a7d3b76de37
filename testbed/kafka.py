"""Apache Kafka broker from Maven Central jars: one KRaft node, broker and controller.

Kafka's poms bring no SLF4J binding, so the pom below adds log4j's; without it the
broker runs silently and a failed start leaves nothing to read.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import uuid
from pathlib import Path

from testbed import versions
from testbed.base import LOOPBACK, Launch, Server, TestbedError, minimal_env, mvn_copy_dependencies


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes in URL-safe base64, never starting with "-".

    One id in 64 would start with "-", and kafka-storage's argument parser reads
    such a value as an option ("--cluster-id: expected one argument"). Kafka's own
    Uuid.randomUuid draws again in that case; so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.testbed</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{versions.KAFKA}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{versions.SLF4J}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{versions.LOG4J}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
"""


class Kafka(Server):
    name = "kafka"
    env_var = "COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP"
    port_names = ("port", "controller")

    def libs(self) -> Path:
        return mvn_copy_dependencies(_POM, f"kafka-{versions.KAFKA}")

    def fetch(self) -> None:
        self.libs()

    def _java(self, main: str, *args: str, heap: tuple[str, ...] = ()) -> list[str]:
        return ["java", *heap, f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                "-cp", f"{self.libs()}/*", main, *args]

    def prepare(self) -> None:
        super().prepare()
        port, cport = self.port, self.ports["controller"]
        (self.workdir / "server.properties").write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{LOOPBACK}:{cport}",
            f"listeners=PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{cport}",
            f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.workdir / 'data'}",
            "auto.create.topics.enable=true",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]))
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        # A static voter set (controller.quorum.voters) formats without --standalone.
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", f"--cluster-id={new_cluster_id()}",
                       "-c", str(self.workdir / "server.properties")),
            env=minimal_env(), cwd=self.workdir, capture_output=True, text=True)
        if done.returncode != 0:
            raise TestbedError(f"kafka storage format failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

    def launch(self) -> Launch:
        argv = self._java("kafka.Kafka", str(self.workdir / "server.properties"),
                          heap=("-Xms256m", "-Xmx512m", "-XX:+UseG1GC"))
        return Launch(argv=argv, env=minimal_env(), cwd=self.workdir)

    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def probe(self) -> bool:
        from kafka import KafkaAdminClient  # kafka-python, from the project's [kafka] extra
        from kafka.errors import KafkaConfigurationError

        # kafka-python waits up to 30 s to bootstrap from a closed port: knock first.
        socket.create_connection((LOOPBACK, self.port), timeout=1).close()
        options = {"bootstrap_servers": self.endpoint(), "request_timeout_ms": 3000, "client_id": "testbed-probe"}
        try:
            admin = KafkaAdminClient(bootstrap_timeout_ms=3000, **options)
        except KafkaConfigurationError:  # kafka-python 2.x has no bootstrap_timeout_ms
            admin = KafkaAdminClient(**options)
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()
