"""A store with something to act on: the monitoring data set plus scores, alert states and findings.

On top of ``tests.monitoring.dataset`` (60 orders, payments, 3 findings, one
anomaly in ``[T0, T0 + 10 min)``) it adds, per minute of the range:

* ``orders:sku-cheese``: quiet, then abnormal from minute 5 to the end (ongoing),
  latest point actual 0 against 6 expected, band 3 to 9, score 91;
* ``payment_failures:card``: abnormal at minutes 2 and 3 only (ended), score 64 at its
  latest abnormal point;
* ``orders:sku-apple``: scored every minute, never abnormal (must not be listed);

and three alerts: one still firing, one resolved, one firing only after the range.
Every expected figure is written here by hand, independent of the store code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from commerce_observe.monitor.alerts.model import Alert
from commerce_observe.store import documents as d
from tests.monitoring import dataset
from tests.monitoring.dataset import T0, Score

MINUTE = timedelta(minutes=1)
T0_MS = int(T0.timestamp() * 1000)


def _scores() -> list[d.Document]:
    docs = []
    for m in range(10):
        at = T0 + m * MINUTE
        cheese = 91.0 if m >= 5 else 5.0
        docs.append(d.anomaly_document(Score("orders:sku-cheese", at, cheese, 0.0 if m >= 5 else 6.0, 6.0), band=(3.0, 9.0)))
        card = {2: 55.0, 3: 64.0}.get(m, 10.0)
        docs.append(d.anomaly_document(Score("payment_failures:card", at, card, 0.4 if m in (2, 3) else 0.05, 0.05),
                                       band=(0.0, 0.12)))
        docs.append(d.anomaly_document(Score("orders:sku-apple", at, 3.0, 4.0, 4.0), band=(1.0, 7.0)))
    return docs


def alerts() -> tuple[Alert, Alert, Alert]:
    firing = Alert(key="orders|orders:sku-cheese", rule="orders", title="orders dropped", severity="critical",
                   where=(("product", "sku-cheese"),), since=T0 + 5 * MINUTE,
                   measure="anomaly score 91/100 (0 vs 6.0 expected)", value=91.0)
    ended = Alert(key="lost|orders|billing", rule="lost", title="events lost", severity="critical",
                  where=(("topic", "orders"), ("consumer group", "billing")), since=T0 + MINUTE,
                  measure="1 event lost", value=1.0,
                  links=(("zipkin trace 4", f"http://zipkin.test:9411/zipkin/traces/{4:032x}"),))
    later = Alert(key="failures|card", rule="failures", title="payment failures high", severity="minor",
                  where=(("payment method", "card"),), since=T0 + 30 * MINUTE, measure="40% failed", value=0.4)
    return firing, ended, later


def documents() -> list[d.Document]:
    firing, ended, later = alerts()
    return [*dataset.documents(), *_scores(), d.alert_document(firing), d.alert_document(ended),
            d.alert_document(ended.resolved(T0 + 4 * MINUTE)), d.alert_document(later)]


def expected() -> dict[str, Any]:
    """What the page must show for ``[T0, T0 + 10 min)``, beyond the data set's figures."""
    exp = dataset.expected()
    payments = sum(v[1] for v in exp["per_minute"].values())
    failures = sum(v[2] for v in exp["per_minute"].values())
    return {
        "orders": sum(v[0] for v in exp["per_minute"].values()),
        "failure_rate": f"{100 * failures / payments:.1f} %",
        "anomalies": [  # ongoing first, then by score
            {"series": "orders:sku-cheese", "score": 91.0, "actual": 0.0, "expected": 6.0, "lower": 3.0,
             "upper": 9.0, "since": T0_MS + 5 * 60_000, "ongoing": True},
            {"series": "orders:__all__", "score": 82.5, "actual": 31.0, "expected": 9.5, "lower": None,
             "upper": None, "since": T0_MS + 4 * 60_000, "ongoing": True},
            {"series": "payment_failures:card", "score": 64.0, "actual": 0.4, "expected": 0.05, "lower": 0.0,
             "upper": 0.12, "since": T0_MS + 2 * 60_000, "ongoing": False},
        ],
        "open_alerts": [d.alert_document(alerts()[0])[d.ALERT_ID]],
        "findings": ["LOST", "DUPLICATE", "LOST"],  # newest first
    }
