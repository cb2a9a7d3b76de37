"""The monitoring store options shared by ``commerce-observe ship`` and ``dashboard``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from commerce_observe.store.store import EventStore

DEFAULT_DB = "commerce-monitoring.db"


def add_store_args(p: argparse.ArgumentParser) -> None:
    """``--store sqlite:PATH`` or ``--elasticsearch URL`` (with ``--data-stream``)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--store", default=None, help=f"sqlite:PATH of the embedded store (default sqlite:{DEFAULT_DB})")
    where.add_argument("--elasticsearch", metavar="URL", default=None,
                       help="use the Elasticsearch data stream at this URL instead")
    p.add_argument("--data-stream", default=None, help="Elasticsearch data stream (default logs-commerce.events-default)")


def open_store_from(args: argparse.Namespace) -> EventStore:
    """The store :func:`add_store_args` options name."""
    from commerce_observe.store.store import open_store

    if args.elasticsearch:
        return open_store(args.elasticsearch, **({"data_stream": args.data_stream} if args.data_stream else {}))
    return open_store(args.store or f"sqlite:{DEFAULT_DB}")
