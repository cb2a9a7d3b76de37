"""Zipkin server from its exec jar, in-memory storage, HTTP bound to loopback only."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from testbed import versions
from testbed.base import LOOPBACK, Launch, Server, minimal_env, mvn_copy


class Zipkin(Server):
    name = "zipkin"
    env_var = "COMMERCE_OBSERVE_TEST_ZIPKIN_URL"

    def jar(self) -> Path:
        folder = mvn_copy(f"io.zipkin:zipkin-server:{versions.ZIPKIN}:jar:exec", f"zipkin-server-{versions.ZIPKIN}")
        return folder / f"zipkin-server-{versions.ZIPKIN}-exec.jar"

    def fetch(self) -> None:
        self.jar()

    def launch(self) -> Launch:
        # Spring Boot replaces a list property whole, so the port entry is given in full
        # with an `ip`: the shipped config alone would listen on every interface.
        argv = ["java", "-Xms128m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar", str(self.jar()),
                f"--armeria.ports[0].port={self.port}", f"--armeria.ports[0].ip={LOOPBACK}",
                "--armeria.ports[0].protocols[0]=http"]
        env = minimal_env(STORAGE_TYPE="mem", QUERY_PORT=str(self.port), HOME=str(self.workdir))
        return Launch(argv=argv, env=env, cwd=self.workdir)

    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def probe(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint()}/health", timeout=2) as resp:
            return bool(json.load(resp).get("status") == "UP")
