"""The watch on the production engines: the Kafka events and audit topics as a consumer
group, Elasticsearch as the store (history learned from it, findings and scores
written to it). An injected loss and an injected spike are one alert each, and a
SIGKILL in the middle (right after an alert went out) repeats and misses nothing."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import kafka

from commerce_observe.store.documents import timestamp_ms
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.queries import TimeRange
from tests.alerts.receivers import HttpReceiver
from tests.support.kafka_clients import create_topic
from tests.support.waiting import wait_for
from tests.watch.conftest import HISTORY_MINUTES
from tests.watch.runner import WatchProcess, assert_no_repeat, firing, rule_file, run_backtest
from tests.watch.shop import MINUTE, Shop, live_start
from tests.watch.conftest import sent_ids, iso

MINUTES = 8


class Topic:
    """Event documents (one JSON per message, key event.id) or audit lines (a batch per message)."""

    def __init__(self, producer: kafka.KafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic

    def write(self, items: Sequence[Any]) -> None:
        # message time = record time, as the audit sink and the event publisher stamp them
        if items and isinstance(items[0], bytes):
            self.producer.send(self.topic, b"\n".join(items), timestamp_ms=int(items[0].split(b"\t")[1]) // 1_000_000)
        else:
            for doc in items:
                self.producer.send(self.topic, json.dumps(doc).encode(), key=str(doc["event.id"]).encode(),
                                   timestamp_ms=timestamp_ms(doc))
        self.producer.flush(30)

    def close(self) -> None:
        pass


class Refreshing:
    def __init__(self, store: ElasticsearchStore) -> None:
        self.store = store

    def write(self, docs: Sequence[Mapping[str, Any]]) -> Any:
        out = self.store.write(docs)
        self.store.writer.flush() if hasattr(self.store.writer, "flush") else None
        return out

    def close(self) -> None:
        self.store.refresh()


def test_kafka_and_elasticsearch_sigkill(kafka_bootstrap: str, elasticsearch_url: str, unique_topic: str,
                                          tmp_path: Path) -> None:
    events, audit = f"{unique_topic}-events", f"{unique_topic}-audit"
    # the audit topic in one partition: the auditor's deadlines follow stream order, and a partition
    # read far behind another (minute 1 after minute 2, then nothing new) would wait for more data
    create_topic(kafka_bootstrap, events, 2)
    create_topic(kafka_bootstrap, audit, 1)
    stream = f"logs-commerce.events-w{uuid.uuid4().hex[:10]}"
    store = ElasticsearchStore(elasticsearch_url, data_stream=stream)
    # ahead of the wall clock (see conftest), but less than the hour a broker accepts message times ahead
    # (5 to 35 minutes, plus the 9 written: 25 to 55 reached past the hour, an InvalidTimestampError)
    t1 = live_start(time.time_ns(), 5)
    Shop(docs=Refreshing(store), lines=Topic(kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap), audit)).minutes(
        t1 - HISTORY_MINUTES * MINUTE, HISTORY_MINUTES, audit=False)
    store.close()
    store = ElasticsearchStore(elasticsearch_url, data_stream=stream)
    store.refresh()
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
    shop = Shop(docs=Topic(producer, events), lines=Topic(producer, audit), seed=11)

    receiver = HttpReceiver().start()
    try:
        args = ["--elasticsearch", elasticsearch_url, "--data-stream", stream, "--bootstrap", kafka_bootstrap,
                "--events-topic", events, "--audit-topic", audit, "--group-id", f"watch-{unique_topic}",
                "--bucket", "1m", "--grace", "5s", "--lateness", "1s", "--min-history", "30",
                "--rules", rule_file(str(tmp_path / "rules.json"), receiver.url), "--state", str(tmp_path / "state"),
                "--start", iso(t1)]
        for m in range(3):
            shop.minute(t1 + m * MINUTE, lose=1 if m == 1 else 0)
        first = WatchProcess(*args)
        assert "learned 150 buckets" in first.stderr, first.stderr
        wait_for("the lost-event alert", lambda: firing(receiver.bodies()).get("lost-events"), timeout=30,
                 describe=lambda _: first.stderr.replace("\n", " | ") + repr(first.metrics()))
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL

        for m in range(3, 6):
            shop.minute(t1 + m * MINUTE, spike="sku-b" if m == 3 else None)
        second = WatchProcess(*args)
        assert "resumed from checkpoint" in second.stderr and "learned" not in second.stderr
        for m in range(6, MINUTES + 1):
            shop.minute(t1 + m * MINUTE)
        metrics = second.wait_metric("commerce_observe_watch_next_bucket_seconds", (t1 + MINUTES * MINUTE) / 1e9)
        wait_for("the spike alert", lambda: firing(receiver.bodies()).get("product-spike"), timeout=60)
        assert second.stop(signal.SIGTERM) == 0, second.stderr
        bodies = receiver.bodies()
    finally:
        receiver.stop()
        producer.close()

    assert firing(bodies) == {"lost-events": 1, "product-spike": 1}
    assert_no_repeat(bodies, killed=True)
    assert metrics["commerce_observe_watch_buckets_scored_total"] == MINUTES
    assert metrics['commerce_observe_watch_findings_total{kind="LOST"}'] == 1
    store.refresh()
    rows = store.alerts(TimeRange(t1 // 1_000_000, (t1 + (MINUTES + 1) * MINUTE) // 1_000_000), limit=1000)
    assert [r.event_id for r in rows if r.kind == "LOST"] == shop.lost
    assert any(r.kind == "ANOMALY" and "orders:sku-b" in (r.detail or "") and "score 100" in (r.detail or "") for r in rows)
    store.close()

    # the same period backtested from the topics (a group of its own, nothing committed): same notifications
    replay = HttpReceiver().start()
    try:
        backtest = [a for a in args if a not in ("--start", iso(t1))]
        backtest[backtest.index("--state") + 1] = str(tmp_path / "backtest")
        backtest[backtest.index("--rules") + 1] = rule_file(str(tmp_path / "rules2.json"), replay.url)
        code, err = run_backtest(*backtest, "--from", iso(t1), "--until", iso(t1 + MINUTES * MINUTE))
        assert code == 0, err
        until = t1 + MINUTES * MINUTE
        assert sent_ids(replay.bodies(), until) == sent_ids(bodies, until)
        assert firing(replay.bodies()) == {"lost-events": 1, "product-spike": 1}
    finally:
        replay.stop()
