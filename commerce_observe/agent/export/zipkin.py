"""Zipkin exporter: v2 JSON over one kept-alive HTTP connection, stdlib only.

It runs on its own pipeline worker thread, so it may block on the network, but
always within bounds: each request has ``timeout_s``; connection errors, timeouts,
5xx and 429 are retried at most ``max_retries`` times with doubling backoff
(``backoff_s``, capped at 2 s); then :meth:`ZipkinExporter.export` returns False
and the pipeline counts the spans as dropped. It never raises for a backend
problem. :meth:`shutdown` cuts any backoff short so a shutdown deadline holds.

Counters: ``export.zipkin.exported`` (spans accepted by Zipkin),
``export.zipkin.retries`` (requests retried), ``export.zipkin.failed`` (batches
given up), ``export.zipkin.encode_failed`` (batches that could not be encoded).
"""

from __future__ import annotations

import gzip
import http.client
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.record import SpanRecord
from commerce_observe.agent.export.zipkin_encode import EndpointCache, JsonText, encode_lean, encode_py_zipkin

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ZipkinExporter:
    """POSTs batches of spans to a Zipkin ``/api/v2/spans`` endpoint."""

    def __init__(
        self,
        endpoint: str,
        timeout_s: float = 10.0,
        *,
        max_retries: int = 3,
        backoff_s: float = 0.1,
        gzip_body: bool = False,
        encoder: str = "lean",
        name: str = "zipkin",
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        if encoder not in ("lean", "py_zipkin"):
            raise ValueError("encoder must be 'lean' or 'py_zipkin'")
        self.name = name
        self.endpoint = endpoint
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/api/v2/spans") + (f"?{parts.query}" if parts.query else "")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.gzip_body = gzip_body
        self._lean = encoder == "lean"
        self._text = JsonText()
        self._endpoints = EndpointCache()
        self._conn: http.client.HTTPConnection | None = None
        self._closing = threading.Event()
        self._counter = f"export.{name}"
        after_fork_in_child(self._after_fork_in_child)

    def encode(self, batch: Sequence[SpanRecord]) -> bytes:
        """The request body for ``batch`` (a JSON array of v2 spans)."""
        if self._lean:
            return encode_lean(batch, self._endpoints, self._text)
        return encode_py_zipkin(batch, self._endpoints)

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        if not batch:
            return True
        try:
            body = self.encode(batch)
        except Exception as exc:
            stats.swallow(f"{self._counter}.encode_failed", "zipkin encoding failed: %r", exc)
            return False
        headers = {"Content-Type": "application/json"}
        if self.gzip_body:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            if attempt:
                stats.incr(f"{self._counter}.retries")
                if self._closing.wait(delay):
                    break
                delay = min(delay * 2, 2.0)
            status = self._post(body, headers)
            if status is not None and 200 <= status < 300:
                stats.incr(f"{self._counter}.exported", len(batch))
                return True
            if status is not None and status not in _RETRY_STATUSES:
                break
        stats.record_failure(f"{self._counter}.failed", "zipkin export to %s failed; %d spans dropped", self.endpoint, len(batch))
        return False

    def _post(self, body: bytes, headers: dict[str, str]) -> int | None:
        """One request; the HTTP status, or None on a connection-level error."""
        conn = self._conn
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        try:
            conn.request("POST", self._path, body, headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self._drop_connection()
            return response.status
        except (OSError, http.client.HTTPException):
            self._drop_connection()
            return None

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def shutdown(self) -> None:
        self._closing.set()
        self._drop_connection()

    def _after_fork_in_child(self) -> None:
        """In a forked child: never write on the parent's socket; open a new one."""
        self._conn = None
        self._closing = threading.Event()
