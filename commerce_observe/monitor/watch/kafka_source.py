"""The Kafka input: the events topic and the audit topic, read as one consumer group member.

Positions are the watch's state, not the group's: the next offset of every
partition goes into the checkpoint together with the state it produced, and is
committed to the group only after that checkpoint is written (faust's rule:
offsets committed with their state). A restart seeks to the checkpoint's offsets,
so whatever was read after the checkpoint is read again and produces the same
outputs (idempotent documents, logged notifications). A first start seeks every
partition to the start time (``offsets_for_times``), a little earlier for the
audit topic whose messages carry a writer batch of lines.

A member that dies without leaving the group (SIGKILL) holds its partitions until its
session times out: 10 s here instead of the client's 45 s default, so a restarted (or
another) watch takes over within seconds.

Our own clients are not traced (that would audit the telemetry topic): the
unpatched ``poll`` is called, as the shipper does.
"""

from __future__ import annotations

import json
from typing import Any

from commerce_observe._internal.kafka_security import KafkaSecurity
from commerce_observe._internal.selfstats import logger
from commerce_observe.agent.audit.sinks import TIME_DISORDER_NS
from commerce_observe.store import documents as d
from commerce_observe.store.kafka_io import original, subscribe_when_known

DEFAULT_GROUP = "commerce-observe-watch"


def probe(bootstrap: str, timeout_s: float = 10.0) -> None:
    """Raise (kafka-python's NoBrokersAvailable, ...) when the cluster does not answer: checked before
    the first start learns months of history, so a wrong address costs seconds, not a relearning."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                             **KafkaSecurity.from_config().kafka_python())
    try:
        consumer.topics()
    finally:
        consumer.close()


class KafkaSource:
    """Polls both topics; ``offsets`` (topic -> partition -> next offset) is the state's own dict.

    ``commit=False`` (a backtest): every partition is assigned directly, nothing is committed."""

    def __init__(self, bootstrap: str, offsets: dict[str, dict[int, int]], start_ns: int, *, events_topic: str | None,
                 audit_topic: str, group_id: str = DEFAULT_GROUP, max_records: int = 5000, commit: bool = True,
                 security: KafkaSecurity | None = None, session_timeout_ms: int = 10_000) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        self.offsets = offsets
        self.start_ns = start_ns
        self.events_topic, self.audit_topic = events_topic, audit_topic
        self.max_records = max_records
        self.commit_enabled = commit
        self.caught_up = False
        self.bad = 0
        self.commit_failures = 0
        self._fresh: list[Any] = []
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
                                      auto_offset_reset="earliest", max_poll_records=max_records,
                                      request_timeout_ms=30_000, session_timeout_ms=session_timeout_ms,
                                      heartbeat_interval_ms=max(1000, session_timeout_ms // 5),
                                      **(security or KafkaSecurity.from_config()).kafka_python())
        self._poll = original(KafkaConsumer, "poll")
        source = self

        class Seek(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            def on_partitions_assigned(self, assigned: Any) -> None:
                source._seek(assigned)

        self.consumer.topics()  # fail now (NoBrokersAvailable) when the cluster is unreachable
        topics = [t for t in (events_topic, audit_topic) if t]
        subscribe_when_known(self.consumer, topics)
        self.consumer.unsubscribe()
        if commit:
            self.consumer.subscribe(topics, listener=Seek())
        else:  # a backtest reads every partition itself: no group to join, no rebalance to wait for
            from kafka import TopicPartition

            parts = [TopicPartition(t, p) for t in topics
                     for p in sorted(self.consumer.partitions_for_topic(t) or ())]
            self.consumer.assign(parts)
            self._seek(parts)

    def _seek(self, assigned: Any) -> None:
        """Each partition to the checkpoint's offset; a partition new to the state is paused until
        :meth:`_seek_fresh` (the callback runs inside the group protocol: no requests from here)."""
        fresh = [tp for tp in assigned if tp.partition not in self.offsets.get(tp.topic, {})]
        for tp in assigned:
            off = self.offsets.get(tp.topic, {}).get(tp.partition)
            if off is not None:
                self.consumer.seek(tp, off)
        if fresh:
            self.consumer.pause(*fresh)
            self._fresh = fresh

    def _seek_fresh(self) -> None:
        """First start: the paused new partitions to the start time (``offsets_for_times``), then on."""
        fresh, self._fresh = self._fresh, []
        fresh = [tp for tp in fresh if tp in self.consumer.assignment()]
        if not fresh:
            return
        if not self.start_ns:
            self.consumer.seek_to_beginning(*fresh)
        else:
            wanted = {tp: max(0, (self.start_ns - (TIME_DISORDER_NS if tp.topic == self.audit_topic else 0)) // 1_000_000)
                      for tp in fresh}
            found = self.consumer.offsets_for_times(wanted)
            ends = self.consumer.end_offsets(fresh)
            for tp in fresh:
                hit = found.get(tp)
                self.consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        for tp in fresh:
            self.offsets.setdefault(tp.topic, {})[tp.partition] = self.consumer.position(tp)
        self.consumer.resume(*fresh)

    def poll(self, until_ns: int | None = None, timeout_ms: int = 200) -> tuple[list[bytes], list[d.Document]]:
        """The next audit lines and event documents (records before the start or after ``until_ns`` are skipped)."""
        polled = self._poll(self.consumer, timeout_ms=timeout_ms, max_records=self.max_records)
        if self._fresh:
            self._seek_fresh()
        lines: list[bytes] = []
        docs: list[d.Document] = []
        count = 0
        for tp, records in polled.items():
            count += len(records)
            if tp.topic == self.audit_topic:
                for rec in records:
                    lines += rec.value.split(b"\n")
            else:
                for rec in records:
                    try:
                        doc = json.loads(rec.value)
                        t = d.timestamp_ms(doc) * 1_000_000
                    except (ValueError, TypeError, KeyError):
                        self.bad += 1
                        continue
                    if t >= self.start_ns and (until_ns is None or t < until_ns):
                        docs.append(doc)
            self.offsets.setdefault(tp.topic, {})[tp.partition] = records[-1].offset + 1
        self.caught_up = count < self.max_records and not self._fresh and self._at_end()
        if lines:
            from commerce_observe.monitor.watch.sources import line_time

            lines = [x for x in lines if x and line_time(x) >= self.start_ns and (until_ns is None or line_time(x) < until_ns)]
        return lines, docs

    def _at_end(self) -> bool:
        """Every partition assigned and read up to its end (before the assignment: not caught up,
        or a restart would close the buckets it was down for before reading them)."""
        assigned = self.consumer.assignment()
        if not assigned:
            return False
        ends = self.consumer.end_offsets(list(assigned))
        return all(self.consumer.position(tp) >= ends[tp] for tp in assigned)

    def commit(self, offsets: dict[str, dict[int, int]]) -> None:
        """Commit what a checkpoint holds (after it is written), for the group's lag and tools."""
        if not self.commit_enabled:
            return
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        mine = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        todo = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for t, parts in offsets.items()
                for p, o in parts.items() if (t, p) in mine}
        if not todo:
            return
        from kafka.errors import KafkaError

        try:
            self.consumer.commit(todo)
        except KafkaError as exc:  # a rebalance under way (several watches in the group): the positions
            # are in the checkpoint already; the commit is for lag tools, the next one carries them
            self.commit_failures += 1
            logger.info("offset commit skipped (%s)", type(exc).__name__)

    def close(self) -> None:
        self.consumer.close()
