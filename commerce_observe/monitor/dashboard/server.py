"""The local dashboard: one page and a JSON API over any store, on the standard library.

Why no web framework and no chart library: the dashboard must work on a laptop
with nothing installed and on a machine without internet, so the page, its
script and its SVG charts are files of this package, served by
``http.server``. Every request asks the store again (the SQLite rollups and
Elasticsearch aggregations answer in milliseconds), so the page refreshes live
by polling ``/api/summary``.

API: ``GET /api/summary?minutes=60&bucket=1`` (or ``start_ms``/``end_ms``)
returns :func:`~commerce_observe.store.overview.summary` plus trace links
for each finding; ``GET /api/config`` the refresh interval and link bases.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from commerce_observe._internal.selfstats import logger
from commerce_observe.monitor.audit.findings import Links
from commerce_observe.store.overview import summary
from commerce_observe.store.queries import MetricsQuery, TimeRange

JS = "text/javascript; charset=utf-8"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", JS), "/charts.js": ("charts.js", JS),
          "/style.css": ("style.css", "text/css; charset=utf-8")}


#: Chart bucket for a range of up to N minutes: about 60 to 170 points, on round clock times.
BUCKETS = ((60, 1), (360, 5), (1440, 15), (10080, 60), (60 * 24 * 30, 360))


def bucket_for(minutes: int) -> int:
    return next((b for upto, b in BUCKETS if minutes <= upto), 1440)


def _int(params: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(params[name][0])))
    except (KeyError, ValueError, IndexError):
        return default


class Dashboard:
    """Serves one store; ``start()`` runs it on a daemon thread, ``serve_forever()`` in the foreground."""

    def __init__(self, store: MetricsQuery, *, host: str = "127.0.0.1", port: int = 8050,
                 zipkin_url: str | None = None, kibana_url: str | None = None, refresh_s: float = 5.0,
                 default_minutes: int = 60) -> None:
        self.store = store
        self.links = Links(zipkin_url, kibana_url)
        self.refresh_s, self.default_minutes = refresh_s, default_minutes
        self._static = {path: (resources.files(__package__).joinpath("static", name).read_bytes(), ctype)
                        for path, (name, ctype) in STATIC.items()}
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/" if isinstance(host, str) else f"http://127.0.0.1:{port}/"

    def api_summary(self, query: str) -> dict[str, Any]:
        params = parse_qs(query)
        if "start_ms" in params and "end_ms" in params:
            start, end = _int(params, "start_ms", 0, 0, 2**50), _int(params, "end_ms", 0, 0, 2**50)
            r = TimeRange(start // 60_000 * 60_000, max(-(-end // 60_000) * 60_000, start // 60_000 * 60_000 + 60_000))
            minutes = r.minutes
        else:
            minutes = _int(params, "minutes", self.default_minutes, 1, 60 * 24 * 90)
            r = TimeRange.last(minutes)  # one minute more than asked: the current minute is whole
        bucket = _int(params, "bucket", bucket_for(minutes), 1, 24 * 60)
        out = summary(self.store, r, bucket_minutes=bucket, top=_int(params, "top", 10, 1, 100))
        out["minutes"] = minutes  # as asked: the range holds one more, the current minute
        for row in (*out["alerts"], *out["finding_list"]):
            row["links"] = self.links.for_trace(row.get("trace_id"))
        return out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                try:
                    if url.path in app._static:
                        body, ctype = app._static[url.path]
                        self._send(200, body, ctype)
                    elif url.path == "/api/summary":
                        self._json(200, app.api_summary(url.query))
                    elif url.path == "/api/config":
                        self._json(200, {"refresh_s": app.refresh_s, "zipkin": app.links.zipkin_ui,
                                         "kibana": app.links.kibana})
                    else:
                        self._json(404, {"error": "not found"})
                except Exception as exc:  # a store hiccup shows on the page, the server stays up
                    logger.warning("dashboard request %s failed: %r", self.path, exc)
                    self._json(503, {"error": f"store unavailable: {exc}"})

            def _json(self, status: int, data: Any) -> None:
                self._send(status, json.dumps(data).encode(), "application/json")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def start(self) -> Dashboard:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="commerce-dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
