"""The Elasticsearch side of the documents: data stream, index template, ILM policy.

Naming follows Elastic's data stream scheme ``{type}-{dataset}-{namespace}``:
``logs-commerce.events-default``, so Kibana's ``logs-*`` views and Fleet-style
tooling see it, and our template (priority 200) wins over the stack's built-in
``logs-*-*`` template (priority 100). ``FIELDS`` is the single list of mapped
fields: the template is built from it, and the Kibana saved objects are tested
against it. ``dynamic: false`` keeps unknown keys in ``_source`` without letting a
stray field grow the mapping.

``commerce.amount`` is a ``double``: ``scaled_float`` would be smaller but lives
in the ``mapper-extras`` module, missing from minimal distributions; sums are
rounded to 0.001 by the queries either way.
"""

from __future__ import annotations

import json
from typing import Any, Final

from commerce_observe.store.es_client import EsError, EsHttp

DATA_STREAM: Final = "logs-commerce.events-default"
TEMPLATE: Final = "logs-commerce.events"
INDEX_PATTERN: Final = "logs-commerce.events-*"
ILM_POLICY: Final = "commerce-events"

K, D, L, T, DATE, I = "keyword", "double", "long", "text", "date", "integer"
FIELDS: Final[dict[str, str]] = {
    "@timestamp": DATE, "message": T,
    "event.id": K, "event.kind": K, "event.dataset": K, "event.action": K, "event.outcome": K,
    "trace.id": K, "span.id": K, "service.name": K, "error.message": T,
    "messaging.system": K, "messaging.destination.name": K, "messaging.consumer.group.name": K,
    "commerce.record": K, "commerce.event.id": K, "commerce.event.type": K,
    "commerce.order.id": K, "commerce.payment.id": K, "commerce.customer.ref": K,
    "commerce.amount": D, "commerce.currency": K,
    "commerce.order.item_count": I, "commerce.order.product_ids": K,
    "commerce.product.id": K, "commerce.product.quantity": L, "commerce.product.unit_price": D,
    "commerce.product.revenue": D,
    "commerce.payment.method": K, "commerce.payment.failure_reason": K, "commerce.reason": K,
    "commerce.message.partition": I, "commerce.message.offset": L, "commerce.message.latency_ms": D,
    "commerce.finding.kind": K,
    "commerce.anomaly.series": K, "commerce.anomaly.metric": K, "commerce.anomaly.entity": K,
    "commerce.anomaly.score": D, "commerce.anomaly.actual": D, "commerce.anomaly.expected": D,
    "commerce.anomaly.lower": D, "commerce.anomaly.upper": D,
    "commerce.alert.id": K, "commerce.alert.key": K, "commerce.alert.rule": K, "commerce.alert.title": K,
    "commerce.alert.status": K, "commerce.alert.severity": K, "commerce.alert.since": DATE,
    "commerce.alert.where": K, "commerce.alert.measure": T, "commerce.alert.value": D,
    "commerce.aggregate.count": L, "commerce.aggregate.bucket_s": L,
}


def mappings() -> dict[str, Any]:
    """``FIELDS`` as nested object properties (what Elasticsearch stores for dotted keys)."""
    root: dict[str, Any] = {}
    for name, kind in FIELDS.items():
        node = root
        *parents, leaf = name.split(".") if name != "@timestamp" else [name]
        for p in parents:
            node = node.setdefault(p, {"properties": {}})["properties"]
        node[leaf] = {"type": kind, "ignore_above": 1024} if kind == K else {"type": kind}
    return {"dynamic": False, "properties": root}


def index_template(*, ilm_policy: str | None = ILM_POLICY, shards: int = 1, replicas: int | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"index.number_of_shards": shards, "index.refresh_interval": "5s"}
    if replicas is not None:
        settings["index.number_of_replicas"] = replicas
    if ilm_policy:
        settings["index.lifecycle.name"] = ilm_policy
    return {
        "index_patterns": [INDEX_PATTERN],
        "data_stream": {},
        "priority": 200,
        "template": {"settings": settings, "mappings": mappings()},
        "_meta": {"managed_by": "commerce_observe", "description": "commerce events, items, audit records, findings"},
    }


def ilm_policy(*, rollover_age: str = "1d", rollover_size: str = "50gb", warm_after: str = "7d",
               delete_after: str = "90d") -> dict[str, Any]:
    """Hot with daily/50 GB rollover, force-merged when warm, deleted after 90 days."""
    return {"policy": {"phases": {
        "hot": {"actions": {"rollover": {"max_age": rollover_age, "max_primary_shard_size": rollover_size}}},
        "warm": {"min_age": warm_after, "actions": {"forcemerge": {"max_num_segments": 1}}},
        "delete": {"min_age": delete_after, "actions": {"delete": {}}},
    }}}


def install(http_: EsHttp, *, ilm: bool = True, replicas: int | None = None, **policy: str) -> list[str]:
    """Put the ILM policy (when the cluster has ILM) and the index template; returns what was done.

    Idempotent: run it at every start. A cluster without the ILM plugin (minimal
    distributions) gets the template without a lifecycle, and says so.
    """
    done: list[str] = []
    use_ilm = False
    if ilm:
        status, body = http_.raw("GET", "/_ilm/status")
        if status == 200:
            http_.request("PUT", f"/_ilm/policy/{ILM_POLICY}", ilm_policy(**policy))
            done.append(f"ILM policy {ILM_POLICY}")
            use_ilm = True
        else:
            done.append("no ILM on this cluster: template without lifecycle")
    http_.request("PUT", f"/_index_template/{TEMPLATE}",
                  index_template(ilm_policy=ILM_POLICY if use_ilm else None, replicas=replicas))
    done.append(f"index template {TEMPLATE} for {INDEX_PATTERN}")
    return done



def add_new_fields(http_: EsHttp, data_stream: str) -> None:
    """Add fields mapped since the stream was created to its existing backing indices.

    A template change reaches only indices created after it (the next rollover);
    without this a stream created before, say, the alert fields were added would
    keep them unsearchable for up to a day. Adding fields is always allowed; a
    stream that does not exist yet is left to the template.
    """
    status, body = http_.raw("PUT", f"/{data_stream}/_mapping", json.dumps(mappings()).encode())
    if status not in (200, 404):
        raise EsError(status, body)
