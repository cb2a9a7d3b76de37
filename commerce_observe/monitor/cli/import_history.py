"""``commerce-observe import``: load history into the monitoring store (see docs/import.md).

Files are NDJSON store documents (``.ndjson``/``.jsonl``/``.json``) or warehouse
CSV exports, recognised by their header:

  orders:   timestamp,product_id,orders,revenue[,currency][,quantity]
  payments: timestamp,method,attempts,failures[,<reason>...]

Timestamps are ISO 8601 with an offset (without one: UTC). Importing a file
again counts nothing twice. A bad row stops the import with one line naming the
file, the line and the field (exit code 2), unless --skip-bad counts and skips it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from commerce_observe.monitor.cli._store import add_store_args, open_store_from
from commerce_observe.monitor.cli.errors import UsageError, input_file, positive


def history_file(raw: str) -> str:
    """A readable history file: text, or a ``.gz`` file (decompressed while read)."""
    if raw.endswith(".gz") and raw != ".gz":
        if not os.path.isfile(raw):
            raise argparse.ArgumentTypeError(f"{raw}: no such file")
        return raw
    return input_file(raw)


def bucket(raw: str) -> int:
    """A bucket size: ``15m``, ``1h``, ``1d`` (seconds)."""
    from commerce_observe.monitor.importer.buckets import parse_bucket

    try:
        return parse_bucket(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def currency(raw: str) -> str:
    """A currency code such as EUR (what the revenue of an orders CSV without a currency column is in)."""
    code = raw.strip()
    if not code.isalpha() or len(code) > 8:
        raise argparse.ArgumentTypeError(f"not a currency code: {raw!r} (for example EUR)")
    return code.upper()


def sample_products(raw: str) -> int:
    """How many products the sample shop sells: 10 or more (its incidents need a few busy ones)."""
    value = positive(raw)
    if value < 10:
        raise argparse.ArgumentTypeError(f"{value} products: the sample needs at least 10")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("import", help="load history (NDJSON documents, warehouse CSV aggregates) into the store",
                              description=__doc__)
    p.add_argument("files", nargs="*", metavar="FILE", type=history_file,
                   help="files to import, in order (.gz files are decompressed)")
    add_store_args(p)
    p.add_argument("--format", choices=("auto", "ndjson", "orders", "payments"), default="auto",
                   help="what the files are (auto: by name and CSV header)")
    p.add_argument("--bucket", type=bucket, default=None, metavar="SIZE",
                   help="bucket size of the CSV rows, 15m, 1h, 1d (default: the smallest gap between timestamps)")
    p.add_argument("--currency", type=currency, default="EUR", help="currency of the revenue in an orders CSV without a currency column")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows and count them instead of stopping")
    p.add_argument("--sample", metavar="DIR",
                   help="first write a realistic 3-month sample history (orders.csv, payments.csv) into DIR, "
                        "then import it with the files")
    p.add_argument("--sample-products", type=sample_products, default=200, metavar="N", help="products in the sample")
    p.add_argument("--batch", type=positive, default=20_000, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import every file; a user's mistake (bad row, file, store) is a UsageError: one line, exit code 2."""
    from commerce_observe.monitor.importer.job import Options, import_file
    from commerce_observe.monitor.importer.validation import BadInput
    from commerce_observe.store.es_client import EsError
    from commerce_observe.store.store import StoreUnavailable

    files = list(args.files)
    err = sys.stderr
    try:
        if args.sample:
            from commerce_observe.monitor.importer.sample import write_sample

            try:
                files = [*write_sample(args.sample, products=args.sample_products), *files]
            except ModuleNotFoundError as exc:
                raise BadInput(f"--sample needs {exc.name}: pip install 'commerce-observe[anomaly]'") from None
        if not files:
            raise BadInput("no file given (or --sample DIR)")
        options = Options(format=args.format, bucket_s=args.bucket, currency=args.currency, skip_bad=args.skip_bad,
                          batch=args.batch)
        store = open_store_from(args)
        try:
            for path in files:
                err.write(import_file(store, path, options, err).line() + "\n")
            refresh = getattr(store, "refresh", None)
            if callable(refresh):
                refresh()  # Elasticsearch: searchable now, not at the next refresh interval
        finally:
            store.close()
    except BadInput as exc:
        raise UsageError(str(exc)) from None
    except (StoreUnavailable, EsError, sqlite3.Error) as exc:
        raise UsageError(f"the store refused: {exc}") from None
    except KeyboardInterrupt:
        err.write("commerce-observe import: interrupted; what was read is stored, and a new run counts it once\n")
        return 130
    return 0
