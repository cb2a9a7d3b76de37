"""Several watches in one consumer group on the real Kafka and Elasticsearch, one SIGKILLed mid-stream.

The members share the audit partitions and the series shards (docs/watch.md, "Several
watches"). A loss and a spike are injected; the member that has just sent the lost-event
alert is SIGKILLed, and the spike goes to a product whose series shard that member held, so
a survivor must take the shard over at its saved progress. One alert per fault, each
notification delivered once, each finding stored once, no sequence GAPs.
``benchmarks/watch_scaleout_check.py`` runs this test several times in a row.
"""

from __future__ import annotations

import re
import signal
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path

import kafka
import pytest

from commerce_observe.monitor.watch.sharing import shard_of
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.queries import TimeRange
from tests.alerts.receivers import HttpReceiver
from tests.support.kafka_clients import create_topic
from tests.support.waiting import wait_for
from tests.watch.conftest import HISTORY_MINUTES
from tests.watch.runner import WatchProcess, firing, rule_file
from tests.watch.shop import GROUP, MINUTE, PRODUCTS, TOPIC, Shop, live_start
from tests.watch.conftest import iso
from tests.watch.test_store_outage import Searchable

PARTITIONS = 6
MINUTES = 5


class KeyedAudit:
    """Audit lines on the audit topic, keyed and partitioned by event id (as the audit sink sends them)."""

    def __init__(self, producer: kafka.KafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic

    def write(self, lines: Sequence[bytes]) -> None:
        per_event: dict[bytes, list[bytes]] = {}
        for line in lines:
            per_event.setdefault(line.split(b"\t")[2], []).append(line)
        for eid, group in per_event.items():
            self.producer.send(self.topic, b"\n".join(group), key=eid, partition=zlib.crc32(eid) % PARTITIONS,
                               timestamp_ms=int(group[0].split(b"\t")[1]) // 1_000_000)
        self.producer.flush(30)

    def close(self) -> None:
        pass


def shards_held(lines: Sequence[str]) -> set[int]:
    """The series shards a member held last, from what it said (made, taken, moved away)."""
    held: set[int] = set()
    for line in lines:
        m = re.search(r"shard (\d+)/\d+: (made|taken|moved|written)", line)
        if m:
            (held.add if m.group(2) in ("made", "taken") else held.discard)(int(m.group(1)))
    return held


@pytest.mark.parametrize("members", [2, 3])
def test_members_share_and_take_over(members: int, kafka_bootstrap: str, elasticsearch_url: str,
                                     unique_topic: str, tmp_path: Path) -> None:
    audit = f"{unique_topic}-audit"
    create_topic(kafka_bootstrap, audit, PARTITIONS)
    stream = f"logs-commerce.events-s{uuid.uuid4().hex[:10]}"
    store = ElasticsearchStore(elasticsearch_url, data_stream=stream)
    # ahead of the wall clock (5 to 35 minutes: Kafka 4 refuses records over an hour ahead): event time
    # drives the watches
    t1 = live_start(time.time_ns(), 5)
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
    shop = Shop(docs=Searchable(store), lines=KeyedAudit(producer, audit), seed=5)
    shop.minutes(t1 - HISTORY_MINUTES * MINUTE, HISTORY_MINUTES, audit=False)

    receiver = HttpReceiver().start()
    watches: list[WatchProcess] = []
    try:
        rules = rule_file(str(tmp_path / "rules.json"), receiver.url)
        for i in range(members):
            watches.append(WatchProcess(
                "--elasticsearch", elasticsearch_url, "--data-stream", stream, "--bootstrap", kafka_bootstrap,
                "--events-topic", f"{unique_topic}-events", "--audit-topic", audit, "--group-id", f"w-{unique_topic}",
                "--scale-out", "--group", f"{GROUP}:{TOPIC}", "--bucket", "1m", "--grace", "5s", "--lateness", "1s", "--min-history", "30",
                "--rules", rules, "--state", str(tmp_path / f"state{i}"), "--start", iso(t1)))
        # the group has settled: every member scores its share (the first one made every shard)
        wait_for("every member to hold shards", lambda: all(w.metrics().get("commerce_observe_watch_shards", 0) >= 1
                                                             for w in watches), timeout=60)
        for m in range(3):
            shop.minute(t1 + m * MINUTE, lose=1 if m == 1 else 0)
        wait_for("the lost-event alert", lambda: firing(receiver.bodies()).get("lost-events"), timeout=120,
                 describe=lambda _: " || ".join(w.stderr.replace("\n", " | ") + repr(w.metrics()) for w in watches))
        # the worst member to lose: the one that just sent the alert (its partitions hold the loss)
        # (the receiver has the alert a moment before the sender's /metrics counts it: poll, don't assume)
        sender = wait_for("the sender's alerts_sent metric", lambda: next(
            (w for w in watches if w.metrics().get("commerce_observe_watch_alerts_sent_total", 0) >= 1), None), timeout=10)
        assert sender is not None and sender.stop(signal.SIGKILL) == -signal.SIGKILL
        rest = [w for w in watches if w is not sender]
        # the spike goes to a product whose series shard the killed member held: a survivor must take
        # the shard over at its saved progress and score the spike (same model, same alert engine)
        held = shards_held(sender.lines)
        product = next((p for p in PRODUCTS if shard_of(f"orders:{p}", PARTITIONS) in held), "sku-b")

        for m in range(3, MINUTES + 1):
            shop.minute(t1 + m * MINUTE, spike=product if m == 3 else None)
        for w in rest:  # the survivors hold every partition and have closed every bucket
            w.wait_metric("commerce_observe_watch_next_bucket_seconds", (t1 + MINUTES * MINUTE) / 1e9, timeout=150)
        wait_for("the spike alert", lambda: firing(receiver.bodies()).get("product-spike"), timeout=90)
        shard = shard_of(f"orders:{product}", PARTITIONS)
        assert shard not in held or any(f"shard {shard}/{PARTITIONS}: taken at" in w.stderr for w in rest), \
            [w.stderr for w in rest]
        # a member sees a share of each producer's sequence numbers: their holes are no GAP
        assert all(w.metrics()['commerce_observe_watch_findings_total{kind="GAP"}'] == 0 for w in rest)
        for w in rest:
            assert w.stop(signal.SIGTERM) == 0, w.stderr
        bodies = receiver.bodies()
    finally:
        receiver.stop()
        producer.close()
        for w in watches:
            if w.proc.poll() is None:
                w.stop(signal.SIGKILL)

    assert firing(bodies) == {"lost-events": 1, "product-spike": 1}
    ids = [str(b["id"]) for b in bodies]
    assert len(ids) == len(set(ids)), f"a notification delivered twice: {ids}"
    store.refresh()
    rows = store.alerts(TimeRange(t1 // 1_000_000, (t1 + (MINUTES + 1) * MINUTE) // 1_000_000), limit=1000)
    assert [r.event_id for r in rows if r.kind == "LOST"] == shop.lost
    assert {r.kind for r in rows} == {"LOST", "ANOMALY"}, [(r.kind, r.detail) for r in rows if r.kind != "ANOMALY"]
    spikes = [r for r in rows if r.kind == "ANOMALY" and f"orders:{product}" in (r.detail or "")
              and "score 100" in (r.detail or "")]
    assert len(spikes) == 1, [r.detail for r in rows if r.kind == "ANOMALY"]
    store.close()
