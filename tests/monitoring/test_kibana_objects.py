"""The Kibana saved objects: up to date, consistent references, and only fields our template maps."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "kibana"))

import build_saved_objects  # noqa: E402

from commerce_observe.store.es_mapping import FIELDS, INDEX_PATTERN  # noqa: E402

NDJSON = ROOT / "kibana" / "commerce-observe.ndjson"
KUERY_FIELD = re.compile(r"([A-Za-z@][\w.@]*)\s*(?::|>=|<=|>|<)")


def saved() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text().splitlines() if line.strip()]


def referenced_fields(obj: dict[str, Any]) -> set[str]:
    fields: set[str] = set()
    attrs = obj["attributes"]
    if obj["type"] == "lens":
        state = attrs["state"]
        for layer in state["datasourceStates"]["formBased"]["layers"].values():
            fields |= {c["sourceField"] for c in layer["columns"].values()
                       if c.get("sourceField", "___records___") != "___records___"}
            fields |= {c["params"]["sortField"] for c in layer["columns"].values() if "sortField" in c["params"]}
        fields |= set(KUERY_FIELD.findall(state["query"]["query"]))
    elif obj["type"] == "search":
        fields |= set(attrs["columns"]) | {s[0] for s in attrs["sort"]}
        fields |= set(KUERY_FIELD.findall(json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]))
    elif obj["type"] == "index-pattern":
        fields.add(attrs["timeFieldName"])
        fields |= set(json.loads(attrs["fieldFormatMap"]))
    return fields


def test_file_is_what_the_generator_writes() -> None:
    assert NDJSON.read_text() == build_saved_objects.render(), "run: python kibana/build_saved_objects.py"


def test_every_referenced_field_is_in_the_index_template() -> None:
    objs = saved()
    assert {o["type"] for o in objs} == {"index-pattern", "lens", "search", "dashboard"}
    for obj in objs:
        missing = referenced_fields(obj) - set(FIELDS)
        assert not missing, f"{obj['id']} uses unmapped fields {missing}"


def test_references_resolve_and_the_data_view_covers_our_stream() -> None:
    objs = saved()
    ids = {(o["type"], o["id"]) for o in objs}
    for obj in objs:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']} -> {ref}"
    view = next(o for o in objs if o["type"] == "index-pattern")
    assert view["attributes"]["title"] == INDEX_PATTERN
    dashboard = next(o for o in objs if o["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}
    titles = {o["attributes"]["title"] for o in objs if o["type"] == "lens"}
    for wanted in ("Sales trend", "per minute", "Top products", "failures by reason", "Lost and duplicate"):
        assert any(wanted in t for t in titles), wanted


def test_panels_about_orders_and_payments_count_imported_aggregates_by_their_count() -> None:
    """An imported aggregate stands for ``commerce.aggregate.count`` events: a plain Lens ``count`` would make it 1.

    Each such panel selects events and aggregates, and counts with the formula
    ``sum(commerce.aggregate.count) + count(kql='commerce.record : "event"')`` (missing = 1).
    """
    counting = counted = 0
    for obj in saved():
        if obj["type"] != "lens":
            continue
        state = obj["attributes"]["state"]
        if "event.action" not in state["query"]["query"]:
            continue  # findings, anomalies, latency, products: documents that are not events
        counting += 1
        assert '"aggregate"' in state["query"]["query"], f"{obj['id']} leaves out imported history"
        for layer in state["datasourceStates"]["formBased"]["layers"].values():
            columns = layer["columns"]
            assert set(layer["columnOrder"]) == set(columns)
            for cid, c in columns.items():
                assert c["operationType"] != "average", f"{obj['id']}.{cid} averages documents, not events"
                if c["operationType"] == "count":
                    assert c["filter"]["query"] == 'commerce.record : "event"', f"{obj['id']}.{cid} counts documents"
                if c["operationType"] in ("formula", "math"):
                    assert all(ref in columns for ref in c["references"]), (obj["id"], cid)
            formulas = [c["params"]["formula"] for c in columns.values() if c["operationType"] == "formula"]
            counted += any(f == build_saved_objects.EVENTS for f in formulas)
    assert counting == 5  # sales trend, orders and payments, revenue, failures by reason and by method
    assert counted == 4  # all but the sales trend (revenue) show a number of events
