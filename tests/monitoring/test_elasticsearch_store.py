"""The Elasticsearch store on a real node: template, data stream, figures, idempotence, retries."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from commerce_observe.store import es_mapping
from commerce_observe.store.es_client import BulkWriter, EsHttp
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.sqlite_store import SqliteStore
from tests.monitoring import contract, dataset

pytestmark = pytest.mark.elasticsearch


def new_store(url: str, **options: object) -> ElasticsearchStore:
    """A data stream of its own per test, matched by the real template (logs-commerce.events-*)."""
    return ElasticsearchStore(url, data_stream=f"logs-commerce.events-t{uuid.uuid4().hex[:10]}", **options)  # type: ignore[arg-type]


def test_template_makes_a_data_stream_with_our_mapping(elasticsearch_url: str) -> None:
    store = new_store(elasticsearch_url)
    assert any("index template" in note for note in store.setup_notes)
    store.write(dataset.documents()[:5])
    store.refresh()
    resolved = store.http.request("GET", f"/_resolve/index/{store.data_stream}")
    assert [ds["name"] for ds in resolved["data_streams"]] == [store.data_stream]
    mapping = store.http.request("GET", f"/{store.data_stream}/_mapping")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["commerce"]["properties"]["amount"]["type"] == "double"
    assert props["trace"]["properties"]["id"]["type"] == "keyword"
    assert props["@timestamp"]["type"] == "date"


def test_figures_match_the_reference_after_redelivery(elasticsearch_url: str) -> None:
    store = new_store(elasticsearch_url, batch_docs=64)
    contract.load(store)
    store.refresh()
    contract.check_figures(store)
    contract.check_subrange(store)
    contract.check_wide_ranges(store)


def test_same_results_as_the_embedded_store(elasticsearch_url: str, tmp_path: Path) -> None:
    es = new_store(elasticsearch_url)
    lite = SqliteStore(str(tmp_path / "m.db"))
    for store in (es, lite):
        contract.load(store)
    es.refresh()
    assert contract.comparable(es) == contract.comparable(lite)


def test_bulk_batches_by_bytes_and_counts_conflicts(elasticsearch_url: str) -> None:
    store = new_store(elasticsearch_url)
    writer = BulkWriter(store.http, store.data_stream, batch_docs=1000, batch_bytes=2000, max_in_flight=3)
    docs = dataset.documents()
    assert len(writer._batches(docs)) > 10
    first = writer.write(docs)
    second = writer.write(docs)
    assert (first.written, second.duplicates, second.written) == (len(docs), len(docs), 0)
    writer.close()


def test_unknown_cluster_answers_are_errors_not_hangs(elasticsearch_url: str) -> None:
    http = EsHttp(elasticsearch_url, max_retries=0)
    with pytest.raises(Exception):
        http.request("GET", "/no-such-index-xyz/_search")
    assert es_mapping.mappings()["dynamic"] is False


def test_bulk_retries_through_503s_and_gives_up_when_unreachable(elasticsearch_url: str) -> None:
    import threading
    import urllib.parse

    from commerce_observe.store.store import StoreUnavailable
    from tests.support.faultproxy import FaultProxy

    target = urllib.parse.urlsplit(elasticsearch_url)
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 9200)
    try:
        store = new_store(elasticsearch_url)
        http = EsHttp(proxy.url, max_retries=6, backoff_s=0.05)
        writer = BulkWriter(http, store.data_stream)
        proxy.mode = "http503"
        threading.Timer(0.4, lambda: setattr(proxy, "mode", "pass")).start()
        docs = dataset.documents()
        assert writer.write(docs).written == len(docs)
        assert proxy.answered_503 > 0
        proxy.mode = "refuse"
        quick = BulkWriter(EsHttp(proxy.url, max_retries=2, backoff_s=0.01), store.data_stream)
        with pytest.raises(StoreUnavailable):
            quick.write(docs)
        proxy.mode = "pass"
        store.refresh()
        assert sum(r.orders for r in store.per_minute(contract.RANGE)) == 60
    finally:
        proxy.close()
