"""The configuration registry: parsing, precedence, errors that name the variable."""

import subprocess
import sys
from pathlib import Path

import pytest

from commerce_observe.config import SETTINGS, ConfigError, load_config, markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_environment() -> None:
    config = load_config({})
    assert config.service_name == "unknown_service"
    assert config.zipkin_endpoint is None and config.apm_server_url is None
    assert config.sampler == "parentbased_always_on"
    assert "card_number" in config.sensitive_fields


def test_environment_wins_over_code_over_default() -> None:
    env = {"OTEL_SERVICE_NAME": "orders"}
    assert load_config(env, service_name="code").service_name == "orders"
    assert load_config({}, service_name="code").service_name == "code"


def test_resource_attributes_and_lists_parse() -> None:
    config = load_config({
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod, service.version=1.2",
        "COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS": "flask, pika",
    })
    assert dict(config.resource_attributes) == {"deployment.environment": "prod", "service.version": "1.2"}
    assert config.disabled_instrumentations == ("flask", "pika")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "localhost:9411"),
        ("ELASTIC_APM_SERVER_URL", "ftp://apm"),
        ("COMMERCE_OBSERVE_STRICT", "maybe"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_PROPAGATORS", "tracecontext,jaeger"),
    ],
)
def test_invalid_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({name: value})
    assert name in str(err.value)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="servce_name"):
        load_config({}, servce_name="x")


def test_secrets_are_redacted() -> None:
    config = load_config({"ELASTIC_APM_SECRET_TOKEN": "s3cr3t"})
    assert config.redacted()["ELASTIC_APM_SECRET_TOKEN"] == "***"


def test_every_setting_is_declared_once_and_documented() -> None:
    envs = [s.env for s in SETTINGS]
    attrs = [s.attr for s in SETTINGS]
    assert len(set(envs)) == len(envs) and len(set(attrs)) == len(attrs)
    assert all(s.doc.strip() for s in SETTINGS)


def test_readme_table_is_generated_from_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "regenerate with: python -m commerce_observe.config"


def test_the_readme_command_prints_the_table_and_nothing_else() -> None:
    """`python -m commerce_observe.config` as the README gives it: no runpy warning on stderr."""
    done = subprocess.run([sys.executable, "-m", "commerce_observe.config"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == markdown_table() + "\n"
