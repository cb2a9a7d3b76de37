"""End to end on the REAL RabbitMQ broker: pika instrumented by commerce_observe, the
audit trail on an SQLite file, and ``commerce-observe audit`` finding every injected
fault BY EVENT ID - and nothing else.

The instrumented producer chooses each message's ``ce_id``; consumers read it back
from the AMQP headers, so the test knows the ground truth (which publishes failed,
which messages a handler ran for, how often) and compares the report with it exactly.

Crashes are real: a child process (a fresh interpreter, instrumented and attached to
the same SQLite file) consumes and dies with ``os._exit`` inside its handler, so the
broker sees a dead connection: with ``auto_ack=True`` what it had delivered is gone
(LOST); with manual acks it re-queues what was never acked (DUPLICATE). The child
flushes its audit writer just before dying, so the ground truth is exact (what a
``kill -9`` may lose on top is bounded separately, see ``test_crash_bound.py``).

Consumer group: the auditor reconciles per consumer group; for RabbitMQ that is the
queue (its consumers compete; every other queue bound to the exchange gets its own
copy), which the pika integration reports as ``MessageFact.consumer_group``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from commerce_observe.agent.audit import Attachment, attach
from commerce_observe.agent.audit.sinks import SqliteSink
from commerce_observe.monitor.cli import main
from commerce_observe.testing import capture
from tests.support.waiting import wait_for

pytestmark = pytest.mark.rabbitmq


def reported_group(queue: str) -> str | None:
    """The consumer group the audit reports for handlings from ``queue``: the queue."""
    return queue


@dataclass
class Trail:
    url: str
    db: Path
    attachment: Attachment

    def connect(self) -> tuple[Any, Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        return connection, connection.channel()

    def queue(self, tag: str) -> str:
        name = f"audit-{tag}-{uuid.uuid4().hex[:10]}"
        connection, channel = self.connect()
        channel.queue_declare(name)  # not auto_delete: it must outlive the crashing consumer
        connection.close()
        return name

    def delete(self, *queues: str) -> None:
        connection, channel = self.connect()
        for q in queues:
            channel.queue_delete(q)
        connection.close()

    def audit(self, capsys: pytest.CaptureFixture[str], *opts: str) -> tuple[int, dict[str, Any]]:
        assert self.attachment.writer is not None and self.attachment.writer.flush(60)
        capsys.readouterr()
        code = main(["audit", "--sqlite", str(self.db), "--format", "json", "--as-of", "all",
                     "--zipkin-url", "http://zipkin:9411", "--kibana-url", "http://kibana:5601", *opts])
        return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def trail(rabbitmq_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    monkeypatch.chdir(tmp_path)  # the spool directory is relative to the working directory
    db = tmp_path / "audit.sqlite"
    with capture() as cap:
        att = attach(cap.runtime, sink=SqliteSink(str(db)), batch_size=2000, flush_interval_s=0.1)
        try:
            yield Trail(rabbitmq_url, db, att)
        finally:
            att()


def ids(n: int, tag: str) -> list[str]:
    return [f"{tag}-{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(n)]


def props(eid: str) -> Any:
    return pika.BasicProperties(headers={"ce_id": eid, "ce_type": "commerce.order.created"})


def publish_all(trail: Trail, queue: str, eids: list[str]) -> None:
    """Publish one message per id to ``queue`` (default exchange) on a confirm channel."""
    connection, channel = trail.connect()
    channel.confirm_delivery()
    for eid in eids:
        channel.basic_publish("", queue, b"{}", props(eid))  # raises unless the broker acked it
    connection.close()


def ce_id(properties: Any) -> str:
    value = properties.headers["ce_id"]
    return value.decode() if isinstance(value, bytes) else str(value)


def drain(trail: Trail, queue: str, handled: Counter[str], done: Callable[[], bool], *,
          timeout: float = 60.0, prefetch: int = 100, channel: Any = None) -> None:
    """Consume ``queue`` (traced callback, ack after handling) until ``done()``."""
    connection = None
    if channel is None:
        connection, channel = trail.connect()
    channel.basic_qos(prefetch_count=prefetch)

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        handled[ce_id(properties)] += 1
        ch.basic_ack(method.delivery_tag)

    tag = channel.basic_consume(queue, on_message)
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        channel.connection.process_data_events(time_limit=0.2)
    channel.basic_cancel(tag)
    if connection is not None:
        connection.close()
    assert done(), f"{queue}: handled {sum(handled.values())} messages ({len(handled)} distinct) before the deadline"


# The crashing consumer: a fresh, instrumented interpreter writing to the same SQLite
# file. It handles ``handle_n`` messages, then dies inside the next handler.
CHILD = r"""
import json, os, sys
import pika
from commerce_observe.agent.audit import attach
from commerce_observe.agent.audit.sinks import SqliteSink
from commerce_observe.testing import capture

url, queue, db, mode, handle_n, prefetch = sys.argv[1:]
handle_n, prefetch = int(handle_n), int(prefetch)
with capture() as cap:
    att = attach(cap.runtime, sink=SqliteSink(db), batch_size=2000, flush_interval_s=0.1)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    if prefetch:
        channel.basic_qos(prefetch_count=prefetch)
    handled = []

    def on_message(ch, method, properties, body):
        eid = properties.headers["ce_id"]
        if len(handled) == handle_n:
            att.writer.flush(30)  # what was handled so far is on record...
            sys.stdout.write(json.dumps({"handled": handled, "crashed_on": eid}))
            sys.stdout.flush()
            os._exit(17)  # ...and the process dies mid-handler: no ack, no close, no goodbye
        handled.append(eid)  # the work; with manual acks it is never acked

    channel.basic_consume(queue, on_message, auto_ack=(mode == "auto_ack"))
    channel.start_consuming()
"""


def crash_consumer(trail: Trail, queue: str, mode: str, handle_n: int, prefetch: int = 0) -> dict[str, Any]:
    child = subprocess.run([sys.executable, "-c", CHILD, trail.url, queue, str(trail.db), mode, str(handle_n), str(prefetch)],
                           check=False, capture_output=True, text=True, timeout=120, cwd=trail.db.parent)
    assert child.returncode == 17, f"child did not crash as planned: rc={child.returncode}\n{child.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def wait_consumers_gone(trail: Trail, queue: str, timeout: float = 30.0) -> int:
    """Wait until the broker dropped the dead consumer; returns the messages ready then."""
    connection, channel = trail.connect()
    try:
        ok = wait_for(f"{queue}: the broker to drop the crashed consumer",
                      lambda: channel.queue_declare(queue, passive=True).method, timeout,
                      until=lambda ok: ok.consumer_count == 0, describe=lambda ok: f"it is still registered ({ok})")
    finally:
        connection.close()
    return int(ok.message_count)


def found(report: dict[str, Any], kind: str) -> set[tuple[str, str | None]]:
    return {(f["event_id"], f.get("consumer_group")) for f in report["findings"] if f["kind"] == kind}


def test_auto_ack_then_crash_mid_handler_is_lost_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    queue = trail.queue("lost")
    sent = ids(60, "lost")
    publish_all(trail, queue, sent)
    child = crash_consumer(trail, queue, "auto_ack", handle_n=10)
    handled: Counter[str] = Counter(child["handled"])
    assert len(handled) == 10
    remaining = wait_consumers_gone(trail, queue)  # auto-ack: nothing comes back, the rest was never sent
    drain(trail, queue, handled, lambda: sum(handled.values()) >= 10 + remaining)
    trail.delete(queue)
    expected_lost = set(sent) - set(handled)
    assert child["crashed_on"] in expected_lost  # delivered (and acked by auto-ack), never handled
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    assert found(report, "LOST") == {(eid, reported_group(queue)) for eid in expected_lost}, report["findings"][:5]
    assert {f["kind"] for f in report["findings"]} == {"LOST"}
    assert code == 1
    f = report["findings"][0]
    assert f["destination"] == f"/{queue}"
    assert f["trace_id"] and f["links"]["zipkin"] == f"http://zipkin:9411/zipkin/traces/{f['trace_id']}"
    assert f["links"]["kibana"] == f"http://kibana:5601/app/apm/link-to/trace/{f['trace_id']}"


def test_handle_then_crash_before_ack_is_duplicate_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    queue = trail.queue("dup")
    sent = ids(60, "dup")
    publish_all(trail, queue, sent)
    child = crash_consumer(trail, queue, "manual_ack", handle_n=10, prefetch=25)
    handled: Counter[str] = Counter(child["handled"])
    assert len(handled) == 10
    wait_consumers_gone(trail, queue)  # the broker re-queues all 25 unacked deliveries
    drain(trail, queue, handled, lambda: set(sent) <= set(handled))
    trail.delete(queue)
    redelivered = {eid for eid, n in handled.items() if n > 1}
    assert redelivered == set(child["handled"])  # ground truth: exactly what the dead consumer handled
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    assert found(report, "DUPLICATE") == {(eid, reported_group(queue)) for eid in redelivered}, report["findings"][:5]
    assert {f["kind"] for f in report["findings"]} == {"DUPLICATE"}
    assert code == 1
    for dup in report["findings"]:
        hs = dup["handlings"]
        assert len(hs) == 2 and all(h["stage"] == "handled" and h["trace_id"] for h in hs)
        assert len({h["span_id"] for h in hs}) == 2  # two distinct handlings, one per process
        assert {h["trace_id"] for h in hs} == {dup["trace_id"]}  # both joined the producer's trace
        assert all(h["links"]["zipkin"].endswith(h["trace_id"]) for h in hs)


def test_failed_publishes_are_undelivered_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    queue = trail.queue("undelivered")
    good = ids(20, "ok")
    publish_all(trail, queue, good)
    exchange = f"audit-ex-{uuid.uuid4().hex[:10]}"
    connection, channel = trail.connect()
    channel.exchange_declare(exchange, "direct")
    channel.confirm_delivery()
    unroutable, no_exchange, closed = ids(3, "unroutable"), ids(1, "noexchange"), ids(2, "closed")
    for eid in unroutable:  # no queue bound to the routing key: returned by the broker
        with pytest.raises(pika.exceptions.UnroutableError):
            channel.basic_publish(exchange, "nowhere", b"{}", props(eid), mandatory=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:  # 404: the broker closes the channel
        channel.basic_publish(f"missing-{uuid.uuid4().hex[:10]}", "x", b"{}", props(no_exchange[0]), mandatory=True)
    assert gone.value.reply_code == 404
    for eid in closed:
        with pytest.raises(pika.exceptions.ChannelWrongStateError):
            channel.basic_publish("", queue, b"{}", props(eid))
    channel = connection.channel()
    channel.exchange_delete(exchange)
    connection.close()
    handled: Counter[str] = Counter()
    drain(trail, queue, handled, lambda: set(good) <= set(handled))
    trail.delete(queue)
    assert set(handled) == set(good)  # nothing failed got through
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    assert found(report, "UNDELIVERED") == {(eid, None) for eid in unroutable + no_exchange + closed}, report["findings"][:5]
    assert {f["kind"] for f in report["findings"]} == {"UNDELIVERED"}
    assert code == 1
    errors = {f["event_id"]: f["error"] for f in report["findings"]}
    assert all(errors[e].startswith("UnroutableError") for e in unroutable), errors
    assert errors[no_exchange[0]].startswith("ChannelClosedByBroker") and "404" in errors[no_exchange[0]], errors
    assert all(errors[e].startswith("ChannelWrongStateError") for e in closed), errors
    assert all(f["trace_id"] and f["links"]["zipkin"] for f in report["findings"])


def test_slow_consumer_is_late_by_event_id(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    queue = trail.queue("late")
    handled: Counter[str] = Counter()
    fast, slow = ids(10, "fast"), ids(10, "slow")
    connection, channel = trail.connect()
    publish_all(trail, queue, fast)
    drain(trail, queue, handled, lambda: set(fast) <= set(handled), channel=channel)
    publish_all(trail, queue, slow)
    time.sleep(3.0)  # the consumer is busy elsewhere: these wait > SLA in the queue
    drain(trail, queue, handled, lambda: set(slow) <= set(handled), channel=channel)
    connection.close()
    trail.delete(queue)
    code, report = trail.audit(capsys, "--grace", "10s", "--sla", "2s")
    assert found(report, "LATE") == {(eid, reported_group(queue)) for eid in slow}, report["findings"][:5]
    assert {f["kind"] for f in report["findings"]} == {"LATE"}
    assert code == 1
    assert all(f["latency_ms"] > 2000 for f in report["findings"])
    assert all(f["handlings"][0]["trace_id"] == f["trace_id"] for f in report["findings"])


def test_clean_run_of_5000_messages_reports_nothing(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    n = 5000
    queue = trail.queue("clean")
    sent = ids(n, "clean")
    publish_all(trail, queue, sent)
    handled: Counter[str] = Counter()
    drain(trail, queue, handled, lambda: len(handled) >= n, timeout=120, prefetch=500)
    trail.delete(queue)
    assert set(handled) == set(sent) and max(handled.values()) == 1
    code, report = trail.audit(capsys, "--grace", "30s", "--sla", "300s")
    assert report["findings"] == [] and code == 0
    assert report["summary"]["records"] >= 3 * n  # published + acked + handled for every message


def test_each_queue_is_its_own_consumer_group(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    """Two queues bound to one fanout exchange, each consumed once: nothing is wrong."""
    exchange = f"audit-fan-{uuid.uuid4().hex[:10]}"
    billing, shipping = trail.queue("billing"), trail.queue("shipping")
    connection, channel = trail.connect()
    channel.exchange_declare(exchange, "fanout")
    for q in (billing, shipping):
        channel.queue_bind(q, exchange)
    channel.confirm_delivery()
    sent = ids(10, "fan")
    for eid in sent:
        channel.basic_publish(exchange, "", b"{}", props(eid))
    per_queue = {q: Counter[str]() for q in (billing, shipping)}
    for q, handled in per_queue.items():
        def all_sent(h: Counter[str] = handled) -> bool:
            return set(sent) <= set(h)

        drain(trail, q, handled, all_sent, channel=channel)
    channel.exchange_delete(exchange)
    connection.close()
    trail.delete(billing, shipping)
    code, report = trail.audit(capsys, "--grace", "5s", "--sla", "60s")
    assert report["findings"] == [] and code == 0, [(f["kind"], f["event_id"], f.get("consumer_group")) for f in report["findings"]]
