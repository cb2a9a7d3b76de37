"""One identity in two backends: the demo flow to the real Zipkin and to Elastic APM.

No Elastic APM Server can run here (its Go module cannot be installed), so the APM
side goes to the schema-validating receiver in tests/support/apm_intake.py: every
intake event the exporter really sent is validated against the official schemas
(tests/support/specs/elastic-apm-intake-v2/, a copy of ../shared/specs/).
"""

import json
import re
import subprocess
import sys
from collections import Counter

from commerce_observe.monitor.cli.demo import run_flow
from commerce_observe.agent.events.conventions import FAILURE_REASON as REASON
from tests.support.apm_intake import IntakeReceiver
from tests.support.zipkin import installed, read_trace


def test_demo_flow_has_the_same_ids_in_zipkin_and_elastic_apm(zipkin_url: str) -> None:
    with IntakeReceiver() as apm:
        with installed(zipkin_url, "dual-export-test", ELASTIC_APM_SERVER_URL=apm.url) as runtime:
            result = run_flow(12, seed=3, failure_rate=0.3)
            assert runtime.flush()
        assert apm.problems() == []
        apm_by_trace: dict[str, set[str]] = {}
        for kind in ("transaction", "span"):
            for event in apm.events(kind):
                apm_by_trace.setdefault(event["trace_id"], set()).add(event["id"])
        raw_apm = json.dumps(apm.events())

    failure_reasons: Counter[str] = Counter()
    for trace_id in result.trace_ids:
        expected = len(apm_by_trace[trace_id])
        assert expected >= 3  # server, producer, consumer (+ capture when paid)
        spans = read_trace(zipkin_url, trace_id, expected)
        assert {s["id"] for s in spans} == apm_by_trace[trace_id]
        assert all(s["localEndpoint"]["serviceName"] == "dual-export-test" for s in spans)
        raw_zipkin = json.dumps(spans)
        for raw in (raw_zipkin, raw_apm):
            # the card's digits, not just "4111": random hex ids contain that now and then
            assert not re.search(r"4111[ -]?1111[ -]?1111", raw), "card number left the process"
            assert not re.search(r"buyer\d+@example\.com", raw), "e-mail left the process"
        failure_reasons.update(s["tags"][REASON] for s in spans if REASON in s.get("tags", {}))
    assert sum(result.failures.values()) > 0 and failure_reasons == result.failures


def test_demo_command_reports_where_traces_went(zipkin_url: str) -> None:
    with IntakeReceiver() as apm:
        out = subprocess.run(
            [sys.executable, "-m", "commerce_observe", "demo", "--orders", "40", "--zipkin", zipkin_url, "--apm", apm.url],
            capture_output=True, text=True, timeout=180,
        )
        assert out.returncode == 0, out.stderr
        assert apm.problems() == []
        assert len(apm.events("transaction")) >= 80  # a SERVER and a CONSUMER transaction per order
    assert f"Zipkin at {zipkin_url}/api/v2/spans" in out.stdout
    assert f"Elastic APM at {apm.url}" in out.stdout
    assert "orders: 40" in out.stdout and "dropped/ignored: nothing" in out.stdout
    trace_id = re.search(r"example trace id: ([0-9a-f]{32})", out.stdout)
    assert trace_id is not None
    assert len(read_trace(zipkin_url, trace_id.group(1), 3)) >= 3
