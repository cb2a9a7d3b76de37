"""commerce-observe ship: one member of the shipper consumer group (Kafka into the store).

Reads the events topic and the audit topic (the one the services write,
COMMERCE_OBSERVE_AUDIT_TOPIC). Start as many as the topics have partitions to scale
out; each commits its offsets only after the store accepted the batch
(at-least-once), and the store's writes are idempotent by event.id.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from commerce_observe.monitor.cli._store import add_store_args, open_store_from
from commerce_observe.monitor.cli.errors import UsageError, failure, host_port


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("ship", help="ship events and audit records from Kafka into the monitoring store",
                              description=__doc__)
    p.add_argument("--bootstrap", type=host_port, required=True, metavar="HOST:PORT", help="Kafka bootstrap servers")
    add_store_args(p)
    p.add_argument("--group", default=None, help="consumer group (default commerce-observe-shipper)")
    p.add_argument("--topic", action="append", default=None,
                   help="topic to read, repeatable (default commerce-observe.events and the audit topic)")
    p.add_argument("--audit-topic", default=None,
                   help="which topic holds audit lines (default: COMMERCE_OBSERVE_AUDIT_TOPIC, as the services write it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from commerce_observe.config import load_config
    from commerce_observe.store import kafka_io

    audit_topic = args.audit_topic or load_config().audit_topic
    store = open_store_from(args)
    topics = args.topic or [kafka_io.EVENTS_TOPIC, audit_topic]
    try:
        shipper = kafka_io.Shipper(store, args.bootstrap, group_id=args.group or kafka_io.SHIPPER_GROUP,
                                   topics=topics, audit_topic=audit_topic)
    except Exception as exc:  # kafka-python: NoBrokersAvailable, bad config...
        store.close()
        raise UsageError(f"Kafka at {args.bootstrap}: {failure(exc)}") from None

    def stop(*_: Any) -> None:
        shipper.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"commerce_observe: shipping {', '.join(topics)} into the store (group {args.group or kafka_io.SHIPPER_GROUP})\n")
    total = shipper.run()
    shipper.close()
    store.close()
    sys.stderr.write(f"commerce_observe: {shipper.messages} messages ({shipper.documents} documents), {total.written} written, "
                     f"{total.duplicates} duplicates, {total.rejected} rejected\n")
    return 0
