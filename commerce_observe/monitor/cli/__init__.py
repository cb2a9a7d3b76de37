"""The ``commerce-observe`` command.

Each sub-command lives in its own module of this package and defines
``register(subparsers)``; this file only assembles them, importing each command's
heavy dependencies (numpy, Kafka clients) lazily inside its ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: tuple[str, ...] = ("demo", "audit", "anomaly", "dashboard", "ship", "alerts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commerce-observe",
        description="Order and payment events observable end to end: traces, audit, monitoring, anomalies.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"commerce_observe.monitor.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"commerce_observe.monitor.cli.{name}":
                continue  # that command is not shipped in this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
