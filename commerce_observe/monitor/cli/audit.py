"""``commerce-observe audit``: reconcile the audit trail and gate a deploy on it.

Exit status: 0 nothing found, 1 findings, 2 usage or input error. The input is
streamed (the Kafka audit topic from a time on, a SQLite file or a file of lines,
and/or a spool directory with its ``pid-*`` folders: what is not in the sink yet) through the :class:`Auditor`, whose memory is bounded by the
grace window, so a week of history costs time, not memory.
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from commerce_observe.monitor.cli.errors import (UsageError, count, existing_dir, existing_file, failure, host_port,
                                                 input_file, store_spec)
from commerce_observe.monitor.cli.trace_links import add_trace_link_options, trace_links

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(raw: str) -> float:
    """``500ms``, ``30s``, ``5m``, ``2h``, ``1d`` or plain seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", raw)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {raw!r} (examples: 500ms, 30s, 5m, 2h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def from_time(raw: str) -> int:
    """Epoch ns from ISO 8601, epoch seconds, or an age (``2h``: two hours ago)."""
    try:
        return time.time_ns() - int(duration(raw) * 1e9)
    except argparse.ArgumentTypeError:
        pass
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {raw!r} (ISO 8601 like 2026-05-01T12:00Z, or an age like 2h)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e9)


def group_spec(raw: str) -> tuple[str, tuple[str, ...]]:
    name, _, dests = raw.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"not a group: {raw!r} (NAME or NAME:TOPIC[,TOPIC])")
    return name, tuple(d for d in dests.split(",") if d)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit", help="find lost, duplicated, late and missing events by id, with trace links",
        description="Reconcile producers against each consumer group from the audit trail. "
                    "Exit 0: nothing found; 1: findings; 2: usage or input error.")
    src = p.add_argument_group("input (one of)")
    src.add_argument("--bootstrap", type=host_port, metavar="HOST:PORT", help="Kafka bootstrap servers of the audit topic")
    src.add_argument("--topic", help="audit topic (default: the configured COMMERCE_OBSERVE_AUDIT_TOPIC)")
    src.add_argument("--sqlite", type=existing_file, metavar="PATH", help="SQLite audit file")
    src.add_argument("--spool", type=existing_dir, metavar="DIR",
                     help="a spool directory: the records in it and in its pid-* folders not yet replayed into the sink "
                          "(alone, or with the sink's input to audit both)")
    src.add_argument("--file", type=input_file, metavar="PATH", help="a file of audit lines ('-' for stdin)")
    p.add_argument("--from-time", type=from_time, default=0, metavar="WHEN",
                   help="start at this record time: ISO 8601, or an age such as 2h (default: everything)")
    p.add_argument("--group", type=group_spec, action="append", metavar="NAME[:TOPIC,...]",
                   help="consumer group to check (repeatable; default: every group seen, on the topics it consumes)")
    p.add_argument("--grace", type=duration, default=30.0, help="time an event has to be handled before it is LOST (default 30s)")
    p.add_argument("--sla", type=duration, default=5.0, help="publication-to-handled limit for LATE (default 5s)")
    p.add_argument("--redelivery", type=duration, default=None, metavar="DURATION",
                   help="how long after its grace period a handled event is remembered, so that a group handling it "
                        "again (a consumer replaced after its session timed out) is a DUPLICATE (default: the grace)")
    p.add_argument("--as-of", choices=("now", "data", "all"), default="now",
                   help="judge events published before: now minus grace (default); the newest record minus grace; "
                        "or all of them (the input is complete: the system was drained)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    p.add_argument("--limit", type=count, default=200, help="findings shown in the table (default 200)")
    add_trace_link_options(p)
    p.add_argument("--store", type=store_spec, metavar="SPEC",
                   help="also write the findings to the monitoring store (sqlite:PATH or an Elasticsearch URL), "
                        "where the dashboard's loss/duplicate panel shows them (default: COMMERCE_OBSERVE_EVENT_STORE)")
    p.set_defaults(func=run)


def _store_findings(spec: str, findings: list[Any]) -> None:
    """Findings become alert documents, idempotent by kind, event and group (re-runs do not double count)."""
    from commerce_observe.store import finding_document, open_store

    store = open_store(spec)
    try:
        store.write([finding_document(f) for f in findings])
    finally:
        store.close()


def _batches(args: argparse.Namespace, topic: str) -> Iterator[list[bytes]]:
    if args.spool:
        from commerce_observe.agent.audit.spool import read_spool

        yield from read_spool(args.spool)
    if args.bootstrap or args.sqlite or args.file:
        yield from _sink_batches(args, topic)


def _sink_batches(args: argparse.Namespace, topic: str) -> Iterator[list[bytes]]:
    if args.bootstrap:
        from commerce_observe.agent.audit.kafka_sink import read_kafka

        return read_kafka(args.bootstrap, topic, args.from_time)
    if args.sqlite:
        from commerce_observe.agent.audit.sinks import read_sqlite

        return read_sqlite(args.sqlite, args.from_time)
    from commerce_observe.monitor.audit.sources import read_lines

    return read_lines(sys.stdin.buffer if args.file == "-" else args.file, args.from_time)


def run(args: argparse.Namespace) -> int:
    from commerce_observe.monitor.audit.auditor import Auditor
    from commerce_observe.monitor.audit.findings import report_to_hub
    from commerce_observe.monitor.audit.report import Summary, render_json, render_table
    from commerce_observe.config import load_config

    chosen = [x for x in (args.bootstrap, args.sqlite, args.file) if x]
    if len(chosen) > 1 or not (chosen or args.spool):
        raise UsageError("give exactly one input: --bootstrap, --sqlite, --spool or --file (--spool may come with one of the others)")
    chosen += [args.spool] if args.spool else []
    config = load_config()
    groups = dict(args.group) if args.group else None
    auditor = Auditor(grace_s=args.grace, sla_s=args.sla, groups=groups, redelivery_s=args.redelivery)
    gc_was = gc.isenabled()
    gc.disable()  # the auditor's state holds no reference cycles; the cycle collector only costs time
    try:
        for batch in _batches(args, args.topic or config.audit_topic):
            auditor.feed(batch)
    except Exception as exc:  # unreadable input is a usage/input error, not a finding
        raise UsageError(f"cannot read input {chosen[0]}: {failure(exc)}") from None
    finally:
        if gc_was:
            gc.enable()
    as_of = {"now": time.time_ns(), "data": None, "all": auditor.watermark + auditor.grace_ns + 1}[args.as_of]
    findings = auditor.finish(as_of)
    report_to_hub(findings)
    links = trace_links(args, config.zipkin_ui, config.kibana_url)
    summary = Summary(auditor.records, auditor.invalid, auditor.orphans, auditor.pending_at_finish, auditor.peak_open,
                      auditor.watermark, args.grace, args.sla, [g for g, _ in args.group or ()],
                      foreign=auditor.foreign, unidentified=auditor.unidentified, unjudged=auditor.unjudged)
    store_spec = args.store or config.event_store
    if store_spec and findings:
        try:
            _store_findings(store_spec, findings)
        except Exception as exc:
            sys.stderr.write(f"commerce-observe audit: findings not stored in {store_spec}: {exc}\n")
    if args.format == "json":
        sys.stdout.write(render_json(findings, links, summary) + "\n")
    else:
        sys.stdout.write(render_table(findings, links, summary, args.limit) + "\n")
    return 1 if findings else 0
