"""elastic-apm's own framework integration alongside ours: one transaction per request.

Each framework runs in a subprocess (elastic-apm's agent is process-global) with
both agents pointed at the schema-validating intake receiver. The control run
disables our integration and shows elastic-apm's transaction really is there,
so "exactly one" in the main run means ours replaced it rather than both missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.support.apm_intake import IntakeReceiver
from tests.support import zipkin as z
from tests.web.servers import REPO

OURS, THEIRS = "ours-svc", "elastic-svc"


def _run(receiver: IntakeReceiver, framework: str, trace_ids: list[str], **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTIC_APM_", "OTEL_", "COMMERCE_OBSERVE_"))}
    env.update({
        "ELASTIC_APM_SERVER_URL": receiver.url, "ELASTIC_APM_SERVICE_NAME": THEIRS, "OTEL_SERVICE_NAME": OURS,
        "ELASTIC_APM_CENTRAL_CONFIG": "false", "ELASTIC_APM_CLOUD_PROVIDER": "none",
        "ELASTIC_APM_METRICS_INTERVAL": "0s", "ELASTIC_APM_API_REQUEST_TIME": "200ms",
        "COMMERCE_OBSERVE_STRICT": "true", "COMMERCE_OBSERVE_OUTPUT_FILE": os.devnull,
    })
    env.update(extra)
    done = subprocess.run([sys.executable, "-m", "tests.web.apps.elastic_alongside", framework, ",".join(trace_ids)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stderr


def _transactions_by_trace(receiver: IntakeReceiver, trace_ids: list[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """trace id -> [(service that sent it, transaction)] for the request transactions."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {t: [] for t in trace_ids}
    for request in receiver.requests:
        service = request.events[0][1]["service"]["name"] if request.events else "?"
        for kind, data in request.events:
            if kind == "transaction" and data.get("trace_id") in out:
                out[data["trace_id"]].append((service, data))
    return out


@pytest.mark.parametrize("framework", ["flask", "django", "starlette"])
def test_one_transaction_per_request(framework: str) -> None:
    trace_ids = [z.new_trace_id() for _ in range(3)]
    with IntakeReceiver() as receiver:
        log = _run(receiver, framework, trace_ids)
        found = _transactions_by_trace(receiver, trace_ids)
        assert receiver.problems() == [], receiver.problems()
    for trace_id, transactions in found.items():
        assert [s for s, _ in transactions] == [OURS], f"{framework} trace {trace_id}: {transactions}"
        assert transactions[0][1]["type"] == "request"
    assert log.count("elastic-apm's own request transactions") == 1, log
    assert f"COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS={framework}" in log


@pytest.mark.parametrize("framework", ["flask", "django", "starlette"])
def test_disabling_ours_gives_the_transaction_back(framework: str) -> None:
    trace_ids = [z.new_trace_id() for _ in range(2)]
    with IntakeReceiver() as receiver:
        log = _run(receiver, framework, trace_ids, COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS=framework)
        found = _transactions_by_trace(receiver, trace_ids)
    for trace_id, transactions in found.items():
        assert [s for s, _ in transactions] == [THEIRS], f"{framework} trace {trace_id}: {transactions}"
    assert "elastic-apm's own request transactions" not in log
