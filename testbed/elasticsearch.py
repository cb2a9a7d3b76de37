"""Elasticsearch single node from the minimal integ-test zip (no bundled JDK).

Elasticsearch refuses to run as root, so when the test bed runs as root the node runs
as an unprivileged system user that owns only the node's own work directory.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from testbed import versions
from testbed.base import LOOPBACK, Launch, Server, TestbedError, cached, minimal_env, mvn_copy

RUN_AS = "cotestbed"
"""The unprivileged user Elasticsearch runs as when the test bed itself is root."""


def _java_home() -> str:
    candidates = [os.environ.get("TESTBED_ES_JAVA_HOME", ""), *versions.ELASTICSEARCH_JAVA_HOMES]
    for home in candidates:
        if home and Path(home, "bin", "java").exists():
            return home
    raise TestbedError(f"Elasticsearch {versions.ELASTICSEARCH} needs Java 21+; none of {candidates} "
                       "exists (set TESTBED_ES_JAVA_HOME)")


def _ensure_user() -> str | None:
    """Create (once) and return the user to run as, or None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "-r", "-M", "-U", "-s", "/usr/sbin/nologin", RUN_AS], check=True)
    return RUN_AS


def _let_others_walk_to(*targets: Path) -> None:
    """Add search (o+x, not read) to the folders above `targets` that lack it.

    A checkout may sit in a private folder (`mktemp -d` makes 0700) that the node's
    user could not pass through; Java checks access(2), which ignores capabilities,
    so the permission itself must allow it.
    """
    for target in targets:
        for folder in target.parents:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                print(f"testbed: chmod o+x {folder} so that {RUN_AS} can reach Elasticsearch",
                      file=sys.stderr)
                folder.chmod(mode | 0o001)


class Elasticsearch(Server):
    name = "elasticsearch"
    env_var = "COMMERCE_OBSERVE_TEST_ELASTICSEARCH_URL"
    port_names = ("port", "transport")
    start_timeout = 300.0

    def home(self) -> Path:
        version = versions.ELASTICSEARCH

        def unzip(tmp: Path) -> None:
            zips = mvn_copy(f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip",
                            f"elasticsearch-{version}-zip")
            with zipfile.ZipFile(zips / f"elasticsearch-{version}.zip") as archive:
                for info in archive.infolist():
                    path = Path(archive.extract(info, tmp))
                    if info.external_attr >> 16:  # zipfile drops the unix mode bits
                        path.chmod((info.external_attr >> 16) & 0o777)

        return cached(f"elasticsearch-{version}", unzip) / f"elasticsearch-{version}"

    def fetch(self) -> None:
        self.home()

    @property
    def cluster_name(self) -> str:
        return f"testbed-{self.port}"

    def prepare(self) -> None:
        super().prepare()
        config = self.workdir / "config"
        shutil.copytree(self.home() / "config", config)
        (config / "elasticsearch.yml").write_text("\n".join([
            f"cluster.name: {self.cluster_name}",
            "node.name: testbed",
            "discovery.type: single-node",
            f"network.host: {LOOPBACK}",
            f"http.port: {self.port}",
            f"transport.port: {self.ports['transport']}",
            f"path.data: {self.workdir / 'data'}",
            f"path.logs: {self.workdir / 'logs'}",
            "xpack.security.enabled: false",
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "action.destructive_requires_name: false",
            "",
        ]))
        (config / "jvm.options.d" / "testbed.options").write_text("-Xms512m\n-Xmx512m\n-XX:TieredStopAtLevel=1\n")
        for sub in ("data", "logs", "tmp"):
            (self.workdir / sub).mkdir()
        user = _ensure_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            _let_others_walk_to(self.home(), self.workdir)

    def launch(self) -> Launch:
        env = minimal_env(ES_JAVA_HOME=_java_home(), ES_PATH_CONF=str(self.workdir / "config"),
                          ES_TMPDIR=str(self.workdir / "tmp"), HOME=str(self.workdir))
        return Launch(argv=[str(self.home() / "bin" / "elasticsearch")], env=env,
                      cwd=self.workdir, user=_ensure_user())

    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def probe(self) -> bool:
        url = f"{self.endpoint()}/_cluster/health?wait_for_status=yellow&timeout=2s"
        with urllib.request.urlopen(url, timeout=5) as resp:
            health = json.load(resp)
        # The cluster name proves it is this node and not another one on a reused port.
        return bool(health.get("cluster_name") == self.cluster_name and not health.get("timed_out"))
