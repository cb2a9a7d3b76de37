"""``commerce-observe alerts``: evaluate alert rules over files, or send a test notification.

  commerce-observe alerts evaluate --config alerts.json --scores scores.csv \\
      [--series input.csv] [--audit audit.json] [--dry-run]
  commerce-observe alerts test-notify --webhook URL | --slack URL | --smtp HOST:PORT --mail-to B [--mail-from A]

``evaluate`` replays the anomaly CLI's scores, payment failure ratios from its input
CSV and an audit report through the rules (same de-duplication, grouping, resolving
and throttling as live) and sends the notifications, or prints them (``--dry-run``).
Exit code: 0 all delivered, 1 some notification was not delivered, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from typing import Any

from commerce_observe.monitor.cli.errors import UsageError, host_port, input_file, positive, url
from commerce_observe.monitor.cli.trace_links import add_trace_link_options, trace_links


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("alerts", help="evaluate alert rules, send test notifications",
                              description=__doc__)
    sub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    ev = sub.add_parser("evaluate", help="run rules over scores / series / audit files")
    ev.add_argument("--config", type=input_file, required=True, help="alert config JSON (rules, notifiers, delivery)")
    ev.add_argument("--scores", type=input_file, help="output CSV of `commerce-observe anomaly`")
    ev.add_argument("--series", type=input_file, help="input CSV of `commerce-observe anomaly` (payment failure ratios)")
    ev.add_argument("--audit", type=input_file, help="JSON report of `commerce-observe audit`")
    ev.add_argument("--dry-run", action="store_true", help="print notifications instead of sending")
    add_trace_link_options(ev)
    tn = sub.add_parser("test-notify", help="send one sample notification to check a receiver")
    tn.add_argument("--webhook", type=url, help="generic JSON webhook URL")
    tn.add_argument("--slack", type=url, help="Slack-compatible incoming webhook URL")
    tn.add_argument("--smtp", type=host_port, help="SMTP server HOST:PORT")
    tn.add_argument("--mail-from", default="commerce-observe@localhost", help="sender address")
    tn.add_argument("--mail-to", action="append", default=[], help="recipient (repeatable)")
    tn.add_argument("--attempts", type=positive, default=3, help="delivery attempts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _evaluate(args) if args.alerts_command == "evaluate" else _test_notify(args)


def _deliver(dispatcher: Any) -> int:
    """Pump on this thread until every notification is delivered or given up (sleeping out backoffs)."""
    while True:
        dispatcher.pump()
        due = [d for d in (ch.next_due() for ch in dispatcher.channels) if d is not None]
        if not due:
            break
        time.sleep(max(0.0, min(due) - dispatcher.clock.now()))
    failed = 0
    for ch in dispatcher.channels:
        c = ch.counts
        print(f"alerts: {ch.notifier.name}: sent {c['sent']}, gave up {c['gave_up']}, refused (queue full) {c['queue_full']}"
              + (f", last error: {ch.last_error}" if ch.last_error else ""), file=sys.stderr)
        failed += c["gave_up"] + c["queue_full"]
    return 1 if failed else 0


def _evaluate(args: argparse.Namespace) -> int:
    from commerce_observe.monitor.alerts import AlertEngine, Notification, render
    from commerce_observe.monitor.alerts.inputs import read_findings, read_payments, read_scores
    from commerce_observe.monitor.alerts.rulefile import RuleFileError, load_config
    from commerce_observe.config import load_config as load_settings

    try:
        cfg = load_config(args.config)
    except (OSError, RuleFileError, ValueError) as exc:
        text = str(exc)
        raise UsageError(text if args.config in text else f"{args.config}: {text}") from None
    settings = load_settings()
    links = trace_links(args, settings.zipkin_ui, settings.kibana_url)
    stream: list[tuple[datetime, int, Any]] = []
    try:
        if args.scores:
            stream += [(s.timestamp, 0, s) for s in read_scores(args.scores)]
        if args.series:
            stream += [(p.timestamp, 1, p) for p in read_payments(args.series)]
        if args.audit:
            for f in read_findings(args.audit):
                when = datetime.fromtimestamp(f.published_ns / 1e9, timezone.utc) if f.published_ns else datetime.now(timezone.utc)
                stream.append((when, 2, f))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read input: {type(exc).__name__}: {exc}") from None
    stream.sort(key=lambda x: (x[0], x[1]))

    printed: list[Notification] = []
    dispatcher = None if args.dry_run else cfg.dispatcher()
    sink = printed.append if dispatcher is None else dispatcher.submit
    engine = AlertEngine(cfg.rules, sink, bucket_s=cfg.bucket_s, group_min=cfg.group_min, links=links)
    for when, kind, item in stream:
        if kind == 0:
            engine.observe_score(item)
        elif kind == 1:
            engine.observe_payments(item.timestamp, item.method, item.failures, item.attempts)
        else:
            engine.observe_findings([item], at=when)
    engine.flush()
    if dispatcher is None:
        for n in printed:
            sys.stdout.write(render.text(n) + "\n")
        print(f"alerts: {len(printed)} notifications (dry run), {len(engine.active)} alerts still active", file=sys.stderr)
        return 0
    return _deliver(dispatcher)


def _test_notify(args: argparse.Namespace) -> int:
    from commerce_observe.monitor.alerts import (Alert, Dispatcher, EmailNotifier, Kind, Notification, Notifier, RetryPolicy,
                                         SlackNotifier, WebhookNotifier)

    notifiers: list[Notifier] = []
    if args.webhook:
        notifiers.append(WebhookNotifier(args.webhook))
    if args.slack:
        notifiers.append(SlackNotifier(args.slack))
    if args.smtp:
        host, _, port = args.smtp.rpartition(":")
        if not args.mail_to or not port.isdigit():
            raise UsageError("--smtp HOST:PORT needs at least one --mail-to")
        notifiers.append(EmailNotifier(host or "127.0.0.1", int(port), args.mail_from, args.mail_to))
    if not notifiers:
        raise UsageError("give --webhook, --slack and/or --smtp")
    now = datetime.now(timezone.utc)
    sample = Alert(key="test|commerce-observe", rule="test", title="test notification", severity="warning",
                   where=(("receiver", "check"),), since=now, measure="nothing is wrong: this checks delivery", value=0.0)
    dispatcher = Dispatcher(notifiers, retry=RetryPolicy(max_attempts=max(1, args.attempts), base_s=1.0), throttle_max=None)
    dispatcher.submit(Notification(Kind.FIRING, "test notification from commerce-observe", (sample,), now))
    return _deliver(dispatcher)
