"""The watch loop: read, audit, score closed buckets, alert, checkpoint; live and backtest alike.

One pass (:meth:`Watch.step`):

1. read the next audit lines (a page of rows) and feed the auditor;
2. move the watermark: the newest record time read; live, once the input is
   caught up, the wall clock (minus nothing: buckets wait ``lateness`` anyway);
   in a backtest, capped at ``until`` and set to it once the stored input is read;
3. release the audit buckets now closed: findings to the store and the audit rules;
4. score every series bucket that closed (end + lateness <= watermark), in order:
   scores to the store, to the anomaly and failure-ratio rules;
5. hand new notifications to the senders; checkpoint when due.

Nothing in a pass reads the wall clock except step 2 (through the injected
``clock``), so a backtest over stored data is the live code path with a clock that
never runs ahead of the data, and both give the same findings, scores and alerts.

A pass that fails (the store went away) is not half-applied: the state is reloaded
from the last checkpoint and the input read again from the positions saved with
it; every output is idempotent by id (store documents, notification ids), so the
replay doubles nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from commerce_observe._internal.selfstats import logger
from commerce_observe.monitor.alerts import AlertConfig, AlertEngine, Clock, Notification
from commerce_observe.monitor.alerts.render import from_payload, payload
from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings
from commerce_observe.monitor.anomaly.score import report_to_hub as report_scores_to_hub
from commerce_observe.monitor.audit.findings import Finding, Links
from commerce_observe.monitor.watch.alerting import GAVE_UP, SENT, AlertState, Delivery, NotificationLog, series_rules
from commerce_observe.monitor.watch.auditing import AuditStage
from commerce_observe.monitor.watch.checkpoint import Checkpoints, WatchState
from commerce_observe.monitor.watch.scoring import Scorer
from commerce_observe.monitor.watch.series import BucketValues, SeriesBuilder, StoreSeries
from commerce_observe.monitor.watch.settings import WatchSettings
from commerce_observe.monitor.watch.shards import ShardedScoring, ShardStore
from commerce_observe.monitor.watch.sharing import DONE, Claims, Verdict
from commerce_observe.monitor.watch.sources import Source, SqliteAuditTail, line_time
from commerce_observe.store.documents import alert_document, anomaly_document, finding_document
from commerce_observe.store.store import EventStore


@dataclass
class Inputs:
    """What the watch reads and writes (all opened by the caller)."""

    store: EventStore  # findings and scores are written here
    series: StoreSeries  # closed buckets are read back from here (the same store, usually)
    audit_path: str  # the SQLite audit file the services write (unless kafka is given)
    kafka: KafkaInput | None = None  # read the events and audit topics instead
    #: an input of one's own (benchmarks): called with the state to read from; event documents
    #: it returns are added up per bucket like the Kafka events topic's
    source: Callable[[WatchState], Source] | None = None
    #: one of several watches in the group (docs/watch.md, scale-out): findings and notifications
    #: are claimed here before they alert; series are read from the store
    claims: Claims | None = None
    #: scale-out: where each series shard's progress (model, alert state, next bucket) is kept
    shards: ShardStore | None = None


@dataclass(frozen=True)
class KafkaInput:
    bootstrap: str
    events_topic: str
    audit_topic: str
    group_id: str
    scale_out: bool = False  # several members: only the audit topic is read (series come from the store)


class Watch:
    def __init__(self, settings: WatchSettings, inputs: Inputs, checkpoints: Checkpoints, clock: Clock, *,
                 alert_config: AlertConfig | None = None, links: Links | None = None,
                 start_ns: int | None = None, until_ns: int | None = None,
                 groups: Mapping[str, Iterable[str]] | None = None, calendar: Calendar | None = None,
                 say: Callable[[str], None] = lambda line: None) -> None:
        self.settings = settings
        self.inputs = inputs
        self.checkpoints = checkpoints
        self.clock = clock
        self.alert_config = alert_config
        self.links = links or Links()
        self.until_ns = until_ns  # set: backtest
        self.groups = groups
        self.calendar = calendar
        self.say = say
        self.log = NotificationLog(checkpoints.log_path)
        self.delivery = Delivery(alert_config, self.log, clock.now, inputs.claims)
        self._requested_start = start_ns
        self.stopping = threading.Event()
        self.watermark_ns = 0
        self.newest_read_ns = 0
        self._last_checkpoint = 0.0
        self._model_dirty = False
        self._registered: set[str] = set()  # scale-out: notifications of the outbox's fresh ones registered as claims
        self._last_sweep = 0.0
        self.state, self.scorer, self.source = self._open()
        self.sharded = self._sharded()

    # --- state ---------------------------------------------------------------------------------

    def _open(self) -> tuple[WatchState, Scorer, Source]:
        s = self.settings
        if self.checkpoints.exists():
            state, detector = self.checkpoints.load(self.calendar)
            state.alerts.use_rules(self.alert_config, self.links)
            self.say(f"resumed from checkpoint: next bucket {_iso(state.next_bucket_ns)}, "
                     f"{len(detector)} series, no relearning")
        else:
            state, detector = self._first_start()
        scorer = Scorer(detector)
        scorer.restore(state.products, state.currencies)
        return state, scorer, self._source(state)

    def _source(self, state: WatchState) -> Source:
        k = self.inputs.kafka
        if k is None and self.inputs.source is None:
            return SqliteAuditTail(self.inputs.audit_path, state.audit_position, state.start_ns, self.settings.page_rows)
        if k is not None and k.scale_out:
            state.builder = None  # every member reads the same closed buckets from the store
        elif state.builder is None:  # events come as documents: added up per bucket here
            state.builder = SeriesBuilder(self.settings.bucket_s)
            state.builder.first_open = state.start_ns // self.settings.bucket_ns
        if self.inputs.source is not None:
            return self.inputs.source(state)
        assert k is not None
        from commerce_observe.monitor.watch.kafka_source import KafkaSource

        return KafkaSource(k.bootstrap, state.kafka_offsets, state.start_ns,
                           events_topic=None if k.scale_out else k.events_topic,
                           audit_topic=k.audit_topic, group_id=k.group_id, commit=self.until_ns is None,
                           resume_committed=k.scale_out)

    def _sharded(self) -> ShardedScoring | None:
        """Scale-out: the series shards this member owns (none until the group assigns partitions)."""
        if self.inputs.shards is None:
            return None
        cfg, links = self.alert_config, self.links

        def engine(sink: Callable[[Notification], None]) -> AlertEngine:
            return AlertEngine(series_rules(cfg), sink, bucket_s=self.settings.bucket_s,
                               group_min=cfg.group_min if cfg else 5, links=links)

        def register(ns: Sequence[Notification]) -> None:
            for n in ns:
                self.state.alerts.outbox(n)
            self._register()

        return ShardedScoring(self.inputs.shards, self.inputs.series, self.settings, new_engine=engine,
                              start_ns=self.state.start_ns, calendar=self.calendar, register=register,
                              write=self.inputs.store.write, say=self.say)

    def _first_start(self) -> tuple[WatchState, AnomalyDetector]:
        s = self.settings
        now_ns = int(self.clock.now() * 1e9) if self._requested_start is None else self._requested_start
        start = now_ns // s.bucket_ns * s.bucket_ns
        detector = AnomalyDetector(Settings(bucket_seconds=s.bucket_s, timezone=s.timezone,
                                            min_history=s.min_history), self.calendar)
        shared = self.inputs.kafka is not None and self.inputs.kafka.scale_out
        state = WatchState(start_ns=start, next_bucket_ns=start, audit=AuditStage(s, self.groups, not shared),
                           alerts=AlertState(self.alert_config, s, self.links))
        scorer = Scorer(detector)
        scorer.restore(state.products, state.currencies)
        h0 = start - s.history_days * 86_400 * 10**9
        # scale-out: each series shard learns its own series when it is first made (shards.py)
        oldest = None if self.inputs.shards is not None else self.inputs.series.oldest_ns(h0, start)
        t0 = time.monotonic()
        if oldest is not None and oldest < start:
            first = oldest // s.bucket_ns * s.bucket_ns
            state.learned_buckets = scorer.learn(self._read_chunked(first, start), first, start, s.bucket_ns)
        self.say(f"learned {state.learned_buckets} buckets of history ({len(detector)} series) "
                 f"in {time.monotonic() - t0:.1f}s; scoring from {_iso(start)}")
        self.checkpoints.save(state, detector)
        return state, detector

    def _read_chunked(self, start: int, end: int) -> Iterable[BucketValues]:
        step = self.settings.bucket_ns * 24
        for lo in range(start, end, step):
            yield from self.inputs.series.read(lo, min(end, lo + step))

    def _reload(self) -> None:
        """Back to the last checkpoint (after a failed pass): the input is read again from there."""
        self.source.close()
        self.state, self.scorer, self.source = self._open()
        self.sharded = self._sharded()  # shards are read again from their saved progress
        self._registered.clear()
        self._model_dirty = False

    def checkpoint(self) -> None:
        self.delivery.prune(self.state.alerts.outbox)
        self.state.count("checkpoints")
        self.checkpoints.save(self.state, self.scorer.detector if self._model_dirty else None)
        self._model_dirty = False
        self.source.commit(self.state.kafka_offsets, self.state.audit.resume_ns())
        self._last_checkpoint = time.monotonic()

    # --- one pass -------------------------------------------------------------------------------

    def step(self) -> bool:
        """One pass; returns True when more input is waiting (poll again at once)."""
        s, st = self.settings, self.state
        lines, docs = self.source.poll(self.until_ns)
        take_lost = getattr(self.source, "take_lost", None)  # scale-out: audit partitions moved away
        lost = take_lost() if take_lost is not None else set()
        if lost:
            _, total = self.source.audit_shards()  # type: ignore[attr-defined]
            dropped = st.audit.forget_partitions(lost, total)
            self.say(f"audit partitions {sorted(lost)} moved to another member: {dropped} open events left to it")
        if lines:
            parts = getattr(self.source, "partition_lines", None)  # scale-out: an auditor per audit partition
            if parts is not None and st.audit.parts is not None:
                for p, part in parts:
                    st.audit.feed(part, p)
            else:
                st.audit.feed(lines)
            st.count("audit_records", len(lines))
            self.newest_read_ns = max(self.newest_read_ns, line_time(lines[-1]))
        stream_ns = st.audit.watermark
        if st.builder is not None:
            for doc in docs:
                st.builder.add(doc)
            st.count("events", len(docs))
            stream_ns = max(stream_ns, st.builder.newest_ns)
            self.newest_read_ns = max(self.newest_read_ns, st.builder.newest_ns)
        caught_up = self.source.caught_up
        if self.until_ns is not None:
            wm = self.until_ns if caught_up else min(stream_ns, self.until_ns)
        else:
            wm = max(stream_ns, int(self.clock.now() * 1e9)) if caught_up else stream_ns
        self.watermark_ns = wm = max(wm, self.watermark_ns)
        released, closed_until = st.audit.advance(wm, caught_up or self.until_ns is not None)
        docs = [finding_document(f) for _, found in released for f in found]
        if docs:
            self.inputs.store.write(docs)
        if self.inputs.claims is None:
            st.alerts.findings_released(released, closed_until)
        else:
            self._release_claimed(released, closed_until)
        scored = 0
        # live: a bucket waits `lateness` for late writers; a backtest's stored period is complete
        wait = s.lateness_ns if self.until_ns is None else 0
        if self.sharded is not None:
            scored = self._score_shards(wm - wait)
        else:
            while st.next_bucket_ns + s.bucket_ns + wait <= wm:
                self._score_bucket(st.next_bucket_ns)
                scored += 1
        # each alert's new state (firing, resolved), where the dashboard finds the open ones; before the
        # checkpoint, so a replay writes the same documents again (ignored by id), never fewer
        states = [alert_document(a) for n in st.alerts.outbox.fresh for a in n.alerts]
        if states:
            self.inputs.store.write(states)
        self.delivery.submit(st.alerts.outbox)
        self._registered.clear()
        if self.inputs.claims is not None and time.monotonic() - self._last_sweep >= self.inputs.claims.lease_s / 3:
            self._sweep()
        if scored or time.monotonic() - self._last_checkpoint >= s.checkpoint_every_s:
            self.checkpoint()
        return not caught_up or (self.sharded is not None and self.sharded.behind)

    def _score_bucket(self, start: int) -> None:
        st = self.state
        if st.builder is not None:
            v = st.builder.take(start)
        else:
            v = next(iter(self.inputs.series.read(start, start + self.settings.bucket_ns)), None) or BucketValues(start)
        scores = self.scorer.score(v)
        report_scores_to_hub(scores)
        docs = [anomaly_document(x) for x in scores if x.score is not None]
        if docs:
            self.inputs.store.write(docs)
        st.count("scores_stored", len(docs))
        st.alerts.bucket_scored(v, scores)
        st.count("buckets_scored")  # before the bucket moves on: /metrics may read both at any moment
        st.next_bucket_ns = start + self.settings.bucket_ns
        self._model_dirty = True

    # --- scale-out -----------------------------------------------------------------------------

    def _score_shards(self, until_ns: int) -> int:
        """Scale-out: own the shards of the audit partitions held now, score their closed buckets."""
        sharded = self.sharded
        assert sharded is not None
        held = getattr(self.source, "audit_shards", None)  # the Kafka source: the audit partitions held now
        owned, total = held() if held is not None else (set(), 0)
        if total:
            sharded.sync(owned, total)
        scored = sharded.score_due(until_ns)
        self.state.count("buckets_scored", scored)  # shard buckets
        nxt = sharded.next_bucket_ns()
        if nxt is not None:
            self.state.next_bucket_ns = nxt
        return scored

    def _release_claimed(self, released: list[tuple[int, list[Finding]]], closed_until: int) -> None:
        """Scale-out: the findings this member is first to claim go to the audit rules (a moved partition
        is audited again by its new owner: what the old one alerted on must not alert twice); those a live
        member holds wait for its lease; the notifications they make are registered with the claims."""
        contested = self.state.contested
        fids, verdicts = self._claim_findings([f for _, found in released for f in found])
        in_order = iter(fids)
        mine: list[str] = []
        out = []
        for b, found in released:
            keep = []
            for f in found:
                fid = next(in_order)
                verdict = verdicts[fid]
                if verdict is Verdict.MINE:
                    keep.append(f)
                    mine.append(fid)
                elif verdict is Verdict.WAIT:
                    self.say(f"finding {fid}: claimed by another member, waiting for it or for its lease to run out")
                    contested.append(f)
            if keep:
                out.append((b, keep))
        self.state.alerts.findings_released(out, closed_until)
        self._register(mine)

    def _claim_findings(self, findings: Sequence[Finding]) -> tuple[list[str], dict[str, Verdict]]:
        """Scale-out: claim ``findings`` in one request, however large the burst; their ids (in
        order) and the verdicts by id. A claim taken over from a dead member is said."""
        claims = self.inputs.claims
        assert claims is not None
        fids = [str(finding_document(f)["event.id"]) for f in findings]
        verdicts = claims.claim_all("finding", fids)
        for fid in claims.taken_keys:
            self.say(f"finding {fid}: taken over from a member whose claim ran out")
        return fids, verdicts

    def _register(self, findings: Sequence[str] = ()) -> None:
        """Scale-out: the outbox's new notifications as claims that carry them (per notifier), and the
        ``findings`` claimed here marked done, in one bulk request."""
        claims = self.inputs.claims
        assert claims is not None
        new = [n for n in self.state.alerts.outbox.fresh if n.id not in self._registered]
        create = [("notification", f"{n.id}:{name}", payload(n)) for n in new for name in self.delivery.names]
        claims.finish("finding", findings, DONE, create=create)
        self._registered.update(n.id for n in new)

    def _sweep(self) -> None:
        """Scale-out: finish what dead members left: contested findings whose lease ran out go to the
        audit rules here, notifications claimed and never marked sent are sent (same id)."""
        claims = self.inputs.claims
        assert claims is not None
        self._last_sweep = time.monotonic()
        st = self.state
        waiting, st.contested = st.contested, []
        taken = []
        fids, verdicts = self._claim_findings(waiting)
        for fid, f in zip(fids, waiting):
            verdict = verdicts[fid]
            if verdict is Verdict.MINE:
                taken.append((fid, f))
            elif verdict is Verdict.WAIT:
                st.contested.append(f)
        if taken:
            at = st.audit.next_bucket * self.settings.audit_bucket_ns
            st.alerts.findings_released([(at - self.settings.audit_bucket_ns, [f for _, f in taken])], at)
            self._register([fid for fid, _ in taken])
            self.delivery.submit(st.alerts.outbox)
            self._registered.clear()
        for n in self.delivery.notifiers:
            n.retry_marks()
        if self.delivery.dispatcher is not None:
            for _, data in claims.expired("notification"):
                self.say(f"sending notification {data.get('id')} a dead member claimed and did not send")
                self.delivery.dispatcher.submit(from_payload(data))

    # --- running -----------------------------------------------------------------------------

    def run(self, beat: Callable[[], None] = lambda: None, retry_s: float = 2.0) -> int:
        """Passes until :meth:`stop` (live) or the end of the stored period (backtest); 0 when clean."""
        self.delivery.start()
        self.delivery.submit(self.state.alerts.outbox, everything=True)  # what a crash left unsent
        self._last_checkpoint = time.monotonic()
        while not self.stopping.is_set():
            try:
                more = self.step()
            except Exception as exc:
                self.state.count("errors")
                errors = self.state.counters["errors"]
                logger.warning("watch pass failed (%s); reloading the last checkpoint", exc)
                self.say(f"error: {exc} (reloading the last checkpoint, retrying in {retry_s:g}s)")
                self.stopping.wait(retry_s)
                self._reload()
                self.state.counters["errors"] = max(errors, self.state.counters.get("errors", 0))
                continue
            beat()
            if self.until_ns is not None and not more and self.watermark_ns >= self.until_ns:
                break
            if not more:
                self.stopping.wait(self.settings.poll_idle_s)
        self.finish()
        return 0

    def finish(self, drain_s: float = 5.0) -> None:
        """Deliver what is queued (for up to ``drain_s``), checkpoint, stop the senders."""
        self.delivery.submit(self.state.alerts.outbox)
        d = self.delivery.dispatcher
        deadline = time.monotonic() + drain_s
        while d is not None and d.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.checkpoint()
        self.delivery.stop()
        self.source.close()

    def stop(self) -> None:
        self.stopping.set()

    def snapshot(self) -> dict[str, Any]:
        """The figures ``/metrics`` shows."""
        st = self.state
        wall = self.clock.now()
        return {
            "counters": dict(st.counters), "findings": dict(st.audit.counts),
            "alerts_sent": self.log.count(SENT), "alerts_given_up": self.log.count(GAVE_UP),
            "lag_s": max(0.0, wall - self.newest_read_ns / 1e9) if self.newest_read_ns else 0.0,
            "watermark_s": self.watermark_ns / 1e9, "next_bucket_s": st.next_bucket_ns / 1e9,
            "open_events": st.audit.peak_open, "series": len(self.scorer.detector) + (sum(
                len(sh.scorer.detector) for sh in list(self.sharded.shards.values())) if self.sharded else 0),
            "pending": self.delivery.dispatcher.pending() if self.delivery.dispatcher else 0,
            "shards": len(self.sharded.shards) if self.sharded else 0,
        }


def _iso(ns: int) -> str:
    from commerce_observe.store.documents import iso_ns

    return iso_ns(ns)
