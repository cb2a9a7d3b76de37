"""Several watches in one consumer group: claims that keep a finding's alert and a notification single.

Scale-out uses the engines already there, not a cluster of our own:

* the audit topic is keyed by event id, so the group's partition assignment already
  splits the auditor's work, and a rebalance moves it;
* every member reads the same closed series buckets from the store and scores every
  series (one vectorised call per bucket), so its model never needs handing over and
  a taken-over member leaves no bucket unjudged; members produce the same series
  notifications with the same ids, and the claim below lets one of them deliver;
* what must be decided once across members is claimed in an Elasticsearch index with
  ``op_type=create`` (a 409 means another member claimed it): a finding before it is
  handed to the audit rules (a partition that moved is read again by its new owner,
  whose auditor finds the same findings), and a notification before it is delivered.
  A claim names its member (an id kept in the state directory), so a member that
  restarts from its own checkpoint still delivers what it had claimed.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote
from pathlib import Path

from commerce_observe.store.es_client import EsError, EsHttp

MEMBER_FILE = "member-id"


def member_id(state_dir: str) -> str:
    """This member's name, made once and kept with its checkpoint."""
    p = Path(state_dir) / MEMBER_FILE
    if p.exists():
        return p.read_text().strip()
    name = uuid.uuid4().hex
    p.write_text(name)
    return name


class Claims:
    """First-come claims in one Elasticsearch index (``commerce-observe-claims-<data stream>``)."""

    def __init__(self, http: EsHttp, index: str, member: str) -> None:
        self.http, self.index, self.member = http, index, member
        self.refused = 0  # claims another member held

    def claim(self, kind: str, key: str) -> bool:
        """True when ``kind``/``key`` is now ours (or was already ours), False when another member's."""
        doc_id = quote(f"{kind}:{key}", safe="")
        try:
            self.http.request("PUT", f"/{self.index}/_create/{doc_id}", {"member": self.member}, ok=(200, 201))
            return True
        except EsError as exc:
            if exc.status != 409:
                raise
        held = self.http.request("GET", f"/{self.index}/_doc/{doc_id}")
        mine = bool(held.get("_source", {}).get("member") == self.member)
        if not mine:
            self.refused += 1
        return mine
