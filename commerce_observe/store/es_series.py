"""Series for learning from Elasticsearch, and how its queries count events.

Counting: an event document stands for one event, an imported aggregate
(:mod:`~commerce_observe.store.aggregates`) for ``commerce.aggregate.count`` events,
so every count is ``sum(commerce.aggregate.count, missing: 1)`` instead of
``doc_count``; the queries of :mod:`~commerce_observe.store.es_store` use the same
filters and sum.

Series: a ``composite`` aggregation over (``date_histogram``, key) pages through
any number of buckets in (bucket, key) order, ``after_key`` by ``after_key``, which
is what three months of hourly points for thousands of products need (a plain
``terms`` under a ``date_histogram`` would have to fit in one response).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from commerce_observe.agent.events import conventions as cv
from commerce_observe.store import documents as d
from commerce_observe.store.aggregates import AGGREGATE, COUNT
from commerce_observe.store.es_client import EsHttp
from commerce_observe.store.queries import MINUTE_MS, SERIES_BY, SeriesPoint, TimeRange, series_bounds

PAYMENT_ACTIONS: Final = ("payment.authorized", "payment.failed")
PAGE: Final = 10_000


def terms(field: str, values: Sequence[str] | str) -> dict[str, Any]:
    return {"terms": {field: list(values)}} if not isinstance(values, str) else {"term": {field: values}}


#: Documents that count events: the events themselves and imported aggregates.
COUNTED: Final = terms(d.RECORD, (d.EVENT, AGGREGATE))
#: Documents that count order lines per product: item documents and order aggregates.
PRODUCT_LINES: Final = [terms(d.RECORD, (d.ITEM, AGGREGATE)), {"exists": {"field": d.PRODUCT_ID}}]
#: How many events a bucket holds: an event document is 1, an aggregate its count.
N: Final = {"n": {"sum": {"field": COUNT, "missing": 1}}}


def count_of(bucket: Mapping[str, Any]) -> int:
    return int(bucket["n"]["value"])


def _sum(field: str) -> dict[str, Any]:
    return {"sum": {"field": field}}


def _only(action: str | Sequence[str], **more: Any) -> dict[str, Any]:
    return {"filter": terms("event.action", action), "aggs": {**N, **more}}


Point = Callable[[int, Any, Mapping[str, Any]], SeriesPoint]
#: by -> (filters, key field or None, sub-aggregations, point from (bucket ms, key, bucket))
_SPEC: dict[str, tuple[list[dict[str, Any]], str | None, dict[str, Any], Point]] = {
    "product": (PRODUCT_LINES, d.PRODUCT_ID, {**N, "r": _sum(d.PRODUCT_REVENUE)},
                lambda t, k, b: SeriesPoint(t, k, count_of(b), round(b["r"]["value"], 3), 0, 0)),
    "method": ([terms("event.action", PAYMENT_ACTIONS), COUNTED], cv.PAYMENT_METHOD,
               {**N, "f": _only("payment.failed")},
               lambda t, k, b: SeriesPoint(t, k or "unknown", 0, 0.0, count_of(b), count_of(b["f"]))),
    "currency": ([terms("event.action", "order.created"), COUNTED], cv.CURRENCY, {**N, "r": _sum(cv.AMOUNT)},
                 lambda t, k, b: SeriesPoint(t, k or "", count_of(b), round(b["r"]["value"], 3), 0, 0)),
    "site": ([terms("event.action", ("order.created", *PAYMENT_ACTIONS)), COUNTED], None,
             {"o": _only("order.created", r=_sum(cv.AMOUNT)), "p": _only(PAYMENT_ACTIONS), "f": _only("payment.failed")},
             lambda t, k, b: SeriesPoint(t, "", count_of(b["o"]), round(b["o"]["r"]["value"], 3), count_of(b["p"]),
                                         count_of(b["f"]))),
}


def series_body(by: str, r: TimeRange, bucket_minutes: int) -> dict[str, Any]:
    """The search body of the first page (ValueError for an unknown ``by``)."""
    if by not in _SPEC:
        raise ValueError(f"series by {by!r}: expected one of {', '.join(SERIES_BY)}")
    m0, m1 = series_bounds(r, bucket_minutes)
    filters, key, aggs, _ = _SPEC[by]
    sources: list[dict[str, Any]] = [{"t": {"date_histogram": {"field": "@timestamp",
                                                                "fixed_interval": f"{bucket_minutes}m"}}}]
    if key:
        sources.append({"k": {"terms": {"field": key, "missing_bucket": True}}})
    when = {"range": {"@timestamp": {"gte": m0 * MINUTE_MS, "lt": m1 * MINUTE_MS, "format": "epoch_millis"}}}
    return {"size": 0, "track_total_hits": False, "query": {"bool": {"filter": [when, *filters]}},
            "aggs": {"s": {"composite": {"size": PAGE, "sources": sources}, "aggs": aggs}}}


def series(http: EsHttp, data_stream: str, by: str, r: TimeRange, bucket_minutes: int = 60) -> Iterator[SeriesPoint]:
    """:meth:`~commerce_observe.store.queries.MetricsQuery.series` over one data stream (paged)."""
    body = series_body(by, r, bucket_minutes)
    return _pages(http, data_stream, body, _SPEC[by][3])


def _pages(http: EsHttp, data_stream: str, body: dict[str, Any], point: Point) -> Iterator[SeriesPoint]:
    path = f"/{data_stream}/_search?ignore_unavailable=true"
    while True:
        res = http.request("POST", path, body).get("aggregations", {}).get("s", {})
        for b in res.get("buckets", []):
            yield point(int(b["key"]["t"]), b["key"].get("k"), b)
        after = res.get("after_key")
        if not after or len(res.get("buckets", [])) < PAGE:
            return
        body["aggs"]["s"]["composite"]["after"] = after
