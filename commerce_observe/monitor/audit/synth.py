"""Synthetic audit streams with known faults, for tests, the benchmark and demos.

A realistic mix: three producing services numbering their events per topic, two
topics with two or three consumer groups each, handler retries, and the audit
records of different events interleaved as they are when read back from a
partitioned audit topic (arrival jitter). Injected faults are returned by event id
so a test can demand that every one is found and nothing else is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.messaging.facts import Stage, message_fact

TOPOLOGY: dict[str, tuple[str, ...]] = {
    "orders": ("billing", "shipping", "analytics"),
    "payments": ("ledger", "notifications"),
}
TYPES = {"orders": ("order.created", "order.paid", "order.shipped"), "payments": ("payment.authorized", "payment.captured")}
SOURCES = ("checkout", "payments-api", "backoffice")
FAULTS = ("lost", "duplicate", "undelivered", "late", "gap")


@dataclass
class Expected:
    """What was injected: kind -> set of (event_id, group) ('' for producer-side kinds)."""

    faults: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: {k: set() for k in FAULTS})


def _fact(stage: Stage, t: int, eid: str, topic: str, etype: str, src: str, seq: int, trace: str, span: str, **kw: object) -> bytes:
    return encode(message_fact(stage=stage, system="kafka", destination=topic, event_id=eid, event_type=etype,
                               source=src, sequence=seq, trace_id=trace, span_id=span, time_ns=t,
                               **kw))  # type: ignore[arg-type]


def generate(
    n_events: int,
    *,
    seed: int = 7,
    start_ns: int = 1_750_000_000_000_000_000,
    rate_per_s: float = 2000.0,
    fault_rate: float = 0.0,
    jitter_ms: float = 50.0,
    sla_ms: float = 5000.0,
) -> tuple[list[bytes], Expected]:
    """``n_events`` events' audit lines in arrival order, and the faults injected."""
    rnd = random.Random(seed)
    expected = Expected()
    seqs: dict[tuple[str, str], int] = {}
    out: list[tuple[int, bytes]] = []
    step = int(1e9 / rate_per_s)
    jitter = int(jitter_ms * 1e6)
    topics = tuple(TOPOLOGY)
    for i in range(n_events):
        t0 = start_ns + i * step
        topic = topics[i % 5 == 4]  # 80% orders, 20% payments
        src = SOURCES[i % len(SOURCES)]
        seq = seqs.get((src, topic), 0) + 1
        seqs[(src, topic)] = seq
        eid = "%016x-%04x" % (rnd.getrandbits(64), i & 0xFFFF)
        trace = "%032x" % rnd.getrandbits(128)
        etype = TYPES[topic][i % len(TYPES[topic])]
        ids = {"order_id": f"ord-{i // 3}"} if topic == "orders" else {"payment_id": f"pay-{i}"}
        fault = rnd.choice(FAULTS) if fault_rate and rnd.random() < fault_rate else None
        span = "%016x" % rnd.getrandbits(64)

        def emit(t: int, line: bytes) -> None:
            out.append((t + rnd.randrange(jitter + 1), line))

        if fault == "gap":
            expected.faults["gap"].add((f"{src}\t{topic}\t{seq}", ""))
            continue
        emit(t0, _fact(Stage.PUBLISHED, t0, eid, topic, etype, src, seq, trace, span, **ids))
        if fault == "undelivered":
            expected.faults["undelivered"].add((eid, ""))
            emit(t0 + 30_000_000, _fact(Stage.SEND_FAILED, t0 + 30_000_000, eid, topic, etype, src, seq, trace, span, error="KafkaTimeoutError", **ids))
            continue
        ack = t0 + rnd.randrange(1_000_000, 8_000_000)
        emit(ack, _fact(Stage.ACKED, ack, eid, topic, etype, src, seq, trace, span, partition=i % 6, offset=i, **ids))
        groups = TOPOLOGY[topic]
        victim = groups[rnd.randrange(len(groups))]
        for grp in groups:
            if fault == "lost" and grp == victim:
                expected.faults["lost"].add((eid, grp))
                continue
            h = ack + rnd.randrange(2_000_000, 40_000_000)
            if fault == "late" and grp == victim:
                h = t0 + int(sla_ms * 1e6) + rnd.randrange(1_000_000_000)
                expected.faults["late"].add((eid, grp))
            elif rnd.random() < 0.01:  # a handler that failed once and succeeded on retry
                emit(h, _fact(Stage.HANDLE_FAILED, h, eid, topic, etype, src, seq, trace, "%016x" % rnd.getrandbits(64),
                              consumer_group=grp, partition=i % 6, offset=i, published_ns=t0, error="TimeoutError"))
                h += 5_000_000
            # as in the product: a consumer's records carry no order or payment id (the producer's do)
            kw = dict(consumer_group=grp, partition=i % 6, offset=i, published_ns=t0)
            emit(h, _fact(Stage.HANDLED, h, eid, topic, etype, src, seq, trace, "%016x" % rnd.getrandbits(64), **kw))
            if fault == "duplicate" and grp == victim:
                expected.faults["duplicate"].add((eid, grp))
                h2 = h + rnd.randrange(100_000_000, 900_000_000)
                emit(h2, _fact(Stage.HANDLED, h2, eid, topic, etype, src, seq, trace, "%016x" % rnd.getrandbits(64), **kw))
    out.sort(key=lambda pair: pair[0])
    return [line for _, line in out], expected
