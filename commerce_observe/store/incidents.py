"""What both stores do with the documents they list one by one: scores, alert states, findings.

The stores fetch (SQL or a search); turning the fetched documents into dashboard
rows happens here, once, so SQLite and Elasticsearch cannot disagree on what
"abnormal since" or "open" means.

* An anomaly *stretch* of a series is its run of buckets scored at or above the
  warning band (25, Elastic's lowest severity; the detector's
  ``commerce_observe.monitor.anomaly.severity.WARNING``), broken by any bucket
  scored below it. Unscored buckets (warming up, excluded) do not break a run.
  A row shows the latest abnormal bucket of a series (actual against the expected
  band, score), the first bucket of its stretch (*since*), and whether the series'
  latest scored bucket is still abnormal.
* An alert is *open* at a time when its firing document is older and no resolved
  document for the same ``commerce.alert.id`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from commerce_observe.store import documents as d
from commerce_observe.store.queries import AnomalyRow, OpenAlertRow

#: The score at which a bucket counts as abnormal (Elastic's warning band; the detector's severity.WARNING).
WARNING: Final = 25.0
_BANDS: Final = ((75.0, "critical"), (50.0, "minor"), (WARNING, "warning"))
#: How far back an alert can have started and still be listed as open (the store keeps 90 days).
OPEN_LOOKBACK_MS: Final = 90 * 86_400_000
#: How far before the range a stretch is followed back to find since when it lasts.
SINCE_LOOKBACK_MS: Final = 7 * 86_400_000


def severity(score: float) -> str:
    return next((name for bound, name in _BANDS if score >= bound), "low")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def anomaly_rows(points: Iterable[tuple[str, int, float | None, Any]], limit: int,
                 fields: Callable[[Any], Mapping[str, Any]] = lambda doc: doc) -> list[AnomalyRow]:
    """``points``: (series, ts_ms, score, document) of every scored bucket of the series to consider,
    in (series, time) order; ``fields`` reads a document (only the shown ones are read). Series with
    no abnormal bucket give no row; ongoing ones first, then the worst."""
    rows: list[AnomalyRow] = []
    series: str | None = None
    run: list[tuple[int, float, Any]] = []  # the latest abnormal stretch of this series
    broken = True  # the next abnormal bucket starts a new stretch
    ongoing = False

    def flush() -> None:
        if series is None or not run:
            return
        at, score, raw = run[-1]
        doc = fields(raw)
        metric, _, entity = series.partition(":")
        rows.append(AnomalyRow(series, metric, entity or None, at, run[0][0], ongoing, score,
                               max(s for _, s, _ in run), float(doc.get(d.ANOMALY_ACTUAL, 0.0)),
                               _float(doc.get(d.ANOMALY_EXPECTED)), _float(doc.get(d.ANOMALY_LOWER)),
                               _float(doc.get(d.ANOMALY_UPPER)), severity(score)))

    for name, ts_ms, score, doc in points:
        if name != series:
            flush()
            series, run, broken, ongoing = name, [], True, False
        if score is None:
            continue
        if score >= WARNING:
            if broken:
                run, broken = [], False
            run.append((ts_ms, float(score), doc))
            ongoing = True
        else:
            broken, ongoing = True, False
    flush()
    rows.sort(key=lambda r: (not r.ongoing, -r.score, r.series))
    return rows[:limit]


def shortlist(hot: Iterable[tuple[str, int, float]], latest: Mapping[str, int], limit: int) -> list[str]:
    """The ``limit`` series worth a row, before their points are read: ongoing ones first, then the worst.

    ``hot``: (series, time and score of its latest abnormal bucket in the range); ``latest``: series ->
    time of its latest scored bucket. The same order as :func:`anomaly_rows` gives, so the rows are
    those that reading everything would show. Reading every point of every series abnormal once in a
    week costs seconds with thousands of products; these few numbers do not.
    """
    ranked = sorted(hot, key=lambda h: (latest.get(h[0], h[1]) > h[1], -h[2], h[0]))
    return [name for name, _, _ in ranked[:limit]]


def open_alert_row(doc: Mapping[str, Any]) -> OpenAlertRow:
    """An alert's firing document as a dashboard row."""
    links = tuple((str(label), str(url)) for label, url in doc.get("commerce.alert.links") or ())
    return OpenAlertRow(str(doc[d.ALERT_ID]), str(doc.get("commerce.alert.rule", "")),
                        str(doc.get("commerce.alert.title", "")), str(doc.get("commerce.alert.severity", "")),
                        str(doc.get("commerce.alert.where", "")), d.timestamp_ms(doc),
                        str(doc.get("commerce.alert.measure", "")), _float(doc.get("commerce.alert.value")), links)
