"""RabbitMQ from Debian's rabbitmq-server package, run as the test bed's own node.

The system service is not used: this node has its own name, its own mnesia and log
directories, its own Erlang cookie (HOME) and its own epmd, all on loopback, so it
neither needs nor disturbs a RabbitMQ that the machine may run.
"""

from __future__ import annotations

from pathlib import Path

from testbed import versions
from testbed.base import LOOPBACK, Launch, Server, TestbedError, minimal_env

SBIN = Path("/usr/lib/rabbitmq/bin")

# epmd must listen before the node starts, or the node would spawn a detached one
# that outlives the test bed; it shares the node's process group and dies with it.
_START = """epmd -address 127.0.0.1 -port "$ERL_EPMD_PORT" &
for _ in $(seq 100); do epmd -names >/dev/null 2>&1 && break; sleep 0.05; done
exec {sbin}/rabbitmq-server
"""


class RabbitMQ(Server):
    name = "rabbitmq"
    env_var = "COMMERCE_OBSERVE_TEST_RABBITMQ_URL"
    port_names = ("port", "dist", "epmd")

    def fetch(self) -> None:
        if not (SBIN / "rabbitmq-server").exists():
            raise TestbedError(f"RabbitMQ is not installed: apt-get install -y {versions.RABBITMQ_DEBIAN_PACKAGE} "
                               "(scripts/test.sh does this)")

    @property
    def nodename(self) -> str:
        return f"testbed{self.port}@localhost"

    def prepare(self) -> None:
        super().prepare()
        for sub in ("home", "mnesia", "log"):
            (self.workdir / sub).mkdir()
        (self.workdir / "rabbitmq.conf").write_text(
            "disk_free_limit.absolute = 50MB\nloopback_users.guest = true\n")
        (self.workdir / "enabled_plugins").write_text("[].\n")
        (self.workdir / "rabbitmq-env.conf").write_text("")

    def launch(self) -> Launch:
        w = self.workdir
        env = minimal_env(
            HOME=str(w / "home"),
            ERL_EPMD_ADDRESS=LOOPBACK,
            ERL_EPMD_PORT=str(self.ports["epmd"]),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=LOOPBACK,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.ports["dist"]),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_MNESIA_BASE=str(w / "mnesia"),
            RABBITMQ_LOG_BASE=str(w / "log"),
            RABBITMQ_LOGS="-",
            RABBITMQ_CONFIG_FILE=str(w / "rabbitmq.conf"),
            RABBITMQ_CONF_ENV_FILE=str(w / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(w / "enabled_plugins"),
        )
        return Launch(argv=["sh", "-c", _START.format(sbin=SBIN)], env=env, cwd=w)

    def endpoint(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/"

    def probe(self) -> bool:
        import pika  # from the project's [rabbitmq] extra

        params = pika.URLParameters(self.endpoint())
        params.socket_timeout = 2
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()
        return True
