"""OTEL_TRACES_EXPORTER and OTEL_SDK_DISABLED, as the OpenTelemetry specification reads them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from opentelemetry import trace

import commerce_observe
from commerce_observe.agent.export.console import ConsoleExporter
from commerce_observe.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    commerce_observe.shutdown()
    yield
    commerce_observe.shutdown()


def names(env: dict[str, str]) -> list[str]:
    runtime = commerce_observe.install(env=env)
    assert runtime is not None
    return [e.name for e in runtime.exporters]


ZIPKIN = {"OTEL_EXPORTER_ZIPKIN_ENDPOINT": "http://127.0.0.1:9/api/v2/spans"}


@pytest.mark.parametrize(("env", "expected"), [
    (ZIPKIN, ["zipkin"]),  # unset: every backend whose endpoint is set
    (ZIPKIN | {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, ["zipkin", "otlp"]),
    (ZIPKIN | {"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),  # endpoint set but not chosen
    ({"OTEL_TRACES_EXPORTER": "zipkin, otlp ,console"}, ["zipkin", "otlp", "console"]),
    (ZIPKIN | {"OTEL_TRACES_EXPORTER": "none"}, []),  # and no embedded file either
    ({"OTEL_TRACES_EXPORTER": "none", "ELASTIC_APM_SERVER_URL": "http://127.0.0.1:9"}, ["elastic_apm"]),
])
def test_traces_exporter_chooses_the_exporters(env: dict[str, str], expected: list[str]) -> None:
    assert names(env) == expected


def test_chosen_exporters_without_endpoints_use_the_spec_defaults() -> None:
    runtime = commerce_observe.install(env={"OTEL_TRACES_EXPORTER": "zipkin,otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert runtime is not None
    assert runtime.destinations == ["Zipkin at http://localhost:9411/api/v2/spans", "OTLP (grpc) at http://localhost:4317"]


def test_an_unknown_exporter_name_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER='jaeger' is invalid: unknown exporter"):
        load_config({"OTEL_TRACES_EXPORTER": "jaeger"})
    with pytest.raises(ConfigError, match="http/json is not supported"):
        load_config({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"})


def test_sdk_disabled_makes_install_a_no_op() -> None:
    assert commerce_observe.install(env={"OTEL_SDK_DISABLED": "true"} | ZIPKIN) is None
    assert not trace.get_tracer("x").start_span("s").get_span_context().is_valid


def test_console_prints_masked_spans_one_json_per_line() -> None:
    out = io.StringIO()
    runtime = commerce_observe.install(env={"OTEL_TRACES_EXPORTER": "none", "OTEL_SERVICE_NAME": "console-test"},
                                       exporters=[ConsoleExporter(out)])
    assert runtime is not None
    with trace.get_tracer("t").start_as_current_span("pay", attributes={"card_number": "4111111111111111"}):
        pass
    assert runtime.flush()
    (line,) = out.getvalue().splitlines()
    span = json.loads(line)
    assert span["name"] == "pay" and span["localEndpoint"]["serviceName"] == "console-test"
    assert "4111111111111111" not in line
