"""The Kafka input: the events topic and the audit topic, read as one consumer group member.

Positions are the watch's state, not the group's: the next offset of every
partition goes into the checkpoint together with the state it produced, and is
committed to the group only after that checkpoint is written (faust's rule:
offsets committed with their state). A restart seeks to the checkpoint's offsets,
so whatever was read after the checkpoint is read again and produces the same
outputs (idempotent documents, logged notifications). A first start seeks every
partition to the start time (``offsets_for_times``), a little earlier for the
audit topic whose messages carry a writer batch of lines. A member of a scale-out group
(``resume_committed``) starts a partition new to it where the group's last holder left it:
the committed offset, or the earlier record time named in the commit's metadata (from which
that holder's unreleased events were read); a partition that moves away is dropped from its
state, so if it comes back it resumes from the group's commit too.

A member that dies without leaving the group (SIGKILL) holds its partitions until its
session times out: 10 s here instead of the client's 45 s default, so a restarted (or
another) watch takes over within seconds.

Our own clients are not traced (that would audit the telemetry topic): the
unpatched ``poll`` is called, as the shipper does.
"""

from __future__ import annotations

import json
import time
from typing import Any

from commerce_observe._internal.kafka_security import KafkaSecurity
from commerce_observe._internal.selfstats import logger
from commerce_observe.agent.audit.sinks import TIME_DISORDER_NS
from commerce_observe.store import documents as d
from commerce_observe.store.kafka_io import original, subscribe_when_known

DEFAULT_GROUP = "commerce-observe-watch"


class SourceStalled(RuntimeError):
    """The consumer has neither read a record nor reached the end of its partitions for too long."""


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
                 security: KafkaSecurity | None = None, session_timeout_ms: int = 10_000,
                 resume_committed: bool = False, stall_s: float = 60.0) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        self.offsets = offsets
        self.start_ns = start_ns
        self.events_topic, self.audit_topic = events_topic, audit_topic
        self.max_records = max_records
        self.commit_enabled = commit
        #: scale-out: a partition new to this member resumes where the group's last holder left it
        self.resume_committed = resume_committed
        self.resumed = 0  # partitions resumed from a commit
        self.stall_s = stall_s  # nothing read and not at the end for this long: a stuck consumer (poll)
        self._progress_at = time.monotonic()
        self._held: set[int] = set()  # audit partitions assigned now
        self.partition_lines: list[tuple[int, list[bytes]]] = []
        self.lost: set[int] = set()  # audit partitions revoked for good since the loop last asked
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
        held = {tp.partition for tp in assigned if tp.topic == self.audit_topic}
        if self.resume_committed:  # audit partitions gone to another member: it reads and judges them now
            lost = self._held - held
            self.lost |= lost
            for p in lost:  # back here later, they resume from the group's commit, not from stale state
                self.offsets.get(self.audit_topic, {}).pop(p, None)
        self._held = held
        fresh = [tp for tp in assigned if tp.partition not in self.offsets.get(tp.topic, {})]
        for tp in assigned:
            off = self.offsets.get(tp.topic, {}).get(tp.partition)
            if off is not None:
                self.consumer.seek(tp, off)
        if fresh:
            self.consumer.pause(*fresh)
            self._fresh = fresh

    def _seek_fresh(self) -> None:
        """The paused new partitions: resumed from the group's commit (scale-out), else to the start
        time (``offsets_for_times``), then on."""
        pending, self._fresh = self._fresh, []
        pending = [tp for tp in pending if tp in self.consumer.assignment()]
        if not pending:
            return
        fresh = self._resume(pending) if self.resume_committed else pending
        if fresh and not self.start_ns:
            self.consumer.seek_to_beginning(*fresh)
        elif fresh:
            wanted = {tp: max(0, (self.start_ns - (TIME_DISORDER_NS if tp.topic == self.audit_topic else 0)) // 1_000_000)
                      for tp in fresh}
            found = self.consumer.offsets_for_times(wanted)
            ends = self.consumer.end_offsets(fresh)
            for tp in fresh:
                hit = found.get(tp)
                self.consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        for tp in pending:
            self.offsets.setdefault(tp.topic, {})[tp.partition] = self.consumer.position(tp)
        self.consumer.resume(*pending)

    def _resume(self, fresh: list[Any]) -> list[Any]:
        """Seek the partitions the group has a commit for to where its last holder left them: its
        committed offset, or earlier, to the time its commit names (the auditor's open events were
        read from there); returns the partitions without a commit (they start at the start time)."""
        rest = []
        for tp in fresh:
            c = self.consumer.committed(tp, metadata=True, timeout_ms=15_000)
            if c is None or c.offset is None or c.offset < 0:
                rest.append(tp)
                continue
            offset = c.offset
            if (c.metadata or "").isdigit():
                hit = self.consumer.offsets_for_times({tp: int(c.metadata) // 1_000_000}).get(tp)
                if hit is not None:
                    offset = min(offset, hit.offset)
            self.consumer.seek(tp, offset)
            self.resumed += 1
            logger.info("partition %s-%d resumed at offset %d (committed %d)", tp.topic, tp.partition, offset, c.offset)
        return rest

    def take_lost(self) -> set[int]:
        lost, self.lost = self.lost, set()
        return lost

    def audit_shards(self) -> tuple[set[int], int]:
        """The audit partitions this member holds now, of how many (scale-out: its series shards)."""
        held = {tp.partition for tp in self.consumer.assignment() if tp.topic == self.audit_topic}
        return held, len(self.consumer.partitions_for_topic(self.audit_topic) or ())

    def poll(self, until_ns: int | None = None, timeout_ms: int = 200) -> tuple[list[bytes], list[d.Document]]:
        """The next audit lines and event documents (records before the start or after ``until_ns`` are skipped)."""
        polled = self._poll(self.consumer, timeout_ms=timeout_ms, max_records=self.max_records)
        if self._fresh:
            self._seek_fresh()
        docs: list[d.Document] = []
        count = 0
        by_partition: list[tuple[int, list[bytes]]] = []
        for tp, records in polled.items():
            count += len(records)
            if tp.topic == self.audit_topic:
                part: list[bytes] = []
                for rec in records:
                    part += rec.value.split(b"\n")
                by_partition.append((tp.partition, part))
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
        now = time.monotonic()
        if count or self.caught_up or not self.consumer.assignment():  # a member may hold no partition
            self._progress_at = now
        elif self.stall_s and now - self._progress_at > self.stall_s:
            # seen under load with kafka-python 3.0 (a member put out of the group, or the group gone
            # "Dead"): polls return nothing, the partitions are not read to their end, for minutes.
            # The pass fails, the watch reloads its checkpoint and joins the group with a new consumer.
            self._progress_at = now
            raise SourceStalled(f"no audit record read for {self.stall_s:g}s and the partitions not read to "
                                f"their end (assigned: {len(self.consumer.assignment())})")
        from commerce_observe.monitor.watch.sources import line_time

        start = self.start_ns
        by_partition = [(p, [x for x in part if x and line_time(x) >= start and (until_ns is None or line_time(x) < until_ns)])
                        for p, part in by_partition]
        #: the same lines per audit partition (scale-out keeps an auditor per partition)
        self.partition_lines = [(p, part) for p, part in by_partition if part]
        return [x for _, part in self.partition_lines for x in part], docs

    def _at_end(self) -> bool:
        """Every partition assigned and read up to its end (before the assignment: not caught up,
        or a restart would close the buckets it was down for before reading them)."""
        assigned = self.consumer.assignment()
        if not assigned:
            return False
        ends = self.consumer.end_offsets(list(assigned))
        return all(self.consumer.position(tp) >= ends[tp] for tp in assigned)

    def commit(self, offsets: dict[str, dict[int, int]], resume_ns: int = 0) -> None:
        """Commit what a checkpoint holds (after it is written), for the group's lag and tools, and
        (scale-out) for the next holder of a partition; ``resume_ns``, in the commit's metadata, is
        the record time from which that holder reads to judge every event not yet released."""
        if not self.commit_enabled:
            return
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        mine = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        meta = str(resume_ns) if resume_ns > 0 else ""
        todo = {TopicPartition(t, p): OffsetAndMetadata(o, meta, -1) for t, parts in offsets.items()
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
