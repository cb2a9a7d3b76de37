"""install() starts the audit trail at once; the sink is created when it has something to write."""

import time
from pathlib import Path

from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.audit.sinks import read_sqlite
from commerce_observe.agent.audit.spool import Spool
from commerce_observe.agent.current import hub
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.testing import capture


def _fact(event_id: str) -> MessageFact:
    return MessageFact(Stage.PUBLISHED, "kafka", "orders", event_id, "order.created", "/svc/p1", 1,
                       "a" * 32, "b" * 16, time.time_ns())


def test_no_message_no_audit_file(tmp_path: Path) -> None:
    """The trail runs from install (its journal waits in the spool folder); the sink's
    file only appears once there is something to write."""
    with capture(audit_sink="sqlite", audit_path=str(tmp_path / "a.sqlite"), spool_dir=str(tmp_path / "spool")):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["spool"]
    assert [p.name for p in (tmp_path / "spool").iterdir() if p.name != ".lock"] == []


def test_spools_of_earlier_and_dead_processes_are_replayed_at_start(tmp_path: Path) -> None:
    """No message at all in this process: what an earlier process left in the shared
    folder, and a dead one in its ``pid-*`` folder, reach the sink anyway."""
    spool_dir, db = tmp_path / "spool", tmp_path / "a.sqlite"
    earlier = Spool(str(spool_dir))
    earlier.append_line(encode(_fact("from-earlier")))
    earlier.close()
    dead = Spool(str(spool_dir / "pid-999999"))
    dead.append([encode(_fact("from-dead-1")), encode(_fact("from-dead-2"))])
    dead.close()
    with capture(audit_sink="sqlite", audit_path=str(db), spool_dir=str(spool_dir)) as cap:
        assert cap.runtime.flush(10_000)
        ids = sorted(line.split(b"\t")[2].decode() for batch in read_sqlite(str(db)) for line in batch)
        assert ids == ["from-dead-1", "from-dead-2", "from-earlier"]
    assert not (spool_dir / "pid-999999").exists()


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
