"""Pre-fork servers: every worker exports its own spans after ``fork``.

The real gunicorn and uvicorn are started as subprocesses on 127.0.0.1 ephemeral
ports. Requests are sent concurrently until at least two distinct worker pids have
answered; then every trace, whichever worker served it, must be in the real Zipkin
with its SERVER span. ``--preload`` is the hard case: commerce_observe is installed
in the master, and the workers inherit it through ``fork``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import zipkin as z
from testbed.base import free_port
from tests.web.servers import REPO, stop, wait_http

pytestmark = pytest.mark.zipkin

BIN = Path(sys.executable).parent


def _get(url: str, trace_id: str) -> tuple[str, int]:
    request = urllib.request.Request(url, headers={"traceparent": z.traceparent(trace_id), "Connection": "close"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return trace_id, int(json.load(resp)["pid"])


def _drive(base: str, want_workers: int = 2, deadline_s: float = 30.0) -> dict[str, int]:
    """trace id -> worker pid, sending batches of concurrent requests until enough workers answered."""
    served: dict[str, int] = {}
    deadline = time.monotonic() + deadline_s
    with ThreadPoolExecutor(max_workers=12) as pool:
        while len(set(served.values())) < want_workers:
            assert time.monotonic() < deadline, f"only workers {set(served.values())} answered"
            ids = [z.new_trace_id() for _ in range(12)]
            for trace_id, pid in pool.map(lambda t: _get(f"{base}/orders/ord-{t[:6]}", t), ids):
                served[trace_id] = pid
    return served


def _run_server(argv: list[str], zipkin_url: str, service: str) -> None:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    proc = subprocess.Popen(argv, cwd=REPO, env=z.subprocess_env(zipkin_url, service),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/orders/warmup", proc)
        served = _drive(base)
        for trace_id, pid in served.items():
            server = z.server_span(zipkin_url, trace_id, timeout=30)
            assert server["localEndpoint"]["serviceName"] == service
            assert server["tags"]["commerce.order.id"] == f"ord-{trace_id[:6]}", f"worker {pid}"
    finally:
        output = stop(proc)
    assert "Traceback" not in output, output[-4000:]


def test_gunicorn_sync_workers_with_preload(zipkin_url: str) -> None:
    _run_server([str(BIN / "gunicorn"), "--preload", "--workers", "3", "--bind", "127.0.0.1:{port}",
                 "--graceful-timeout", "5", "tests.web.apps.prefork_flask:app"], zipkin_url, z.unique_service("gunicorn"))


def test_uvicorn_workers(zipkin_url: str) -> None:
    _run_server([str(BIN / "uvicorn"), "--workers", "2", "--host", "127.0.0.1", "--port", "{port}",
                 "--no-access-log", "tests.web.apps.prefork_fastapi:app"], zipkin_url, z.unique_service("uvicorn"))


def test_gunicorn_with_uvicorn_workers_and_preload(zipkin_url: str) -> None:
    _run_server([str(BIN / "gunicorn"), "--preload", "--workers", "2", "-k", "uvicorn.workers.UvicornWorker",
                 "--bind", "127.0.0.1:{port}", "--graceful-timeout", "5", "tests.web.apps.prefork_fastapi:app"],
                zipkin_url, z.unique_service("gunicorn-uvicorn"))
