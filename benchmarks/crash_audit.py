"""The kill -9 audit test, long: thousands of SIGKILLs of real service processes.

    python benchmarks/crash_audit.py [--kills 1000] [--loops 60]
        [--clients kafka-python,confluent-kafka,aiokafka,pika,pika-select,pika-asyncio]   (also: pika-tornado)

Runs ``tests/audit/crash_harness.run_scenarios`` (what ``tests/audit/test_kill9.py``
runs with 3 crash-loop rounds) round-robin over the clients, ``--loops`` crash-loop
rounds per run (each consumer lives 0.3 to 1 s), until ``--kills`` processes were
killed with SIGKILL under the library's default settings, and judges each run's
``commerce-observe audit`` against what the processes said they did: every certain
duplicate and loss must be found, and nothing reported that their account cannot
explain. Prints one line per run and the totals; exit status 1 if anything was
missed or false. Needs the test bed (``COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP``,
``COMMERCE_OBSERVE_TEST_RABBITMQ_URL``) and runs from the repository root.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.audit.crash_harness import acked_in_trail, audit, judge, run_scenarios  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--loops", type=int, default=60)
    parser.add_argument("--clients", default="kafka-python,confluent-kafka,aiokafka,pika,pika-select,pika-asyncio")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    bootstrap = os.environ.get("COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    amqp = os.environ.get("COMMERCE_OBSERVE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    rng = random.Random(args.seed)
    clients = args.clients.split(",")
    kills = dups = losses = ambiguous = missed = false = runs = aborted = 0
    start = time.monotonic()
    while kills < args.kills:
        client = clients[runs % len(clients)]
        workdir = Path(tempfile.mkdtemp(prefix=f"crash-{client}-"))
        runs += 1
        try:
            truth, _topic, group, source = run_scenarios(client, amqp if client.startswith("pika") else bootstrap, workdir,
                                                         loops=args.loops, rng=rng, audit_bootstrap=bootstrap)
        except AssertionError as exc:  # the shared broker went away, a client never started: not a verdict
            aborted += 1
            print(f"run {runs:3d} {client:16} aborted, not counted: {exc}", flush=True)
            continue
        verdict = judge(audit(source), truth, group, acked_in_trail(source))
        kills += truth.kills
        dups, losses, ambiguous = dups + verdict.duplicates, losses + verdict.losses, ambiguous + verdict.ambiguous
        missed, false = missed + len(verdict.missed), false + len(verdict.false)
        print(f"run {runs:3d} {client:16} kills {truth.kills:4d}  {verdict}  (total kills {kills}, "
              f"{time.monotonic() - start:.0f} s)", flush=True)
        for kind, eid in verdict.missed[:5] + verdict.false[:5]:
            print(f"    {kind} {eid}", flush=True)
    print(f"TOTAL {runs - aborted} runs ({aborted} aborted), {kills} kills: duplicates found {dups}, losses found {losses}, ambiguous handlings "
          f"{ambiguous}, missed {missed}, false findings {false}")
    return 1 if missed or false else 0


if __name__ == "__main__":
    sys.exit(main())
