"""Runs crash_child processes, kills them with SIGKILL, keeps the truth they told,
and judges ``commerce-observe audit``'s findings against it (tests and benchmarks).

Truth per event id: how many handlings certainly ended (``E``), and how many were cut
short between ``B`` and ``E`` (ambiguous: the HANDLED record may or may not have
been reported before the kill). The judgement:

* missed - a certain DUPLICATE (two ended handlings) or a certain LOST (acknowledged,
  no handling even begun) that the audit did not report;
* false - a DUPLICATE that fewer than two begun handlings could explain, a LOST with
  an ended handling, or any other finding.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Truth:
    acked: set[str] = field(default_factory=set)
    ended: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)
    kills: int = 0

    def take(self, lines: list[str]) -> None:
        """Fold in what one (dead or finished) child said."""
        begun: Counter[str] = Counter()
        for line in lines:
            kind, _, eid = line.partition(" ")
            if kind == "B":
                begun[eid] += 1
            elif kind == "E":
                self.ended[eid] += 1
                if begun[eid]:
                    begun[eid] -= 1
        self.cut.update(+begun)


class Child:
    """One crash_child process; its stdout lines are collected by a thread."""

    def __init__(self, workdir: Path, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self._seen = threading.Condition()
        with open(workdir / "children.err", "ab") as err:  # what a child said on stderr, for a post-mortem
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.audit.crash_child", *args], cwd=workdir,
                                         env=env, stdout=subprocess.PIPE, stderr=err)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._seen:
                self.lines.append(raw.decode().rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, marker: str, timeout: float) -> bool:
        """Until a line equal to ``marker`` came (True), the child ended or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while marker not in self.lines:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return marker in self.lines
                self._seen.wait(min(left, 0.2))
        return True

    def kill9(self) -> list[str]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.finish()

    def finish(self, timeout: float = 60) -> list[str]:
        self.proc.wait(timeout)
        self._reader.join(timeout)
        return list(self.lines)


def child_env(audit_topic: str, service: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMERCE_OBSERVE_", "OTEL_"))}
    env.update({"PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": service, "COMMERCE_OBSERVE_AUDIT_TOPIC": audit_topic})
    env.update(extra)
    return env


def audit(source: list[str], *extra: str) -> dict[str, Any]:
    """``commerce-observe audit`` over everything, as JSON."""
    from commerce_observe.monitor.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["audit", *source, "--format", "json", "--as-of", "all", "--grace", "5s", "--sla", "1h",
                     "--limit", "100000", *extra])
    assert code in (0, 1), f"audit failed with exit code {code}"
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


@dataclass
class Verdict:
    duplicates: int
    losses: int
    ambiguous: int
    missed: list[tuple[str, str]]
    false: list[tuple[str, str]]

    def __str__(self) -> str:
        return (f"duplicates found {self.duplicates}, losses found {self.losses}, ambiguous handlings "
                f"{self.ambiguous}, missed {len(self.missed)}, false {len(self.false)}")


def acked_in_trail(source: list[str]) -> set[str]:
    """Event ids with an ACKED record in the trail (``source``: the audit command's)."""
    if source[0] == "--sqlite":
        from commerce_observe.agent.audit.sinks import read_sqlite

        batches = read_sqlite(source[1])
    else:
        from commerce_observe.agent.audit.kafka_sink import read_kafka

        batches = read_kafka(source[1], source[3])
    return {line.split(b"\t", 3)[2].decode() for batch in batches for line in batch if line[:1] == b"A"}


def judge(report: dict[str, Any], truth: Truth, group: str, acked: set[str] | None = None) -> Verdict:
    """``acked``: the ids with an ACKED record in the trail; every send the broker
    acknowledged must have one (a killed producer's records survive)."""
    findings = report["findings"]
    dup = {f["event_id"] for f in findings if f["kind"] == "DUPLICATE" and f.get("consumer_group") == group}
    lost = {f["event_id"] for f in findings if f["kind"] == "LOST" and f.get("consumer_group") == group}
    others = [(f["kind"], f["event_id"]) for f in findings
              if f["kind"] not in ("DUPLICATE", "LOST") or f.get("consumer_group") != group]
    certain_dup = {e for e, n in truth.ended.items() if n >= 2}
    certain_lost = {e for e in truth.acked if not truth.ended[e] and not truth.cut[e]}
    missed = [("DUPLICATE", e) for e in sorted(certain_dup - dup)] + [("LOST", e) for e in sorted(certain_lost - lost)]
    if acked is not None:
        missed += [("ACKED record", e) for e in sorted(truth.acked - acked)]
    false = ([("DUPLICATE", e) for e in sorted(dup) if truth.ended[e] + truth.cut[e] < 2]
             + [("LOST", e) for e in sorted(lost) if truth.ended[e] or e not in truth.acked] + others)
    return Verdict(len(dup), len(lost), sum(truth.cut.values()), missed, false)


N = 100
PARTITIONS = 3


class Scenario:
    """One topic (or queue) and consumer group, and the processes run against it."""

    def __init__(self, client: str, address: str, workdir: Path, audit_bootstrap: str | None = None) -> None:
        self.client, self.address, self.workdir = client, address, workdir
        self.tag = tag = uuid.uuid4().hex[:8]
        self.topic, self.group, self.audit_topic = f"crash-{tag}", f"g-{tag}", f"crash-audit-{tag}"
        self.rabbit = client.startswith("pika")
        self.audit_bootstrap = audit_bootstrap
        if not self.rabbit:
            from tests.support import kafka_clients

            kafka_clients.create_topic(address, self.topic, PARTITIONS)
        self.env = child_env(self.audit_topic, f"crash-{client}")
        self.truth = Truth()

    def produce(self, part: str) -> None:
        """N sends, the producer killed right after its acks (Kafka clients: flush() returned)."""
        producer = Child(self.workdir, self.env, "produce", "pika" if self.rabbit else self.client, self.address,
                         self.topic, f"{self.tag}{part}", str(N), "hold")
        if not producer.wait_for("ACKED", 60):
            producer.kill9()
            raise AssertionError(f"{self.client} producer: no ACKED in 60 s ({producer.lines})")
        if self.rabbit:  # no flush() to hook: the stated bound, 0.2 s after the confirms (5x that)
            producer.wait_for("never", 1.0)
        producer.kill9()
        self.truth.kills += 1
        self.truth.acked.update(f"{self.tag}{part}-{i:05d}" for i in range(N))

    def consumer(self, mode: str, client: str | None = None) -> Child:
        child = Child(self.workdir, self.env, "consume", client or self.client, self.address, self.topic, self.group,
                      str(PARTITIONS), mode)
        if not child.wait_for("READY", 60):
            child.kill9()
            raise AssertionError(f"{client or self.client} consumer did not start in 60 s")
        return child

    def kill(self, child: Child) -> None:
        self.truth.take(child.kill9())
        self.truth.kills += 1

    def replay(self) -> list[str]:
        """A last process replays what the killed ones left in the spool; returns the audit source."""
        env = dict(self.env, COMMERCE_OBSERVE_AUDIT_SINK="sqlite") if self.rabbit else \
            dict(self.env, COMMERCE_OBSERVE_AUDIT_BOOTSTRAP=self.audit_bootstrap or self.address)
        janitor = Child(self.workdir, env, "replay")
        if not janitor.wait_for("REPLAYED", 60):
            janitor.kill9()
            raise AssertionError("the replaying process did not finish in 60 s")
        janitor.finish()
        return (["--sqlite", str(self.workdir / "commerce-observe-audit.sqlite")] if self.rabbit
                else ["--bootstrap", self.address, "--topic", self.audit_topic])

    @property
    def audited_group(self) -> str:
        return self.topic if self.rabbit else self.group  # a RabbitMQ queue is its own group


def run_scenarios(client: str, address: str, workdir: Path, *, loops: int, rng: random.Random,
                  audit_bootstrap: str | None) -> tuple[Truth, str, str, list[str]]:
    """Produce, crash, drain; returns the truth, the topic, the group and the audit source."""
    sc = Scenario(client, address, workdir, audit_bootstrap)
    sc.produce("a")
    modes = ["commit", "nocommit"] if sc.rabbit else ["commit", "atmostonce", "nocommit"]
    for mode in modes:  # on fresh messages: the commit before handling loses unhandled ones
        child = sc.consumer(mode)
        child.wait_for("W" if mode == "nocommit" else "C", 30)
        sc.kill(child)  # right after the commit / the commit before handling / the handling
    for round_ in range(loops):  # crash loop
        if round_ == loops // 2:
            sc.produce("b")
        child = sc.consumer("auto")
        child.wait_for("never", rng.uniform(0.3, 1.0))
        sc.kill(child)
    drain = sc.consumer("auto")
    seen = 0
    while True:  # until no new line for 3 s: everything left was handled
        drain.wait_for("never", 3.0)
        if len(drain.lines) == seen:
            break
        seen = len(drain.lines)
    sc.kill(drain)
    return sc.truth, sc.topic, sc.audited_group, sc.replay()


def run_ack_kills(clients: list[str], address: str, workdir: Path) -> tuple[Truth, str, list[str]]:
    """RabbitMQ, short: on one queue, for each client (pika adapter) a consumer killed
    right after an ack went out and one killed right after handling a message it did
    not ack; then a consumer of the first client takes the rest and is killed once
    every message was handled. Returns the truth, the group and the audit source."""
    sc = Scenario(clients[0], address, workdir)
    sc.produce("a")
    for client in clients:
        for mode, marker in (("commit", "C"), ("nocommit", "W")):
            child = sc.consumer(mode, client)
            child.wait_for(marker, 30)
            sc.kill(child)
    drain = sc.consumer("auto")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ended = set(sc.truth.ended) | {line[2:] for line in drain.lines if line.startswith("E ")}
        if ended >= sc.truth.acked:
            break
        drain.wait_for("never", 0.1)
    sc.kill(drain)
    return sc.truth, sc.audited_group, sc.replay()
