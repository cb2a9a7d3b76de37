"""install() starts the audit trail on the first message fact, and only then."""

import time
from pathlib import Path

from commerce_observe.agent.audit.sinks import read_sqlite
from commerce_observe.agent.hub import hub
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.testing import capture


def _fact(event_id: str) -> MessageFact:
    return MessageFact(Stage.PUBLISHED, "kafka", "orders", event_id, "order.created", "/svc/p1", 1,
                       "a" * 32, "b" * 16, time.time_ns())


def test_no_message_no_audit_files(tmp_path: Path) -> None:
    with capture(audit_sink="sqlite", audit_path=str(tmp_path / "a.sqlite"), spool_dir=str(tmp_path / "spool")):
        pass
    assert list(tmp_path.iterdir()) == []


def test_first_message_starts_the_trail_and_every_fact_is_written(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    with capture(audit_sink="sqlite", audit_path=str(db), spool_dir=str(tmp_path / "spool")):
        for n in range(5):
            hub().emit(_fact(f"ev-{n}"))
    lines = [line for batch in read_sqlite(str(db)) for line in batch]
    assert len(lines) == 5
    assert all(f"ev-{n}".encode() in lines[n] for n in range(5))


def test_auto_sink_is_a_topic_on_the_cluster_the_application_uses(tmp_path: Path, kafka_bootstrap: str,
                                                                    unique_topic: str) -> None:
    """No audit setting at all: the first Kafka producer's cluster gets the audit topic."""
    import kafka

    from commerce_observe.agent.audit.kafka_sink import read_kafka
    from commerce_observe.agent.messaging import clusters

    clusters._first = None  # noqa: SLF001 - another test's client may have been first in this process
    audit_topic = unique_topic + "-audit"
    with capture(audit_sink="auto", audit_topic=audit_topic, audit_path=str(tmp_path / "a.sqlite"),
                 spool_dir=str(tmp_path / "spool")) as cap:
        producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
        producer.send(unique_topic, b"order").get(timeout=30)
        producer.close()
        cap.runtime.flush()
    assert not (tmp_path / "a.sqlite").exists()
    lines = [line for batch in read_kafka(kafka_bootstrap, audit_topic) for line in batch]
    event_ids = {fact.event_id for fact in cap.facts}
    assert len(event_ids) == 1 and sorted(line[:1] for line in lines) == [b"A", b"P"]
    assert all(line.split(b"\t")[2].decode() in event_ids for line in lines)


def test_runtime_flush_includes_the_audit_trail(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    with capture(audit_sink="sqlite", audit_path=str(db), spool_dir=str(tmp_path / "spool")) as cap:
        for n in range(3):
            hub().emit(_fact(f"ev-{n}"))
        assert cap.runtime.flush(10_000)
        assert len([line for batch in read_sqlite(str(db)) for line in batch]) == 3  # still installed
        runtime = cap.runtime
    assert runtime.flushers == []  # the closed writer is no longer flushed
