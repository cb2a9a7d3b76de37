"""``commerce-observe tour``: every headline feature on the embedded defaults, in about 15 seconds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from commerce_observe.monitor.cli.errors import count, port


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tour", help="the headline features on the embedded defaults, no server needed",
                              description=__doc__)
    p.add_argument("--out", default=".commerce-observe-tour", metavar="DIR",
                   help="folder for the tour's store, audit file, traces and history (emptied first; "
                        "default .commerce-observe-tour)")
    p.add_argument("--orders", type=enough_orders, default=40,
                   help="orders the shop takes, at least 3: one to lose, one to duplicate (default 40)")
    p.add_argument("--serve", action="store_true", help="serve the dashboard at the end until Ctrl-C")
    p.add_argument("--port", type=port, default=8050, help="dashboard port with --serve (default 8050)")
    p.set_defaults(func=run)


def enough_orders(raw: str) -> int:
    value = count(raw)
    if value < 3:
        raise argparse.ArgumentTypeError("must be at least 3 (the consumer crashes at two different orders)")
    return value


def run(args: argparse.Namespace) -> int:
    from commerce_observe.monitor.tour.story import tour

    return tour(Path(args.out), orders=args.orders, serve=args.serve, port=args.port)
