"""The Kibana saved objects against a real Elasticsearch data stream holding anomalies, findings and alerts.

``tests/monitoring/test_kibana_objects.py`` checks the file against the field list;
this runs what the panels ask for on the node: every field they use must be mapped
in the stream our template creates, with a type their operation accepts, and the
panels and searches about anomalies, findings and alerts must find the documents
``watch`` writes. Each Lens panel becomes the aggregation Kibana would send (its
bucket columns nested, its metrics inside), each KQL query a bool filter (the
saved objects use a small subset: ``f : "v"``, ``f : ("a" or "b")``, ``f : *``,
``f >= n`` joined by ``and``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from commerce_observe.store.es_store import ElasticsearchStore
from tests.dashboard import scene
from commerce_observe.store.aggregates import payment_aggregate
from tests.monitoring.test_kibana_objects import referenced_fields, saved

pytestmark = pytest.mark.elasticsearch

NUMERIC = {"double", "long", "integer", "float", "scaled_float"}
#: Lens operation -> the mapped types it works on.
ACCEPTS = {"date_histogram": {"date"}, "terms": {"keyword"}, "sum": NUMERIC, "average": NUMERIC,
           "percentile": NUMERIC, "max": NUMERIC | {"date"}, "min": NUMERIC | {"date"}, "last_value": NUMERIC | {"keyword"}}
CLAUSE = re.compile(r'^([\w.@]+)\s*(?::\s*(?:"([^"]*)"|\(([^)]*)\)|(\*))|>=\s*([\d.]+))$')


def kql(query: str) -> dict[str, Any]:
    """The subset of KQL the saved objects use, as an Elasticsearch bool filter."""
    filters: list[dict[str, Any]] = []
    for clause in query.split(" and "):
        m = CLAUSE.match(clause.strip())
        assert m, f"KQL this test does not know: {clause!r}"
        field, value, values, star, at_least = m.groups()
        if value is not None:
            filters.append({"term": {field: value}})
        elif values is not None:
            filters.append({"terms": {field: re.findall(r'"([^"]*)"', values)}})
        elif star:
            filters.append({"exists": {"field": field}})
        else:
            filters.append({"range": {field: {"gte": float(at_least)}}})
    return {"bool": {"filter": filters}}


def lens_aggs(columns: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Bucket columns nested in column order, metric columns inside the innermost one."""
    metrics: dict[str, Any] = {}
    for cid in order:
        c = columns[cid]
        op, field = c["operationType"], c.get("sourceField")
        if op in ("sum", "max", "min"):
            metrics[cid] = {op: {"field": field}}
        elif op == "average":
            metrics[cid] = {"avg": {"field": field}}
        elif op == "percentile":
            metrics[cid] = {"percentiles": {"field": field, "percents": [c["params"]["percentile"]]}}
        elif op == "count" and "filter" in c:  # a formula's part: count(kql=...)
            metrics[cid] = {"filter": kql(c["filter"]["query"])}
        elif op == "last_value":
            metrics[cid] = {"top_hits": {"size": 1, "sort": [{c["params"]["sortField"]: "desc"}], "_source": [field]}}
    aggs = metrics
    for cid in reversed([c for c in order if columns[c]["isBucketed"]]):
        c = columns[cid]
        if c["operationType"] == "date_histogram":
            interval = c["params"]["interval"]
            body: dict[str, Any] = {"date_histogram": {"field": c["sourceField"],
                                                       "fixed_interval": "1h" if interval == "auto" else interval}}
        else:
            body = {"terms": {"field": c["sourceField"], "size": c["params"]["size"]}}
        aggs = {cid: {**body, "aggs": aggs}} if aggs else {cid: body}
    return aggs


def value(row: dict[str, Any], columns: dict[str, Any], cid: str) -> float:
    """A metric column's value in one row, formulas worked out as Lens does (in Kibana, on the parts)."""
    c = columns[cid]
    op = c["operationType"]
    if op == "formula":
        return value(row, columns, c["references"][0])
    if op == "math":
        return evaluate(row, columns, c["params"]["tinymathAst"])
    if op == "count":
        return float(row[cid]["doc_count"])
    return float(row[cid]["value"])


def evaluate(row: dict[str, Any], columns: dict[str, Any], node: Any) -> float:
    if isinstance(node, str):
        return value(row, columns, node)
    args = [evaluate(row, columns, a) for a in node["args"]]
    ops = {"add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
           "divide": lambda a, b: a / b}
    result: float = ops[node["name"]](*args)
    return result


def leaves(result: dict[str, Any], order: list[str], columns: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The innermost buckets of a nested aggregation result."""
    bucketed = [c for c in order if columns[c]["isBucketed"]]

    def walk(node: dict[str, Any], depth: int) -> Iterator[dict[str, Any]]:
        if depth == len(bucketed):
            yield node
            return
        for b in node[bucketed[depth]]["buckets"]:
            yield from walk(b, depth + 1)

    yield from walk(result, 0)


#: An imported hour of history: 7 declined card payments in one document, at the scene's time.
IMPORTED = payment_aggregate(scene.T0_MS, 3600, "imported-card", "payment.failed", 7, "imported_decline")


@pytest.fixture(scope="module")
def store(elasticsearch_url: str) -> Iterator[ElasticsearchStore]:
    es = ElasticsearchStore(elasticsearch_url, data_stream=f"logs-commerce.events-k{uuid.uuid4().hex[:10]}")
    assert es.write(scene.documents()).rejected == 0
    assert es.write_aggregates([IMPORTED]).written == 1
    es.refresh()
    yield es
    es.close()


def mapped(es: ElasticsearchStore, fields: set[str]) -> dict[str, str]:
    res = es.http.request("GET", f"/{es.data_stream}/_mapping/field/{','.join(sorted(fields))}")
    out: dict[str, str] = {}
    for index in res.values():
        for name, spec in index["mappings"].items():
            out[name] = next(iter(spec["mapping"].values()))["type"]
    return out


def test_every_field_is_mapped_in_the_real_stream_with_a_type_its_operation_takes(store: ElasticsearchStore) -> None:
    objs = saved()
    types = mapped(store, set().union(*(referenced_fields(o) for o in objs)))
    for obj in objs:
        missing = referenced_fields(obj) - set(types)
        assert not missing, f"{obj['id']} uses fields the stream does not map: {missing}"
        if obj["type"] != "lens":
            continue
        for layer in obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values():
            for c in layer["columns"].values():
                if c.get("sourceField", "___records___") != "___records___":
                    kind = types[c["sourceField"]]
                    assert kind in ACCEPTS[c["operationType"]], f"{obj['id']}: {c['operationType']} on {kind}"


def test_the_panels_about_anomalies_and_findings_show_the_stored_ones(store: ElasticsearchStore) -> None:
    shown: dict[str, int] = {}
    for obj in saved():
        if obj["type"] == "lens":
            state = obj["attributes"]["state"]
            layer = next(iter(state["datasourceStates"]["formBased"]["layers"].values()))
            columns, order = layer["columns"], layer["columnOrder"]
            res = store.http.request("POST", f"/{store.data_stream}/_search", {
                "size": 0, "query": kql(state["query"]["query"]), "aggs": lens_aggs(columns, order)})
            rows = [b for b in leaves(res["aggregations"], order, columns) if b.get("doc_count")]
            shown[obj["id"]] = len(rows)
            if obj["id"] == "commerce-failure-reasons":  # the imported hour counts as its 7 failures
                failures = {row["key"]: value(row, columns, "n") for row in rows}
                assert failures.pop("imported_decline") == 7, failures
                assert failures == {row["key"]: row["doc_count"] for row in rows if row["key"] in failures}
            for row in rows:  # every metric of a shown row has a value
                for cid in order:
                    if cid in row and "value" in row[cid]:
                        assert row[cid]["value"] is not None, (obj["id"], cid)
        elif obj["type"] == "search":
            query = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
            res = store.http.request("POST", f"/{store.data_stream}/_search", {"size": 100, "query": kql(query)})
            shown[obj["id"]] = len(res["hits"]["hits"])
    exp = scene.expected()
    assert shown["commerce-anomalies"] == 3  # sku-cheese, card, the whole shop: the abnormal series
    assert shown["commerce-anomaly-list"] == 5 + 2 + 1  # their abnormal buckets
    assert shown["commerce-findings-list"] == len(exp["findings"])
    assert shown["commerce-findings-over-time"] >= 2  # LOST and DUPLICATE
    assert shown["commerce-alert-states"] == 4
    assert shown["commerce-anomaly-scores"] >= 3
    assert all(shown[o] > 0 for o in shown), {o: n for o, n in shown.items() if not n}
