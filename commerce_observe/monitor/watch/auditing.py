"""The auditor, run incrementally: findings released once, per audit bucket, in time order.

The auditor judges an event once the stream has moved ``grace`` past it; the
findings it hands over (:meth:`Auditor.take`) are held here per *audit bucket* of
their publication time and released only when the watermark has passed the
bucket's end plus grace plus lateness: by then every event published in the
bucket has been judged. Releasing whole buckets in order is what makes a live
run and a backtest agree (same findings, same alerts), whatever the batch
boundaries or the moment the wall clock moved the watermark.

A finding's identity is its store document id (kind, event id or sequence,
consumer group): one already released is not released again (a redelivered
late handling would otherwise report the same LATE twice).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from commerce_observe.monitor.audit.auditor import Auditor
from commerce_observe.monitor.audit.findings import Finding, Kind, report_to_hub
from commerce_observe.monitor.watch.settings import WatchSettings
from commerce_observe.store.documents import finding_document

#: how many grace periods a released finding id is remembered
_REMEMBER_GRACES = 20


class AuditStage:
    """The auditor (or, for one of several watches, one per audit partition) and the findings it holds.

    ``sequence_gaps=False`` is one of several watches in a group (scale-out): it sees only its
    share of a producer's sequence numbers (the audit topic is partitioned by event id), so their
    holes mean nothing; and it keeps one auditor per audit partition. A partition read behind the
    others (just taken over from another member, read again from the group's commit) then judges
    its events by its own stream time: judged by the newest time of the other partitions, an event
    read that late would wait a whole grace period more of new records, which may not come; and
    a partition that moves away takes its open events with it.
    """

    def __init__(self, settings: WatchSettings, groups: Mapping[str, Iterable[str]] | None = None,
                 sequence_gaps: bool = True) -> None:
        self.settings = settings
        self.groups = groups
        self.sequence_gaps = sequence_gaps
        self.auditor = Auditor(grace_s=settings.grace_s, sla_s=settings.sla_s, groups=groups)
        #: scale-out: audit partition -> its auditor (``auditor`` is then unused)
        self.parts: dict[int, Auditor] | None = None if sequence_gaps else {}
        self.held: dict[int, list[Finding]] = {}  # audit bucket -> findings waiting for it to close
        self.next_bucket = 0  # first audit bucket not yet released
        self.released: dict[str, int] = {}  # finding id -> watermark when released
        self.counts: dict[str, int] = {}

    def _auditors(self) -> list[Auditor]:
        parts = getattr(self, "parts", None)  # a checkpoint from before per-partition auditors has none
        return [self.auditor] if parts is None else list(parts.values())

    @property
    def watermark(self) -> int:
        return max((a.watermark for a in self._auditors()), default=0)

    @property
    def peak_open(self) -> int:
        return sum(a.peak_open for a in self._auditors())

    def feed(self, lines: list[bytes], partition: int | None = None) -> None:
        parts = getattr(self, "parts", None)
        if parts is None or partition is None:
            self.auditor.feed(lines)
            return
        a = parts.get(partition)
        if a is None:
            s = self.settings
            a = parts[partition] = Auditor(grace_s=s.grace_s, sla_s=s.sla_s, groups=self.groups)
        a.feed(lines)

    def advance(self, watermark_ns: int, caught_up: bool = True) -> tuple[list[tuple[int, list[Finding]]], int]:
        """Move to ``watermark_ns``. Returns the audit buckets closed now that hold findings, in
        order, as (start ns, findings), and the time before which every audit bucket is closed.

        Per-partition auditors move to ``watermark_ns`` only when the input is ``caught_up`` (every
        partition read to its end); until then each goes by the newest record read from it."""
        found: list[Finding] = []
        for a in self._auditors():
            if caught_up or a is self.auditor:
                a.advance(watermark_ns)
            found += a.take()
        size = self.settings.audit_bucket_ns
        for f in found:
            # getattr: a checkpoint written before the attribute existed resumes with gaps on
            if f.kind is Kind.GAP and f.sequence is not None and not getattr(self, "sequence_gaps", True):
                continue
            b = (f.published_ns or watermark_ns) // size
            if b < self.next_bucket:
                b = self.next_bucket  # its bucket was released already: it counts in the next one
            self.held.setdefault(b, []).append(f)
        last = max(self.next_bucket, (watermark_ns - self.settings.grace_ns - self.settings.lateness_ns) // size)
        out: list[tuple[int, list[Finding]]] = []
        for b in sorted(k for k in self.held if k < last):
            fresh = []
            for f in self.held.pop(b):
                fid = finding_document(f)["event.id"]
                if fid in self.released:
                    continue
                self.released[fid] = watermark_ns
                fresh.append(f)
                self.counts[f.kind.value] = self.counts.get(f.kind.value, 0) + 1
            if fresh:
                out.append((b * size, fresh))
                report_to_hub(fresh)
        self.next_bucket = last
        self._forget(watermark_ns)
        return out, last * size

    def forget_partitions(self, lost: set[int], partitions: int) -> int:
        """Scale-out: drop what this member holds of the events of audit partitions ``lost`` (of
        ``partitions``; the audit sink puts an event on ``crc32(event id) % partitions``): their
        new holder reads them again from the group's commit and judges them; judged here too, an
        event whose handling only the new holder reads would be called LOST by this member."""
        def drop(eid: bytes) -> bool:
            raw = b"" if eid[:1] == b"\t" else eid  # another producer's message: the sink saw no id
            return zlib.crc32(raw) % partitions in lost

        parts = getattr(self, "parts", None)
        n = 0
        for p in lost:
            gone = parts.pop(p, None) if parts is not None else None
            n += gone.open_events if gone is not None else 0
        for b, found in list(self.held.items()):
            keep = [f for f in found if f.event_id is None or not drop(f.event_id.encode())]
            if keep:
                self.held[b] = keep
            else:
                del self.held[b]
        return n

    def resume_ns(self) -> int:
        """The record time from which another process must read to judge every event whose findings
        this stage has not released yet (a partition's next holder, in scale-out): the first audit
        bucket not released, less one grace period and the writers' time disorder."""
        from commerce_observe.agent.audit.sinks import TIME_DISORDER_NS

        return max(0, self.next_bucket * self.settings.audit_bucket_ns - self.settings.grace_ns - TIME_DISORDER_NS)

    def _forget(self, watermark_ns: int) -> None:
        horizon = watermark_ns - _REMEMBER_GRACES * self.settings.grace_ns
        if self.released and next(iter(self.released.values())) < horizon:
            self.released = {k: t for k, t in self.released.items() if t >= horizon}

