"""kill -9 of real service processes, every client, default settings: the audit trail
survives the crash it has to explain.

For each client, one topic (or queue) and one consumer group go through, in order:
a producer killed right after its sends were acknowledged; a consumer killed right
after a commit; one that commits before handling (losses are born; Kafka clients),
one killed right after handling a batch it had not committed (duplicates are born);
a crash loop of consumers living 0.3 to 1 s (with a second producer killed after
its acks in the middle); a last consumer that drains the rest, killed too. Then
``commerce-observe audit`` must report every duplicate and every loss the processes'
own account proves, and nothing they cannot explain (``crash_harness.judge``). ``benchmarks/crash_audit.py`` runs the same over
thousands of kills.

pika's asynchronous adapters (``SelectConnection``, ``AsyncioConnection``) get a short
version on one queue: for each, a consumer killed right after an ack went out and one
killed right after handling a message it had not acked, then a consumer that takes
the rest (the crash loops, and ``TornadoConnection``, run in the benchmark:
``--clients pika-select,pika-asyncio,pika-tornado``).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.audit.crash_harness import acked_in_trail, audit, judge, run_ack_kills, run_scenarios


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka", "aiokafka", "pika"])
def test_kill9_every_duplicate_and_loss_found_nothing_false(client: str, tmp_path: Path, kafka_bootstrap: str,
                                                          rabbitmq_url: str) -> None:
    address = rabbitmq_url if client == "pika" else kafka_bootstrap
    truth, _topic, group, source = run_scenarios(client, address, tmp_path, loops=3, rng=random.Random(11),
                                                 audit_bootstrap=kafka_bootstrap)
    report = audit(source)
    verdict = judge(report, truth, group, acked_in_trail(source))
    print(client, truth.kills, "kills:", verdict)
    assert not verdict.missed and not verdict.false, verdict
    assert verdict.duplicates > 0, "the handled-but-not-committed batch came back: a duplicate was born"
    if client != "pika":
        assert verdict.losses > 0, "the batch committed before its handling was lost"


def test_kill9_pika_async_adapters_after_ack_and_after_handling(tmp_path: Path, rabbitmq_url: str) -> None:
    adapters = ["pika-select", "pika-asyncio"]  # pika-tornado: in the benchmark (same code path, ~3 s more here)
    truth, group, source = run_ack_kills(adapters, rabbitmq_url, tmp_path)
    verdict = judge(audit(source), truth, group, acked_in_trail(source))
    print("pika async adapters", truth.kills, "kills:", verdict)
    assert not verdict.missed and not verdict.false, verdict
    assert verdict.duplicates >= len(adapters), "each adapter's handled, unacked message came back"
