"""Elasticsearch access: the official client for HTTP, our bulk writer for shipping.

HTTP is the official ``elasticsearch`` client (its ``elastic-transport``): several
nodes (a comma-separated URL list) with node failover, connection pooling, TLS with a
CA file or a certificate fingerprint, basic auth (also from credentials in the URL,
which used to be dropped) or an API key. :class:`EsHttp` keeps the small interface
the store's modules use (``raw``, ``request``) on top of it. What matters for
shipping events stays ours (:class:`BulkWriter`):

* batches bounded by documents *and* bytes, at most ``max_in_flight`` bulk
  requests at once; ``write`` returns only when its batches are settled, which is
  the back-pressure the shipper relies on (it commits Kafka offsets after);
* ``op_type=create`` with ``_id`` = ``event.id`` (data streams accept only
  create): a 409 means "already written" and is counted as a duplicate;
* 429 and 5xx (whole request or single items) are retried with exponential
  backoff and jitter (the client fails over between nodes on connection errors but
  does not back off); other item errors (mapping conflicts) are rejected for good.

Credentials and TLS come from the arguments, else from the settings
``COMMERCE_OBSERVE_ES_API_KEY``, ``..._ES_USERNAME``/``..._ES_PASSWORD``,
``..._ES_CA_CERTS``, ``..._ES_SSL_ASSERT_FINGERPRINT``, ``..._ES_VERIFY_CERTS``.
"""

from __future__ import annotations

import json
import random
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


def split_nodes(url: str) -> tuple[list[str], tuple[str, str] | None, str]:
    """``url`` (one URL or a comma-separated list) as node URLs without credentials,
    the credentials found in them (``https://user:pass@host``), and the path prefix."""
    nodes: list[str] = []
    auth: tuple[str, str] | None = None
    prefix = ""
    for one in (u.strip() for u in url.split(",") if u.strip()):
        parts = urllib.parse.urlsplit(one)
        if parts.username is not None:
            auth = (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        port = parts.port or (443 if parts.scheme == "https" else 9200)
        nodes.append(f"{parts.scheme}://{parts.hostname}:{port}")
        prefix = parts.path.rstrip("/")
    return nodes, auth, prefix


def _from_settings() -> dict[str, Any]:
    from commerce_observe.config import load_config

    c = load_config(lenient=True)
    return {"api_key": c.es_api_key, "username": c.es_username, "password": c.es_password,
            "ca_certs": c.es_ca_certs, "ssl_assert_fingerprint": c.es_ssl_assert_fingerprint,
            "verify_certs": c.es_verify_certs}


class EsHttp:
    """JSON over the official client to one cluster, retrying 429/5xx with backoff."""

    def __init__(self, url: str, *, api_key: str | None = None, username: str | None = None,
                 password: str | None = None, ca_certs: str | None = None, ssl_assert_fingerprint: str | None = None,
                 verify_certs: bool | None = None, timeout_s: float = 30.0, max_retries: int = 5,
                 backoff_s: float = 0.2) -> None:
        from elasticsearch import Elasticsearch

        given = {"api_key": api_key, "username": username, "password": password, "ca_certs": ca_certs,
                 "ssl_assert_fingerprint": ssl_assert_fingerprint, "verify_certs": verify_certs}
        if all(v is None for v in given.values()):
            given = _from_settings()
        nodes, url_auth, self._prefix = split_nodes(url)
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        options: dict[str, Any] = {"request_timeout": timeout_s, "max_retries": max_retries,
                                   "retry_on_timeout": True, "retry_on_status": ()}
        if given["api_key"]:
            options["api_key"] = given["api_key"]
        elif given["username"] or url_auth:
            options["basic_auth"] = (given["username"], given["password"] or "") if given["username"] else url_auth
        if given["ca_certs"]:
            options["ca_certs"] = given["ca_certs"]
        if given["ssl_assert_fingerprint"]:
            options["ssl_assert_fingerprint"] = given["ssl_assert_fingerprint"]
        if given["verify_certs"] is False:
            options["verify_certs"] = False
        self.client = Elasticsearch(nodes, **options)
        self.nodes = nodes

    def sleep_before(self, attempt: int) -> None:
        time.sleep(self.backoff_s * (2 ** attempt) * (0.5 + random.random()))

    def raw(self, method: str, path: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, Any]:
        """One request with retries; returns (status, parsed JSON or None). Never retries 4xx but 429."""
        from elastic_transport import ApiError, TransportError

        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = content_type
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.perform_request(method, self._prefix + path, headers=headers, body=body)
                status, data = resp.meta.status, resp.body
            except ApiError as exc:
                status, data = exc.meta.status, exc.body
            except TransportError as exc:  # every node unreachable, after the client's own retries
                raise StoreUnavailable(f"Elasticsearch unreachable: {type(exc).__name__}: {exc.message}") from exc
            if status in RETRY_STATUSES and attempt < self.max_retries:
                self.sleep_before(attempt)
                continue
            if isinstance(data, (bytes, str)):  # not JSON-typed: a proxy's HTML error page, say
                text = data.decode(errors="replace") if isinstance(data, bytes) else data
                try:
                    data = json.loads(text) if text else None
                except ValueError:
                    data = text
            return status, data if not isinstance(data, bool) else None
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200, 201)) -> Any:
        status, data = self.raw(method, path, None if body is None else json.dumps(body).encode())
        if status not in ok:
            if status in RETRY_STATUSES:
                raise StoreUnavailable(f"Elasticsearch answered {status} after retries")
            raise EsError(status, data)
        return data

    def close(self) -> None:
        self.client.close()


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
