"""The store contract shared by the embedded SQLite store and Elasticsearch.

A store takes documents (see :mod:`commerce_observe.store.documents`) and
answers :class:`~commerce_observe.store.queries.MetricsQuery`. Writes are
idempotent by ``event.id``: writing a document again reports it as a duplicate
and changes no count, which is what lets the shipper be at-least-once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from commerce_observe.store.aggregates import Aggregate, PaymentBucket
from commerce_observe.store.queries import MetricsQuery


@dataclass(frozen=True)
class WriteResult:
    written: int = 0
    duplicates: int = 0  # already stored (same event.id): not counted again
    rejected: int = 0  # refused for good (bad document); retrying will not help

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.written + other.written, self.duplicates + other.duplicates,
                           self.rejected + other.rejected)


class StoreUnavailable(RuntimeError):
    """The store could not take the batch now (after retries); nothing may be assumed written."""


class EventStore(MetricsQuery, Protocol):
    def write(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult: ...

    def write_aggregates(self, aggs: Sequence[Aggregate]) -> WriteResult:
        """Imported history (:mod:`commerce_observe.store.aggregates`): the fast path of
        :meth:`write` for aggregates, idempotent by their id like every document."""
        ...

    def write_payment_buckets(self, buckets: Sequence[PaymentBucket]) -> WriteResult:
        """Imported payments, a method's bucket at once; counted in the aggregates they stand for
        (:func:`~commerce_observe.store.aggregates.expand`), idempotent by the bucket's id."""
        ...

    def close(self) -> None: ...


_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def check_store_spec(spec: str) -> str:
    """``spec`` itself when it names a store, else ValueError saying what is accepted.

    ``foo:bar`` is refused rather than becoming a new SQLite file of that name:
    a typo in a scheme must not silently write the events somewhere nobody looks.
    """
    value = spec.strip()
    if value.startswith(("http://", "https://")):  # one URL, or several nodes separated by commas
        from urllib.parse import urlsplit

        nodes = [urlsplit(node.strip()) for node in value.split(",")]
        good = 0
        for parts in nodes:
            try:
                parts.port
            except ValueError:
                parts = parts._replace(netloc="")
            good += bool(parts.hostname and parts.scheme in ("http", "https"))
        if good == len(nodes):
            return value
    elif value.startswith("sqlite:") and value[len("sqlite:"):].strip():
        return value
    elif value.lower().endswith(_SQLITE_SUFFIXES) and ":" not in value.replace("\\", "/").split("/")[-1]:
        return value
    from commerce_observe._internal.redact import redact_credentials

    raise ValueError(f"not a store: {redact_credentials(value)!r} (expected sqlite:PATH, a .db/.sqlite file, "
                     "or an Elasticsearch http(s):// URL)")


def open_store(spec: str, **options: Any) -> EventStore:
    """``sqlite:PATH`` (or a bare ``.db``/``.sqlite`` path) or an ``http(s)://`` Elasticsearch URL.

    Raises ValueError for anything else (see :func:`check_store_spec`).
    """
    spec = check_store_spec(spec)
    if spec.startswith(("http://", "https://")):
        from commerce_observe.store.es_store import ElasticsearchStore

        return ElasticsearchStore(spec, **options)
    path = spec[len("sqlite:"):] if spec.startswith("sqlite:") else spec
    from commerce_observe.store.sqlite_store import SqliteStore

    return SqliteStore(path, **options)
