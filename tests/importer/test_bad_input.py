"""Bad rows and bad files: one line naming the file, the line and the field, exit code 2, never a traceback;
or, with --skip-bad, skipped and counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from commerce_observe.store.queries import TimeRange
from commerce_observe.store.sqlite_store import SqliteStore
from tests.importer import history
from tests.importer.files import ORDERS_HEADER, PAYMENTS_HEADER, run, write

GOOD = "2024-03-04T00:00:00Z,sku-a,1,1.0"
GOOD2 = "2024-03-04T01:00:00Z,sku-b,2,4.0"
PAY = "2024-03-04T00:00:00Z,card,10,3,2,1"

CASES = [  # (header, bad row, field named, words of the problem)
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,abc,1.0", "orders", "not a whole number: 'abc'"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,-2,1.0", "orders", "a count cannot be negative: '-2'"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,1.5,1.0", "orders", "not a whole number: '1.5'"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,1,", "revenue", "empty"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,1,nan", "revenue", "not a number: 'nan'"),
    (ORDERS_HEADER, "yesterday,sku-a,1,1.0", "timestamp", "not an ISO 8601 timestamp: 'yesterday'"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,,1,1.0", "product_id", "empty"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,1", None, "3 fields, the header has 4 (a field is missing)"),
    (ORDERS_HEADER, "2024-03-04T01:00:00Z,sku-a,4111 1111 1111 1111,1", "orders", "'[CARD ****1111]'"),
    (PAYMENTS_HEADER, "2024-03-04T01:00:00Z,card,5,7,,", "failures", "7 failures out of 5 attempts"),
    (PAYMENTS_HEADER, "2024-03-04T01:00:00Z,card,9,3,2,2", "declined", "the reasons add up to 4, more than the 3"),
    (PAYMENTS_HEADER, "2024-03-04T01:00:00Z,card,9,3,x,", "declined", "not a whole number: 'x'"),
]


@pytest.mark.parametrize(("header", "bad", "field", "problem"), CASES)
def test_a_bad_row_is_one_line_naming_file_line_field(tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str,
                                                      bad: str, field: str | None, problem: str) -> None:
    good = [GOOD, GOOD2] if header == ORDERS_HEADER else [PAY]
    path = write(tmp_path / "h.csv", header, [*good, bad])
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", "--bucket", "1h", path)
    where = f"{path} line {len(good) + 2}" + (f", field {field!r}" if field else "")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"commerce-observe import: {where}: ") and problem in lines[0], lines[0]
    assert "4111" not in lines[0]


def test_skip_bad_counts_and_keeps_the_good_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [GOOD, "2024-03-04T01:00:00Z,sku-a,abc,1.0", GOOD2, "2024-03-04T02:00:00Z,sku-a,1", "",
            "2024-03-04T03:00:00Z,sku-a,1,1.0"]
    path = write(tmp_path / "h.csv", ORDERS_HEADER, rows)
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", "--skip-bad", path)
    assert code == 0, lines
    assert (f"5 rows, bucket 1h (read from the data); 3 aggregates stored, 0 already there; 2 bad rows skipped "
            f"(first: {path} line 3, field 'orders': not a whole number: 'abc')") in lines[0]
    store = SqliteStore(str(tmp_path / "m.db"))
    assert sum(p.orders for p in store.series("site", TimeRange.of(*history.day()), 60)) == 4


def test_rows_before_a_bad_row_are_stored_and_a_second_run_counts_them_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "h.csv", ORDERS_HEADER, [GOOD, GOOD2, "2024-03-04T02:00:00Z,sku-a,x,1"])
    assert run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", path)[0] == 2
    write(tmp_path / "h.csv", ORDERS_HEADER, [GOOD, GOOD2, "2024-03-04T02:00:00Z,sku-a,5,1"])
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", path)
    assert code == 0 and "1 aggregates stored, 2 already there" in lines[0]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file (expected a CSV header)"),
    ("when,what\n1,2\n", "line 1: not a history CSV header ('when,what')"),
    ("timestamp,product_id,orders\n", "line 1, field 'revenue': missing from the header of an orders CSV"),
    ("timestamp,method,attempts,failures,declined,declined\n", "line 1, field 'declined': named twice"),
])
def test_bad_headers(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = tmp_path / "h.csv"
    path.write_text(text)
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", str(path))
    assert code == 2 and lines == [f"commerce-observe import: {path}: {message}"] if message.startswith("empty") else \
        lines[0].startswith(f"commerce-observe import: {path} {message}"), lines


def test_bad_ndjson_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"@timestamp": "2024-03-04T00:00:00Z", "event.id": "e1", "event.action": "order.created",
            "commerce.record": "event"}
    cases = [("{not json", None, "not JSON"), (json.dumps({**good, "event.id": ""}), "event.id", "not a non-empty string"),
             (json.dumps({**good, "@timestamp": "soon"}), "@timestamp", "not an ISO 8601 timestamp: 'soon'"),
             (json.dumps({**good, "commerce.record": "aggregate"}), "commerce.aggregate.count", "missing"),
             (json.dumps({**good, "commerce.record": "blob"}), "commerce.record", "unknown record 'blob'")]
    for bad, field, problem in cases:
        path = tmp_path / "d.ndjson"
        path.write_text(json.dumps(good) + "\n\n" + bad + "\n")
        code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", str(path))
        where = f"{path} line 3" + (f", field {field!r}" if field else "")
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"commerce-observe import: {where}: "), lines
        assert problem in lines[0]


def test_missing_file_binary_file_and_bad_options_exit_2_without_traceback(tmp_path: Path) -> None:
    """Run as a process: what a user sees, exit code and all."""
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"timestamp,product_id,orders,revenue\n\xff\xfe\x00\x01\n")
    late = tmp_path / "late.csv"  # not UTF-8 only past what the argument check reads
    late.write_bytes(("timestamp,product_id,orders,revenue\n" + "2024-03-04T00:00:00Z,a,1,1\n" * 2000).encode()
                     + b"2024-03-04T01:00:00Z,caf\xe9,1,1\n")
    for argv, words in ((["nope.csv"], "nope.csv: no such file"),
                        ([str(binary), "--bucket", "1h"], "a binary file"),
                        ([str(late), "--bucket", "1h"], "late.csv line 2002: not UTF-8 text"),
                        (["--bucket", "soon", "x.csv"], "not a bucket size: 'soon'"),
                        ([], "no file given")):
        proc = subprocess.run([sys.executable, "-m", "commerce_observe", "import", "--store",
                               f"sqlite:{tmp_path / 'm.db'}", *argv], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
