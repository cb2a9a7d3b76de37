"""One file into the store: recognise it, read it in batches, write them, report.

The format comes from ``--format`` or, by default, from the file: ``.ndjson``,
``.jsonl`` or ``.json`` (optionally ``.gz``) are documents, anything else is a
CSV whose header says orders or payments. For CSV the bucket is ``--bucket`` or
the smallest gap between the file's timestamps (a first, quick pass over that
column). A bad row stops the import with a :class:`BadRow` (the rows before it
are stored, and a second run counts them once), or with ``skip_bad`` is counted
and skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, Any

from commerce_observe.agent.privacy import Masker
from commerce_observe.monitor.importer import csv_layout, csv_rows, ndjson
from commerce_observe.monitor.importer.buckets import format_bucket, infer_bucket, smallest_gap_s
from commerce_observe.monitor.importer.progress import Progress
from commerce_observe.monitor.importer.validation import BadInput, Timestamps
from commerce_observe.monitor.importer.writer import BatchWriter, Write
from commerce_observe.store.store import EventStore, WriteResult

FORMATS = ("auto", "ndjson", csv_layout.ORDERS, csv_layout.PAYMENTS)
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")


@dataclass(frozen=True)
class Options:
    format: str = "auto"
    bucket_s: int | None = None  # None: read from the data
    currency: str = "EUR"  # orders CSV without a currency column
    skip_bad: bool = False
    batch: int = 20_000


@dataclass
class FileReport:
    path: str
    kind: str = ""
    rows: int = 0
    bad: int = 0
    first_bad: str | None = None
    bucket: str | None = None  # "1h (read from the data)" / "1h (given)"
    result: WriteResult = field(default_factory=WriteResult)
    ignored: tuple[str, ...] = ()
    note: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        """The one summary line printed for the file."""
        what = f"{self.kind} CSV" if self.kind in (csv_layout.ORDERS, csv_layout.PAYMENTS) else "NDJSON documents"
        unit = "aggregates" if self.kind != "ndjson" else "documents"
        parts = [f"{self.path}: {what}, {self.rows:,} rows" + (f", bucket {self.bucket}" if self.bucket else ""),
                 f"{self.result.written:,} {unit} stored, {self.result.duplicates:,} already there"
                 + (f", {self.result.rejected:,} refused by the store" if self.result.rejected else "")]
        if self.bad:
            parts.append(f"{self.bad:,} bad rows skipped (first: {self.first_bad})")
        if self.ignored:
            parts.append(f"columns ignored: {', '.join(self.ignored)}")
        if self.note:
            parts.append(self.note)
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        parts.append(f"{self.seconds:.1f} s, {rate:,.0f} rows/s")
        return "; ".join(parts)


@contextmanager
def open_text(path: str) -> Iterator[tuple[IO[bytes], IO[str]]]:
    """(the raw file, for progress by bytes; its text, decompressed when ``.gz``)."""
    raw = open(path, "rb")
    try:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw  # type: ignore[assignment]
        yield raw, io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    finally:
        raw.close()


def _undecodable_line(path: str) -> int:
    """The first line that is not UTF-8 (the text reader fails a chunk ahead, not at the line)."""
    with open(path, "rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw  # type: ignore[assignment]
        for number, line in enumerate(stream, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def kind_of(path: str, options: Options) -> str:
    if options.format != "auto":
        return options.format
    name = path[:-3] if path.endswith(".gz") else path
    return "ndjson" if name.lower().endswith(NDJSON_SUFFIXES) else "csv"


def import_file(store: EventStore, path: str, options: Options, stream: IO[str],
                progress: bool | None = None) -> FileReport:
    """Import one file; BadInput (or BadRow) for what the user must fix, OSError for a file that cannot be read."""
    report = FileReport(path)
    tally = csv_rows.Tally(path, options.skip_bad)
    started = time.monotonic()
    bar = Progress(os.path.basename(path), os.path.getsize(path), stream, enabled=progress)
    kind = kind_of(path, options)
    masker = Masker()
    with open_text(path) as (raw, text):
        try:
            if kind == "ndjson":
                report.kind = "ndjson"
                batches: Iterator[list[Any]] = ndjson.document_batches(text, tally, options.batch, masker)
                result = _pump(store.write, batches, raw, tally, bar)
            else:
                result = _import_csv(store, path, text, raw, options, report, tally, masker, bar)
        except UnicodeDecodeError:
            raise BadInput(f"{path} line {_undecodable_line(path)}: not UTF-8 text") from None
        except csv.Error as exc:
            raise BadInput(f"{path}: unreadable CSV after {tally.rows:,} rows ({exc})") from None
        finally:
            bar.finish()
    report.rows, report.bad, report.first_bad, report.result = tally.rows, tally.bad, tally.first_bad, result
    report.seconds = time.monotonic() - started
    return report


def _import_csv(store: EventStore, path: str, text: IO[str], raw: IO[bytes], options: Options, report: FileReport,
                tally: csv_rows.Tally, masker: Masker, bar: Progress) -> WriteResult:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise BadInput(f"{path}: empty file (expected a CSV header)")
    want = None if options.format in ("auto", "csv") else options.format
    layout = csv_layout.layout_of(path, header, want)
    report.kind, report.ignored = layout.kind, layout.ignored
    bucket_s = options.bucket_s
    if bucket_s is None:
        with open_text(path) as (_, again):
            bucket_s = infer_bucket(path, csv.reader(again), layout.index["timestamp"])
        report.bucket = f"{format_bucket(bucket_s)} (read from the data)"
    else:
        report.bucket = f"{format_bucket(bucket_s)} (given)"
    ts_of, names = Timestamps(), csv_rows.Names(masker)
    batches: Iterator[list[Any]]
    if layout.kind == csv_layout.ORDERS:
        batches = csv_rows.order_batches(reader, layout, tally, ts_of, names, bucket_s, options.currency, options.batch)
        write: Write = store.write_aggregates
    else:
        batches = csv_rows.payment_batches(reader, layout, tally, ts_of, names, bucket_s, options.batch)
        write = store.write_payment_buckets
    result = _pump(write, batches, raw, tally, bar)
    gap = smallest_gap_s(ts_of.distinct)
    if options.bucket_s is not None and gap is not None and gap < options.bucket_s:
        report.note = f"note: timestamps only {format_bucket(gap)} apart, less than the bucket given"
    return result


def _pump(write: Write, batches: Iterator[list[Any]], raw: IO[bytes], tally: csv_rows.Tally,
          bar: Progress) -> WriteResult:
    """Read batches and hand them to the writer thread; the writer's error or a bad row ends it."""
    writer = BatchWriter(write)
    try:
        for batch in batches:
            writer.put(batch)
            bar.update(raw.tell() if raw.seekable() else 0, tally.rows)  # a named pipe has no position
    except BaseException:
        with suppress(Exception):  # the first error is the one to report
            writer.close()  # what was read before a bad row is stored: a second run counts it once
        raise
    return writer.close()
