"""Several watches in one consumer group: leased claims that keep a finding's alert and a notification single.

Scale-out uses the engines already there, not a cluster of our own:

* the audit topic is keyed by event id, so the group's partition assignment already
  splits the auditor's work, and a rebalance moves it;
* series are split by the same assignment: series ``s`` belongs to shard
  ``crc32(s) % P`` (``P``: the audit topic's partitions), scored by the member that holds
  audit partition of that number, with the shard's progress in Elasticsearch
  (:mod:`~commerce_observe.monitor.watch.shards`);
* what must be decided once across members is claimed in one Elasticsearch index with
  ``op_type=create`` (a 409 means somebody claimed it first): a finding before it goes to
  the audit rules (a partition that moved is read again by its new owner, whose auditor
  finds the same findings), and a notification (per notifier) before it is delivered.

A claim is a small state machine: ``claimed`` by a member, with a lease (wall-clock
milliseconds), then ``done`` (a finding whose notifications are registered), ``sent`` or
``gave_up`` (a notification). A claim still ``claimed`` after its lease has run out was
left by a member that died: any member may take it over (a conditional write on its
sequence number, so exactly one does) and finish the job, with the same notification id.
A claim names its member (an id kept in the state directory), so a member that restarts
from its own checkpoint goes on with what it had claimed.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from commerce_observe.store.es_client import EsError, EsHttp

MEMBER_FILE = "member-id"
CLAIMED, DONE, SENT, GAVE_UP = "claimed", "done", "sent", "gave_up"
FINISHED = frozenset((DONE, SENT, GAVE_UP))
_MAPPING = {"dynamic": False, "properties": {
    "member": {"type": "keyword"}, "kind": {"type": "keyword"}, "state": {"type": "keyword"},
    "lease_until": {"type": "long"}}}


class Verdict(enum.Enum):
    MINE = "mine"  # ours to act on (new, ours already, or taken over from a dead member)
    DONE = "done"  # finished by somebody: nothing to do
    WAIT = "wait"  # another member holds it under a live lease


def shard_of(series: str, shards: int) -> int:
    """The shard (= audit partition number) a series belongs to; stable across processes and versions."""
    return zlib.crc32(series.encode()) % max(1, shards)


def member_id(state_dir: str) -> str:
    """This member's name, made once and kept with its checkpoint."""
    p = Path(state_dir) / MEMBER_FILE
    if p.exists():
        return p.read_text().strip()
    name = uuid.uuid4().hex
    p.write_text(name)
    return name


def ensure_index(http: EsHttp, index: str, mapping: Mapping[str, Any]) -> None:
    """Create ``index`` with ``mapping`` unless it exists."""
    try:
        http.request("PUT", f"/{index}", {"mappings": mapping})
    except EsError as exc:
        if exc.status != 400 or "already_exists" not in str(exc.body):
            raise


class Claims:
    """Leased first-come claims in one Elasticsearch index (``commerce-observe-claims-<data stream>``)."""

    def __init__(self, http: EsHttp, index: str, member: str, lease_s: float = 15.0,
                 now: Callable[[], float] = time.time) -> None:
        self.http, self.index, self.member = http, index, member
        self.lease_s, self.now = lease_s, now
        self.refused = 0  # claims another member held
        self.taken_over = 0  # expired claims of a dead member finished here
        self.taken_keys: list[str] = []  # keys the last claim_all took over
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            ensure_index(self.http, self.index, _MAPPING)
            self._ready = True

    @staticmethod
    def _url(doc_id: str) -> str:
        return quote(doc_id, safe="")

    def _lease(self) -> int:
        return int((self.now() + self.lease_s) * 1000)

    def claim(self, kind: str, key: str, data: Mapping[str, Any] | None = None) -> Verdict:
        """Claim ``kind``/``key`` (``data``: what another member needs to finish it, kept in the claim)."""
        self._ensure()
        doc_id = f"{kind}:{key}"
        doc = self._claim_doc(kind, self._lease(), data)
        try:
            self.http.request("PUT", f"/{self.index}/_create/{self._url(doc_id)}", doc, ok=(200, 201))
            return Verdict.MINE
        except EsError as exc:
            if exc.status != 409:
                raise
        held = self.http.request("GET", f"/{self.index}/_doc/{self._url(doc_id)}")
        return self._judge(doc_id, held)

    def claim_all(self, kind: str, keys: Iterable[str]) -> dict[str, Verdict]:
        """:meth:`claim` for many keys (no data) in one bulk request, and one multi-get for those held."""
        todo = list(dict.fromkeys(keys))
        if not todo:
            return {}
        self._ensure()
        lines: list[str] = []
        lease = self._lease()
        for key in todo:
            lines += [json.dumps({"create": {"_index": self.index, "_id": f"{kind}:{key}"}}),
                      json.dumps(self._claim_doc(kind, lease))]
        out: dict[str, Verdict] = {}
        held = []
        for key, item in zip(todo, self._bulk(lines)):
            st = item["create"]["status"]
            if st in (200, 201):
                out[key] = Verdict.MINE
            elif st == 409:
                held.append(key)
            else:
                raise EsError(st, item)
        self.taken_keys = []
        if held:
            docs = self.http.request("POST", f"/{self.index}/_mget", {"ids": [f"{kind}:{k}" for k in held]})["docs"]
            for key, doc in zip(held, docs):
                before = self.taken_over
                out[key] = self._judge(doc["_id"], doc)
                if self.taken_over > before:
                    self.taken_keys.append(key)
        return out

    def _claim_doc(self, kind: str, lease_until: int, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A new claim of this member's (``data``: what another member needs to finish it)."""
        return {"member": self.member, "kind": kind, "state": CLAIMED, "lease_until": lease_until,
                **({"data": data} if data is not None else {})}

    def _bulk(self, lines: list[str]) -> list[dict[str, Any]]:
        """One ``_bulk`` request of NDJSON ``lines``; its per-item results."""
        status, body = self.http.raw("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
        if status != 200:
            raise EsError(status, body)
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    def _judge(self, doc_id: str, held: Mapping[str, Any]) -> Verdict:
        src = held.get("_source", {})
        if src.get("state") in FINISHED:
            return Verdict.DONE
        if src.get("member") == self.member:
            self._write_if(doc_id, held, {**src, "lease_until": self._lease()})  # renew: we act on it now
            return Verdict.MINE
        if int(src.get("lease_until", 0)) < self.now() * 1000 and self._write_if(
                doc_id, held, {**src, "member": self.member, "lease_until": self._lease()}):
            self.taken_over += 1
            return Verdict.MINE
        self.refused += 1
        return Verdict.WAIT

    def _write_if(self, doc_id: str, held: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
        """Replace the claim unless somebody wrote it since it was read."""
        try:
            self.http.request("PUT", f"/{self.index}/_doc/{self._url(doc_id)}?if_seq_no={held['_seq_no']}"
                                     f"&if_primary_term={held['_primary_term']}", doc, ok=(200, 201))
            return True
        except EsError as exc:
            if exc.status != 409:
                raise
            return False

    def finish(self, kind: str, keys: Iterable[str], state: str,
               create: Sequence[tuple[str, str, Mapping[str, Any]]] = ()) -> None:
        """Mark claims of ours ``state``, in one bulk request together with new claims ``create``
        (kind, key, data) made in the same go: a notification registered and the findings it covers
        marked done cannot be torn apart by a kill between two requests."""
        self._ensure()
        lines: list[str] = []
        for kind_c, k, data in create:
            lines += [json.dumps({"create": {"_index": self.index, "_id": f"{kind_c}:{k}"}}),
                      json.dumps(self._claim_doc(kind_c, self._lease(), data))]
        for key in keys:
            lines += [json.dumps({"update": {"_index": self.index, "_id": f"{kind}:{key}"}}),
                      json.dumps({"doc": {"state": state}})]
        if not lines:
            return
        bad = [i for i in self._bulk(lines) for op in i.values() if op.get("status") not in (200, 201, 409)]
        if bad:
            raise EsError(500, bad[:3])

    def expired(self, kind: str, size: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """Claims of ``kind`` still ``claimed`` whose lease ran out, taken over by this member:
        (key, data) for each one this member won."""
        self._ensure()
        query = {"size": size, "seq_no_primary_term": True, "query": {"bool": {"filter": [
            {"term": {"kind": kind}}, {"term": {"state": CLAIMED}},
            {"range": {"lease_until": {"lt": int(self.now() * 1000)}}}]}}}
        hits = self.http.request("POST", f"/{self.index}/_search", query)["hits"]["hits"]
        out = []
        for h in hits:
            if self._judge(h["_id"], h) is Verdict.MINE:
                out.append((h["_id"].partition(":")[2], h["_source"].get("data") or {}))
        return out
