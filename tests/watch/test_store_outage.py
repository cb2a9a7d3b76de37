"""The store goes away mid-stream (a fault proxy in front of the real Elasticsearch refuses
connections): the watch counts the failed passes, stays on its last checkpoint, and when the
store is back goes on from there: nothing lost, nothing scored or sent twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from commerce_observe.store.es_store import ElasticsearchStore
from tests.alerts.receivers import HttpReceiver
from tests.support.faultproxy import FaultProxy
from tests.support.waiting import wait_for
from tests.watch.conftest import HISTORY_MINUTES
from tests.watch.runner import WatchProcess, assert_no_repeat, firing, rule_file
from tests.watch.shop import MINUTE, Shop, live_start
from tests.watch.conftest import iso

MINUTES = 8


class Searchable:
    """Documents written straight to Elasticsearch (not through the proxy), searchable at once:
    the audit lines of a minute are written after its documents, so a bucket the watch reads is complete."""

    def __init__(self, store: ElasticsearchStore) -> None:
        self.store = store

    def write(self, docs: Sequence[Mapping[str, Any]]) -> Any:
        out = self.store.write(docs)
        self.store.refresh()
        return out

    def close(self) -> None:
        pass


def test_store_outage_mid_stream(elasticsearch_url: str, tmp_path: Path) -> None:
    stream = f"logs-commerce.events-w{uuid.uuid4().hex[:10]}"
    store = ElasticsearchStore(elasticsearch_url, data_stream=stream)
    u = urlsplit(elasticsearch_url)
    proxy = FaultProxy(u.hostname or "127.0.0.1", u.port or 9200)
    t1 = live_start(time.time_ns(), 3 * 60)
    shop = Shop(audit_path=str(tmp_path / "audit.sqlite"), docs=Searchable(store))
    shop.minutes(t1 - HISTORY_MINUTES * MINUTE, HISTORY_MINUTES, audit=False)
    receiver = HttpReceiver().start()
    try:
        for m in range(3):
            shop.minute(t1 + m * MINUTE, lose=1 if m == 1 else 0)
        watch = WatchProcess("--elasticsearch", proxy.url, "--data-stream", stream,
                             "--audit-sqlite", str(tmp_path / "audit.sqlite"), "--bucket", "1m", "--grace", "5s",
                             "--lateness", "1s", "--min-history", "30", "--state", str(tmp_path / "state"),
                             "--rules", rule_file(str(tmp_path / "rules.json"), receiver.url), "--start", iso(t1))
        wait_for("the lost-event alert", lambda: firing(receiver.bodies()).get("lost-events"), timeout=60)

        proxy.mode = "refuse"
        for m in range(3, 6):
            shop.minute(t1 + m * MINUTE, spike="sku-b" if m == 3 else None)
        watch.wait_metric("commerce_observe_watch_errors_total", 1)
        proxy.mode = "pass"
        for m in range(6, MINUTES + 1):
            shop.minute(t1 + m * MINUTE)
        metrics = watch.wait_metric("commerce_observe_watch_next_bucket_seconds", (t1 + MINUTES * MINUTE) / 1e9)
        wait_for("the spike alert", lambda: firing(receiver.bodies()).get("product-spike"), timeout=60)
        assert watch.stop(signal.SIGTERM) == 0, watch.stderr
        bodies = receiver.bodies()
    finally:
        receiver.stop()
        proxy.close()
        shop.close()
        store.close()

    assert "reloading the last checkpoint" in watch.stderr
    assert firing(bodies) == {"lost-events": 1, "product-spike": 1}
    assert_no_repeat(bodies, killed=False)
    assert metrics["commerce_observe_watch_buckets_scored_total"] == MINUTES
    assert metrics['commerce_observe_watch_findings_total{kind="LOST"}'] == 1
