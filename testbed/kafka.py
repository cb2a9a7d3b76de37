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
from testbed.tls import make_pki

#: Users of the SASL_SSL listener: PLAIN (from the JAAS line) and SCRAM-SHA-256/512
#: (added at format time) share these names and passwords. Test credentials only.
SASL_USERS = {"shop": "shop-secret-1"}


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
    port_names = ("port", "controller", "sasl_ssl")

    def libs(self) -> Path:
        return mvn_copy_dependencies(_POM, f"kafka-{versions.KAFKA}")

    def fetch(self) -> None:
        self.libs()

    def _java(self, main: str, *args: str, heap: tuple[str, ...] = ()) -> list[str]:
        return ["java", *heap, f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                "-cp", f"{self.libs()}/*", main, *args]

    def prepare(self) -> None:
        super().prepare()
        port, cport, sport = self.port, self.ports["controller"], self.ports["sasl_ssl"]
        pki = make_pki(self.workdir / "tls")
        plain_users = " ".join(f'user_{user}="{password}"' for user, password in SASL_USERS.items())
        (self.workdir / "server.properties").write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{LOOPBACK}:{cport}",
            f"listeners=PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{cport},SASL_SSL://{LOOPBACK}:{sport}",
            f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{port},SASL_SSL://{LOOPBACK}:{sport}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            # the secured listener: TLS with our CA (client certificates asked for, not
            # required), SASL PLAIN and SCRAM; SCRAM users are added at format time
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.plain.sasl.jaas.config="
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            f"listener.name.sasl_ssl.ssl.keystore.location={pki.server_pem}",
            "listener.name.sasl_ssl.ssl.truststore.type=PEM",
            f"listener.name.sasl_ssl.ssl.truststore.location={pki.ca}",
            "listener.name.sasl_ssl.ssl.client.auth=requested",
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
                       "-c", str(self.workdir / "server.properties"),
                       *(arg for user, password in SASL_USERS.items() for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                         for arg in ("--add-scram", f"{mech}=[name={user},password={password}]"))),
            env=minimal_env(), cwd=self.workdir, capture_output=True, text=True)
        if done.returncode != 0:
            raise TestbedError(f"kafka storage format failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

    def launch(self) -> Launch:
        argv = self._java("kafka.Kafka", str(self.workdir / "server.properties"),
                          heap=("-Xms256m", "-Xmx512m", "-XX:+UseG1GC"))
        return Launch(argv=argv, env=minimal_env(), cwd=self.workdir)

    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def exports(self) -> dict[str, str]:
        tls = self.workdir / "tls"
        user, password = next(iter(SASL_USERS.items()))
        return {
            self.env_var: self.endpoint(),
            "COMMERCE_OBSERVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP": f"{LOOPBACK}:{self.ports['sasl_ssl']}",
            "COMMERCE_OBSERVE_TEST_KAFKA_CA_FILE": str(tls / "ca.pem"),
            "COMMERCE_OBSERVE_TEST_KAFKA_CLIENT_CERT": str(tls / "client.crt"),
            "COMMERCE_OBSERVE_TEST_KAFKA_CLIENT_KEY": str(tls / "client.key"),
            "COMMERCE_OBSERVE_TEST_KAFKA_SASL_USERNAME": user,
            "COMMERCE_OBSERVE_TEST_KAFKA_SASL_PASSWORD": password,
        }

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
            if "__consumer_offsets" in admin.list_topics():
                return True
            # Healthy means ready for consumer groups, as a broker in use always is: the
            # first coordinator lookup creates the offsets topic. On a fresh broker a
            # confluent-kafka consumer whose lookup came first could wait a minute and
            # more for its group (tests/audit/test_spool_cli.py run alone, 2 of 2).
            describe = getattr(admin, "describe_groups", None) or admin.describe_consumer_groups  # 3.x, 2.x
            describe(["testbed-probe"])
            return "__consumer_offsets" in admin.list_topics()
        finally:
            admin.close()
