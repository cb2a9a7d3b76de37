"""Jaeger v2 as the test bed's OTLP receiver: built once from the Go module proxy.

Jaeger v2 is an OpenTelemetry Collector distribution: an `otlp` receiver (gRPC and
HTTP) writes into in-memory storage, and its query API reads the spans back by trace
id, so a test can check that what we exported over OTLP arrived with the same ids.
The binary is built with the machine's Go into `.cache/downloads/jaeger-<v>/` (a few
minutes the first time; Go keeps its module and build caches for the next build).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from testbed import versions
from testbed.base import LOOPBACK, Launch, Server, TestbedError, cached, minimal_env

_MODULE = "github.com/jaegertracing/jaeger"
_BUILD_TIMEOUT = 1800.0


def _go(args: list[str], cwd: Path) -> None:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        raise TestbedError("go is not on PATH; the Jaeger OTLP receiver is built with Go")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false")
    done = subprocess.run([go, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=_BUILD_TIMEOUT)
    if done.returncode != 0:
        raise TestbedError(f"go {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def build_jaeger() -> Path:
    """The cached Jaeger v2 binary, built on first use from a scratch Go module."""

    def fill(tmp: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="testbed-jaeger-"))
        try:
            began = time.monotonic()
            _go(["mod", "init", "local.testbed/jaeger"], work)
            _go(["get", "-tool", f"{_MODULE}/cmd/jaeger@v{versions.JAEGER}"], work)
            _go(["build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp / "jaeger"), f"{_MODULE}/cmd/jaeger"], work)
            (tmp / "build-seconds").write_text(f"{time.monotonic() - began:.0f}\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return cached(f"jaeger-{versions.JAEGER}", fill) / "jaeger"


_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: {host}:{query}
    grpc:
      endpoint: {host}:{query_grpc}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{grpc}
      http:
        endpoint: {host}:{port}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


class Jaeger(Server):
    """OTLP in on `port` (HTTP) and `grpc`; the query API on `query`."""

    name = "jaeger"
    env_var = "COMMERCE_OBSERVE_TEST_OTLP_HTTP_ENDPOINT"
    port_names = ("port", "grpc", "query", "query_grpc")
    start_timeout = 60.0

    def fetch(self) -> None:
        build_jaeger()

    def prepare(self) -> None:
        super().prepare()
        (self.workdir / "config.yaml").write_text(_CONFIG.format(host=LOOPBACK, **self.ports))

    def launch(self) -> Launch:
        argv = [str(build_jaeger()), f"--config=file:{self.workdir / 'config.yaml'}"]
        return Launch(argv=argv, env=minimal_env(HOME=str(self.workdir)), cwd=self.workdir)

    def endpoint(self) -> str:
        """The OTLP/HTTP base URL (the exporter appends `/v1/traces`)."""
        return f"http://{LOOPBACK}:{self.port}"

    def exports(self) -> dict[str, str]:
        return {
            self.env_var: self.endpoint(),
            "COMMERCE_OBSERVE_TEST_OTLP_GRPC_ENDPOINT": f"http://{LOOPBACK}:{self.ports['grpc']}",
            "COMMERCE_OBSERVE_TEST_OTLP_QUERY_URL": f"http://{LOOPBACK}:{self.ports['query']}",
        }

    def probe(self) -> bool:
        # The query API answers once storage and receivers are up (they start first).
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ports['query']}/api/services", timeout=2) as resp:
            return "data" in json.load(resp) and self._otlp_listening()  # data: null while empty

    def _otlp_listening(self) -> bool:
        for port in (self.port, self.ports["grpc"]):
            socket.create_connection((LOOPBACK, port), timeout=1).close()
        return True
