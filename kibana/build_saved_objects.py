"""Writes kibana/commerce-observe.ndjson: data view, Lens panels and the dashboard.

Generated rather than exported from a Kibana so the fields come from one list
(``commerce_observe.store.es_mapping.FIELDS``, checked by
``tests/monitoring/test_kibana_objects.py``) and a mapping change is one edit.
Run ``python kibana/build_saved_objects.py`` after changing a panel.

The panels are the local dashboard's, what needs acting on first: anomalies per
product and payment method (latest actual against the expected band, score, since
when), anomaly scores over time, lost/duplicated/late events over time, saved
searches of the findings (``trace.id`` links to the APM trace), the anomalies and the
alert states; then sales trend, orders and payments per minute, revenue and average
order value (revenue = value of orders placed), top products, payment failures by
reason and by method, end-to-end latency.

Imported history (``commerce-observe import``) is one ``aggregate`` document per bucket
standing for ``commerce.aggregate.count`` events: the panels about orders and payments
select events and aggregates and count with the formula :data:`EVENTS` (the sum of that
count, 1 for a document without it) instead of counting documents.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commerce_observe.store.es_mapping import INDEX_PATTERN  # noqa: E402

OUT = Path(__file__).with_name("commerce-observe.ndjson")
DATA_VIEW = "commerce-observe-events"
LAYER = "layer1"
VERSION = "8.11.0"


def col(op: str, field: str | None = None, label: str | None = None, **params: Any) -> dict[str, Any]:
    column: dict[str, Any] = {"operationType": op, "isBucketed": op in ("date_histogram", "terms"),
                              "label": label or (f"{op} of {field}" if field else op), "customLabel": bool(label),
                              "dataType": {"date_histogram": "date", "terms": "string"}.get(op, "number"),
                              "params": params}
    column["sourceField"] = field if field else "___records___"
    return column


def last(field: str, label: str) -> dict[str, Any]:
    """The field's value in the newest document of the row (Lens ``last_value``)."""
    return col("last_value", field, label, sortField="@timestamp")


def time_col(interval: str = "auto") -> dict[str, Any]:
    return col("date_histogram", "@timestamp", "@timestamp", interval=interval, includeEmptyRows=True)


def terms(field: str, size: int, order_by: str | None = None) -> dict[str, Any]:
    order = {"type": "column", "columnId": order_by} if order_by else {"type": "alphabetical"}
    return col("terms", field, field, size=size, orderBy=order, orderDirection="desc" if order_by else "asc")


def lens(obj_id: str, title: str, kuery: str, columns: dict[str, dict[str, Any]], vis_type: str,
         visualization: dict[str, Any]) -> dict[str, Any]:
    state = {
        "datasourceStates": {"formBased": {"layers": {LAYER: {"columns": columns, "columnOrder": list(columns)}}}},
        "visualization": visualization,
        "query": {"language": "kuery", "query": kuery},
        "filters": [],
    }
    return {"type": "lens", "id": obj_id, "attributes": {"title": title, "visualizationType": vis_type, "state": state},
            "references": [{"type": "index-pattern", "id": DATA_VIEW, "name": f"indexpattern-datasource-layer-{LAYER}"}],
            "coreMigrationVersion": VERSION}


def xy(series: str, x: str, ys: list[str], split: str | None = None) -> dict[str, Any]:
    layer: dict[str, Any] = {"layerId": LAYER, "layerType": "data", "seriesType": series, "xAccessor": x,
                             "accessors": ys}
    if split:
        layer["splitAccessor"] = split
    return {"preferredSeriesType": series, "legend": {"isVisible": True, "position": "right"}, "layers": [layer]}


def table(cols: list[str]) -> dict[str, Any]:
    return {"layerId": LAYER, "layerType": "data", "columns": [{"columnId": c} for c in cols]}


#: Documents that stand for events: the events and imported aggregates (docs/import.md).
COUNTED = 'commerce.record : ("event" or "aggregate")'
ORDERS = f'{COUNTED} and event.action : "order.created"'
FAILED = f'{COUNTED} and event.action : "payment.failed"'
#: How many events a document stands for: 1 for an event, ``commerce.aggregate.count`` for an
#: imported aggregate (a Lens ``count`` would make an hour of imported history one event). A
#: formula, not a runtime field: Lens sends a ``sum`` and a filtered count and adds them itself,
#: so no script runs on the cluster (and clusters without Painless answer too). Lens cannot rank
#: terms by a formula: the failure panels list reasons and methods alphabetically.
EVENTS = 'sum(commerce.aggregate.count) + count(kql=\'commerce.record : "event"\')'


def _ast(name: str, args: list[Any], text: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "args": args, "location": {"min": 0, "max": len(text)}, "text": text}


def _formula(cid: str, label: str, text: str, parts: list[dict[str, Any]],
             math: Callable[[list[str]], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A Lens formula column as Lens saves it: the formula, its hidden parts ``{cid}X0``.. and the math on them."""
    part = f"Part of {label}"
    ids = [f"{cid}X{i}" for i in range(len(parts))]
    top = f"{cid}X{len(parts)}"
    columns = {i: {**p, "label": part, "customLabel": True} for i, p in zip(ids, parts)}
    columns[top] = {"operationType": "math", "label": part, "customLabel": True, "dataType": "number",
                    "isBucketed": False, "params": {"tinymathAst": math(ids)}, "references": ids}
    formula = {"operationType": "formula", "label": label, "customLabel": True, "dataType": "number",
               "isBucketed": False, "params": {"formula": text, "isFormulaBroken": False}, "references": [top]}
    return {cid: formula, **columns}


def _event_parts() -> list[dict[str, Any]]:
    filtered = {**col("count"), "filter": {"language": "kuery", "query": 'commerce.record : "event"'}}
    return [col("sum", "commerce.aggregate.count", emptyAsNull=False), {**filtered, "params": {"emptyAsNull": False}}]


def events(cid: str, label: str) -> dict[str, dict[str, Any]]:
    """The number of events as a formula column: ``commerce.aggregate.count`` summed, missing = 1."""
    return _formula(cid, label, EVENTS, _event_parts(), lambda ids: _ast("add", ids, EVENTS))


def average_order_value(cid: str) -> dict[str, dict[str, Any]]:
    """Revenue / orders (an ``average`` of ``commerce.amount`` would average an imported hour's
    revenue, not its orders')."""
    text = f"sum(commerce.amount) / ({EVENTS})"
    return _formula(cid, "Average order value", text, [col("sum", "commerce.amount"), *_event_parts()],
                    lambda ids: _ast("divide", [ids[0], _ast("add", ids[1:], EVENTS)], text))


#: Scores at or above the warning band (25): the buckets the dashboard calls abnormal.
ABNORMAL = 'commerce.record : "anomaly" and commerce.anomaly.score >= 25'


def search(obj_id: str, title: str, kuery: str, columns: list[str]) -> dict[str, Any]:
    """A saved search (Discover) newest first; its ``trace.id`` column links to the APM trace."""
    return {"type": "search", "id": obj_id, "coreMigrationVersion": VERSION,
            "attributes": {"title": title, "columns": columns, "sort": [["@timestamp", "desc"]],
                           "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({
                               "query": {"language": "kuery", "query": kuery},
                               "filter": [], "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})}},
            "references": [{"type": "index-pattern", "id": DATA_VIEW, "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}]}


def incidents() -> list[dict[str, Any]]:
    """What needs acting on: anomalies, findings and alerts (the top of the dashboard)."""
    return [
        lens("commerce-anomalies", "Anomalies by product and payment method (latest against the expected band)",
             ABNORMAL,
             {"m": terms("commerce.anomaly.metric", 5), "e": terms("commerce.anomaly.entity", 20, "s"),
              "s": col("max", "commerce.anomaly.score", "Score (max)"), "a": last("commerce.anomaly.actual", "Actual"),
              "x": last("commerce.anomaly.expected", "Expected"), "lo": last("commerce.anomaly.lower", "Band low"),
              "hi": last("commerce.anomaly.upper", "Band high"), "since": col("min", "@timestamp", "Abnormal since")},
             "lnsDatatable", table(["m", "e", "s", "a", "x", "lo", "hi", "since"])),
        lens("commerce-findings-over-time", "Lost, duplicated and late events", 'commerce.record : "finding"',
             {"t": time_col(), "k": terms("commerce.finding.kind", 5, "n"), "n": col("count", None, "Findings")},
             "lnsXY", xy("bar_stacked", "t", ["n"], "k")),
        lens("commerce-anomaly-scores", "Anomaly scores by series", 'commerce.record : "anomaly"',
             {"t": time_col(), "g": terms("commerce.anomaly.series", 10, "s"),
              "s": col("max", "commerce.anomaly.score", "Score")},
             "lnsXY", xy("line", "t", ["s"], "g")),
        search("commerce-findings-list", "Findings: lost, duplicated, late events (trace links)",
               'commerce.record : "finding"',
               ["commerce.finding.kind", "commerce.event.id", "commerce.event.type", "messaging.consumer.group.name",
                "commerce.order.id", "commerce.payment.id", "trace.id"]),
        search("commerce-anomaly-list", "Anomalies (actual, expected, band, score)", ABNORMAL,
               ["commerce.anomaly.series", "commerce.anomaly.score", "commerce.anomaly.actual",
                "commerce.anomaly.expected", "commerce.anomaly.lower", "commerce.anomaly.upper"]),
        search("commerce-alert-states", "Alerts: firing and resolved", 'commerce.record : "alert"',
               ["commerce.alert.status", "commerce.alert.severity", "commerce.alert.title", "commerce.alert.where",
                "commerce.alert.since", "commerce.alert.measure"]),
    ]


def objects() -> list[dict[str, Any]]:
    data_view = {"type": "index-pattern", "id": DATA_VIEW, "coreMigrationVersion": VERSION, "references": [],
                 "attributes": {"title": INDEX_PATTERN, "name": "Commerce events", "timeFieldName": "@timestamp",
                                "fieldFormatMap": json.dumps({"trace.id": {"id": "url", "params": {
                                    "urlTemplate": "/app/apm/link-to/trace/{{value}}", "labelTemplate": "{{value}}"}}})}}
    panels = [
        lens("commerce-sales-trend", "Sales trend (revenue = value of orders placed, by currency)", ORDERS,
             {"t": time_col(), "c": terms("commerce.currency", 10), "s": col("sum", "commerce.amount", "Revenue")},
             "lnsXY", xy("line", "t", ["s"], "c")),
        lens("commerce-per-minute", "Orders and payments per minute",
             f'{COUNTED} and event.action : ("order.created" or "payment.authorized" or "payment.failed")',
             {"t": time_col("1m"), "a": terms("event.action", 3), **events("n", "Events")},
             "lnsXY", xy("bar_stacked", "t", ["n"], "a")),
        lens("commerce-revenue", "Revenue and average order value", ORDERS,
             {"c": terms("commerce.currency", 20), **events("n", "Orders"),
              "s": col("sum", "commerce.amount", "Revenue"), **average_order_value("a")},
             "lnsDatatable", table(["c", "n", "s", "a"])),
        lens("commerce-top-products", "Top products (units)",
             'commerce.record : ("item" or "aggregate") and commerce.product.id : *',
             {"p": terms("commerce.product.id", 10, "q"), "q": col("sum", "commerce.product.quantity", "Units")},
             "lnsXY", xy("bar_horizontal", "p", ["q"])),
        lens("commerce-failure-reasons", "Payment failures by reason", FAILED,
             {"r": terms("commerce.payment.failure_reason", 10), **events("n", "Failures")},
             "lnsPie", {"shape": "donut", "layers": [{"layerId": LAYER, "layerType": "data", "primaryGroups": ["r"],
                                                      "metrics": ["n"], "numberDisplay": "value"}]}),
        lens("commerce-failure-methods", "Payment failures by method", FAILED,
             {"m": terms("commerce.payment.method", 10), **events("n", "Failures")},
             "lnsXY", xy("bar_horizontal", "m", ["n"])),
        lens("commerce-latency", "End-to-end event latency (ms)", 'commerce.record : "message" and commerce.message.latency_ms : *',
             {"t": time_col(), "avg": col("average", "commerce.message.latency_ms", "Average"),
              "p95": col("percentile", "commerce.message.latency_ms", "95th percentile", percentile=95),
              "max": col("max", "commerce.message.latency_ms", "Max")},
             "lnsXY", xy("line", "t", ["avg", "p95", "max"])),
        lens("commerce-findings", "Lost and duplicate events", 'commerce.record : "finding"',
             {"k": terms("commerce.finding.kind", 10, "n"), "n": col("count", None, "Findings")},
             "lnsDatatable", table(["k", "n"])),
    ]
    top = incidents()
    layout = [(0, 0, 28, 12), (28, 0, 20, 12), (0, 12, 20, 12), (20, 12, 28, 12), (0, 24, 24, 10), (24, 24, 24, 10),
              (0, 34, 48, 12), (0, 46, 48, 12), (0, 58, 16, 12), (16, 58, 16, 12), (32, 58, 16, 12),
              (0, 70, 16, 12), (16, 70, 16, 12), (32, 70, 16, 12)]
    embedded = [*top, *panels]
    dashboard = {"type": "dashboard", "id": "commerce-monitoring", "coreMigrationVersion": VERSION,
                 "attributes": {"title": "Commerce monitoring", "description": "Anomalies, lost/duplicated events, "
                                "alerts, sales, orders, payments, failures and latency (commerce_observe); revenue is "
                                "the value of orders placed", "timeRestore": True,
                                "timeFrom": "now-1h", "timeTo": "now", "refreshInterval": {"pause": False, "value": 10000},
                                "optionsJSON": json.dumps({"useMargins": True, "syncColors": True, "hidePanelTitles": False}),
                                "panelsJSON": json.dumps([
                                    {"type": o["type"], "panelIndex": str(i), "panelRefName": f"panel_{i}",
                                     "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i)}, "embeddableConfig": {}}
                                    for i, (o, (x, y, w, h)) in enumerate(zip(embedded, layout))]),
                                "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"language": "kuery", "query": ""}, "filter": []})}},
                 "references": [{"type": o["type"], "id": o["id"], "name": f"panel_{i}"} for i, o in enumerate(embedded)]}
    return [data_view, *embedded, dashboard]


def render() -> str:
    return "".join(json.dumps(o, sort_keys=True) + "\n" for o in objects())


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT} ({len(objects())} saved objects)")
