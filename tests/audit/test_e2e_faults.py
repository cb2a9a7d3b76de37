"""End to end on the REAL broker: kafka-python instrumented by commerce_observe, the
audit trail on a Kafka topic, and ``commerce-observe audit`` finding every injected
fault BY EVENT ID - and nothing else.

The application chooses each message's ``ce_id`` header, so the test knows the
ground truth (which sends failed, which records its handlers ran, how often) and
compares the report with it exactly.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import kafka  # kafka-python, a test dependency: its absence fails the run
import pytest

from commerce_observe.agent.audit import Attachment, attach
from commerce_observe.agent.audit.kafka_sink import KafkaSink
from commerce_observe.monitor.cli import main
from commerce_observe.agent.messaging.handling import defer, handling
from commerce_observe.testing import capture
from tests.support import kafka_clients
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka


@dataclass
class Trail:
    bootstrap: str
    topic: str
    audit_topic: str
    attachment: Attachment

    def producer(self, **kw: Any) -> Any:
        kw.setdefault("linger_ms", 5)
        return kafka.KafkaProducer(bootstrap_servers=self.bootstrap, **kw)

    def consumer(self, group: str, **kw: Any) -> Any:
        kw.setdefault("max_poll_records", 500)
        return kafka_clients.consumer(self.bootstrap, self.topic, group_id=group,
                                   enable_auto_commit=False, auto_offset_reset="earliest", **kw)

    def audit(self, capsys: pytest.CaptureFixture[str], *opts: str) -> tuple[int, dict[str, Any]]:
        assert self.attachment.writer is not None and self.attachment.writer.flush(60)
        capsys.readouterr()
        code = main(["audit", "--bootstrap", self.bootstrap, "--topic", self.audit_topic, "--format", "json",
                     "--as-of", "all", "--zipkin-url", "http://zipkin:9411", "--kibana-url", "http://kibana:5601", *opts])
        return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def trail(kafka_bootstrap: str, unique_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    monkeypatch.chdir(tmp_path)  # the spool directory is relative to the working directory
    audit_topic = f"audit-{uuid.uuid4().hex[:10]}"
    kafka_clients.create_topic(kafka_bootstrap, unique_topic, 3)
    with capture() as cap:
        att = attach(cap.runtime, sink=KafkaSink(kafka_bootstrap, audit_topic), batch_size=2000, flush_interval_s=0.1)
        try:
            yield Trail(kafka_bootstrap, unique_topic, audit_topic, att)
        finally:
            att()


def send_all(trail: Trail, ids: list[str], **kw: Any) -> dict[str, Exception | None]:
    """Send one message per id (the id is its ce_id); returns each send's outcome."""
    producer = trail.producer(**kw)
    futures = {eid: producer.send(trail.topic, b"{}", headers=[("ce_id", eid.encode()), ("ce_type", b"commerce.order.created")])
               for eid in ids}
    producer.flush(60)
    outcome = settle(futures, 60)
    producer.close()
    return outcome


def settle(futures: dict[str, Any], timeout: float) -> dict[str, Exception | None]:
    """Each send future's outcome by event id: ``None`` when the broker acknowledged it."""
    outcome: dict[str, Exception | None] = {}
    for eid, fut in futures.items():
        try:
            fut.get(timeout=timeout)
            outcome[eid] = None
        except Exception as exc:
            outcome[eid] = exc
    return outcome


def ce_id(record: Any) -> str:
    return next(v.decode() for k, v in record.headers if k == "ce_id")


def drain(consumer: Any, expect: int, handled: Counter[str], timeout: float = 60.0) -> None:
    """Handle records until ``expect`` distinct ids were seen by this call; commit after each poll."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < expect and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                with handling(r):
                    handled[ce_id(r)] += 1
                    seen.add(ce_id(r))
        consumer.commit()
    assert len(seen) >= expect, f"consumed {len(seen)} of {expect}"


def first_batch(consumer: Any, timeout: float = 60.0) -> list[Any]:
    """The records of the consumer's first poll that returns any; fail after ``timeout`` seconds."""
    return wait_for("a first batch of records", lambda: [r for rs in consumer.poll(timeout_ms=1000).values() for r in rs],
                    timeout, 0)


def found(report: dict[str, Any], kind: str) -> set[tuple[str, str | None]]:
    return {(f["event_id"], f.get("consumer_group")) for f in report["findings"] if f["kind"] == kind}


def ids(n: int, tag: str) -> list[str]:
    return [f"{tag}-{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(n)]


def test_commit_before_handling_then_crash_is_lost_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    sent = ids(60, "lost")
    assert not any(send_all(trail, sent).values())
    handled: Counter[str] = Counter()
    a = trail.consumer("billing", max_poll_records=40)
    batch = first_batch(a)
    for r in batch:
        defer(r)  # at-most-once: the work is reported on its own, after the commit
    a.commit()  # offsets committed before the work (a commit settles only what is not deferred)
    for r in batch[:10]:
        with handling(r):
            handled[ce_id(r)] += 1
    a.close()  # the process "crashes" here: batch[10:] never finish
    b = trail.consumer("billing")
    drain(b, len(sent) - len(batch), handled)
    b.close()
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    expected_lost = {(ce_id(r), "billing") for r in batch[10:]}
    assert code == 1
    assert found(report, "LOST") == expected_lost
    assert {f["kind"] for f in report["findings"]} == {"LOST"}
    f = report["findings"][0]
    assert f["trace_id"] and f["links"]["zipkin"] == f"http://zipkin:9411/zipkin/traces/{f['trace_id']}"
    assert f["links"]["kibana"] == f"http://kibana:5601/app/apm/link-to/trace/{f['trace_id']}"


def test_handle_then_crash_before_commit_is_duplicate_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    sent = ids(60, "dup")
    assert not any(send_all(trail, sent).values())
    handled: Counter[str] = Counter()
    a = trail.consumer("shipping", max_poll_records=25)
    batch = first_batch(a)
    for r in batch:
        with handling(r):
            handled[ce_id(r)] += 1
    a.close(autocommit=False)  # "crashed" before committing: the group re-delivers the batch
    b = trail.consumer("shipping")
    drain(b, len(sent), handled)
    b.close()
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    assert code == 1
    assert found(report, "DUPLICATE") == {(eid, "shipping") for eid, n in handled.items() if n > 1} != set()
    assert {f["kind"] for f in report["findings"]} == {"DUPLICATE"}
    dup = report["findings"][0]
    assert len(dup["handlings"]) == 2 and len({h["span_id"] for h in dup["handlings"]}) == 2


def test_failed_sends_are_undelivered_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = ids(20, "ok"), ids(3, "toolarge")
    assert not any(send_all(trail, good).values())
    producer = trail.producer(max_request_size=1024)
    for eid in bad:
        with pytest.raises(kafka.errors.MessageSizeTooLargeError):
            producer.send(trail.topic, b"x" * 4096, headers=[("ce_id", eid.encode())])
    producer.close()
    handled: Counter[str] = Counter()
    c = trail.consumer("billing")
    drain(c, len(good), handled)
    c.close()
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    assert code == 1
    assert found(report, "UNDELIVERED") == {(eid, None) for eid in bad}
    assert {f["kind"] for f in report["findings"]} == {"UNDELIVERED"}
    assert all("MessageSizeTooLarge" in f["error"] for f in report["findings"])


def test_slow_consumer_is_late_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    handled: Counter[str] = Counter()
    c = trail.consumer("analytics")
    while not c.assignment():
        c.poll(timeout_ms=200)
    fast, slow = ids(10, "fast"), ids(10, "slow")
    assert not any(send_all(trail, fast).values())
    drain(c, len(fast), handled)
    assert not any(send_all(trail, slow).values())
    time.sleep(3.0)  # the consumer is busy elsewhere: these wait > SLA before being handled
    drain(c, len(slow), handled)
    c.close()
    code, report = trail.audit(capsys, "--grace", "10s", "--sla", "2s")
    assert code == 1
    assert found(report, "LATE") == {(eid, "analytics") for eid in slow}
    assert {f["kind"] for f in report["findings"]} == {"LATE"}
    assert all(f["latency_ms"] > 2000 for f in report["findings"])


def test_broker_restart_mid_stream_everything_found_and_nothing_false(
    trail: Trail, testbed_control: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    handled: Counter[str] = Counter()
    c = trail.consumer("billing")
    while not c.assignment():
        c.poll(timeout_ms=200)
    before, during, after = ids(200, "before"), ids(200, "during"), ids(200, "after")
    outcome = send_all(trail, before)
    drain(c, len(before), handled)
    producer = trail.producer(retries=0, request_timeout_ms=3000, max_block_ms=3000)
    futures: dict[str, Any] = {}
    testbed_control.restart("kafka")  # the broker goes away and comes back on the same port with its data
    for eid in during:
        try:
            futures[eid] = producer.send(trail.topic, b"{}", headers=[("ce_id", eid.encode())])
        except Exception as exc:
            outcome[eid] = exc
    producer.flush(30)
    outcome.update(settle(futures, 30))
    producer.close()
    outcome.update(send_all(trail, after))
    delivered = [eid for eid, exc in outcome.items() if exc is None]
    deadline = time.monotonic() + 90
    while not set(delivered) <= set(handled) and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            for r in records:
                with handling(r):
                    handled[ce_id(r)] += 1
        try:
            c.commit()
        except Exception:
            pass  # a commit during the restart may fail: redelivery (a DUPLICATE) is then real
    c.close()
    code, report = trail.audit(capsys, "--grace", "20s", "--sla", "120s")
    # ground truth from the application's own view
    assert found(report, "UNDELIVERED") == {(eid, None) for eid, exc in outcome.items() if exc is not None}
    assert found(report, "DUPLICATE") == {(eid, "billing") for eid, n in handled.items() if n > 1}
    assert found(report, "LOST") == {(eid, "billing") for eid in delivered if eid not in handled}
    assert found(report, "GAP") == set() and found(report, "LATE") == set()
    assert code == (1 if report["findings"] else 0)


def test_clean_run_of_100k_events_reports_nothing(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    n = 100_000
    producer = trail.producer(batch_size=256 * 1024, linger_ms=20)
    for i in range(n):
        producer.send(trail.topic, b'{"order":%d}' % i)
    producer.flush(120)
    producer.close()
    c = trail.consumer("billing", max_poll_records=5000, fetch_max_bytes=16 << 20)
    count = 0
    deadline = time.monotonic() + 240
    while count < n and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            count += len(records)  # implicit settle: handled when the next poll asks for more
        c.commit()
    c.close()
    assert count == n
    code, report = trail.audit(capsys, "--grace", "30s", "--sla", "300s")
    assert report["findings"] == [] and code == 0
    assert report["summary"]["records"] >= 3 * n  # published + acked + handled for every event
