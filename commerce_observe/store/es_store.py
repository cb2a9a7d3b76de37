"""The production store: documents in an Elasticsearch data stream, queries as aggregations.

Same :class:`~commerce_observe.store.queries.MetricsQuery` answers as the
SQLite store, computed by Elasticsearch: per-minute counts with a
``date_histogram``, revenue with ``sum`` per currency ``terms``, top products as
``terms`` over item documents ordered by summed quantity, latency as ``stats``
plus a ``range`` histogram with the same bounds. Ranges use epoch milliseconds,
``gte`` start and ``lt`` end, like the rollups' whole minutes. Counts are the
``sum`` of ``commerce.aggregate.count`` with ``missing: 1`` rather than
``doc_count``: an event document counts 1, an imported aggregate its count.

Idempotence caveat: ``_id`` uniqueness holds per backing index, so an event
redelivered right across a rollover could be stored twice; redeliveries come
within seconds, rollovers once a day.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from commerce_observe.store import documents as d
from commerce_observe.store import es_mapping, es_series, incidents
from commerce_observe.store.aggregates import AGGREGATE, BUCKET_S, Aggregate, PaymentBucket, expand, to_document
from commerce_observe.store.es_client import BulkWriter, EsHttp
from commerce_observe.store.es_series import COUNTED, N, PAYMENT_ACTIONS, PRODUCT_LINES
from commerce_observe.store.es_series import count_of as _n
from commerce_observe.store.es_series import terms as _terms
from commerce_observe.store.queries import (
    LATENCY_BOUNDS_MS, AlertRow, AnomalyRow, CountRow, LatencyStats, MinuteRow, OpenAlertRow, ProductRow,
    RevenueRow, SeriesPoint, TimeRange, TrendRow, aov, by_count, money,
)
from commerce_observe.store.store import WriteResult

SCORE_FIELDS = (d.ANOMALY_ACTUAL, d.ANOMALY_EXPECTED, d.ANOMALY_LOWER, d.ANOMALY_UPPER)


class ElasticsearchStore:
    """:class:`~commerce_observe.store.store.EventStore` over one data stream."""

    def __init__(self, url: str, *, data_stream: str = es_mapping.DATA_STREAM, setup: bool = True,
                 refresh_on_write: bool = False, batch_docs: int = 2000, batch_bytes: int = 5 * 2**20,
                 max_in_flight: int = 2, **http_options: Any) -> None:
        self.http = EsHttp(url, **http_options)
        self.data_stream = data_stream
        self.setup_notes = es_mapping.install(self.http) if setup else []
        if setup:
            es_mapping.add_new_fields(self.http, data_stream)
        self.writer = BulkWriter(self.http, data_stream, batch_docs=batch_docs, batch_bytes=batch_bytes,
                                 max_in_flight=max_in_flight, refresh=refresh_on_write)

    def write(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult:
        good = [doc for doc in docs if "event.id" in doc and "@timestamp" in doc]
        return self.writer.write(good) + WriteResult(rejected=len(docs) - len(good))

    def write_aggregates(self, aggs: Sequence[Aggregate]) -> WriteResult:
        return self.writer.write([to_document(a) for a in aggs])

    def write_payment_buckets(self, buckets: Sequence[PaymentBucket]) -> WriteResult:
        """The aggregate documents of each bucket (Elasticsearch counts by document)."""
        return self.writer.write([to_document(a) for b in buckets for a in expand(b)])

    def series(self, by: str, r: TimeRange, bucket_minutes: int = 60) -> Iterator[SeriesPoint]:
        """See :meth:`~commerce_observe.store.queries.MetricsQuery.series` (a paged composite aggregation)."""
        return es_series.series(self.http, self.data_stream, by, r, bucket_minutes)

    def import_bucket_minutes(self, r: TimeRange) -> int:
        """See :meth:`~commerce_observe.store.queries.MetricsQuery.import_bucket_minutes`: a ``max`` of
        ``commerce.aggregate.bucket_s`` over the aggregates in the range (doc values, no hits)."""
        res = self._search(r, [_terms(d.RECORD, AGGREGATE)], {"b": {"max": {"field": BUCKET_S}}})
        longest = res.get("aggregations", {}).get("b", {}).get("value")
        return -(-int(longest) // 60) if longest else 0

    def refresh(self) -> None:
        """Make everything written so far searchable (tests; production waits for refresh_interval)."""
        self.http.request("POST", f"/{self.data_stream}/_refresh")

    def close(self) -> None:
        self.writer.close()
        self.http.close()

    def _search(self, r: TimeRange, filters: list[dict[str, Any]], aggs: dict[str, Any] | None = None,
                **extra: Any) -> Any:
        query = {"bool": {"filter": [{"range": {"@timestamp": {"gte": r.start_ms, "lt": r.end_ms,
                                                               "format": "epoch_millis"}}}, *filters]}}
        body: dict[str, Any] = {"size": 0, "track_total_hits": False, "query": query, **extra}
        if aggs:
            body["aggs"] = aggs
        return self.http.request("POST", f"/{self.data_stream}/_search?ignore_unavailable=true", body)

    def per_minute(self, r: TimeRange) -> list[MinuteRow]:
        res = self._search(r, [_terms("event.action", ("order.created", *PAYMENT_ACTIONS)), COUNTED],
                           {"m": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m", "min_doc_count": 1},
                                  "aggs": {"a": {"terms": {"field": "event.action", "size": 10}, "aggs": N}}}})
        rows = []
        for b in res.get("aggregations", {}).get("m", {}).get("buckets", []):
            n = {x["key"]: _n(x) for x in b["a"]["buckets"]}
            rows.append(MinuteRow(int(b["key"]), n.get("order.created", 0),
                                  sum(n.get(a, 0) for a in PAYMENT_ACTIONS), n.get("payment.failed", 0)))
        return rows

    def _orders(self) -> list[dict[str, Any]]:
        return [_terms("event.action", "order.created"), COUNTED]

    _BY_CURRENCY = {"c": {"terms": {"field": "commerce.currency", "size": 500, "order": {"_key": "asc"}},
                          "aggs": {"s": {"sum": {"field": "commerce.amount"}}, **N}}}

    def revenue(self, r: TimeRange) -> list[RevenueRow]:
        res = self._search(r, self._orders(), self._BY_CURRENCY)
        out = []
        for b in res.get("aggregations", {}).get("c", {}).get("buckets", []):
            total = money(b["s"]["value"] * 1000)
            out.append(RevenueRow(b["key"], _n(b), total, aov(total, _n(b))))
        return out

    def sales_trend(self, r: TimeRange, bucket_minutes: int = 1) -> list[TrendRow]:
        res = self._search(r, self._orders(), {"t": {
            "date_histogram": {"field": "@timestamp", "fixed_interval": f"{bucket_minutes}m", "min_doc_count": 1},
            "aggs": self._BY_CURRENCY}})
        return [TrendRow(int(t["key"]), c["key"], _n(c), money(c["s"]["value"] * 1000))
                for t in res.get("aggregations", {}).get("t", {}).get("buckets", []) for c in t["c"]["buckets"]]

    def top_products(self, r: TimeRange, limit: int = 10) -> list[ProductRow]:
        res = self._search(r, PRODUCT_LINES, {"p": {
            "terms": {"field": d.PRODUCT_ID, "size": limit, "shard_size": max(100, limit * 20),
                      "order": [{"q": "desc"}, {"_key": "asc"}]},
            "aggs": {"q": {"sum": {"field": d.PRODUCT_QUANTITY}}, **N}}})
        return [ProductRow(b["key"], int(b["q"]["value"]), _n(b))
                for b in res.get("aggregations", {}).get("p", {}).get("buckets", [])]

    def _count_by(self, r: TimeRange, filters: list[dict[str, Any]], field: str) -> list[CountRow]:
        res = self._search(r, filters, {"k": {"terms": {"field": field, "size": 1000}, "aggs": N}})
        return by_count({b["key"]: _n(b) for b in res.get("aggregations", {}).get("k", {}).get("buckets", [])})

    def failures_by_reason(self, r: TimeRange) -> list[CountRow]:
        return self._count_by(r, [_terms("event.action", "payment.failed"), COUNTED], "commerce.payment.failure_reason")

    def failures_by_method(self, r: TimeRange) -> list[CountRow]:
        return self._count_by(r, [_terms("event.action", "payment.failed"), COUNTED], "commerce.payment.method")

    def latency(self, r: TimeRange) -> LatencyStats:
        bounds = (0.0, *LATENCY_BOUNDS_MS)
        ranges = [{"from": lo, "to": hi} for lo, hi in zip(bounds, LATENCY_BOUNDS_MS)]
        res = self._search(r, [_terms(d.RECORD, d.MESSAGE), {"exists": {"field": d.LATENCY_MS}}], {
            "s": {"stats": {"field": d.LATENCY_MS}},
            "h": {"range": {"field": d.LATENCY_MS, "ranges": [*ranges, {"from": LATENCY_BOUNDS_MS[-1]}]}}})
        aggs = res.get("aggregations", {})
        stats = aggs.get("s", {})
        count = int(stats.get("count", 0))
        hist = [b["doc_count"] for b in aggs.get("h", {}).get("buckets", [])] or [0] * (len(bounds))
        edges: list[float | None] = [*LATENCY_BOUNDS_MS, None]
        return LatencyStats(count, round(stats["avg"], 3) if count else None,
                            round(stats["max"], 3) if count else None, tuple(zip(edges, hist)))

    def finding_counts(self, r: TimeRange) -> list[CountRow]:
        return self._count_by(r, [_terms(d.RECORD, d.FINDING)], d.FINDING_KIND)

    def _listed(self, r: TimeRange, filters: list[dict[str, Any]], limit: int) -> list[AlertRow]:
        res = self._search(r, filters, size=limit, sort=[{"@timestamp": "desc"}, {"event.id": "asc"}])
        out = []
        for hit in res["hits"]["hits"]:
            s = hit["_source"]
            kind = s.get(d.FINDING_KIND) or "ANOMALY"
            out.append(AlertRow(d.timestamp_ms(s), kind, s.get("commerce.event.id"), s.get("commerce.event.type"),
                                s.get("commerce.order.id"), s.get("commerce.payment.id"), s.get("trace.id"),
                                s.get("message")))
        return out

    def alerts(self, r: TimeRange, limit: int = 50) -> list[AlertRow]:
        scored = {"bool": {"filter": [_terms(d.RECORD, d.ANOMALY),
                                      {"range": {d.ANOMALY_SCORE: {"gte": incidents.WARNING}}}]}}
        return self._listed(r, [{"bool": {"should": [_terms(d.RECORD, d.FINDING), scored],
                                          "minimum_should_match": 1}}], limit)

    def findings(self, r: TimeRange, limit: int = 50) -> list[AlertRow]:
        return self._listed(r, [_terms(d.RECORD, d.FINDING)], limit)

    def anomalies(self, r: TimeRange, limit: int = 20) -> list[AnomalyRow]:
        """The series worth a row (see :func:`incidents.shortlist`), then their points since a week before
        the range (newest first, 10,000 at most: a longer stretch is followed back that far)."""
        newest = {"top_hits": {"size": 1, "sort": [{"@timestamp": "desc"}], "_source": [d.ANOMALY_SCORE]}}
        res = self._search(r, [_terms(d.RECORD, d.ANOMALY), {"range": {d.ANOMALY_SCORE: {"gte": incidents.WARNING}}}],
                           {"g": {"terms": {"field": d.ANOMALY_SERIES, "size": 10_000}, "aggs": {"n": newest}}})
        hot = [(b["key"], int(h["sort"][0]), float(h["_source"][d.ANOMALY_SCORE]))
               for b in res.get("aggregations", {}).get("g", {}).get("buckets", []) for h in b["n"]["hits"]["hits"]]
        if not hot:
            return []
        upto = TimeRange(r.end_ms - incidents.SINCE_LOOKBACK_MS, r.end_ms)
        res = self._search(upto, [_terms(d.RECORD, d.ANOMALY), _terms(d.ANOMALY_SERIES, [h[0] for h in hot]),
                                  {"exists": {"field": d.ANOMALY_SCORE}}],
                           {"g": {"terms": {"field": d.ANOMALY_SERIES, "size": 10_000},
                                  "aggs": {"t": {"max": {"field": "@timestamp"}}}}})
        latest = {b["key"]: int(b["t"]["value"]) for b in res.get("aggregations", {}).get("g", {}).get("buckets", [])}
        chosen = incidents.shortlist(hot, latest, limit)
        back = TimeRange(r.start_ms - incidents.SINCE_LOOKBACK_MS, r.end_ms)
        res = self._search(back, [_terms(d.RECORD, d.ANOMALY), _terms(d.ANOMALY_SERIES, chosen)], size=10_000,
                           sort=[{"@timestamp": "desc"}], _source=[d.ANOMALY_SERIES, d.ANOMALY_SCORE, *SCORE_FIELDS])
        points = sorted(((h["_source"][d.ANOMALY_SERIES], int(h["sort"][0]), h["_source"].get(d.ANOMALY_SCORE),
                          h["_source"]) for h in res["hits"]["hits"]), key=lambda p: (p[0], p[1]))
        return incidents.anomaly_rows(points, limit)

    def open_alerts(self, r: TimeRange, limit: int = 50) -> list[OpenAlertRow]:
        back = TimeRange(r.end_ms - incidents.OPEN_LOOKBACK_MS, r.end_ms)
        alert = _terms(d.RECORD, d.ALERT)
        firing = self._search(back, [alert, _terms("event.action", "alert.firing")], size=500,
                              sort=[{"@timestamp": "desc"}, {"event.id": "asc"}])
        docs = [h["_source"] for h in firing["hits"]["hits"]]
        if not docs:
            return []
        ids = [doc[d.ALERT_ID] for doc in docs]
        ended = self._search(back, [alert, _terms("event.action", "alert.resolved"), _terms(d.ALERT_ID, ids)],
                             {"i": {"terms": {"field": d.ALERT_ID, "size": len(ids)}}})
        done = {b["key"] for b in ended.get("aggregations", {}).get("i", {}).get("buckets", [])}
        return [incidents.open_alert_row(doc) for doc in docs if doc[d.ALERT_ID] not in done][:limit]
