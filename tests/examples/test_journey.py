"""The example shop end to end: one order's journey is one trace, in Zipkin and in
Elastic APM, across the order service (FastAPI), Kafka, the payment service
(Flask, Kafka consumer) and the notification consumer.

The runner is started exactly as a user would start it (``python -m
examples.run_all``), against the test bed's real Kafka and Zipkin, with Elastic
APM export going to the schema-validating intake receiver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.apm_intake import IntakeReceiver
from tests.support import zipkin as z
from tests.web.servers import REPO

SERVICES = {"order-service", "payment-service", "notification-service"}


def _run(out: Path, *args: str, **env_extra: str) -> tuple[dict[str, Any], str]:
    """The runner's JSON summary, and its stderr with each service's log tail (for
    failure messages)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELASTIC_APM_"))}
    env.pop("COMMERCE_OBSERVE_OUTPUT_FILE", None)
    env.update(OTEL_BSP_SCHEDULE_DELAY="100", **env_extra)
    done = subprocess.run([sys.executable, "-m", "examples.run_all", "--out", str(out), "--json", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in out.glob("*.log"))
    assert done.returncode == 0, done.stdout + done.stderr + logs
    for log in out.glob("*.log"):
        assert "Traceback" not in log.read_text(), logs
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, done.stderr + logs


def _connected(spans: list[dict[str, Any]]) -> bool:
    ids = {s["id"] for s in spans}
    return all(s.get("parentId") in ids for s in spans if s.get("parentId"))


def _journey_complete(spans: list[dict[str, Any]]) -> bool:
    kinds = {(s["localEndpoint"]["serviceName"], s.get("kind")) for s in spans}
    return {("order-service", "SERVER"), ("order-service", "PRODUCER"), ("payment-service", "CONSUMER"),
            ("payment-service", "PRODUCER"), ("notification-service", "CONSUMER")} <= kinds


@pytest.mark.zipkin
@pytest.mark.kafka
def test_each_order_is_one_trace_in_zipkin_and_elastic_apm(tmp_path: Path, zipkin_url: str,
                                                           kafka_bootstrap: str, unique_topic: str) -> None:
    with IntakeReceiver() as receiver:
        result, logs = _run(tmp_path, "--orders", "5", "--kafka", kafka_bootstrap, "--topic-prefix", unique_topic,
                      OTEL_EXPORTER_ZIPKIN_ENDPOINT=f"{zipkin_url}/api/v2/spans", ELASTIC_APM_SERVER_URL=receiver.url)
        assert result["mode"] == "kafka" and result["payments_missing"] == 0, logs
        assert result["notifications"] == 5, logs
        traces = result["traces"]
        assert len(set(traces.values())) == 5, "every order has its own trace"
        for order_id, trace_id in traces.items():
            try:
                spans = z.trace(zipkin_url, trace_id, _journey_complete, timeout=30)
            except AssertionError as exc:  # say what the runner and the services logged (export errors, kills)
                raise AssertionError(f"{exc}\n--- run_all's stderr and the services' logs:\n{logs[-6000:]}") from None
            assert {s["localEndpoint"]["serviceName"] for s in spans} == SERVICES
            assert _connected(spans), f"trace {trace_id} is broken into pieces"
            roots = [s for s in spans if not s.get("parentId")]
            assert [r["name"] for r in roots] == ["post /orders"], roots
            assert roots[0]["tags"]["http.route"] == "/orders"
            tagged = {s["tags"].get("commerce.order.id") for s in spans if "tags" in s}
            assert order_id in tagged
        receiver.wait_for("transaction", 15, timeout_s=30)  # 3 per order: SERVER + 2 CONSUMER
        assert receiver.problems() == [], receiver.problems()[:10]
        for trace_id in traces.values():
            apm_services = set()
            for request in receiver.requests:
                service = request.events[0][1]["service"]["name"]
                if any(d.get("trace_id") == trace_id for _, d in request.events[1:]):
                    apm_services.add(service)
            assert apm_services == SERVICES, f"trace {trace_id} reached Elastic APM from {apm_services}"


def test_http_only_path_writes_the_embedded_default_files(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "--orders", "4")
    assert result["mode"] == "http-only" and result["notifications"] is None
    assert result["payments_missing"] == 0
    files = {Path(f).name for f in result["trace_files"]}
    assert files == {"order-service-traces.json", "payment-service-traces.json"}
    spans = [s for f in result["trace_files"] for s in json.loads(Path(f).read_text())]
    for order_id, trace_id in result["traces"].items():
        trace = [s for s in spans if s["traceId"] == trace_id]
        assert _connected(trace)
        (client,) = [s for s in trace if s.get("kind") == "CLIENT" and s["localEndpoint"]["serviceName"] == "order-service"]
        (server,) = [s for s in trace if s.get("kind") == "SERVER" and s["localEndpoint"]["serviceName"] == "payment-service"]
        assert server["parentId"] == client["id"]
        assert server["name"] == "POST /payments"
