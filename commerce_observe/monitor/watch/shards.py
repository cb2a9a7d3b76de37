"""Series split between the members of a ``watch --scale-out`` group, with each share's progress in Elasticsearch.

A series belongs to shard ``crc32(name) % P``, ``P`` being the number of partitions of the
audit topic, and shard ``p`` is scored by the member the consumer group assigned audit
partition ``p``: a rebalance moves a shard together with its partition, with no protocol of
our own. Each shard keeps its own detector (the models of its series only), its own series
alert engine (what fires, since when) and its next bucket to score, all saved in one
document of the index ``commerce-observe-shards-<data stream>`` after every bucket:

1. the bucket is read back from the store and the shard's series scored;
2. the notifications it produced are registered as claims (with the notification in
   them, :mod:`~commerce_observe.monitor.watch.sharing`);
3. the shard document is written, conditionally on the version this member loaded or
   last wrote (``if_seq_no``/``if_primary_term``).

A member killed before 3 leaves the shard at the bucket before: its next owner scores
that bucket again from the same model and engine state, so it produces the same
notifications with the same ids, which are already registered (the claims hold them back,
or, when the dead member did not send them, another member sends them once their lease
runs out). A member that lost the shard in a rebalance and still scores it finds its
write refused (409) and drops the shard. Nothing is skipped: the next owner starts at the
saved next bucket.

A shard nobody has saved yet (the group's first start) is made by the first member that
owns it: it learns the shard's series from the history before its start time, as a single
watch learns all of them, and creates the document (``op_type=create``: if another member
was faster, its document is used).
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from commerce_observe.monitor.alerts import AlertEngine, Notification
from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar, Settings
from commerce_observe.monitor.anomaly.score import report_to_hub as report_scores_to_hub
from commerce_observe.monitor.watch.alerting import decide_series_bucket
from commerce_observe.monitor.watch.scoring import Scorer
from commerce_observe.monitor.watch.series import ALL_ORDERS, BucketValues, StoreSeries, every_bucket
from commerce_observe.monitor.watch.settings import WatchSettings
from commerce_observe.monitor.watch.sharing import ensure_index, shard_of
from commerce_observe.store.documents import anomaly_document
from commerce_observe.store.es_client import EsError, EsHttp

_MAPPING = {"dynamic": False, "properties": {
    "member": {"type": "keyword"}, "group": {"type": "keyword"}, "next_bucket_ns": {"type": "long"}}}


class Share:
    """Which shard each series name belongs to (cached: a bucket of 10,000 products asks often)."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._of: dict[str, int] = {}

    def of(self, series: str) -> int:
        p = self._of.get(series)
        if p is None:
            p = self._of[series] = shard_of(series, self.shards)
        return p

    def cut(self, v: BucketValues, numbers: Iterable[int]) -> dict[int, BucketValues]:
        """The parts of bucket ``v`` whose series belong to shards ``numbers``, in one pass over it."""
        of = self.of
        out = {p: BucketValues(v.start_ns) for p in numbers}
        site = out.get(of(ALL_ORDERS))
        if site is not None:
            site.all_orders = v.all_orders
        for k, n in v.orders.items():
            part = out.get(of("orders:" + k))
            if part is not None:
                part.orders[k] = n
        for c, milli in v.revenue_milli.items():
            part = out.get(of("revenue:" + c))
            if part is not None:
                part.revenue_milli[c] = milli
        for m, x in v.payments.items():
            part = out.get(of("payment_failures:" + m))
            if part is not None:
                part.payments[m] = list(x)
        return out


@dataclass
class Shard:
    number: int
    scorer: Scorer
    engine: AlertEngine
    next_bucket_ns: int
    version: tuple[int, int] = (-1, -1)  # (_seq_no, _primary_term) of its document as last read or written
    emitted: list[Notification] | None = None  # the engine's sink: what the current bucket produced


class ShardStore:
    """Shard documents: ``<group>.<P>.<number>`` in ``commerce-observe-shards-<data stream>``."""

    def __init__(self, http: EsHttp, index: str, group: str, member: str, work_dir: str) -> None:
        self.http, self.index, self.group, self.member = http, index, group, member
        self.work_dir = work_dir
        self._ready = False

    def _path(self, shards: int, number: int) -> str:
        self._ensure()
        return f"/{self.index}/_doc/{quote(f'{self.group}.{shards}.{number}', safe='')}"

    def _ensure(self) -> None:
        if not self._ready:
            ensure_index(self.http, self.index, _MAPPING)
            self._ready = True

    def read(self, shards: int, number: int) -> tuple[dict[str, Any], tuple[int, int]] | None:
        try:
            held = self.http.request("GET", self._path(shards, number))
        except EsError as exc:
            if exc.status == 404:
                return None
            raise
        return held["_source"], (held["_seq_no"], held["_primary_term"])

    def write(self, shards: int, shard: Shard, doc: Mapping[str, Any]) -> bool:
        """Create (version -1) or replace the shard's document unless somebody else wrote it since."""
        path = self._path(shards, shard.number)
        seq, term = shard.version
        url = (path.replace("/_doc/", "/_create/") if seq < 0 else f"{path}?if_seq_no={seq}&if_primary_term={term}")
        try:
            out = self.http.request("PUT", url, doc, ok=(200, 201))
        except EsError as exc:
            if exc.status != 409:
                raise
            return False
        shard.version = (out["_seq_no"], out["_primary_term"])
        return True

    def encode(self, shard: Shard) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            path = Path(tmp) / "model.npz"
            shard.scorer.detector.save(path)
            model = base64.b64encode(path.read_bytes()).decode()
        return {"member": self.member, "group": self.group, "next_bucket_ns": shard.next_bucket_ns,
                "products": sorted(shard.scorer.products), "currencies": sorted(shard.scorer.currencies),
                "engine": shard.engine.export_state(), "model": model}

    def decode_model(self, doc: Mapping[str, Any], calendar: Calendar | None) -> AnomalyDetector:
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            path = Path(tmp) / "model.npz"
            path.write_bytes(base64.b64decode(doc["model"]))
            return AnomalyDetector.load(path, calendar)


class ShardedScoring:
    """The shards this member owns, loaded, scored bucket by bucket and saved."""

    def __init__(self, store: ShardStore, series: StoreSeries, settings: WatchSettings, *,
                 new_engine: Callable[[Callable[[Notification], None]], AlertEngine], start_ns: int,
                 calendar: Calendar | None, register: Callable[[Sequence[Notification]], None],
                 write: Callable[[list[dict[str, Any]]], Any], say: Callable[[str], None] = lambda line: None) -> None:
        self.store, self.series, self.settings = store, series, settings
        self.new_engine, self.start_ns, self.calendar = new_engine, start_ns, calendar
        self.register, self.write, self.say = register, write, say
        self.shards: dict[int, Shard] = {}
        self.total = 0
        self.share = Share(1)
        self.scored = 0  # shard buckets scored here
        self.lost = 0  # shards dropped because another member wrote them
        self.behind = False  # due buckets were left for the next pass

    # --- ownership ----------------------------------------------------------------------------

    def sync(self, owned: Iterable[int], total: int) -> None:
        """Own exactly shards ``owned`` of ``total``: drop the others, load (or make) the new ones."""
        owned = set(owned)
        if total != self.total:
            self.shards, self.total, self.share = {}, total, Share(total)
        for p in [p for p in self.shards if p not in owned]:
            del self.shards[p]
            self.say(f"shard {p}/{total}: moved to another member")
        new = sorted(p for p in owned if p not in self.shards)
        fresh = []
        for p in new:
            held = self.store.read(total, p)
            if held is None:
                fresh.append(p)
            else:
                self.shards[p] = self._restore(p, *held)
        if fresh:
            self._make(fresh)

    def _restore(self, number: int, doc: Mapping[str, Any], version: tuple[int, int]) -> Shard:
        scorer = Scorer(self.store.decode_model(doc, self.calendar), site=self.share.of(ALL_ORDERS) == number)
        scorer.restore(set(doc["products"]), set(doc["currencies"]))
        shard = Shard(number, scorer, self._engine(), int(doc["next_bucket_ns"]), version)
        shard.engine.import_state(doc["engine"])
        self.say(f"shard {number}/{self.total}: taken at {_iso(shard.next_bucket_ns)} "
                 f"({len(scorer.detector)} series, saved by {str(doc.get('member', '?'))[:8]})")
        return shard

    def _engine(self) -> AlertEngine:
        return self.new_engine(lambda n: None)

    def _make(self, numbers: list[int]) -> None:
        """New shards: learn their series from the history before the start, then create them."""
        s = self.settings
        made = {p: Shard(p, Scorer(AnomalyDetector(Settings(bucket_seconds=s.bucket_s, timezone=s.timezone,
                                                             min_history=s.min_history), self.calendar),
                                   site=self.share.of(ALL_ORDERS) == p), self._engine(), self.start_ns)
                for p in numbers}
        for sh in made.values():
            sh.scorer.restore(set(), set())
        start = self.start_ns
        h0 = start - s.history_days * 86_400 * 10**9
        oldest = self.series.oldest_ns(h0, start)
        if oldest is not None and oldest < start:
            first = oldest // s.bucket_ns * s.bucket_ns
            for v in every_bucket(self._read_chunked(first, start), first, start, s.bucket_ns):
                for p, part in self.share.cut(v, made).items():
                    made[p].scorer.learn_one(part)
        for p, sh in made.items():
            if self.store.write(self.total, sh, self.store.encode(sh)):
                self.shards[p] = sh
                self.say(f"shard {p}/{self.total}: made, {len(sh.scorer.detector)} series learned, "
                         f"scoring from {_iso(start)}")
            else:  # another member made it first: its document counts
                held = self.store.read(self.total, p)
                assert held is not None
                self.shards[p] = self._restore(p, *held)

    def _read_chunked(self, start: int, end: int) -> Iterable[BucketValues]:
        step = self.settings.bucket_ns * 24
        for lo in range(start, end, step):
            yield from self.series.read(lo, min(end, lo + step))

    # --- scoring ------------------------------------------------------------------------------

    def next_bucket_ns(self) -> int | None:
        """The first bucket some owned shard has not scored (None: no shard owned)."""
        return min((sh.next_bucket_ns for sh in self.shards.values()), default=None)

    def score_due(self, until_ns: int, budget_s: float = 1.0) -> int:
        """Score the owned shards' buckets ending (plus the wait) by ``until_ns``, oldest first, each
        bucket read once for the shards at it, for about ``budget_s`` of wall time: a member catching
        up (a first start, a shard taken over far behind) polls its partitions in between, or the
        group would count it dead after ``max.poll.interval.ms``. ``behind`` says whether due buckets
        are left. Returns how many shard buckets were scored."""
        done = 0
        size = self.settings.bucket_ns
        deadline = time.monotonic() + budget_s
        self.behind = False
        while self.shards:
            t = min(sh.next_bucket_ns for sh in self.shards.values())
            if t + size > until_ns:
                break
            if time.monotonic() > deadline:
                self.behind = True
                break
            v = next(iter(self.series.read(t, t + size)), None) or BucketValues(t)
            at = [sh for sh in self.shards.values() if sh.next_bucket_ns == t]
            parts = self.share.cut(v, [sh.number for sh in at])
            for sh in at:
                self._score(sh, parts[sh.number])
                done += 1
        return done

    def _score(self, sh: Shard, v: BucketValues) -> None:
        scores = sh.scorer.score(v)
        report_scores_to_hub(scores)
        docs = [anomaly_document(x) for x in scores if x.score is not None]
        if docs:
            self.write(docs)
        emitted: list[Notification] = []
        sh.engine.sink = emitted.append
        decide_series_bucket(sh.engine, v, scores)
        if emitted:
            self.register(emitted)  # before the progress: a kill in between leaves them to be sent, not lost
        sh.next_bucket_ns = v.start_ns + self.settings.bucket_ns
        if self.store.write(self.total, sh, self.store.encode(sh)):
            self.scored += 1
        else:  # another member owns it now and wrote it: ours is stale
            self.lost += 1
            self.say(f"shard {sh.number}/{self.total}: written by another member, dropped here")
            del self.shards[sh.number]


def _iso(ns: int) -> str:
    from commerce_observe.store.documents import iso_ns

    return iso_ns(ns)
