"""``watch --scale-out``: what a member killed between claim and send left is finished by another one.

A member registers each notification as a claim that carries it (claim, send, mark sent). The
claim of a member SIGKILLed before the mark stays ``claimed`` until its lease runs out; another
member then takes it over and sends the same notification, with the same id, once. Here the
dead member's claim is written as it would have left it (its lease already over), and one
live member, on the real Kafka and Elasticsearch, must deliver it.
"""

from __future__ import annotations

import signal
import uuid
from datetime import datetime, timezone
from pathlib import Path

from commerce_observe.monitor.alerts.model import Alert, Kind, Notification
from commerce_observe.monitor.alerts.render import payload
from commerce_observe.monitor.watch.sharing import SENT, Claims, Verdict
from commerce_observe.store.es_store import ElasticsearchStore
from tests.alerts.receivers import HttpReceiver
from tests.support.kafka_clients import create_topic
from tests.support.waiting import wait_for
from tests.watch.runner import WatchProcess, rule_file


def test_a_dead_members_unsent_claim_is_sent_once(kafka_bootstrap: str, elasticsearch_url: str,
                                                  unique_topic: str, tmp_path: Path) -> None:
    audit = f"{unique_topic}-audit"
    create_topic(kafka_bootstrap, audit, 2)
    stream = f"logs-commerce.events-c{uuid.uuid4().hex[:10]}"
    store = ElasticsearchStore(elasticsearch_url, data_stream=stream)
    at = datetime(2026, 12, 1, 10, 1, tzinfo=timezone.utc)
    alert = Alert("lost-events|orders", "lost-events", "events lost", "critical", (("topic", "orders"),),
                  datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc), "1 event", 1.0)
    n = Notification(Kind.FIRING, "events lost", (alert,), at)
    index = f"commerce-observe-claims-{stream}"
    dead = Claims(store.http, index, "a-member-that-died", lease_s=-1.0)  # its lease is over already
    assert dead.claim("notification", f"{n.id}:webhook", payload(n)) is Verdict.MINE
    finished = Claims(store.http, index, "a-member-that-finished", lease_s=-1.0)
    done = Notification(Kind.RESOLVED, "events lost", (alert.resolved(at),), at)
    assert finished.claim("notification", f"{done.id}:webhook", payload(done)) is Verdict.MINE
    finished.finish("notification", [f"{done.id}:webhook"], SENT)  # sent and marked: never again

    receiver = HttpReceiver().start()
    try:
        w = WatchProcess("--elasticsearch", elasticsearch_url, "--data-stream", stream, "--bootstrap", kafka_bootstrap,
                         "--audit-topic", audit, "--group-id", f"w-{unique_topic}", "--scale-out",
                         "--bucket", "1m", "--rules", rule_file(str(tmp_path / "rules.json"), receiver.url),
                         "--state", str(tmp_path / "state"), "--history-days", "1")
        try:
            wait_for("the dead member's notification", lambda: receiver.bodies(), timeout=60,
                     describe=lambda _: w.stderr)
            w.wait_metric("commerce_observe_watch_alerts_sent_total", 1)
        finally:
            assert w.stop(signal.SIGTERM) == 0, w.stderr
        bodies = receiver.bodies()
    finally:
        receiver.stop()
    assert [b["id"] for b in bodies] == [n.id]
    assert bodies[0]["alerts"][0]["key"] == alert.key
    held = store.http.request("GET", f"/{index}/_doc/notification%3A{n.id}%3Awebhook")["_source"]
    assert held["state"] == SENT
    assert held["member"] == (tmp_path / "state" / "member-id").read_text().strip()
    store.close()
