"""The settings people already use: service name precedence, Elastic's sample rate,
global labels and timeout, and a README table that names every variable we read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import commerce_observe
from commerce_observe.config import SETTINGS, ConfigError, load_config
from tests.support.apm_intake import IntakeReceiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("env", "overrides", "expected"), [
    ({}, {}, "unknown_service"),
    ({}, {"service_name": "from-code"}, "from-code"),
    ({"ELASTIC_APM_SERVICE_NAME": "elastic"}, {"service_name": "from-code"}, "elastic"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=res,team=t", "ELASTIC_APM_SERVICE_NAME": "elastic"}, {}, "res"),
    ({"OTEL_SERVICE_NAME": "otel", "OTEL_RESOURCE_ATTRIBUTES": "service.name=res",
      "ELASTIC_APM_SERVICE_NAME": "elastic"}, {}, "otel"),
])
def test_service_name_precedence(env: dict[str, str], overrides: dict[str, str], expected: str) -> None:
    assert load_config(env, **overrides).service_name == expected


def test_resource_service_name_is_not_overwritten() -> None:
    commerce_observe.shutdown()
    runtime = commerce_observe.install(env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=orders",
                                            "OTEL_TRACES_EXPORTER": "none"})
    try:
        assert runtime is not None and runtime.tracer_provider.resource.attributes["service.name"] == "orders"
    finally:
        commerce_observe.shutdown()


def test_elastic_sample_rate_sets_the_sampler_unless_otel_says_otherwise() -> None:
    config = load_config({"ELASTIC_APM_TRANSACTION_SAMPLE_RATE": "0.25"})
    assert (config.sampler, config.sampler_arg, config.sample_rate) == ("parentbased_traceidratio", 0.25, 0.25)
    config = load_config({"ELASTIC_APM_TRANSACTION_SAMPLE_RATE": "0.25", "OTEL_TRACES_SAMPLER": "always_on"})
    assert (config.sampler, config.sample_rate) == ("always_on", 1.0)
    with pytest.raises(ConfigError, match="ELASTIC_APM_TRANSACTION_SAMPLE_RATE='2' is invalid"):
        load_config({"ELASTIC_APM_TRANSACTION_SAMPLE_RATE": "2"})


@pytest.mark.parametrize(("raw", "seconds"), [("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("3", 3.0)])
def test_elastic_server_timeout_reads_durations(raw: str, seconds: float) -> None:
    assert load_config({"ELASTIC_APM_SERVER_TIMEOUT": raw}).apm_server_timeout_s == seconds


def test_intake_carries_sample_rate_and_global_labels_schema_valid() -> None:
    commerce_observe.shutdown()
    with IntakeReceiver() as apm:
        runtime = commerce_observe.install(env={
            "ELASTIC_APM_SERVER_URL": apm.url, "ELASTIC_APM_SERVICE_NAME": "checkout",
            "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1",
            "ELASTIC_APM_GLOBAL_LABELS": "region=eu-west,tier=gold", "ELASTIC_APM_SERVER_TIMEOUT": "2s",
            "OTEL_TRACES_EXPORTER": "none"})
        try:
            assert runtime is not None
            with trace.get_tracer("t").start_as_current_span("order", kind=SpanKind.SERVER):
                with trace.get_tracer("t").start_as_current_span("charge"):
                    pass
            assert runtime.flush()
        finally:
            commerce_observe.shutdown()
        assert apm.problems() == []
        (txn,) = apm.events("transaction")
        (span,) = apm.events("span")
        assert txn["sample_rate"] == 1 and span["sample_rate"] == 1
        (meta, *_) = apm.events("metadata")
        assert meta["service"]["name"] == "checkout"
        assert {"region": "eu-west", "tier": "gold"}.items() <= meta["labels"].items()


#: A variable name as a string literal in code (docstrings name others' settings in backticks).
_VARIABLE = re.compile(r"[\"']((?:OTEL|ELASTIC_APM|COMMERCE_OBSERVE)_[A-Z0-9_]*[A-Z0-9])[\"']")


def test_the_readme_table_names_every_variable_the_package_reads() -> None:
    """Every such name in the package's code is a registered setting, and every
    registered setting is a row of the README's table."""
    declared = {s.env for s in SETTINGS}
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert declared <= rows
    named = {m for path in (ROOT / "commerce_observe").rglob("*.py") for m in _VARIABLE.findall(path.read_text())}
    assert named - declared == set(), "variables read but not declared in commerce_observe/config.py"
