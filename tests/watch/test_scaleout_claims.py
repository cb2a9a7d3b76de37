"""``watch --scale-out``: what a member killed between claim and send left is finished by another one.

A member registers each notification as a claim that carries it (claim, send, mark sent). The
claim of a member SIGKILLed before the mark stays ``claimed`` until its lease runs out; another
member then takes it over and sends the same notification, with the same id, once. A finding
is claimed before it goes to the audit rules and marked ``done`` with the registration of its
notifications; a finding claimed by a member killed in between is alerted on by the member
that finds it again, once the lease is over. Here the dead member's claims are written as it
would have left them, and one live member, on the real Kafka and Elasticsearch, must finish
them.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import kafka

from commerce_observe.monitor.alerts.model import Alert, Kind, Notification
from commerce_observe.monitor.alerts.render import payload
from commerce_observe.monitor.watch.sharing import DONE, SENT, Claims, Verdict
from commerce_observe.store.es_store import ElasticsearchStore
from tests.alerts.receivers import HttpReceiver
from tests.support.kafka_clients import create_topic
from tests.support.waiting import wait_for
from tests.watch.runner import WatchProcess, firing, rule_file
from tests.watch.conftest import iso
from tests.watch.shop import MINUTE, Shop, live_start
from tests.watch.test_scaleout import PARTITIONS, KeyedAudit
from tests.watch.test_store_outage import Searchable


def delivered(w: WatchProcess, receiver: HttpReceiver, what: str, arrived: Callable[[], object]) -> list[dict[str, Any]]:
    """Wait for ``what`` at the receiver and for the member to count it sent, stop the member
    (SIGTERM, a clean exit); everything the receiver got."""
    try:
        wait_for(what, arrived, timeout=60, describe=lambda _: w.stderr)
        w.wait_metric("commerce_observe_watch_alerts_sent_total", 1)
    finally:
        assert w.stop(signal.SIGTERM) == 0, w.stderr
    return receiver.bodies()


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
        bodies = delivered(w, receiver, "the dead member's notification", receiver.bodies)
    finally:
        receiver.stop()
    assert [b["id"] for b in bodies] == [n.id]
    assert bodies[0]["alerts"][0]["key"] == alert.key
    held = store.http.request("GET", f"/{index}/_doc/notification%3A{n.id}%3Awebhook")["_source"]
    assert held["state"] == SENT
    assert held["member"] == (tmp_path / "state" / "member-id").read_text().strip()
    store.close()


def test_a_finding_a_dead_member_claimed_and_did_not_alert_on_is_alerted_once(
        kafka_bootstrap: str, elasticsearch_url: str, unique_topic: str, tmp_path: Path) -> None:
    audit = f"{unique_topic}-audit"
    create_topic(kafka_bootstrap, audit, PARTITIONS)
    stream = f"logs-commerce.events-c{uuid.uuid4().hex[:10]}"
    store = ElasticsearchStore(elasticsearch_url, data_stream=stream)
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
    shop = Shop(docs=Searchable(store), lines=KeyedAudit(producer, audit), seed=11)
    t1 = live_start(time.time_ns(), 5)  # ahead of the wall clock, and less than Kafka's hour ahead
    receiver = HttpReceiver().start()
    try:
        w = WatchProcess("--elasticsearch", elasticsearch_url, "--data-stream", stream, "--bootstrap", kafka_bootstrap,
                         "--audit-topic", audit, "--group-id", f"w-{unique_topic}", "--scale-out",
                         "--group", "billing:orders", "--bucket", "1m", "--grace", "5s", "--lateness", "1s",
                         "--rules", rule_file(str(tmp_path / "rules.json"), receiver.url),
                         "--state", str(tmp_path / "state"), "--start", iso(t1))
        try:
            wait_for("the member to hold its shards", lambda: w.metrics().get("commerce_observe_watch_shards", 0),
                     timeout=60, describe=lambda _: w.stderr)
            taken, alerted = "e-00000001", "e-00000002"  # the first two orders the shop writes: lost
            index = f"commerce-observe-claims-{stream}"
            # killed after claiming this finding, before registering the alert on it: its lease runs
            # out a few seconds after the live member finds the finding again (which waits for it)
            dead = Claims(store.http, index, "a-member-that-died", lease_s=8.0)
            assert dead.claim("finding", f"f:LOST:{taken}:billing") is Verdict.MINE
            # this one the dead member had alerted on: done, never again
            assert dead.claim("finding", f"f:LOST:{alerted}:billing") is Verdict.MINE
            dead.finish("finding", [f"f:LOST:{alerted}:billing"], DONE)
            shop.minute(t1, lose=3)  # events 0 and 2 are orders (1 is the first one's payment)
            assert shop.lost == [taken, alerted]
            for m in range(1, 3):
                shop.minute(t1 + m * MINUTE)
        except BaseException:
            w.stop(signal.SIGKILL)
            raise
        bodies = delivered(w, receiver, "the lost-event alert", lambda: firing(receiver.bodies()).get("lost-events"))
    finally:
        receiver.stop()
        producer.close()
    assert f"finding f:LOST:{taken}:billing: taken over" in w.stderr
    assert firing(bodies) == {"lost-events": 1}
    details = " ".join(d for b in bodies for a in b["alerts"] for d in a["details"])
    assert taken in details and alerted not in details, details
    store.close()

