"""Documents through the real broker into a store: publisher, shipper group, redelivery, direct path."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from commerce_observe.agent import events
from commerce_observe.agent.audit.kafka_sink import KafkaSink
from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.reporting.attach import attach
from commerce_observe.agent.reporting.publisher import KafkaEventPublisher
from commerce_observe.store.kafka_io import Shipper
from commerce_observe.store.sqlite_store import SqliteStore
from commerce_observe.store.store import StoreUnavailable, WriteResult
from commerce_observe.testing import capture
from tests.monitoring import contract, dataset
from tests.support.kafka_clients import create_topic
from tests.support.waiting import wait_for


def wait_for_assignment(shipper: Shipper) -> None:
    """Poll (and ship) until the group gave this member partitions."""
    def assigned() -> bool:
        if shipper.consumer.assignment():
            return True
        shipper.poll_once(200)
        return False

    wait_for("the shipper's partitions", assigned, timeout=90.0)


def ship_until(shippers: list[Shipper], done: Any, timeout_s: float = 60.0, what: str = "store everything") -> None:
    deadline = time.monotonic() + timeout_s
    threads = [threading.Thread(target=s.run, kwargs={"until": lambda: done() or time.monotonic() > deadline})
               for s in shippers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done(), f"shippers did not {what} in time"


@pytest.mark.kafka
def test_two_shippers_share_the_topic_and_redelivery_counts_nothing_twice(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    events_topic, audit_topic = unique_topic + "-events", unique_topic + "-audit"
    create_topic(kafka_bootstrap, events_topic, 4)
    create_topic(kafka_bootstrap, audit_topic, 2)
    store = SqliteStore(str(tmp_path / "m.db"))
    group = unique_topic + "-shippers"
    shippers = [Shipper(store, kafka_bootstrap, group_id=group, topics=(events_topic, audit_topic),
                        audit_topic=audit_topic) for _ in range(2)]
    # Both members own partitions before anything is published, so each must ship a
    # share (published first, one member could ship it all before the second joins).
    ship_until(shippers, lambda: all(s.consumer.assignment() for s in shippers), what="both get partitions")

    docs = [doc for doc in dataset.documents() if doc["commerce.record"] != "message"]
    publisher = KafkaEventPublisher(kafka_bootstrap, events_topic)
    publisher(docs)
    publisher.close()
    # Audit lines as the audit trail's Kafka sink writes them: batches of lines per message.
    sink = KafkaSink(kafka_bootstrap, audit_topic)
    lines = [encode(fact) for fact in dataset.facts()]
    for start in range(0, len(lines), 500):
        sink.write(lines[start:start + 500])
    sink.close()
    expected = len(docs) + len(dataset.facts())
    ship_until(shippers, lambda: sum(s.documents for s in shippers) >= expected)
    shares = [s.documents for s in shippers]
    total = sum((s.total for s in shippers), WriteResult())
    for s in shippers:
        s.close()
    assert all(shares), f"both group members should ship a share: {shares}"
    assert total.written == expected and total.duplicates == 0
    contract.check_figures(store)

    # A new group reads everything again (as after a lost commit): nothing is counted twice.
    again = Shipper(store, kafka_bootstrap, group_id=group + "-replay", topics=(events_topic, audit_topic),
                    audit_topic=audit_topic)
    ship_until([again], lambda: again.documents >= expected)
    again.close()
    assert again.total.written == 0 and again.total.duplicates == expected
    contract.check_figures(store)


class FlakyStore(SqliteStore):
    """Refuses the first two batches, as an Elasticsearch outage would."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.refusals = 2

    def write(self, docs: Sequence[Any]) -> WriteResult:
        if self.refusals:
            self.refusals -= 1
            raise StoreUnavailable("down")
        return super().write(docs)


@pytest.mark.kafka
def test_a_store_outage_is_waited_out_without_losing_a_batch(kafka_bootstrap: str, unique_topic: str,
                                                             tmp_path: Path) -> None:
    create_topic(kafka_bootstrap, unique_topic, 1)
    docs = [doc for doc in dataset.documents() if doc["commerce.record"] == "event"]
    publisher = KafkaEventPublisher(kafka_bootstrap, unique_topic)
    publisher(docs)
    publisher.close()
    store = FlakyStore(str(tmp_path / "m.db"))
    shipper = Shipper(store, kafka_bootstrap, group_id=unique_topic + "-g", topics=(unique_topic,),
                      retry_backoff_s=0.1)
    ship_until([shipper], lambda: shipper.total.written >= len(docs))
    shipper.close()
    assert store.refusals == 0 and shipper.total.written == len(docs)


@pytest.mark.kafka
def test_the_shipper_subscribes_only_once_its_metadata_knows_the_partitions(kafka_bootstrap: str, unique_topic: str,
                                                                            tmp_path: Path) -> None:
    """Subscribed before its first metadata answer, a kafka-python member can be left
    without partitions for good; so the partitions must be known when it subscribes."""
    create_topic(kafka_bootstrap, unique_topic, 3)
    shipper = Shipper(SqliteStore(str(tmp_path / "m.db")), kafka_bootstrap, group_id=unique_topic + "-g",
                      topics=(unique_topic,))
    try:
        assert shipper.consumer.subscription() == {unique_topic}
        assert shipper.consumer._cluster.partitions_for_topic(unique_topic) == {0, 1, 2}  # cached, not fetched
        wait_for_assignment(shipper)
        assert {tp.partition for tp in shipper.consumer.assignment()} == {0, 1, 2}
    finally:
        shipper.close()


@pytest.mark.kafka
def test_attach_publishes_recorded_events_to_the_topic(kafka_bootstrap: str, unique_topic: str,
                                                       tmp_path: Path) -> None:
    create_topic(kafka_bootstrap, unique_topic, 1)
    store = SqliteStore(str(tmp_path / "m.db"))
    shipper = Shipper(store, kafka_bootstrap, group_id=unique_topic + "-g", topics=(unique_topic,))
    wait_for_assignment(shipper)
    with capture() as cap:
        detach = attach(cap.runtime, bootstrap=kafka_bootstrap, topic=unique_topic, service_name="shop")
        events.order_created("ord-1", items=[("sku-a", 2, Decimal("3.50"))], currency="EUR")
        events.payment_failed("pay-1", order_id="ord-1", reason="declined", method="card")
        assert detach.flush()
        detach()
    ship_until([shipper], lambda: shipper.total.written >= 3)
    shipper.close()
    rng = contract.TimeRange.last(5)
    assert [(r.currency, r.orders, r.revenue) for r in store.revenue(rng)] == [("EUR", 1, Decimal("7.000"))]
    assert [(c.key, c.count) for c in store.failures_by_reason(rng)] == [("declined", 1)]
    assert [(p.product_id, p.quantity) for p in store.top_products(rng)] == [("sku-a", 2)]


def test_attach_writes_straight_to_the_store_without_kafka(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    with capture() as cap:
        detach = attach(cap.runtime, store=store)
        for i in range(50):
            events.order_created(f"ord-{i}", items=[("sku-b", 1, Decimal("2"))], currency="USD")
        assert detach.flush()
        assert detach.batcher.dropped == 0
        detach()
    rows = SqliteStore(str(tmp_path / "m.db")).revenue(contract.TimeRange.last(5))
    assert [(r.orders, r.revenue, r.average_order_value) for r in rows] == [(50, Decimal("100.000"), Decimal("2.000"))]


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    from commerce_observe.agent.reporting.batcher import BackgroundBatcher

    gate = threading.Event()
    batcher = BackgroundBatcher(lambda batch: gate.wait(5), max_queue=5, batch_size=1, linger_s=0)
    started = time.monotonic()
    accepted = sum(batcher.offer(i) for i in range(100))
    assert time.monotonic() - started < 0.5
    assert accepted <= 7 and batcher.dropped == 100 - accepted
    gate.set()
    assert batcher.flush()
    batcher.close()
