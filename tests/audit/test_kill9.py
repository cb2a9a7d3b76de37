"""kill -9 of real service processes, every client, default settings: the audit trail
survives the crash it has to explain.

For each client, one topic (or queue) and one consumer group go through, in order:
a producer killed right after its sends were acknowledged; a consumer killed right
after a commit; one that commits before handling (losses are born; Kafka clients),
one killed right after handling a batch it had not committed (duplicates are born);
a crash loop of consumers living 0.3 to 1 s (with a second producer killed after
its acks in the middle); a last consumer that drains the rest, killed too. Then ``commerce-observe audit`` must report every duplicate and
every loss the processes' own account proves, and nothing they cannot explain
(``crash_harness.judge``). ``benchmarks/crash_audit.py`` runs the same over
thousands of kills.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

from tests.audit.crash_harness import Child, Truth, audit, child_env, judge
from tests.support import kafka_clients

N = 100
PARTITIONS = 3


def run_scenarios(client: str, address: str, workdir: Path, *, loops: int, rng: random.Random,
                  audit_bootstrap: str | None) -> tuple[Truth, str, str, list[str]]:
    """Produce, crash, drain; returns the truth, the topic, the group and the audit source."""
    tag = uuid.uuid4().hex[:8]
    topic, group, audit_topic = f"crash-{tag}", f"g-{tag}", f"crash-audit-{tag}"
    if client != "pika":
        kafka_clients.create_topic(address, topic, PARTITIONS)
    env = child_env(audit_topic, f"crash-{client}")
    truth = Truth()

    def produce(part: str) -> None:
        producer = Child(workdir, env, "produce", client, address, topic, f"{tag}{part}", str(N), "hold")
        assert producer.wait_for("ACKED", 60), f"{client} producer: no ACKED ({producer.lines})"
        producer.kill9()  # right after its acks
        truth.kills += 1
        truth.acked.update(f"{tag}{part}-{i:05d}" for i in range(N))

    def consumer(mode: str) -> Child:
        child = Child(workdir, env, "consume", client, address, topic, group, str(PARTITIONS), mode)
        assert child.wait_for("READY", 60), f"{client} consumer did not start"
        return child

    produce("a")
    modes = ["commit", "nocommit"] if client == "pika" else ["commit", "atmostonce", "nocommit"]
    for mode in modes:  # on fresh messages: the commit before handling loses unhandled ones
        child = consumer(mode)
        child.wait_for("W" if mode == "nocommit" else "C", 30)
        truth.take(child.kill9())  # right after the commit / the commit before handling / the handling
        truth.kills += 1
    for round_ in range(loops):  # crash loop
        if round_ == loops // 2:
            produce("b")
        child = consumer("auto")
        child.wait_for("never", rng.uniform(0.3, 1.0))
        truth.take(child.kill9())
        truth.kills += 1
    drain = consumer("auto")
    seen = 0
    while True:  # until no new line for 3 s: everything left was handled
        drain.wait_for("never", 3.0)
        if len(drain.lines) == seen:
            break
        seen = len(drain.lines)
    truth.take(drain.kill9())
    truth.kills += 1
    janitor_env = dict(env, COMMERCE_OBSERVE_AUDIT_SINK="sqlite") if client == "pika" else \
        dict(env, COMMERCE_OBSERVE_AUDIT_BOOTSTRAP=audit_bootstrap or address)
    janitor = Child(workdir, janitor_env, "replay")
    assert janitor.wait_for("REPLAYED", 60)
    janitor.finish()
    source = (["--sqlite", str(workdir / "commerce-observe-audit.sqlite")] if client == "pika"
              else ["--bootstrap", address, "--topic", audit_topic])
    return truth, topic, topic if client == "pika" else group, source  # a RabbitMQ queue is its own group


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka", "aiokafka", "pika"])
def test_kill9_every_duplicate_and_loss_found_nothing_false(client: str, tmp_path: Path, kafka_bootstrap: str,
                                                          rabbitmq_url: str) -> None:
    address = rabbitmq_url if client == "pika" else kafka_bootstrap
    truth, _topic, group, source = run_scenarios(client, address, tmp_path, loops=3, rng=random.Random(11),
                                                 audit_bootstrap=kafka_bootstrap)
    report = audit(source)
    verdict = judge(report, truth, group)
    print(client, truth.kills, "kills:", verdict)
    assert not verdict.missed and not verdict.false, verdict
    assert verdict.duplicates > 0, "the handled-but-not-committed batch came back: a duplicate was born"
    if client != "pika":
        assert verdict.losses > 0, "the batch committed before its handling was lost"
