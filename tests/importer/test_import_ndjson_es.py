"""NDJSON documents into both stores, the CSV kinds into Elasticsearch, and the progress bar on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from commerce_observe.store.aggregates import to_document
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.queries import SERIES_BY, TimeRange
from commerce_observe.store.sqlite_store import SqliteStore
from tests.importer import history
from tests.importer.files import (
    ORDERS_HEADER, ORDERS_ROWS, PAYMENTS_HEADER, PAYMENTS_ROWS, run, write, write_ndjson,
)
from tests.monitoring import contract, dataset

DAY = TimeRange.of(*history.day())


def test_ndjson_documents_give_the_reference_figures_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The monitoring data set as NDJSON (events, items, audit records, findings, a score), imported twice."""
    docs = dataset.documents()
    path = write_ndjson(tmp_path / "events.ndjson", docs)
    for expected in (f"{len(docs)} documents stored, 0 already there", f"0 documents stored, {len(docs)} already there"):
        code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", path)
        assert code == 0 and f"NDJSON documents, {len(docs)} rows; {expected}" in lines[0], lines
    contract.check_figures(SqliteStore(str(tmp_path / "m.db")))


def test_ndjson_aggregates_offsets_and_masking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = [to_document(a) for a in history.aggregates()]
    docs[0]["@timestamp"] = "2024-03-04T01:00:00+01:00"  # the same instant, written with an offset
    event = {"@timestamp": "2024-03-04T05:00:00", "event.id": "e-mail", "event.action": "order.created",
             "commerce.record": "event", "commerce.currency": "EUR", "message": "from bob@example.com"}
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", write_ndjson(tmp_path / "h.jsonl", [*docs, event]))
    assert code == 0, lines
    store = SqliteStore(str(tmp_path / "m.db"))
    site = history.expected_series("site")
    got = [tuple(p) for p in store.series("site", DAY, 60)]
    assert got[:-1] == site and got[-1][:3] == (history.H0_MS + 5 * history.HOUR_MS, "", 1)
    stored = store._conn().execute("SELECT message FROM docs WHERE id = 'e-mail'").fetchone()[0]
    assert "bob@example.com" not in stored


@pytest.mark.elasticsearch
def test_csv_and_ndjson_into_elasticsearch(elasticsearch_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    stream = f"logs-commerce.events-t{uuid.uuid4().hex[:10]}"
    orders = write(tmp_path / "orders.csv", ORDERS_HEADER, ORDERS_ROWS)
    payments = write(tmp_path / "payments.csv", PAYMENTS_HEADER, PAYMENTS_ROWS)
    events = write_ndjson(tmp_path / "events.ndjson", dataset.documents())
    argv = ("--elasticsearch", elasticsearch_url, "--data-stream", stream, orders, payments, events)
    code, lines = run(capsys, *argv)
    assert code == 0 and ["5 aggregates stored, 0 already" in lines[0], "6 aggregates stored, 0 already" in lines[1]] \
        == [True, True], lines
    code, lines = run(capsys, *argv)
    assert code == 0 and all("; 0 documents stored" in x or "; 0 aggregates stored" in x for x in lines), lines
    es = ElasticsearchStore(elasticsearch_url, data_stream=stream)  # the command refreshed: searchable now
    for by in SERIES_BY:
        assert [tuple(p) for p in es.series(by, DAY, 60)] == history.expected_series(by), by
    contract.check_figures(es)
    bad = write(tmp_path / "more.csv", ORDERS_HEADER, ["2024-03-05T00:00:00Z,sku-a,x,1", "2024-03-05T01:00:00Z,sku-a,2,4"])
    code, lines = run(capsys, "--elasticsearch", elasticsearch_url, "--data-stream", stream, bad)
    assert code == 2 and lines == [f"commerce-observe import: {bad} line 2, field 'orders': not a whole number: 'x'"]
    code, lines = run(capsys, "--elasticsearch", elasticsearch_url, "--data-stream", stream, "--skip-bad", bad)
    assert code == 0 and "1 aggregates stored, 0 already there; 1 bad rows skipped" in lines[0], lines
    next_day = TimeRange.of(history.H0 + timedelta(days=1), history.H0 + timedelta(days=2))
    assert [(p.key, p.orders) for p in es.series("product", next_day, 60)] == [("sku-a", 2)]


def test_unreachable_elasticsearch_is_one_line(tmp_path: Path) -> None:
    from testbed.base import free_port

    path = write(tmp_path / "orders.csv", ORDERS_HEADER, ORDERS_ROWS)
    proc = subprocess.run([sys.executable, "-m", "commerce_observe", "import", "--elasticsearch",
                           f"http://127.0.0.1:{free_port()}", path], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    rows = [f"2024-03-04T{h:02d}:00:00Z,sku-{i},1,1.0" for h in range(24) for i in range(50)]
    path = write(tmp_path / "orders.csv", ORDERS_HEADER, rows)
    argv = [sys.executable, "-m", "commerce_observe", "import", "--store", f"sqlite:{tmp_path / 'm.db'}",
            "--batch", "100", path]
    piped = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "\r" not in piped.stderr and len(piped.stderr.splitlines()) == 1
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the follower closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    text = seen.decode()
    assert "\rorders.csv [" in text and "% " in text and "rows/s" in text, text
    assert text.rstrip().splitlines()[-1].strip().startswith(path), text  # the bar is erased by the summary


def test_sample_history_imports_as_three_months_with_offsets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime, timezone

    from commerce_observe.monitor.importer.sample import write_sample

    end = datetime(2026, 3, 20, 14, 30, tzinfo=timezone.utc)
    orders, payments = write_sample(str(tmp_path / "s"), products=12, weeks=3, end=end)
    first = Path(orders).read_text().splitlines()[1]
    assert first.startswith("2026-02-27T15:00:00+01:00,")  # 14:00Z three weeks before, Berlin time
    assert Path(payments).read_text().splitlines()[0].startswith("timestamp,method,attempts,failures,insufficient_funds")
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", orders, payments)
    assert code == 0 and all("bucket 1h (read from the data)" in x for x in lines), lines
    store = SqliteStore(str(tmp_path / "m.db"))
    span = TimeRange.of(end.replace(year=2025), end)
    hours = {p.bucket_ms for p in store.series("site", span, 60)}
    assert len(hours) == 3 * 7 * 24 and max(hours) == int(end.timestamp()) // 3600 * 3_600_000 - 3_600_000
    assert len({p.key for p in store.series("method", span, 60)}) == 4
    assert sum(c.count for c in store.failures_by_reason(span)) == sum(p.failures for p in store.series("method", span, 60))


def test_sample_option_writes_and_imports_thirteen_weeks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", "--sample", str(tmp_path / "s"),
                      "--sample-products", "10")
    assert code == 0 and len(lines) == 2, lines
    assert lines[0].startswith(f"{tmp_path / 's' / 'orders.csv'}: orders CSV") and "payments CSV, 8,736 rows" in lines[1]
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", "--sample", str(tmp_path / "s"),
                      "--sample-products", "5")
    assert code == 2 and lines == ["commerce-observe import: argument --sample-products: 5 products: the sample needs "
                                   "at least 10 (see commerce-observe import --help)"]
