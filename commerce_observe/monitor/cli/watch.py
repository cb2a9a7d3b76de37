"""``commerce-observe watch``: the always-on monitoring service (and its backtest).

Live: reads the audit trail as the services write it, judges every event once its
grace window closes (findings to the store), scores each series bucket as it
closes with the detector ``commerce-observe anomaly`` runs (scores to the store),
evaluates the alert rules and delivers notifications; checkpoints so a restart
goes on where it stopped; serves ``/metrics`` and ``/healthz``; stops cleanly on
SIGTERM. ``--from T1 --until T2``: the same over a stored period, then exit.

Exit status: 0 stopped cleanly; 2 bad input (rule file, store, dates, options).
See docs/watch.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from typing import Any

from commerce_observe.monitor.cli._store import DEFAULT_DB, add_store_args

DEFAULT_STATE = ".commerce-observe-watch"
DEFAULT_PORT = 9465


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "watch", help="the always-on monitor: audit, anomaly scores and alerts as the events come",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_args(p)
    p.add_argument("--audit-sqlite", metavar="PATH", help="SQLite audit file the services write "
                   "(default: COMMERCE_OBSERVE_AUDIT_PATH)")
    p.add_argument("--rules", metavar="PATH", help="alert rule file (JSON, docs/alerts.md); none: no alerts")
    p.add_argument("--state", metavar="DIR", help=f"checkpoint directory (default {DEFAULT_STATE}; "
                   "a backtest without it uses a throw-away one)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port of /metrics and /healthz "
                   f"(default {DEFAULT_PORT}; 0: any free port; -1: none)")
    p.add_argument("--bucket", metavar="DURATION", help="series bucket, whole minutes (default: the rule file's "
                   "bucket_seconds, else 1h)")
    p.add_argument("--audit-bucket", metavar="DURATION", default="10s", help="findings are grouped per (default 10s)")
    p.add_argument("--grace", metavar="DURATION", default="30s", help="time to be handled before LOST (default 30s)")
    p.add_argument("--sla", metavar="DURATION", default="5s", help="publication-to-handled limit for LATE (default 5s)")
    p.add_argument("--lateness", metavar="DURATION", default="5s", help="a bucket takes data this long after its end")
    p.add_argument("--history-days", type=int, default=90, help="history learned at first start (default 90)")
    p.add_argument("--min-history", type=int, default=72, help="buckets a series needs before it is scored")
    p.add_argument("--calendar", metavar="PATH", help="known events that must neither alert nor be learned (JSON)")
    p.add_argument("--group", action="append", metavar="NAME[:TOPIC,...]", help="consumer group to check (repeatable)")
    p.add_argument("--start", metavar="WHEN", help="first start only: score from this time on (default now); "
                   "the history before it is learned")
    p.add_argument("--from", dest="from_", metavar="T1", help="backtest: from this time ...")
    p.add_argument("--until", metavar="T2", help="... until this one, then exit")
    p.add_argument("--zipkin-ui", metavar="URL", help="Zipkin UI base URL for trace links (default: configured)")
    p.add_argument("--kibana", metavar="URL", help="Kibana base URL for trace links (default: configured)")
    p.set_defaults(func=run)


class BadInput(ValueError):
    """A user's mistake: reported as one line, exit code 2."""


def _ns(raw: str | None, what: str) -> int | None:
    from commerce_observe.monitor.cli.audit import from_time

    if raw is None:
        return None
    try:
        return from_time(raw)
    except argparse.ArgumentTypeError as exc:
        raise BadInput(f"{what}: {exc}") from None


def _seconds(raw: str, what: str) -> float:
    from commerce_observe.monitor.cli.audit import duration

    try:
        return duration(raw)
    except argparse.ArgumentTypeError as exc:
        raise BadInput(f"{what}: {exc}") from None


def _build(args: argparse.Namespace, say: Any) -> Any:
    from commerce_observe.config import ConfigError, load_config
    from commerce_observe.monitor.alerts import SystemClock
    from commerce_observe.monitor.alerts.rulefile import RuleFileError, load_config as load_rules
    from commerce_observe.monitor.anomaly import Calendar
    from commerce_observe.monitor.audit.findings import Links
    from commerce_observe.monitor.cli.audit import group_spec
    from commerce_observe.monitor.watch.checkpoint import Checkpoints
    from commerce_observe.monitor.watch.loop import Inputs, Watch
    from commerce_observe.monitor.watch.series import StoreSeries
    from commerce_observe.monitor.watch.settings import WatchSettings
    from commerce_observe.store.store import open_store

    try:
        config = load_config()
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    rules = None
    if args.rules:
        try:
            rules = load_rules(args.rules)
        except (OSError, RuleFileError) as exc:
            raise BadInput(f"rule file: {exc}") from None
    t1, t2 = _ns(args.from_, "--from"), _ns(args.until, "--until")
    if (t1 is None) != (t2 is None):
        raise BadInput("a backtest needs both --from and --until")
    if t1 is not None and t2 is not None and t2 <= t1:
        raise BadInput("--until must be after --from")
    start = _ns(args.start, "--start")
    bucket = _seconds(args.bucket, "--bucket") if args.bucket else (rules.bucket_s if rules else 3600.0)
    try:
        settings = WatchSettings(
            bucket_s=int(bucket), audit_bucket_s=int(_seconds(args.audit_bucket, "--audit-bucket")),
            grace_s=_seconds(args.grace, "--grace"), sla_s=_seconds(args.sla, "--sla"),
            lateness_s=_seconds(args.lateness, "--lateness"), history_days=args.history_days,
            min_history=args.min_history, timezone=config.timezone)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if rules is not None and args.bucket and rules.bucket_s != settings.bucket_s:
        say(f"note: --bucket {settings.bucket_s}s overrides the rule file's bucket_seconds {rules.bucket_s:g}")
    if args.elasticsearch:
        raise BadInput("--elasticsearch: the watch reads its series from the embedded store for now; use --store")
    spec = args.store or f"sqlite:{DEFAULT_DB}"
    path = spec[len("sqlite:"):] if spec.startswith("sqlite:") else spec
    try:
        store = open_store(spec)
        series = StoreSeries(path, settings.bucket_s)
        series.newest_ns()
    except Exception as exc:
        raise BadInput(f"store {spec} unreachable: {exc}") from None
    calendar = None
    if args.calendar:
        try:
            calendar = Calendar.load(args.calendar, config.timezone)
        except (OSError, ValueError) as exc:
            raise BadInput(f"--calendar: {exc}") from None
    groups = None
    if args.group:
        try:
            groups = dict(group_spec(g) for g in args.group)
        except argparse.ArgumentTypeError as exc:
            raise BadInput(str(exc)) from None
    audit_path = args.audit_sqlite or config.audit_path
    if t1 is not None and not os.path.exists(audit_path):
        raise BadInput(f"backtest: audit file {audit_path} not found")
    state_dir = args.state or (tempfile.mkdtemp(prefix="commerce-observe-backtest-") if t1 is not None else DEFAULT_STATE)
    try:
        checkpoints = Checkpoints(state_dir)
    except OSError as exc:
        raise BadInput(f"--state {state_dir}: {exc}") from None
    links = Links(args.zipkin_ui or config.zipkin_ui, args.kibana or config.kibana_url)
    return Watch(settings, Inputs(store, series, audit_path), checkpoints, SystemClock(), alert_config=rules,
                 links=links, start_ns=t1 if t1 is not None else start, until_ns=t2, groups=groups,
                 calendar=calendar, say=say)


def run(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        sys.stderr.write(f"watch: {line}\n")
        sys.stderr.flush()

    try:
        watch = _build(args, say)
    except BadInput as exc:
        say(str(exc))
        return 2
    from commerce_observe.monitor.watch.server import Heartbeat, StatusServer

    heartbeat = Heartbeat(limit_s=max(30.0, watch.settings.poll_idle_s * 10))
    server = None
    if args.port >= 0:
        try:
            server = StatusServer(args.port, watch.snapshot, heartbeat.healthy).start()
        except OSError as exc:
            say(f"--port {args.port}: {exc}")
            return 2
        say(f"metrics on http://127.0.0.1:{server.port}/metrics")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: watch.stop())
    try:
        code: int = watch.run(beat=heartbeat.beat)
    finally:
        if server is not None:
            server.stop()
    snap = watch.snapshot()
    say(f"stopped: {snap['counters'].get('buckets_scored', 0)} buckets scored, "
        f"{sum(snap['findings'].values())} findings, {snap['alerts_sent']} notifications sent")
    return code
