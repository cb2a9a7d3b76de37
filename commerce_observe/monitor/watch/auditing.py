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

from collections.abc import Iterable, Mapping
from commerce_observe.monitor.audit.auditor import Auditor
from commerce_observe.monitor.audit.findings import Finding, Kind, report_to_hub
from commerce_observe.monitor.watch.settings import WatchSettings
from commerce_observe.store.documents import finding_document

#: how many grace periods a released finding id is remembered
_REMEMBER_GRACES = 20


class AuditStage:
    def __init__(self, settings: WatchSettings, groups: Mapping[str, Iterable[str]] | None = None,
                 sequence_gaps: bool = True) -> None:
        self.settings = settings
        #: False for one of several watches in a group: it sees only its share of a producer's
        #: sequence numbers (the audit topic is partitioned by event id), so their holes mean nothing
        self.sequence_gaps = sequence_gaps
        self.auditor = Auditor(grace_s=settings.grace_s, sla_s=settings.sla_s, groups=groups)
        self.held: dict[int, list[Finding]] = {}  # audit bucket -> findings waiting for it to close
        self.next_bucket = 0  # first audit bucket not yet released
        self.released: dict[str, int] = {}  # finding id -> watermark when released
        self.counts: dict[str, int] = {}

    def feed(self, lines: list[bytes]) -> None:
        self.auditor.feed(lines)

    def advance(self, watermark_ns: int) -> tuple[list[tuple[int, list[Finding]]], int]:
        """Move to ``watermark_ns``. Returns the audit buckets closed now that hold findings, in
        order, as (start ns, findings), and the time before which every audit bucket is closed."""
        a = self.auditor
        a.advance(watermark_ns)
        size = self.settings.audit_bucket_ns
        for f in a.take():
            # getattr: a checkpoint written before the attribute existed resumes with gaps on
            if f.kind is Kind.GAP and f.sequence is not None and not getattr(self, "sequence_gaps", True):
                continue
            b = (f.published_ns or a.watermark) // size
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

    def _forget(self, watermark_ns: int) -> None:
        horizon = watermark_ns - _REMEMBER_GRACES * self.settings.grace_ns
        if self.released and next(iter(self.released.values())) < horizon:
            self.released = {k: t for k, t in self.released.items() if t >= horizon}

