"""Start-up and exit of an instrumented process against backends that never answer.

Issue 13 found ``import commerce_observe.auto`` held for 185 s by an unreachable
event store and interpreter exit held for 35 s by a backend that accepts and never
answers. This runs small programs in fresh interpreters, each against a local TCP
server that accepts connections and never replies, and prints their wall times as
ratios to a baseline program measured in the same run:

* import: ``import commerce_observe.auto`` (and exit) with ``COMMERCE_OBSERVE_EVENT_STORE``
  and ``ELASTIC_APM_SERVER_URL`` at the silent server; baseline: both at a closed port
  (refused at once: the same modules imported, nothing to wait for);
* exit: 200 spans, then interpreter exit (``shutdown()`` at exit) with
  ``OTEL_EXPORTER_ZIPKIN_ENDPOINT`` at the silent server, at the default shutdown
  timeout (5 s) and at ``COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT=500``; baseline: the same
  program with no backend (the embedded file).

Run: ``.venv/bin/python benchmarks/startup_shutdown.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT = "import commerce_observe.auto\n"
EXIT = ("import commerce_observe.auto\nfrom opentelemetry import trace\nt = trace.get_tracer('b')\n"
        "for n in range(200):\n    with t.start_as_current_span(f's{n}'): pass\n")


def silent_server() -> int:
    """Accept every connection, read what comes, never answer."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)
            threading.Thread(target=lambda c=conn: [None for _ in iter(lambda: c.recv(65536), b"")], daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wall(code: str, env: dict[str, str], cwd: str) -> float:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELASTIC_APM_", "COMMERCE_OBSERVE_"))}
    full.update(env, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=full, cwd=cwd, capture_output=True, timeout=600, check=True)
    return time.perf_counter() - start


def main() -> None:
    port = silent_server()
    silent = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as cwd:
        rows = []
        closed = f"http://127.0.0.1:{closed_port()}"  # refused at once: same imports, no waiting possible
        base = min(wall(IMPORT, {"COMMERCE_OBSERVE_EVENT_STORE": closed, "ELASTIC_APM_SERVER_URL": closed}, cwd)
                   for _ in range(3))
        hung = min(wall(IMPORT, {"COMMERCE_OBSERVE_EVENT_STORE": silent, "ELASTIC_APM_SERVER_URL": silent}, cwd)
                   for _ in range(3))
        rows.append(("import + exit, store and APM Server never answer", hung, base))
        base = min(wall(EXIT, {}, cwd) for _ in range(3))
        zipkin = {"OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{silent}/api/v2/spans", "OTEL_EXPORTER_ZIPKIN_TIMEOUT": "600000"}
        rows.append(("200 spans + exit, Zipkin never answers (default 5 s)", wall(EXIT, zipkin, cwd), base))
        rows.append(("200 spans + exit, same, SHUTDOWN_TIMEOUT=500",
                     wall(EXIT, {**zipkin, "COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT": "500"}, cwd), base))
    print(f"{'case':56} {'wall s':>7} {'baseline s':>10} {'ratio':>6}")
    for name, seconds, baseline in rows:
        print(f"{name:56} {seconds:7.2f} {baseline:10.2f} {seconds / baseline:6.1f}x")


if __name__ == "__main__":
    main()
