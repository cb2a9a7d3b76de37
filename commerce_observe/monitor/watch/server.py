"""The watch's own health and metrics, over HTTP: ``/metrics`` (Prometheus text) and ``/healthz``.

Values are read at scrape time from the loop's counters (which live in the
checkpoint, so they continue across restarts instead of falling back to zero) by
a custom collector on a registry of our own: prometheus_client renders the
exposition format, nothing is registered globally.

``/healthz`` answers 200 while the loop has completed a pass recently (it
waits at most ``poll_idle_s`` between passes), 503 otherwise: a loop stuck on
an unreachable store is not healthy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

PREFIX = "commerce_observe_watch"

#: counter name in the state -> (metric name, help)
COUNTERS = {
    "audit_records": ("audit_records", "Audit records read"),
    "events": ("events", "Event documents read (Kafka mode)"),
    "buckets_scored": ("buckets_scored", "Series buckets scored as they closed"),
    "scores_stored": ("scores_stored", "Anomaly scores written to the store"),
    "errors": ("errors", "Passes of the loop that failed (the state was reloaded and the input replayed)"),
    "checkpoints": ("checkpoints", "Checkpoints written"),
}


class WatchCollector:
    """Reads the figures of a running watch through ``snapshot`` at each scrape."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        counters: dict[str, int] = s["counters"]
        for key, (name, text) in COUNTERS.items():
            c = CounterMetricFamily(f"{PREFIX}_{name}", text)
            c.add_metric([], counters.get(key, 0))
            yield c
        f = CounterMetricFamily(f"{PREFIX}_findings", "Audit findings released, by kind", labels=["kind"])
        for kind in ("LOST", "DUPLICATE", "UNDELIVERED", "LATE", "GAP"):
            f.add_metric([kind], s["findings"].get(kind, 0))
        yield f
        a = CounterMetricFamily(f"{PREFIX}_alerts_sent", "Notifications delivered (per notifier)")
        a.add_metric([], s["alerts_sent"])
        yield a
        g = CounterMetricFamily(f"{PREFIX}_alerts_given_up", "Notifications given up after retries")
        g.add_metric([], s["alerts_given_up"])
        yield g
        for name, text, value in (
                ("lag_seconds", "Wall clock minus the newest record time read", s["lag_s"]),
                ("watermark_seconds", "Event time the watch has reached (epoch seconds)", s["watermark_s"]),
                ("next_bucket_seconds", "Start of the first series bucket not yet scored (epoch seconds)", s["next_bucket_s"]),
                ("peak_open_events", "Most events inside their grace window at once", s["open_events"]),
                ("series", "Series the detector models", s["series"]),
                ("shards", "Series shards this member scores (--scale-out)", s["shards"]),
                ("alerts_pending", "Notifications not yet delivered", s["pending"])):
            m = GaugeMetricFamily(f"{PREFIX}_{name}", text)
            m.add_metric([], value)
            yield m


class StatusServer:
    """A small threaded HTTP server; ``port`` 0 picks a free one (see :attr:`port`)."""

    def __init__(self, port: int, snapshot: Callable[[], dict[str, Any]], healthy: Callable[[], bool],
                 host: str = "127.0.0.1") -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WatchCollector(snapshot))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.startswith("/metrics"):
                    body, status, ctype = generate_latest(registry), 200, "text/plain; version=0.0.4; charset=utf-8"
                elif self.path.startswith("/healthz"):
                    ok = healthy()
                    body, status, ctype = (b"ok\n" if ok else b"stalled\n"), (200 if ok else 503), "text/plain"
                else:
                    body, status, ctype = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="commerce-observe-watch-http", daemon=True)

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Heartbeat:
    """When the loop last completed a pass (monotonic), for ``/healthz``."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() - self.last <= self.limit_s
