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
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import ClassVar

from testbed import versions
from testbed.base import LOOPBACK, Launch, Server, TestbedError, cached, minimal_env
from testbed.tls import make_pki

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
      receivers: [{receivers}]
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
{receiver_blocks}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


_RECEIVER = """\
  {name}:
    protocols:
      grpc:
        endpoint: {host}:{grpc}{tls}
      http:
        endpoint: {host}:{http}{tls}"""
_TLS = """
        tls:
          cert_file: {crt}
          key_file: {key}"""


def _receiver(name: str, http: int, grpc: int, tls: str = "") -> str:
    return _RECEIVER.format(name=name, host=LOOPBACK, http=http, grpc=grpc, tls=tls)


class Jaeger(Server):
    """OTLP in on `port` (HTTP) and `grpc`; the query API on `query`."""

    name = "jaeger"
    env_var = "COMMERCE_OBSERVE_TEST_OTLP_HTTP_ENDPOINT"
    port_names: ClassVar[tuple[str, ...]] = ("port", "grpc", "query", "query_grpc")
    start_timeout = 60.0

    def fetch(self) -> None:
        build_jaeger()

    def prepare(self) -> None:
        super().prepare()
        self._write_config({"otlp": _receiver("otlp", self.port, self.ports["grpc"])})

    def _write_config(self, receivers: dict[str, str]) -> None:
        (self.workdir / "config.yaml").write_text(_CONFIG.format(
            host=LOOPBACK, receivers=", ".join(receivers), receiver_blocks="\n".join(receivers.values()),
            **self.ports))

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
        for name in self.port_names:
            socket.create_connection((LOOPBACK, self.ports[name]), timeout=1).close()
        return True


class JaegerTls(Jaeger):
    """The same Jaeger binary with a second configuration: OTLP over TLS only.

    Two receivers, each gRPC and HTTP, with a certificate from a CA made with openssl
    at each `up` (`tls.py`): `otlp` (server authentication: a client needs the CA) and
    `otlp/mtls` (it also requires a client certificate signed by that CA). Its own
    memory storage and query API (plain HTTP) read the spans back.
    """

    name = "jaeger_tls"
    env_var = "COMMERCE_OBSERVE_TEST_OTLP_TLS_HTTP_ENDPOINT"
    port_names = ("port", "grpc", "mtls_http", "mtls_grpc", "query", "query_grpc")

    def prepare(self) -> None:
        Server.prepare(self)
        pki = make_pki(self.workdir / "tls")
        tls = _TLS.format(crt=pki.server_crt, key=pki.server_key)
        mtls = tls + f"\n          client_ca_file: {pki.ca}"
        self._write_config({
            "otlp": _receiver("otlp", self.port, self.ports["grpc"], tls),
            "otlp/mtls": _receiver("otlp/mtls", self.ports["mtls_http"], self.ports["mtls_grpc"], mtls),
        })

    def endpoint(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def exports(self) -> dict[str, str]:
        tls = self.workdir / "tls"
        prefix = "COMMERCE_OBSERVE_TEST_OTLP_TLS_"
        return {
            self.env_var: self.endpoint(),
            f"{prefix}GRPC_ENDPOINT": f"https://{LOOPBACK}:{self.ports['grpc']}",
            f"{prefix}MTLS_HTTP_ENDPOINT": f"https://{LOOPBACK}:{self.ports['mtls_http']}",
            f"{prefix}MTLS_GRPC_ENDPOINT": f"https://{LOOPBACK}:{self.ports['mtls_grpc']}",
            f"{prefix}QUERY_URL": f"http://{LOOPBACK}:{self.ports['query']}",
            f"{prefix}CA_FILE": str(tls / "ca.pem"),
            f"{prefix}CLIENT_CERT": str(tls / "client.crt"),
            f"{prefix}CLIENT_KEY": str(tls / "client.key"),
        }

    def probe(self) -> bool:
        """The query API answers, every port accepts, and the TLS port's certificate
        verifies against the test bed's CA."""
        if not super().probe():
            return False
        context = ssl.create_default_context(cafile=str(self.workdir / "tls" / "ca.pem"))
        with socket.create_connection((LOOPBACK, self.port), timeout=2) as sock:
            with context.wrap_socket(sock, server_hostname=LOOPBACK):
                return True
