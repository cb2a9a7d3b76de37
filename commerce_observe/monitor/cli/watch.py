"""``commerce-observe watch``: the always-on monitoring service (and its backtest).

Live: reads the audit trail as the services write it, judges every event once its
grace window closes (findings to the store), scores each series bucket as it
closes with the detector ``commerce-observe anomaly`` runs (scores to the store),
evaluates the alert rules and delivers notifications; checkpoints so a restart
goes on where it stopped; serves /metrics and /healthz; stops cleanly on
SIGTERM. --from T1 --until T2: the same over a stored period, then exit.

Exit status: 0 stopped cleanly; 2 bad input (rule file, store, dates, options).
See docs/watch.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from datetime import datetime
from typing import Any

from commerce_observe.monitor.cli._store import DEFAULT_DB, add_store_args, open_spec
from commerce_observe.monitor.cli.audit import duration, group_spec
from commerce_observe.monitor.cli.errors import UsageError, host_port, input_file, port, positive, when
from commerce_observe.monitor.cli.trace_links import add_trace_link_options, trace_links

DEFAULT_STATE = ".commerce-observe-watch"
DEFAULT_PORT = 9465


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "watch", help="the always-on monitor: audit, anomaly scores and alerts as the events come",
        description=__doc__)
    add_store_args(p)
    p.add_argument("--audit-sqlite", metavar="PATH", help="SQLite audit file the services write "
                   "(default: COMMERCE_OBSERVE_AUDIT_PATH)")
    p.add_argument("--bootstrap", type=host_port, metavar="HOST:PORT",
                   help="read the events and audit topics of this Kafka cluster instead of the SQLite audit file")
    p.add_argument("--events-topic", default="commerce-observe.events", help="Kafka topic of the event documents")
    p.add_argument("--audit-topic", help="Kafka audit topic (default: COMMERCE_OBSERVE_AUDIT_TOPIC)")
    p.add_argument("--group-id", default="commerce-observe-watch", help="Kafka consumer group of the watch")
    p.add_argument("--scale-out", action="store_true",
                   help="one of several watches in the Kafka group (needs --bootstrap and --elasticsearch): "
                        "series read from the store, findings and notifications claimed in Elasticsearch")
    p.add_argument("--rules", type=input_file, metavar="PATH", help="alert rule file (JSON, docs/alerts.md); none: no alerts")
    p.add_argument("--state", metavar="DIR", help=f"checkpoint directory (default: {DEFAULT_STATE}; "
                   "a backtest without it uses a throw-away one)")
    p.add_argument("--port", type=port, default=DEFAULT_PORT, help="HTTP port of /metrics and /healthz (0: any free port)")
    p.add_argument("--no-http", action="store_true", help="serve no /metrics and /healthz")
    p.add_argument("--bucket", type=duration, metavar="DURATION",
                   help="series bucket, whole minutes (default: the rule file's bucket_seconds, else 1h)")
    p.add_argument("--audit-bucket", type=duration, metavar="DURATION", default=10.0,
                   help="findings are grouped into alerts per this many seconds")
    p.add_argument("--grace", type=duration, metavar="DURATION", default=30.0, help="time to be handled before LOST")
    p.add_argument("--sla", type=duration, metavar="DURATION", default=5.0, help="publication-to-handled limit for LATE")
    p.add_argument("--lateness", type=duration, metavar="DURATION", default=5.0,
                   help="a bucket still takes data this long after its end")
    p.add_argument("--history-days", type=positive, default=90, help="history learned at first start, in days")
    p.add_argument("--min-history", type=positive, default=72, help="buckets a series needs before it is scored")
    p.add_argument("--calendar", type=input_file, metavar="PATH",
                   help="known events that must neither alert nor be learned (JSON)")
    p.add_argument("--group", type=group_spec, action="append", metavar="NAME[:TOPIC,...]",
                   help="consumer group to check (repeatable; default: every group seen)")
    p.add_argument("--start", type=when, metavar="WHEN", help="first start only: score from this time on "
                   "(default: now); the history before it is learned")
    p.add_argument("--from", dest="from_", type=when, metavar="T1", help="backtest: from this time ...")
    p.add_argument("--until", type=when, metavar="T2", help="... until this one, then exit")
    add_trace_link_options(p)
    p.set_defaults(func=run)


def _ns(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1e9)


def _build(args: argparse.Namespace, say: Any) -> Any:
    from commerce_observe.config import load_config
    from commerce_observe.monitor.alerts import SystemClock
    from commerce_observe.monitor.alerts.rulefile import RuleFileError, load_config as load_rules
    from commerce_observe.monitor.anomaly import Calendar
    from commerce_observe.monitor.watch.checkpoint import Checkpoints
    from commerce_observe.monitor.watch.loop import Inputs, KafkaInput, Watch
    from commerce_observe.monitor.watch.series import StoreSeries
    from commerce_observe.monitor.watch.settings import WatchSettings

    config = load_config()
    rules = None
    if args.rules:
        try:
            rules = load_rules(args.rules)
        except RuleFileError as exc:
            raise UsageError(f"rule file {exc}" if str(exc).startswith(args.rules) else f"rule file {args.rules}: {exc}") from None
    t1, t2 = _ns(args.from_), _ns(args.until)
    if (t1 is None) != (t2 is None):
        raise UsageError("a backtest needs both --from and --until")
    if t1 is not None and t2 is not None and t2 <= t1:
        raise UsageError("--until must be after --from")
    bucket = args.bucket if args.bucket else (rules.bucket_s if rules else 3600.0)
    try:
        settings = WatchSettings(
            bucket_s=int(bucket), audit_bucket_s=int(args.audit_bucket), grace_s=args.grace, sla_s=args.sla,
            lateness_s=args.lateness, history_days=args.history_days, min_history=args.min_history,
            timezone=config.timezone)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if rules is not None and args.bucket and rules.bucket_s != settings.bucket_s:
        say(f"note: --bucket {settings.bucket_s}s overrides the rule file's bucket_seconds {rules.bucket_s:g}")
    calendar = None
    if args.calendar:
        try:
            calendar = Calendar.load(args.calendar, config.timezone)
        except ValueError as exc:
            raise UsageError(f"--calendar {args.calendar}: {exc}") from None
    audit_path = args.audit_sqlite or config.audit_path
    if args.scale_out and t1 is None and not (args.bootstrap and args.elasticsearch):
        raise UsageError("--scale-out needs --bootstrap and --elasticsearch")  # before any server is tried
    kafka = None
    if args.bootstrap:
        from commerce_observe.monitor.watch.kafka_source import probe

        try:
            probe(args.bootstrap)
        except Exception as exc:  # kafka-python: NoBrokersAvailable, a timeout, bad config...
            raise UsageError(f"Kafka at {args.bootstrap}: unreachable ({type(exc).__name__}: {exc})") from None
        kafka = KafkaInput(args.bootstrap, args.events_topic, args.audit_topic or config.audit_topic,
                           args.group_id if t1 is None else f"{args.group_id}-backtest",
                           scale_out=args.scale_out and t1 is None)
    elif t1 is not None and not os.path.exists(audit_path):
        raise UsageError(f"backtest: audit file {audit_path} not found")
    if args.elasticsearch:
        store = open_spec(args.elasticsearch, **({"data_stream": args.data_stream} if args.data_stream else {}))
    else:
        store = open_spec(args.store or f"sqlite:{DEFAULT_DB}")
    state_dir = args.state or (tempfile.mkdtemp(prefix="commerce-observe-backtest-") if t1 is not None else DEFAULT_STATE)
    checkpoints = Checkpoints(state_dir)
    links = trace_links(args, config.zipkin_ui, config.kibana_url)
    claims = shards = None
    if args.scale_out and t1 is None:
        from commerce_observe.monitor.watch.shards import ShardStore
        from commerce_observe.monitor.watch.sharing import Claims, member_id
        from commerce_observe.store.es_store import ElasticsearchStore

        if kafka is None or not isinstance(store, ElasticsearchStore):
            raise UsageError("--scale-out needs --bootstrap and --elasticsearch")
        member = member_id(state_dir)
        claims = Claims(store.http, f"commerce-observe-claims-{store.data_stream}", member)
        shards = ShardStore(store.http, f"commerce-observe-shards-{store.data_stream}",
                            f"{kafka.group_id}.{kafka.audit_topic}", member, state_dir)
    inputs = Inputs(store, StoreSeries(store, settings.bucket_s), audit_path, kafka, claims=claims, shards=shards)
    return Watch(settings, inputs, checkpoints, SystemClock(),
                 alert_config=rules, links=links, start_ns=t1 if t1 is not None else _ns(args.start), until_ns=t2,
                 groups=dict(args.group) if args.group else None, calendar=calendar, say=say)


def run(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        sys.stderr.write(f"watch: {line}\n")
        sys.stderr.flush()

    watch = _build(args, say)
    from commerce_observe.monitor.watch.server import Heartbeat, StatusServer

    heartbeat = Heartbeat(limit_s=max(30.0, watch.settings.poll_idle_s * 10))
    # before the port is announced: a supervisor that stops the watch as soon as it answers gets a clean stop
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: watch.stop())
    server = None
    if not args.no_http:
        try:
            server = StatusServer(args.port, watch.snapshot, heartbeat.healthy).start()
        except OSError as exc:
            raise UsageError(f"--port {args.port}: cannot listen ({exc.strerror or exc})") from None
        say(f"metrics on http://127.0.0.1:{server.port}/metrics")
    try:
        code: int = watch.run(beat=heartbeat.beat)
    finally:
        if server is not None:
            server.stop()
    snap = watch.snapshot()
    say(f"stopped: {snap['counters'].get('buckets_scored', 0)} buckets scored, "
        f"{sum(snap['findings'].values())} findings, {snap['alerts_sent']} notifications sent")
    return code
