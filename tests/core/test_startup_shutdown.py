"""Start-up and shutdown never hurt the application.

No value of any documented setting makes ``import commerce_observe`` or
``import commerce_observe.auto`` raise or block (each checked in a process of its
own); code-given settings are validated exactly like the environment's; start-up
conditions (a store that never answers, a busy port) are retried in the
background; ``shutdown()`` returns by its deadline against a backend that accepts
and never answers, counting what was still in flight as dropped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import commerce_observe
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.privacy.keys import DEFAULT_SENSITIVE_KEYS
from commerce_observe.config import SETTINGS, ConfigError, load_config
from commerce_observe.testing import InMemoryExporter
from tests.support.blackhole import BlackHole
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from decimal import Decimal
import commerce_observe, commerce_observe.auto
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("hello"):
    commerce_observe.order_created("ord-1", amount=Decimal("10.00"), currency="EUR")
print("ok")
"""


def _run(code: str, env: dict[str, str], cwd: Path, extra_path: str = "") -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELASTIC_APM_", "COMMERCE_OBSERVE_"))}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=cwd, capture_output=True, text=True, timeout=90)


def _rejects(setting: Any, value: str) -> bool:
    try:
        setting.parse(value)
    except (ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("value", ["bogus", "-1", "http://", "foo:bar", "99999999999999999999", "   "])
def test_no_setting_value_breaks_or_blocks_the_import(value: str, tmp_path: Path) -> None:
    env = {s.env: value for s in SETTINGS}
    # A short exit: the Kafka publisher to "bogus" holds shutdown for its whole budget
    # (bounded: the default 5 s). Bad values of this one are checked in-process below.
    env["COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT"] = "300"
    result = _run(SCRIPT, env, tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert "Traceback" not in result.stderr
    for setting in SETTINGS:  # each bad value named once, by its variable; blank is simply unset
        if setting.env == "COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT":
            assert load_config({setting.env: value}, lenient=True).shutdown_timeout_ms == 5000
            continue
        expected = 1 if value.strip() and _rejects(setting, value) else 0
        assert result.stderr.count(f"{setting.env}=") == expected, (setting.env, result.stderr)


def test_overrides_are_checked_like_the_environment() -> None:
    bad = {"schedule_delay_ms": 0, "sampler": "bogus", "zipkin_endpoint": "localhost:9411", "max_queue_size": -1,
           "sampler_arg": 1.5, "enabled": "maybe", "resource_attributes": "novalue", "propagators": ("jaeger",),
           "timezone": "Mars/Olympus", "event_store": "foo:bar", "shutdown_timeout_ms": -5, "zipkin_timeout_ms": 2.5}
    for attr, value in bad.items():
        with pytest.raises(ConfigError, match=attr):
            commerce_observe.install(env={}, **{attr: value})
        assert commerce_observe.current() is None
    good = load_config({}, schedule_delay_ms=5, propagators=("b3",), resource_attributes={"a": "b"}, sampler_arg=0.5,
                       enabled=True, zipkin_endpoint="")
    assert (good.schedule_delay_ms, good.propagators, good.resource_attributes, good.sampler_arg, good.enabled,
            good.zipkin_endpoint) == (5, ("b3",), (("a", "b"),), 0.5, True, None)


def test_empty_means_unset_and_lenient_falls_back_to_defaults() -> None:
    assert load_config({"OTEL_SERVICE_NAME": ""}, service_name="code").service_name == "code"
    assert load_config({"OTEL_EXPORTER_ZIPKIN_ENDPOINT": "  "}).zipkin_endpoint is None
    lenient = load_config({"OTEL_BSP_SCHEDULE_DELAY": "0", "OTEL_SERVICE_NAME": "svc"}, lenient=True)
    assert lenient.schedule_delay_ms == 1000 and lenient.service_name == "svc"
    assert len(lenient.problems) == 1 and "OTEL_BSP_SCHEDULE_DELAY" in lenient.problems[0]
    assert load_config({}).shutdown_timeout_ms <= 5000


@pytest.mark.parametrize("raw", ["", " ", ",", " , ", "loyalty_id"])
def test_an_empty_sensitive_setting_never_switches_redaction_off(raw: str) -> None:
    names = load_config({"COMMERCE_OBSERVE_SENSITIVE_FIELDS": raw}).sensitive_fields
    assert set(DEFAULT_SENSITIVE_KEYS) <= set(names)
    assert ("loyalty_id" in names) == (raw == "loyalty_id")


def test_config_repr_hides_secrets_and_url_credentials() -> None:
    config = load_config({"ELASTIC_APM_SECRET_TOKEN": "s3cr3t", "ELASTIC_APM_SERVER_URL": "https://apm:pa55@apm:8200",
                          "COMMERCE_OBSERVE_EVENT_STORE": "http://elastic:hunter2@es:9200"})
    text = repr(config) + str(config) + repr(config.redacted())
    assert "s3cr3t" not in text and "pa55" not in text and "hunter2" not in text
    assert config.apm_server_url == "https://apm:pa55@apm:8200"  # the value itself is intact for use


def test_unknown_variables_are_named_with_the_nearest_setting(tmp_path: Path) -> None:
    result = _run("import commerce_observe.auto", {"COMMERCE_OBSERVE_EVENT_STOR": "sqlite:x.db"}, tmp_path)
    assert result.returncode == 0
    assert "COMMERCE_OBSERVE_EVENT_STOR is not a setting (did you mean COMMERCE_OBSERVE_EVENT_STORE?)" in result.stderr


def test_a_store_that_never_answers_blocks_neither_import_nor_exit(tmp_path: Path) -> None:
    with BlackHole() as hole:
        result = _run(SCRIPT, {"COMMERCE_OBSERVE_EVENT_STORE": f"http://elastic:hunter2@127.0.0.1:{hole.port}",
                               "COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT": "300"}, tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert "hunter2" not in result.stderr


def test_a_busy_prometheus_port_is_retried_in_the_background() -> None:
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    runtime = commerce_observe.install(env={}, prometheus_port=port, exporters=[InMemoryExporter()])
    try:
        assert runtime is not None and stats.get("startup.prometheus_port_busy") >= 1
        holder.close()

        def scrape() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_for("the metrics endpoint once the port is free", scrape, timeout=40, interval=0.3)
        assert stats.get("startup.prometheus.retries") >= 1
    finally:
        holder.close()
        commerce_observe.shutdown()


def test_shutdown_returns_by_its_deadline_against_a_backend_that_never_answers() -> None:
    with BlackHole() as hole:
        runtime = commerce_observe.install(env={}, zipkin_endpoint=f"http://127.0.0.1:{hole.port}/api/v2/spans",
                                           zipkin_timeout_ms=600_000, shutdown_timeout_ms=300, schedule_delay_ms=10)
        assert runtime is not None
        tracer = trace.get_tracer("t")
        for n in range(5):
            with tracer.start_as_current_span(f"span-{n}"):
                pass
        wait_for("the Zipkin request to be in flight", lambda: runtime.pipeline.stats()["zipkin"]["in_flight"], 20)
        finished = threading.Event()
        threading.Thread(target=lambda: (commerce_observe.shutdown(), finished.set()), daemon=True).start()
        # 300 ms configured against a 600 s request timeout: an unbounded shutdown cannot pass this.
        assert finished.wait(60), "shutdown did not return"
    assert stats.get("runtime.shutdown_timed_out") == 1
    assert stats.get("export.zipkin.dropped") == 5
    assert commerce_observe.current() is None


def test_otel_propagators_names_load_through_our_entry_points(tmp_path: Path) -> None:
    """An install of the package (its dist-info, written from pyproject.toml) makes
    OpenTelemetry's own loading find b3, b3multi and elastic."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]["opentelemetry_propagator"]
    assert set(points) == {"b3", "b3multi", "elastic"}
    info = tmp_path / "commerce_observe_entry_points-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: commerce-observe-entry-points\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[opentelemetry_propagator]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    code = ("from opentelemetry import propagate, trace\n"
            "from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags\n"
            "sc = SpanContext(0x80f198ee56343ba864fe8b2a57d3eff7, 0xe457b5a2e4d86bd1, False, TraceFlags(1))\n"
            "carrier = {}\n"
            "propagate.inject(carrier, trace.set_span_in_context(NonRecordingSpan(sc)))\n"
            "print(sorted(carrier))\n"
            "import commerce_observe\n")
    result = _run(code, {"OTEL_PROPAGATORS": "b3multi,elastic"}, tmp_path, extra_path=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['X-B3-Sampled', 'X-B3-SpanId', 'X-B3-TraceId', 'elastic-apm-traceparent']"


def test_a_propagator_name_nothing_provides_does_not_fail_the_import(tmp_path: Path) -> None:
    result = _run("import commerce_observe\nprint('ok')", {"OTEL_PROPAGATORS": "tracecontext,bogus"}, tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert "OTEL_PROPAGATORS" not in result.stderr  # a wrong name is reported by the configuration at install
