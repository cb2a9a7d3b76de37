"""``commerce-observe import`` of warehouse CSV into the embedded store: figures, offsets, buckets, idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_observe.store.queries import SERIES_BY, TimeRange
from commerce_observe.store.sqlite_store import SqliteStore
from tests.importer import history
from tests.importer.files import ORDERS_HEADER, ORDERS_ROWS, PAYMENTS_HEADER, PAYMENTS_ROWS, run, write

DAY = TimeRange.of(*history.day())


def import_both(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, list[str]]:
    db = f"sqlite:{tmp_path / 'm.db'}"
    orders = write(tmp_path / "orders.csv", ORDERS_HEADER, ORDERS_ROWS)
    payments = write(tmp_path / "payments.csv", PAYMENTS_HEADER, PAYMENTS_ROWS)
    code, lines = run(capsys, "--store", db, orders, payments, *extra)
    assert code == 0, lines
    return db, lines


def test_orders_and_payments_give_the_hand_computed_figures(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The rows are tests/importer/history.py's figures, with offsets (+01:00, Z, none = UTC, +05:30, -03:00)."""
    db, lines = import_both(tmp_path, capsys)
    assert lines[0].startswith(f"{tmp_path / 'orders.csv'}: orders CSV, 5 rows, bucket 1h (read from the data); "
                               "5 aggregates stored, 0 already there")
    assert "payments CSV, 4 rows, bucket 1h (read from the data); 6 aggregates stored" in lines[1]
    store = SqliteStore(db.split(":", 1)[1])
    for by in SERIES_BY:
        assert [tuple(p) for p in store.series(by, DAY, 60)] == history.expected_series(by), by
    assert [(c.key, c.count) for c in store.failures_by_reason(DAY)] == [("fraud_suspected", 4), ("declined", 3)]
    assert [(r.currency, r.orders) for r in store.revenue(DAY)] == [("EUR", 17)]


def test_importing_again_counts_nothing_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = import_both(tmp_path, capsys)
    store = SqliteStore(db.split(":", 1)[1])
    before = [list(store.series(by, DAY, 60)) for by in SERIES_BY]
    _, lines = import_both(tmp_path, capsys)
    assert "0 aggregates stored, 5 already there" in lines[0]
    assert "0 aggregates stored, 6 already there" in lines[1]
    assert [list(store.series(by, DAY, 60)) for by in SERIES_BY] == before


def test_currency_and_quantity_columns_and_ignored_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "o.csv", "Timestamp, Product_ID ,orders,revenue,currency,quantity,product_name",
                 ["2024-03-04T00:00:00Z,sku-a,2,10.00,USD,5,Apples", "2024-03-04T01:00:00Z,sku-a,1,3,GBP,1,Apples"])
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", path)
    assert code == 0 and "columns ignored: product_name" in lines[0]
    store = SqliteStore(str(tmp_path / "m.db"))
    assert [(r.currency, r.orders, str(r.revenue)) for r in store.revenue(DAY)] == [("GBP", 1, "3.000"),
                                                                                     ("USD", 2, "10.000")]
    assert [(p.product_id, p.quantity, p.lines) for p in store.top_products(DAY)] == [("sku-a", 6, 3)]


@pytest.mark.parametrize(("stamps", "given", "expected"), [
    (["00:00", "00:15", "00:45", "03:00"], (), "15m (read from the data)"),  # gaps 15, 30 and 135 minutes
    (["00:00", "01:00", "05:00"], (), "1h (read from the data)"),  # a quiet night makes gaps longer, not shorter
    (["00:00", "00:00"], ("--bucket", "1d"), "1d (given)"),  # one timestamp: only a given bucket will do
])
def test_bucket_read_from_the_data_or_given(tmp_path: Path, capsys: pytest.CaptureFixture[str], stamps: list[str],
                                            given: tuple[str, ...], expected: str) -> None:
    rows = [f"2024-03-04T{hm}:00Z,sku-{i},1,1.0" for i, hm in enumerate(stamps)]
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", write(tmp_path / "o.csv", ORDERS_HEADER, rows),
                      *given)
    assert code == 0 and f"bucket {expected};" in lines[0]


def test_one_timestamp_without_bucket_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "o.csv", ORDERS_HEADER, ["2024-03-04T00:00:00Z,sku-a,1,1.0"])
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", path)
    assert code == 2 and lines == [f"commerce-observe import: {path}: cannot read the bucket size from a single "
                                   "timestamp; give it with --bucket (1h, 1d...)"]


def test_a_bucket_larger_than_the_gaps_is_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "o.csv", ORDERS_HEADER, ["2024-03-04T00:00:00Z,a,1,1", "2024-03-04T00:30:00Z,a,1,1"])
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", "--bucket", "1h", path)
    assert code == 0 and "note: timestamps only 30m apart, less than the bucket given" in lines[0]


def test_gzip_and_forced_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    path = tmp_path / "export.txt.gz"
    path.write_bytes(gzip.compress(("\n".join([ORDERS_HEADER, *ORDERS_ROWS]) + "\n").encode()))
    code, lines = run(capsys, "--store", f"sqlite:{tmp_path / 'm.db'}", "--format", "orders", str(path))
    assert code == 0 and "5 aggregates stored" in lines[0]
