"""A small Elasticsearch HTTP client: JSON requests and a bulk writer with back-pressure.

Plain ``http.client`` (one keep-alive connection per thread) instead of the
official client, so the monitoring store adds no dependency. What matters for
shipping events is here:

* batches bounded by documents *and* bytes, at most ``max_in_flight`` bulk
  requests at once; ``write`` returns only when its batches are settled, which is
  the back-pressure the shipper relies on (it commits Kafka offsets after);
* ``op_type=create`` with ``_id`` = ``event.id`` (data streams accept only
  create): a 409 means "already written" and is counted as a duplicate;
* 429 and 5xx (whole request or single items) are retried with exponential
  backoff and jitter; other item errors (mapping conflicts) are rejected for good.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from commerce_observe.store.store import StoreUnavailable, WriteResult

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


class EsError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"Elasticsearch answered {status}: {str(body)[:500]}")
        self.status = status
        self.body = body


class EsHttp:
    """JSON over HTTP to one Elasticsearch URL, retrying 429/5xx and broken connections."""

    def __init__(self, url: str, *, api_key: str | None = None, username: str | None = None,
                 password: str | None = None, timeout_s: float = 30.0, max_retries: int = 5,
                 backoff_s: float = 0.2) -> None:
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 9200)
        self._prefix = parts.path.rstrip("/")
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = "ApiKey " + api_key
        elif username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = "Basic " + token
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout_s)
            self._local.conn = conn
        return conn

    def sleep_before(self, attempt: int) -> None:
        time.sleep(self.backoff_s * (2 ** attempt) * (0.5 + random.random()))

    def raw(self, method: str, path: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, Any]:
        """One request with retries; returns (status, parsed JSON or None). Never retries 4xx but 429."""
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in range(self.max_retries + 1):
            try:
                conn = self._conn()
                conn.request(method, self._prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                self._local.conn = None
                if attempt == self.max_retries:
                    raise StoreUnavailable(f"Elasticsearch unreachable: {exc!r}") from exc
                self.sleep_before(attempt)
                continue
            if status in RETRY_STATUSES and attempt < self.max_retries:
                self.sleep_before(attempt)
                continue
            return status, json.loads(data) if data else None
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200, 201)) -> Any:
        status, data = self.raw(method, path, None if body is None else json.dumps(body).encode())
        if status not in ok:
            if status in RETRY_STATUSES:
                raise StoreUnavailable(f"Elasticsearch answered {status} after retries")
            raise EsError(status, data)
        return data

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class BulkWriter:
    """Creates documents in one index or data stream, ``_id`` = ``event.id``."""

    def __init__(self, http_: EsHttp, index: str, *, batch_docs: int = 2000, batch_bytes: int = 5 * 2**20,
                 max_in_flight: int = 2, refresh: bool = False) -> None:
        self.http, self.index = http_, index
        self.batch_docs, self.batch_bytes = batch_docs, batch_bytes
        self.refresh = refresh
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="commerce-es-bulk")

    def _batches(self, docs: Sequence[Mapping[str, Any]]) -> list[list[bytes]]:
        batches: list[list[bytes]] = [[]]
        size = 0
        for doc in docs:
            action = json.dumps({"create": {"_index": self.index, "_id": str(doc["event.id"])}}).encode()
            pair = action + b"\n" + json.dumps(doc, separators=(",", ":")).encode() + b"\n"
            if batches[-1] and (len(batches[-1]) >= self.batch_docs or size + len(pair) > self.batch_bytes):
                batches.append([])
                size = 0
            batches[-1].append(pair)
            size += len(pair)
        return [b for b in batches if b]

    def _send(self, pairs: list[bytes]) -> WriteResult:
        result = WriteResult()
        path = "/_bulk?refresh=wait_for" if self.refresh else "/_bulk"
        for attempt in range(self.http.max_retries + 1):
            status, body = self.http.raw("POST", path, b"".join(pairs), "application/x-ndjson")
            if status in RETRY_STATUSES:
                raise StoreUnavailable(f"bulk answered {status} after retries")
            if status != 200:
                raise EsError(status, body)
            retry: list[bytes] = []
            for pair, item in zip(pairs, body["items"]):
                st = item["create"]["status"]
                if st in (200, 201):
                    result += WriteResult(written=1)
                elif st == 409:
                    result += WriteResult(duplicates=1)
                elif st in RETRY_STATUSES:
                    retry.append(pair)
                else:
                    result += WriteResult(rejected=1)
            if not retry:
                return result
            if attempt == self.http.max_retries:
                raise StoreUnavailable(f"{len(retry)} documents still refused (429/5xx) after retries")
            pairs = retry
            self.http.sleep_before(attempt)
        return result  # pragma: no cover

    def write(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult:
        """Write all documents; raises :class:`StoreUnavailable` if some could not be settled."""
        total = WriteResult()
        for future in [self._pool.submit(self._send, b) for b in self._batches(docs)]:
            total += future.result()
        return total

    def close(self) -> None:
        self._pool.shutdown(wait=True)
