"""The ``commerce-observe`` command.

Each sub-command lives in its own module of this package and defines
``register(subparsers)``; this file only assembles them (the :data:`COMMANDS`
registry), importing each command's heavy dependencies (numpy, Kafka clients)
lazily inside its ``run``.

Bad input, for every sub-command, is one line on stderr and exit code 2, never a
traceback (see :mod:`commerce_observe.monitor.cli.errors`): sub-parsers are
:class:`~commerce_observe.monitor.cli.errors.Parser` (one-line argparse errors,
plain-text help with defaults shown), options use the argument types of that
module (files, ports, times, time zones, store specs, shares, counts), and
:func:`main` turns a :class:`~commerce_observe.monitor.cli.errors.UsageError`, a
configuration error or an ``OSError`` raised by ``run`` into that one line. An
unexpected exception is one line and exit code 1 (``--debug`` shows the
traceback). Everything the command prints passes the privacy masker (card
numbers, e-mails, phones, URL credentials). A new sub-command gets all this by
being listed in :data:`COMMANDS`; ``tests/cli/`` enumerates that list.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from commerce_observe.monitor.cli.errors import Parser, UsageError, main_guard
from commerce_observe.monitor.cli.output import masked_output

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

COMMANDS: tuple[str, ...] = ("tour", "demo", "audit", "anomaly", "dashboard", "ship", "alerts", "watch", "import")
#: The module of a command whose name is not a valid module name (``import`` is a keyword).
MODULES: dict[str, str] = {"import": "import_history"}
PROG = "commerce-observe"


def build_parser() -> argparse.ArgumentParser:
    from commerce_observe import __version__

    parser = Parser(
        prog=PROG,
        description="Order and payment events observable end to end: traces, audit, monitoring, anomalies.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        qualified = f"commerce_observe.monitor.cli.{MODULES.get(name, name)}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                continue  # that command is not shipped in this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with masked_output():
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a one-line parse error: returned, not raised
            return exc.code if isinstance(exc.code, int) else 2
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        prog = f"{PROG} {args.command}"
        return main_guard(prog, lambda: int(args.func(args)), debug=args.debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
