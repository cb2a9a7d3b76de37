"""The documents the dashboard lists: alert states, anomaly scores with their band, and old SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from commerce_observe.monitor.alerts.model import Alert
from commerce_observe.store import documents as d
from commerce_observe.store.sqlite_store import SqliteStore
from tests.monitoring.dataset import Score

SINCE = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def alert() -> Alert:
    return Alert(key="orders|orders:sku-1", rule="orders", title="orders dropped", severity="critical",
                 where=(("product", "sku-1"),), since=SINCE, measure="anomaly score 91/100 (2 vs 30.0 expected)",
                 value=91.0, links=(("zipkin trace abc", "http://zipkin.test/zipkin/traces/abc"),))


def test_an_alert_is_one_document_per_state_tied_by_its_id() -> None:
    firing = d.alert_document(alert())
    resolved = d.alert_document(alert().resolved(SINCE + timedelta(hours=2)))
    assert firing[d.ALERT_ID] == resolved[d.ALERT_ID]
    assert firing["event.id"] != resolved["event.id"]
    assert (firing["@timestamp"], resolved["@timestamp"]) == ("2024-05-01T10:00:00.000Z", "2024-05-01T12:00:00.000Z")
    assert (firing[d.ALERT_STATUS], resolved[d.ALERT_STATUS]) == ("firing", "resolved")
    assert firing["commerce.alert.where"] == "product sku-1"
    assert firing["commerce.alert.links"] == [["zipkin trace abc", "http://zipkin.test/zipkin/traces/abc"]]
    assert d.alert_document(alert()) == firing  # the same alert written again is the same document


def test_anomaly_document_names_metric_entity_and_band() -> None:
    doc = d.anomaly_document(Score("payment_failures:card", SINCE, 88.0, 0.4, 0.05), band=(0.01, 0.09))
    assert (doc[d.ANOMALY_METRIC], doc[d.ANOMALY_ENTITY]) == ("payment_failures", "card")
    assert (doc[d.ANOMALY_LOWER], doc[d.ANOMALY_UPPER]) == (0.01, 0.09)
    site = d.anomaly_document(Score("orders", SINCE, None, 3.0, None))
    assert d.ANOMALY_ENTITY not in site and d.ANOMALY_SCORE not in site and d.ANOMALY_LOWER not in site


def test_a_file_from_before_the_new_columns_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE docs(id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, record TEXT NOT NULL, "
                     "action TEXT NOT NULL, currency TEXT, method TEXT, reason TEXT, amount_milli INTEGER, "
                     "product_id TEXT, quantity INTEGER, latency_ms REAL, kind TEXT, event_id TEXT, event_type TEXT, "
                     "order_id TEXT, payment_id TEXT, trace_id TEXT, message TEXT) WITHOUT ROWID")
    store = SqliteStore(str(path))
    assert store.write([d.alert_document(alert())]).written == 1
    store.close()
    with sqlite3.connect(path) as conn:
        cols = [row[1] for row in conn.execute("PRAGMA table_info(docs)")]
    assert cols[-3:] == ["series", "score", "body"]
