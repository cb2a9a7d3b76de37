"""The embedded store on the known data set: figures, idempotence, sub-ranges."""

from __future__ import annotations

from pathlib import Path

from commerce_observe.store.sqlite_store import SqliteStore
from commerce_observe.store.store import open_store
from tests.monitoring import contract, dataset


def test_figures_match_the_reference_after_redelivery(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    contract.load(store)
    contract.check_figures(store)
    contract.check_subrange(store)
    contract.check_wide_ranges(store)


def test_reopened_file_keeps_counts_and_stays_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = open_store(f"sqlite:{path}")
    contract.load(first)
    first.close()
    second = open_store(str(path))
    assert second.write(dataset.documents()).written == 0
    contract.check_figures(second)


def test_bad_documents_are_rejected_not_raised(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    result = store.write([{"event.id": "x"}, {"@timestamp": "nonsense", "event.id": "y", "commerce.record": "event",
                                              "event.action": "order.created"}])
    assert result.rejected == 2 and result.written == 0
