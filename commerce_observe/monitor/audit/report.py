"""Report formats: a table for people, JSON for pipelines.

Both name every finding by event id with its trace links; the table puts the
links on their own lines so they can be clicked from a terminal or a CI log.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from commerce_observe.monitor.audit.findings import Finding, Kind, Links, to_dict


@dataclass
class Summary:
    records: int = 0
    invalid: int = 0
    orphans: int = 0
    pending: int = 0
    peak_open: int = 0
    watermark_ns: int = 0
    grace_s: float = 0.0
    sla_s: float = 0.0
    groups: Sequence[str] = field(default_factory=tuple)
    foreign: int = 0  # messages without an event id, audited by topic, partition and offset
    unidentified: int = 0  # records with neither an event id nor an offset: not auditable
    unjudged: int = 0  # events whose evidence may be in a trail gap (a spool was full): not called LOST

    def as_dict(self, findings: Sequence[Finding]) -> dict[str, object]:
        counts = Counter(f.kind.value for f in findings)
        return {
            "records": self.records, "invalid_records": self.invalid, "handled_without_producer_record": self.orphans,
            "events_too_recent_to_judge": self.pending, "peak_open_events": self.peak_open,
            "watermark": _iso(self.watermark_ns), "grace_s": self.grace_s, "sla_s": self.sla_s,
            "groups": list(self.groups) or "all seen", "findings": {k.value: counts.get(k.value, 0) for k in Kind},
            "handled_without_event_id": self.foreign, "unidentified_records": self.unidentified,
            "not_judged_in_trail_gaps": self.unjudged,
        }


def _iso(ns: int | None) -> str | None:
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")


def render_json(findings: Sequence[Finding], links: Links, summary: Summary) -> str:
    return json.dumps({"summary": summary.as_dict(findings), "findings": [to_dict(f, links) for f in findings]}, indent=2)


def _detail(f: Finding) -> str:
    if f.kind is Kind.LOST:
        tries = [h for h in f.handlings if h.stage == "handle_failed"]
        extra = f"; {len(tries)} failed attempt(s): {tries[-1].error}" if tries else ""
        return f"acked, never handled by {f.consumer_group}{extra}"
    if f.kind is Kind.UNDELIVERED:
        return f"send failed: {f.error}" if f.error else "published, never acknowledged"
    if f.kind is Kind.DUPLICATE:
        return f"handled {len(f.handlings)}x by {f.consumer_group}"
    if f.kind is Kind.LATE:
        return f"handled by {f.consumer_group} {f.latency_ms:.0f} ms after publication"
    count = (f.sequence_end or 0) - (f.sequence or 0) + 1
    return f"{count} sequence number(s) {f.sequence}..{f.sequence_end} never published by {f.source} to {f.destination}"


def render_table(findings: Sequence[Finding], links: Links, summary: Summary, limit: int | None = None) -> str:
    s = summary.as_dict(findings)
    counts = s["findings"]
    assert isinstance(counts, dict)
    head = (f"audited {summary.records} records up to {s['watermark']} (grace {summary.grace_s:g}s, SLA {summary.sla_s:g}s, "
            f"groups: {', '.join(summary.groups) or 'all seen'})")
    lines = [head, "findings: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    if summary.pending:
        lines.append(f"{summary.pending} event(s) still inside their grace period: not judged yet")
    if summary.orphans:
        lines.append(f"{summary.orphans} event(s) handled with no producer record (producer not audited?)")
    if summary.foreign:
        lines.append(f"{summary.foreign} message(s) without an event id (another producer's), "
                     "audited by topic, partition and offset")
    if summary.unidentified:
        lines.append(f"{summary.unidentified} record(s) with neither an event id nor an offset: not audited")
    if summary.unjudged:
        lines.append(f"{summary.unjudged} event(s) not judged: their records may be in a gap of the trail "
                     "(a spool was full; see the GAP findings)")
    if not findings:
        lines.append("nothing lost, duplicated, late or missing")
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'KIND':<12} {'EVENT ID':<36} {'TYPE':<20} {'GROUP':<14} {'ORDER/PAYMENT':<16} {'TRACE ID':<32}  DETAIL")
    shown = findings if limit is None else findings[:limit]
    for f in shown:
        ref = " ".join(x for x in (f.order_id, f.payment_id) if x)
        event = f.ref
        lines.append(f"{f.kind.value:<12} {event:<36} {f.event_type or '':<20} {f.consumer_group or '':<14} {ref:<16} "
                     f"{f.trace_id or '-':<32}  {_detail(f)}")
        traces = [f.trace_id] if f.trace_id else []
        traces += [h.trace_id for h in f.handlings if h.trace_id and h.trace_id not in traces]
        for h in f.handlings if f.kind is Kind.DUPLICATE else ():
            lines.append(f"{'':<13}handling at {_iso(h.time_ns)} trace {h.trace_id} span {h.span_id} "
                         f"(partition {h.partition}, offset {h.offset})")
        for trace in traces:
            for name, url in links.for_trace(trace).items():
                lines.append(f"{'':<13}{name}: {url}")
    if len(shown) < len(findings):
        lines.append(f"... and {len(findings) - len(shown)} more (use --format json for all)")
    return "\n".join(lines)
