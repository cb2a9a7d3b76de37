"""The spool is bounded: what does not fit is dropped, counted, and reported by the
auditor as a GAP in the trail, never as false LOSTs."""

from __future__ import annotations

from pathlib import Path

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.audit.record import TRAIL_GAP, encode, is_valid
from commerce_observe.agent.audit.sinks import MemorySink
from commerce_observe.agent.audit.spool import DEFAULT_MAX_BYTES, Spool
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.config import load_config
from commerce_observe.monitor.audit.auditor import Auditor
from commerce_observe.monitor.audit.findings import Kind

T0 = 1_750_000_000_000_000_000
MS = 1_000_000


def published(i: int) -> bytes:
    return encode(MessageFact(Stage.ACKED, "kafka", "orders", f"e{i}", "order.created", "checkout", i,
                              "a" * 32, "b" * 16, T0 + i * 100 * MS, partition=0, offset=i))


def handled(i: int) -> bytes:
    return encode(MessageFact(Stage.HANDLED, "kafka", "orders", f"e{i}", "order.created", "checkout", i,
                              "c" * 32, "d" * 16, T0 + i * 100 * MS + 5 * MS, partition=0, offset=i,
                              consumer_group="mailer", published_ns=T0 + i * 100 * MS))


def test_a_full_spool_drops_counts_and_keeps_a_trail_gap_marker(tmp_path: Path) -> None:
    assert load_config({}).spool_max_bytes == DEFAULT_MAX_BYTES == 256 << 20
    size = len(handled(0)) + 1
    spool = Spool(str(tmp_path / "spool"), max_bytes=size * 25, source="mailer")
    for start in range(0, 60, 10):  # 6 batches of 10: two fit, then no room
        spool.append([handled(i) for i in range(start, start + 10)])
    assert spool.dropped == 40 and stats.get("audit.spool_dropped") == 40
    spool.close()
    again = Spool(str(tmp_path / "spool"), max_bytes=size * 25)  # the marker survives a restart
    sink = MemorySink()
    assert again.replay(sink) == 21
    *records, marker = sink.lines
    assert len(records) == 20 and is_valid(marker) and marker[:1] == TRAIL_GAP
    fields = marker.split(b"\t")
    assert (int(fields[1]), int(fields[4]), int(fields[7]), fields[5]) == (
        T0 + 20 * 100 * MS + 5 * MS, T0 + 59 * 100 * MS + 5 * MS, 40, b"mailer")
    assert not again and again.replay(sink) == 0  # sent once
    again.close()


def test_the_auditor_reports_the_gap_and_no_false_losts(tmp_path: Path) -> None:
    """A consumer whose spool filled up while its sink was down: its handlings of
    e20..e49 never reached the trail. Without the marker the auditor would call 30
    events LOST; with it, one GAP and those events left unjudged."""
    size = len(handled(0)) + 1
    spool = Spool(str(tmp_path / "spool"), max_bytes=size * 25, source="mailer")
    for start in range(0, 50, 10):
        spool.append([handled(i) for i in range(start, start + 10)])
    sink = MemorySink()
    spool.replay(sink)
    spool.close()
    trail = [published(i) for i in range(50)] + sink.lines + [published(i) for i in range(50, 60)] + \
        [handled(i) for i in range(50, 60)]

    def audit(lines: list[bytes]) -> tuple[Auditor, list[Kind]]:
        auditor = Auditor(grace_s=1.0)
        auditor.feed(lines)
        return auditor, [f.kind for f in auditor.finish(T0 + 3600 * 10**9)]

    without_marker, kinds = audit([x for x in trail if x[:1] != TRAIL_GAP])
    assert kinds.count(Kind.LOST) == 30  # what the marker prevents
    auditor, kinds = audit(trail)
    assert kinds == [Kind.GAP] and auditor.unjudged == 30
    gap = auditor.finish(T0 + 3600 * 10**9)[0]
    assert gap.source == "mailer" and "30 records dropped" in (gap.error or "")
