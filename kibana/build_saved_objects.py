"""Writes kibana/commerce-observe.ndjson: data view, Lens panels and the dashboard.

Generated rather than exported from a Kibana so the fields come from one list
(``commerce_observe.store.es_mapping.FIELDS``, checked by
``tests/monitoring/test_kibana_objects.py``) and a mapping change is one edit.
Run ``python kibana/build_saved_objects.py`` after changing a panel.

The panels are the local dashboard's: sales trend, orders and payments per
minute, revenue and average order value, top products, payment failures by
reason and by method, end-to-end latency, lost/duplicate findings, and a saved
search of findings and anomalies whose ``trace.id`` links to the APM trace.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
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


ORDERS = 'commerce.record : "event" and event.action : "order.created"'
FAILED = 'commerce.record : "event" and event.action : "payment.failed"'


def objects() -> list[dict[str, Any]]:
    data_view = {"type": "index-pattern", "id": DATA_VIEW, "coreMigrationVersion": VERSION, "references": [],
                 "attributes": {"title": INDEX_PATTERN, "name": "Commerce events", "timeFieldName": "@timestamp",
                                "fieldFormatMap": json.dumps({"trace.id": {"id": "url", "params": {
                                    "urlTemplate": "/app/apm/link-to/trace/{{value}}", "labelTemplate": "{{value}}"}}})}}
    panels = [
        lens("commerce-sales-trend", "Sales trend (revenue by currency)", ORDERS,
             {"t": time_col(), "c": terms("commerce.currency", 10), "s": col("sum", "commerce.amount", "Revenue")},
             "lnsXY", xy("line", "t", ["s"], "c")),
        lens("commerce-per-minute", "Orders and payments per minute",
             'commerce.record : "event" and event.action : ("order.created" or "payment.authorized" or "payment.failed")',
             {"t": time_col("1m"), "a": terms("event.action", 3), "n": col("count", None, "Events")},
             "lnsXY", xy("bar_stacked", "t", ["n"], "a")),
        lens("commerce-revenue", "Revenue and average order value", ORDERS,
             {"c": terms("commerce.currency", 20), "n": col("count", None, "Orders"),
              "s": col("sum", "commerce.amount", "Revenue"), "a": col("average", "commerce.amount", "Average order value")},
             "lnsDatatable", table(["c", "n", "s", "a"])),
        lens("commerce-top-products", "Top products (units)", 'commerce.record : "item"',
             {"p": terms("commerce.product.id", 10, "q"), "q": col("sum", "commerce.product.quantity", "Units")},
             "lnsXY", xy("bar_horizontal", "p", ["q"])),
        lens("commerce-failure-reasons", "Payment failures by reason", FAILED,
             {"r": terms("commerce.payment.failure_reason", 10, "n"), "n": col("count", None, "Failures")},
             "lnsPie", {"shape": "donut", "layers": [{"layerId": LAYER, "layerType": "data", "primaryGroups": ["r"],
                                                      "metrics": ["n"], "numberDisplay": "value"}]}),
        lens("commerce-failure-methods", "Payment failures by method", FAILED,
             {"m": terms("commerce.payment.method", 10, "n"), "n": col("count", None, "Failures")},
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
    search = {"type": "search", "id": "commerce-alerts", "coreMigrationVersion": VERSION,
              "attributes": {"title": "Findings and anomalies (trace links)",
                             "columns": ["event.action", "message", "commerce.order.id", "commerce.payment.id", "trace.id"],
                             "sort": [["@timestamp", "desc"]],
                             "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({
                                 "query": {"language": "kuery", "query": 'commerce.record : ("finding" or "anomaly")'},
                                 "filter": [], "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})}},
              "references": [{"type": "index-pattern", "id": DATA_VIEW, "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}]}
    layout = [(0, 0, 48, 12), (0, 12, 48, 12), (0, 24, 16, 12), (16, 24, 16, 12), (32, 24, 16, 12),
              (0, 36, 16, 12), (16, 36, 16, 12), (32, 36, 16, 12), (0, 48, 48, 14)]
    embedded = [*panels, search]
    dashboard = {"type": "dashboard", "id": "commerce-monitoring", "coreMigrationVersion": VERSION,
                 "attributes": {"title": "Commerce monitoring", "description": "Sales, orders, payments, failures, "
                                "latency and lost/duplicate events (commerce_observe)", "timeRestore": True,
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
