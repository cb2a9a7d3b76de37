"""The monitoring store options shared by ``commerce-observe ship`` and ``dashboard``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from commerce_observe.monitor.cli.errors import UsageError, failure, redact_url, store_spec, url

if TYPE_CHECKING:
    from commerce_observe.store.store import EventStore

DEFAULT_DB = "commerce-monitoring.db"


def add_store_args(p: argparse.ArgumentParser) -> None:
    """``--store sqlite:PATH`` or ``--elasticsearch URL`` (with ``--data-stream``)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--store", type=store_spec, default=None, metavar="SPEC",
                       help=f"sqlite:PATH of the embedded store, or an Elasticsearch URL (default sqlite:{DEFAULT_DB})")
    where.add_argument("--elasticsearch", type=url, metavar="URL", default=None,
                       help="use the Elasticsearch data stream at this URL instead")
    p.add_argument("--data-stream", default=None, help="Elasticsearch data stream (default logs-commerce.events-default)")


def open_spec(spec: str, **options: Any) -> EventStore:
    """Open a store named on the command line; unreachable or unusable is a one-line UsageError."""
    from commerce_observe.store.store import open_store

    try:
        return open_store(spec, **options)
    except Exception as exc:  # ES down, SQLite path in a missing directory, not a database...
        raise UsageError(f"store {redact_url(spec)}: cannot open it ({failure(exc)})") from None


def open_store_from(args: argparse.Namespace) -> EventStore:
    """The store :func:`add_store_args` options name."""
    if args.elasticsearch:
        return open_spec(args.elasticsearch, **({"data_stream": args.data_stream} if args.data_stream else {}))
    return open_spec(args.store or f"sqlite:{DEFAULT_DB}")
