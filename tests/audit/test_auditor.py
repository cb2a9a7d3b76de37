"""The auditor's reconciliation: every finding kind, by event id, and no false positives."""

from __future__ import annotations

import random
import zlib

from hypothesis import given, settings, strategies as st

from commerce_observe.monitor.audit.auditor import Auditor
from commerce_observe.monitor.audit.findings import Finding, Kind
from commerce_observe.monitor.audit.synth import generate

from .helpers import S, Ev

END = 10_000 * S  # far enough after everything to resolve it all


def run(lines: list[bytes], grace: float = 10.0, sla: float = 5.0, **kw: object) -> list[Finding]:
    a = Auditor(grace_s=grace, sla_s=sla, **kw)  # type: ignore[arg-type]
    a.feed(lines)
    return a.finish(a.watermark + END)


def kinds(findings: list[Finding]) -> set[tuple[str, str | None, str | None]]:
    return {(f.kind.value, f.event_id, f.consumer_group) for f in findings}


def test_clean_events_report_nothing() -> None:
    lines = [line for i in range(50) for line in Ev(f"e{i}", seq=i + 1, at=i * 0.1).ok("billing", "shipping")]
    assert run(lines) == []


def test_lost_names_event_group_order_and_producer_trace() -> None:
    ok, lost = Ev("ok1", seq=1), Ev("lost1", seq=2, order_id="ord-77")
    findings = run(ok.ok("billing", "shipping") + [lost.published(), lost.acked(), lost.handled("shipping")])
    assert kinds(findings) == {("LOST", "lost1", "billing")}
    (f,) = findings
    assert f.order_id == "ord-77" and f.event_type == "order.created" and f.trace_id == lost.trace
    assert f.destination == "orders" and f.sequence == 2


def test_lost_includes_failed_handling_attempts() -> None:
    ok, e = Ev("ok1", seq=1), Ev("poison", seq=2)
    findings = run(ok.ok("billing") + [e.published(), e.acked(), e.handle_failed("billing")])
    (f,) = findings
    assert f.kind is Kind.LOST and [h.stage for h in f.handlings] == ["handle_failed"]
    assert f.handlings[0].error == "boom"


def test_undelivered_for_send_failure_and_for_missing_ack() -> None:
    ok, failed, unacked = Ev("ok", seq=1), Ev("failed", seq=2), Ev("unacked", seq=3)
    findings = run(ok.ok("billing") + [failed.published(), failed.send_failed(), unacked.published()])
    assert kinds(findings) == {("UNDELIVERED", "failed", None), ("UNDELIVERED", "unacked", None)}
    assert {f.error for f in findings} == {"KafkaTimeoutError: 30s", None}


def test_retry_that_succeeds_is_not_undelivered() -> None:
    e = Ev("retried", seq=1)
    assert run([e.published(), e.send_failed(), e.acked(0.5), e.handled("billing", 0.6)]) == []


def test_duplicate_lists_every_handling_span() -> None:
    e = Ev("dup", seq=1)
    findings = run(e.ok("billing") + [e.handled("billing", 3.0, span="d" * 16)])
    (f,) = findings
    assert (f.kind, f.event_id, f.consumer_group) == (Kind.DUPLICATE, "dup", "billing")
    assert [h.span_id for h in f.handlings] == ["0" * 16, "d" * 16]


def test_identical_records_replayed_are_not_duplicates() -> None:
    lines = Ev("e", seq=1).ok("billing")
    assert run(lines + lines[::-1]) == []


def test_late_beyond_sla_and_without_published_header() -> None:
    a, b = Ev("slow", seq=1), Ev("nohdr", seq=2)
    lines = [a.published(), a.acked(), a.handled("billing", 7.5), b.published(), b.acked(), b.handled("billing", 6.0, pub=False)]
    findings = run(lines)
    assert kinds(findings) == {("LATE", "slow", "billing"), ("LATE", "nohdr", "billing")}
    assert sorted(round(f.latency_ms or 0) for f in findings) == [6000, 7500]


def test_handling_after_grace_turns_lost_into_late() -> None:
    e = Ev("e", seq=1)
    later = Ev("x", seq=2, at=30.0)
    lines = [e.published(), e.acked(), *later.ok("billing"), e.handled("billing", 31.0)]
    findings = run([*Ev("w", seq=3).ok("billing"), *lines], grace=10.0)
    assert kinds(findings) == {("LATE", "e", "billing")}


def test_gap_is_found_and_late_arrival_retracts_it() -> None:
    evs = [Ev(f"e{i}", seq=i, at=i * 0.1) for i in range(1, 8)]
    lines = [line for e in evs if e.seq not in (3, 4) for line in e.ok("billing")]
    (f,) = run(lines)
    assert (f.kind, f.source, f.destination, f.sequence, f.sequence_end) == (Kind.GAP, "checkout", "orders", 3, 4)
    late_three = Ev("e3", seq=3, at=100.0).ok("billing")
    far = [line for e in (Ev("far", seq=8, at=200.0),) for line in e.ok("billing")]
    findings = run(lines + far + late_three)
    assert [(f.kind, f.sequence, f.sequence_end) for f in findings] == [(Kind.GAP, 4, 4)]


def test_memory_follows_grace_window_not_history() -> None:
    peaks = []
    for n in (2_000, 8_000, 32_000):
        lines, _ = generate(n, rate_per_s=1000.0)
        a = Auditor(grace_s=1.0, sla_s=5.0)
        for i in range(0, len(lines), 500):
            a.feed(lines[i : i + 500])
        assert a.finish(a.watermark + END) == []
        peaks.append(a.peak_open)
    assert max(peaks) < 1.3 * min(peaks), peaks  # flat: ~ rate x grace, whatever the history


def test_eviction_resolves_after_grace_only() -> None:
    e = Ev("e", seq=1)
    a = Auditor(grace_s=10.0, sla_s=5.0)
    a.feed([e.published(), e.acked()])
    a.advance(e.at + 9 * S)
    assert a.finish(e.at + 9 * S) == [] and a.pending_at_finish == 1
    a2 = Auditor(grace_s=10.0, sla_s=5.0)
    a2.feed(Ev("w", seq=1).ok("billing") + [e.published(), e.acked()])
    assert kinds(a2.finish(e.at + 11 * S)) == {("LOST", "e", "billing")}


def test_group_that_starts_late_is_not_blamed_for_earlier_events() -> None:
    early = [line for i in range(5) for line in Ev(f"a{i}", seq=i + 1, at=i).ok("billing")]
    late = [line for i in range(5, 10) for line in Ev(f"a{i}", seq=i + 1, at=100 + i).ok("billing", "audit-log")]
    assert run(early + late, grace=10.0) == []


def test_burst_before_a_groups_first_handling_is_still_checked() -> None:
    burst = [Ev(f"b{i}", seq=i + 1, at=i * 0.001) for i in range(6)]
    lines = [line for e in burst for line in (e.published(), e.acked())]
    lines += [line for e in burst[3:] for line in (e.handled("billing", 2.0),)]  # b0..b2 were lost
    assert kinds(run(lines, grace=10.0)) == {("LOST", f"b{i}", "billing") for i in range(3)}


def test_groups_only_expected_on_destinations_they_consume() -> None:
    o = [line for i in range(3) for line in Ev(f"o{i}", seq=i + 1, at=i).ok("billing")]
    p = [line for i in range(3) for line in Ev(f"p{i}", seq=i + 1, topic="payments", at=i).ok("ledger")]
    assert run(o + p) == []


def test_explicit_group_mapping_catches_a_group_that_handled_nothing() -> None:
    lines = [line for i in range(3) for line in Ev(f"o{i}", seq=i + 1, at=i).ok("billing")]
    findings = run(lines, groups={"billing": (), "shipping": ("orders",)})
    assert kinds(findings) == {("LOST", f"o{i}", "shipping") for i in range(3)}
    assert run(lines, groups={"shipping": ()}) == []  # learned-only and never seen: nothing to expect


def test_synthetic_mix_every_fault_found_by_id_and_nothing_else() -> None:
    lines, expected = generate(20_000, fault_rate=0.02, seed=3)
    a = Auditor(grace_s=5.0, sla_s=5.0)
    for i in range(0, len(lines), 1000):
        a.feed(lines[i : i + 1000])
    got: dict[str, set[tuple[str, str]]] = {k: set() for k in expected.faults}
    for f in a.finish(a.watermark + END):
        key = f"{f.source}\t{f.destination}\t{f.sequence}" if f.kind is Kind.GAP else f.event_id
        got[f.kind.value.lower()].add((key or "", f.consumer_group or ""))
    tail_gaps = {g for g in expected.faults["gap"] if g not in got["gap"]}
    assert len(tail_gaps) <= 6  # only a gap at the very end of a sequence has no successor to reveal it
    expected.faults["gap"] -= tail_gaps
    assert got == expected.faults


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), jitter_ms=st.sampled_from([0.0, 20.0, 400.0]))
def test_no_false_positives_under_reordering_across_partitions(seed: int, jitter_ms: float) -> None:
    lines, _ = generate(600, seed=seed, jitter_ms=jitter_ms, rate_per_s=500.0)
    rnd = random.Random(seed)
    # a partitioned audit topic delivers per-partition order only: interleave 6 partitions arbitrarily
    parts: list[list[bytes]] = [[] for _ in range(6)]
    for line in lines:
        parts[zlib.crc32(line.split(b"\t", 3)[2]) % 6].append(line)
    merged: list[bytes] = []
    while any(parts):
        p = rnd.choice([p for p in parts if p])
        k = rnd.randrange(1, 40)
        merged.extend(p[:k])
        del p[:k]
    assert len(merged) == len(lines)
    a = Auditor(grace_s=5.0, sla_s=5.0)
    for i in range(0, len(merged), 97):
        a.feed(merged[i : i + 97])
    assert a.finish(a.watermark + END) == []


def test_duplicate_and_late_carry_the_producers_order_and_payment_ids() -> None:
    """Consumers do not know the order or payment id; the producer's record does."""
    dup, slow, gone = Ev("dup", seq=1, order_id="ord-1"), Ev("slow", seq=2, order_id="ord-2"), Ev("gone", seq=3)
    lines = [*dup.ok("billing"), dup.handled("billing", 2.0, span="d" * 16),
             slow.published(), slow.acked(), slow.handled("billing", 7.0),
             gone.published(), gone.acked()]
    # a handling that arrives after its event was resolved as LOST: LATE, still with the producer's ids
    later = [*Ev("w", seq=4, at=40.0).ok("billing"), gone.handled("billing", 41.0)]
    findings = run(lines + later, grace=10.0)
    got = {(f.kind.value, f.event_id): (f.order_id, f.event_type) for f in findings}
    assert got == {("DUPLICATE", "dup"): ("ord-1", "order.created"), ("LATE", "slow"): ("ord-2", "order.created"),
                   ("LATE", "gone"): ("ord-gone", "order.created")}
    # the producer's record may come after the handlings in the stream
    findings = run([slow.handled("billing", 7.0), slow.acked(), slow.published()])
    assert [(f.kind, f.order_id) for f in findings] == [(Kind.LATE, "ord-2")]


def _foreign(group: str, offset: int, at: float, span: str, partition: int = 1, topic: str = "legacy") -> bytes:
    """A HANDLED record of a message with no ce_id (another producer's): no id, no producer record."""
    from commerce_observe.agent.audit.record import encode
    from commerce_observe.agent.messaging.facts import MessageFact, Stage

    from .helpers import T0

    return encode(MessageFact(Stage.HANDLED, "kafka", topic, None, None, None, None, "a" * 32, span,
                              T0 + int(at * S), partition, offset, group, T0 + int(at * S) - 1000))


def test_messages_without_event_id_are_audited_by_topic_partition_and_offset() -> None:
    lines = [_foreign("billing", o, o * 0.01, f"{o:016x}") for o in range(20)]
    lines += [_foreign("billing", 7, 3.0, "e" * 16),  # redelivered to the same group: DUPLICATE
              _foreign("shipping", 7, 3.1, "f" * 16),  # another group: its first handling
              _foreign("billing", 7, 3.2, "e" * 16, partition=2)]  # same offset, other partition: another message
    a = Auditor(grace_s=10.0, sla_s=5.0)
    a.feed(lines + lines[:3])  # identical records replayed count once
    (f,) = a.finish(a.watermark + END)
    assert (f.kind, f.event_id, f.consumer_group, f.destination, f.partition, f.offset) == \
        (Kind.DUPLICATE, None, "billing", "legacy", 1, 7)
    assert f.ref == "legacy/1@7" and [h.span_id for h in f.handlings] == [f"{7:016x}", "e" * 16]
    assert a.unidentified == 0 and a.orphans == 0 and a.foreign == 21


def test_take_hands_out_a_late_finding_once_its_event_is_resolved_with_the_producers_ids() -> None:
    slow = Ev("slow", seq=1, order_id="ord-9")
    a = Auditor(grace_s=10.0, sla_s=5.0)
    a.feed([slow.published(), slow.acked(), slow.handled("billing", 7.0)])
    assert a.take() == []  # its grace window is still open
    a.feed(Ev("w", seq=2, at=30.0).ok("billing"))
    (f,) = a.take()
    assert (f.kind, f.event_id, f.order_id, round(f.latency_ms or 0)) == (Kind.LATE, "slow", "ord-9", 7000)
    assert a.take() == []


def test_a_redelivery_after_the_grace_period_is_still_a_duplicate() -> None:
    """A consumer killed before its commit is replaced after the group's session timeout
    (45 s in librdkafka): its records come again long after the first handling, when the
    event was resolved and evicted."""
    e = Ev("again", seq=1, order_id="ord-5")
    first = [e.published(), e.acked(), e.handled("billing", 0.02, span="a" * 16)]
    ticks = [line for i in range(2, 9) for line in Ev(f"t{i}", seq=i, at=i * 10.0).ok("billing")]

    def streamed(lines: list[bytes], **kw: float) -> list[Finding]:
        a = Auditor(grace_s=30.0, sla_s=5.0, **kw)  # type: ignore[arg-type]
        for line in lines:  # one batch per line: resolution runs as the stream goes
            a.feed([line])
        return a.finish(a.watermark + END)

    redelivered = e.handled("billing", 45.0, span="b" * 16)
    findings = streamed(first + ticks[:12] + [redelivered, redelivered] + ticks[12:])  # a replay counts once
    assert [(f.kind, f.event_id, f.order_id, [h.span_id for h in f.handlings]) for f in findings] == \
        [(Kind.DUPLICATE, "again", "ord-5", ["a" * 16, "b" * 16])]
    # remembered for one more grace period by default; redelivery_s (--redelivery) says how long:
    # once forgotten, a handling that late is only seen as LATE (what every redelivery was before)
    late_one = e.handled("billing", 75.0, span="c" * 16)
    assert [f.kind for f in streamed(first + ticks + [late_one], redelivery_s=10.0)] == [Kind.LATE]
    assert [f.kind for f in streamed(first + ticks[:12] + [redelivered] + ticks[12:], redelivery_s=0)] == [Kind.LATE]
