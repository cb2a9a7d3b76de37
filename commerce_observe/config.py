"""The one configuration registry.

Every setting is declared exactly once below: environment variable, type (its
parser), default and a one-line doc. The README's configuration table is generated
from this list (``python -m commerce_observe.config``) and a test keeps the two in
step. Precedence: environment over code (``install(**overrides)``) over defaults;
an empty (or blank) value means unset, in the environment and in code alike.

Validation is the same for both sources: an override is written as the text an
environment variable would hold (``schedule_delay_ms=0`` is ``"0"``) and parsed
by the same parser. Which mistakes fail fast (decided once, here):

* ``install()`` / ``install(**overrides)``, called from code: a bad value (from the
  environment or from code) or an unknown override name raises
  :class:`ConfigError` naming it; the developer is looking at that call;
* ``import commerce_observe.auto`` and the OpenTelemetry distro (``lenient=True``):
  never raise; each bad value is logged once with its variable, counted
  (``config.invalid``) and replaced by its default, as the OpenTelemetry SDK does;
* unknown ``COMMERCE_OBSERVE_*`` variables (typos) are logged once with the
  nearest known name and counted (``config.unknown_variable``), never fatal.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlparse

from commerce_observe._internal.redact import redact_credentials
from commerce_observe.agent.privacy.keys import DEFAULT_SENSITIVE_KEYS

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


# --- parsers ---------------------------------------------------------------------


def _str(raw: str) -> str:
    return raw.strip()


def _opt_str(raw: str) -> str | None:
    return raw.strip() or None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("expected an http(s) URL")
    return value


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not lo <= value <= hi:
            raise ValueError(f"expected an integer from {lo} to {hi}")
        return value

    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not lo <= value <= hi:
            raise ValueError(f"expected a number from {lo} to {hi}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def _upper_choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_PROPAGATORS = ("tracecontext", "b3", "b3multi", "elastic", "baggage", "none")


def _store(raw: str) -> str | None:
    from commerce_observe.store.store import check_store_spec

    return check_store_spec(raw)


def _zone(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("expected an IANA time zone such as UTC or Europe/Berlin") from None
    return value


def _sensitive(raw: str) -> tuple[str, ...]:
    """Names added to the built-in list, which cannot be switched off (an empty value is the list)."""
    names = list(DEFAULT_SENSITIVE_KEYS)
    names += [n for n in _csv(raw) if n not in names]
    return tuple(names)


def _propagators(raw: str) -> tuple[str, ...]:
    names = _csv(raw.lower())
    unknown = [n for n in names if n not in _PROPAGATORS]
    if unknown:
        raise ValueError(f"unknown propagator(s) {', '.join(unknown)}; expected some of " + ", ".join(_PROPAGATORS))
    return names


def _key_values(raw: str) -> tuple[tuple[str, str], ...]:
    """W3C-baggage-like ``k=v,k2=v2`` as OTEL_RESOURCE_ATTRIBUTES uses it."""
    pairs = []
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value pairs, got {part.strip()!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def _duration_s(raw: str) -> float:
    """Elastic's duration syntax: ``500ms``, ``5s``, ``1m``; a bare number is seconds."""
    value = raw.strip().lower()
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if value.endswith(unit):
            number, factor = value[: -len(unit)], scale
            break
    else:
        number, factor = value, 1.0
    seconds = float(number) * factor
    if not 0 < seconds <= 600:
        raise ValueError("expected a duration from 1ms to 10m, e.g. 5s or 500ms")
    return seconds


def _opt_ratio(raw: str) -> float | None:
    return _float_range(0.0, 1.0)(raw) if raw.strip() else None


_TRACES_EXPORTERS = ("otlp", "zipkin", "console", "none")


def _traces_exporters(raw: str) -> tuple[str, ...]:
    names = _csv(raw.lower())
    unknown = [n for n in names if n not in _TRACES_EXPORTERS]
    if unknown:
        raise ValueError(f"unknown exporter(s) {', '.join(unknown)}; expected some of " + ", ".join(_TRACES_EXPORTERS))
    return names


def _otlp_protocol(raw: str) -> str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if value == "http/json":
        raise ValueError("http/json is not supported; use http/protobuf or grpc")
    if value not in ("http/protobuf", "grpc"):
        raise ValueError("expected http/protobuf or grpc")
    return value


def _opt_choice(*options: str) -> Callable[[str], str | None]:
    pick = _choice(*options)
    return lambda raw: pick(raw) if raw.strip() else None


def _opt_int_range(lo: int, hi: int) -> Callable[[str], int | None]:
    pick = _int_range(lo, hi)
    return lambda raw: pick(raw) if raw.strip() else None


def _headers(raw: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2`` with percent-encoded values, as the OTLP exporter spec says."""
    return tuple((k, unquote(v)) for k, v in _key_values(raw))


# --- the registry ----------------------------------------------------------------


@dataclass(frozen=True)
class Setting(Generic[T]):
    env: str
    attr: str
    parse: Callable[[str], T]
    default: T
    doc: str
    secret: bool = False


SETTINGS: tuple[Setting[Any], ...] = (
    # OpenTelemetry conventions
    Setting("OTEL_SERVICE_NAME", "service_name", _str, "unknown_service", "Service name in every backend. Precedence: this, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then `ELASTIC_APM_SERVICE_NAME`, then `install(service_name=...)`."),
    Setting("OTEL_RESOURCE_ATTRIBUTES", "resource_attributes", _key_values, (), "Extra resource attributes, `k=v,k2=v2` (`deployment.environment`, `service.version`...)."),
    Setting("OTEL_TRACES_SAMPLER", "sampler", _choice("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"), "parentbased_always_on", "Sampler, as in the OpenTelemetry specification."),
    Setting("OTEL_TRACES_SAMPLER_ARG", "sampler_arg", _float_range(0.0, 1.0), 1.0, "Ratio for the `traceidratio` samplers; sent as `sample_rate` on Elastic APM transactions and spans."),
    Setting("OTEL_PROPAGATORS", "propagators", _propagators, (), "Trace header formats written: `tracecontext`, `b3`, `b3multi`, `elastic` (default: all; every format is always read)."),
    Setting("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "zipkin_endpoint", _url, None, "Zipkin v2 spans URL (`http://host:9411/api/v2/spans`); turns Zipkin export on."),
    Setting("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "zipkin_timeout_ms", _int_range(1, 600_000), 10_000, "Zipkin request timeout in milliseconds."),
    Setting("OTEL_TRACES_EXPORTER", "traces_exporter", _traces_exporters, (), "OpenTelemetry span exporters: `otlp`, `zipkin`, `console`, `none`, or a comma list (unset: each backend whose endpoint is set, else the embedded file). Elastic APM export follows `ELASTIC_APM_SERVER_URL` either way."),
    Setting("OTEL_SDK_DISABLED", "sdk_disabled", _bool, False, "`true` makes install() a no-op, as `COMMERCE_OBSERVE_ENABLED=false` does."),
    Setting("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint", _url, None, "OTLP endpoint; turns OTLP export on. A base URL (`/v1/traces` is appended for HTTP); default `http://localhost:4318` (HTTP) or `http://localhost:4317` (gRPC)."),
    Setting("OTEL_EXPORTER_OTLP_PROTOCOL", "otlp_protocol", _otlp_protocol, None, "OTLP protocol: `http/protobuf` (default) or `grpc`."),
    Setting("OTEL_EXPORTER_OTLP_HEADERS", "otlp_headers", _headers, (), "Request headers, `k=v,k2=v2` (values percent-encoded), e.g. `authorization=Bearer%20...`.", secret=True),
    Setting("OTEL_EXPORTER_OTLP_COMPRESSION", "otlp_compression", _opt_choice("gzip", "none"), None, "OTLP compression: `gzip` or `none` (default)."),
    Setting("OTEL_EXPORTER_OTLP_TIMEOUT", "otlp_timeout_ms", _opt_int_range(1, 600_000), None, "OTLP request timeout in milliseconds; default 10000."),
    Setting("OTEL_EXPORTER_OTLP_CERTIFICATE", "otlp_certificate", _opt_str, None, "CA certificate file (PEM) that verifies the OTLP server."),
    Setting("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "otlp_client_certificate", _opt_str, None, "Client certificate file (PEM) for mutual TLS."),
    Setting("OTEL_EXPORTER_OTLP_CLIENT_KEY", "otlp_client_key", _opt_str, None, "Client private key file (PEM) for mutual TLS.", secret=True),
    Setting("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otlp_traces_endpoint", _url, None, "OTLP endpoint for traces (wins over the `OTEL_EXPORTER_OTLP_` one); turns OTLP export on. The full URL for HTTP (`http://host:4318/v1/traces`), `http(s)://host:4317` for gRPC."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "otlp_traces_protocol", _otlp_protocol, None, "OTLP protocol for traces (wins over the `OTEL_EXPORTER_OTLP_` one): `http/protobuf` (default) or `grpc`."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "otlp_traces_headers", _headers, (), "Request headers for traces (wins over the `OTEL_EXPORTER_OTLP_` one), `k=v,k2=v2` (values percent-encoded), e.g. `authorization=Bearer%20...`.", secret=True),
    Setting("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "otlp_traces_compression", _opt_choice("gzip", "none"), None, "OTLP compression for traces (wins over the `OTEL_EXPORTER_OTLP_` one): `gzip` or `none` (default)."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "otlp_traces_timeout_ms", _opt_int_range(1, 600_000), None, "OTLP request timeout in milliseconds for traces (wins over the `OTEL_EXPORTER_OTLP_` one); default 10000."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "otlp_traces_certificate", _opt_str, None, "CA certificate file (PEM) that verifies the OTLP server for traces (wins over the `OTEL_EXPORTER_OTLP_` one)."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "otlp_traces_client_certificate", _opt_str, None, "Client certificate file (PEM) for mutual TLS for traces (wins over the `OTEL_EXPORTER_OTLP_` one)."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "otlp_traces_client_key", _opt_str, None, "Client private key file (PEM) for mutual TLS for traces (wins over the `OTEL_EXPORTER_OTLP_` one).", secret=True),
    Setting("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "sdk_internal_metrics", _bool, False, "The SDK's own span metrics (the SDK reads it too); `true` sends message spans the SDK road instead of light spans."),
    Setting("OTEL_BSP_MAX_QUEUE_SIZE", "max_queue_size", _int_range(1, 10_000_000), 2048, "Spans buffered per exporter before new ones are dropped (and counted)."),
    Setting("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "max_export_batch_size", _int_range(1, 100_000), 512, "Spans sent in one request."),
    Setting("OTEL_BSP_SCHEDULE_DELAY", "schedule_delay_ms", _int_range(1, 600_000), 1000, "Longest wait in milliseconds before buffered spans are sent."),
    Setting("COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT", "shutdown_timeout_ms", _int_range(0, 600_000), 5000, "Longest time in milliseconds `shutdown()` (and interpreter exit) spends flushing; what is still in flight then is dropped and counted."),
    # Elastic APM conventions
    Setting("ELASTIC_APM_SERVER_URL", "apm_server_url", _url, None, "APM Server URL; turns Elastic APM export on."),
    Setting("ELASTIC_APM_SECRET_TOKEN", "apm_secret_token", _opt_str, None, "APM Server secret token.", secret=True),
    Setting("ELASTIC_APM_API_KEY", "apm_api_key", _opt_str, None, "APM Server API key (used instead of the secret token).", secret=True),
    Setting("ELASTIC_APM_ENVIRONMENT", "apm_environment", _opt_str, None, "`service.environment` in Elastic APM."),
    Setting("ELASTIC_APM_VERIFY_SERVER_CERT", "apm_verify_server_cert", _bool, True, "Verify the APM Server's TLS certificate."),
    Setting("ELASTIC_APM_SERVICE_NAME", "apm_service_name", _opt_str, None, "Service name when neither `OTEL_SERVICE_NAME` nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES` is set."),
    Setting("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "apm_sample_rate", _opt_ratio, None, "Share of traces kept, 0 to 1: `parentbased_traceidratio` with this ratio, unless `OTEL_TRACES_SAMPLER` is set (it wins)."),
    Setting("ELASTIC_APM_GLOBAL_LABELS", "apm_global_labels", _key_values, (), "Labels on every Elastic APM event, `k=v,k2=v2` (metadata labels)."),
    Setting("ELASTIC_APM_SERVER_TIMEOUT", "apm_server_timeout_s", _duration_s, 10.0, "APM Server request timeout: `500ms`, `5s`, `1m` (a bare number is seconds)."),
    # our own
    Setting("COMMERCE_OBSERVE_ENABLED", "enabled", _bool, True, "Master switch; `false` makes install() a no-op."),
    Setting("COMMERCE_OBSERVE_STRICT", "strict", _bool, False, "Raise internal errors instead of counting them (tests)."),
    Setting("COMMERCE_OBSERVE_OUTPUT_FILE", "output_file", _str, "commerce-observe-traces.json", "Embedded default when no backend is set: Zipkin v2 JSON file the Zipkin UI can open."),
    Setting("COMMERCE_OBSERVE_SENSITIVE_FIELDS", "sensitive_fields", _sensitive, DEFAULT_SENSITIVE_KEYS, "Attribute/field names whose values are always redacted, added to the built-in list shown (see docs/privacy.md), which cannot be switched off."),
    Setting("COMMERCE_OBSERVE_LOG_CORRELATION", "log_correlation", _bool, True, "Log records (stdlib, structlog) made inside a span carry `trace.id`, `transaction.id`, `span.id`; every record carries `service.name`."),
    Setting("COMMERCE_OBSERVE_LOG_FORMAT", "log_format", _choice("plain", "ecs"), "plain", "`ecs`: ECS JSON log lines (`ecs-logging`) on the root logger's handlers, so Kibana links logs and traces."),
    Setting("COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS", "disabled_instrumentations", _csv, (), "Integrations not to wire, e.g. `kafka_python,flask`."),
    Setting("COMMERCE_OBSERVE_AUDIT_SINK", "audit_sink", _choice("auto", "kafka", "sqlite", "none"), "auto", "Where audit records go (`auto`: a topic on the Kafka cluster of the first Kafka client that sends or receives, else SQLite)."),
    Setting("COMMERCE_OBSERVE_AUDIT_BOOTSTRAP", "audit_bootstrap", _opt_str, None, "Kafka bootstrap servers for the audit topic (default: those of the first Kafka client seen; with sink `auto`, setting it selects Kafka)."),
    Setting("COMMERCE_OBSERVE_AUDIT_TOPIC", "audit_topic", _str, "commerce-observe.audit", "Kafka topic for audit records."),
    Setting("COMMERCE_OBSERVE_AUDIT_PATH", "audit_path", _str, "commerce-observe-audit.sqlite", "SQLite file for audit records (sink `sqlite`)."),
    Setting("COMMERCE_OBSERVE_SPOOL_MAX_BYTES", "spool_max_bytes", _int_range(1, 1 << 40), 256 << 20, "Bound of the local audit spool in bytes (default 256 MiB, about a million records); what does not fit is dropped, counted, and reported by `audit` as a GAP in the trail."),
    Setting("COMMERCE_OBSERVE_SPOOL_DIR", "spool_dir", _str, ".commerce-observe-spool", "Local spool for audit records while the sink is unreachable."),
    Setting("COMMERCE_OBSERVE_KAFKA_SECURITY_PROTOCOL", "kafka_security_protocol", _upper_choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"), "PLAINTEXT", "librdkafka's `security.protocol` for every Kafka client commerce_observe creates (audit sink and reader, events publisher, shipper, watch)."),
    Setting("COMMERCE_OBSERVE_KAFKA_SASL_MECHANISM", "kafka_sasl_mechanism", _upper_choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "PLAIN", "`sasl.mechanism` of those clients."),
    Setting("COMMERCE_OBSERVE_KAFKA_SASL_USERNAME", "kafka_sasl_username", _opt_str, None, "`sasl.username` of those clients."),
    Setting("COMMERCE_OBSERVE_KAFKA_SASL_PASSWORD", "kafka_sasl_password", _opt_str, None, "`sasl.password` of those clients.", secret=True),
    Setting("COMMERCE_OBSERVE_KAFKA_SSL_CA_LOCATION", "kafka_ssl_ca_location", _opt_str, None, "`ssl.ca.location`: CA file (PEM) that verifies the brokers (default: the system's)."),
    Setting("COMMERCE_OBSERVE_KAFKA_SSL_CERTIFICATE_LOCATION", "kafka_ssl_certificate_location", _opt_str, None, "`ssl.certificate.location`: client certificate (PEM) for mutual TLS."),
    Setting("COMMERCE_OBSERVE_KAFKA_SSL_KEY_LOCATION", "kafka_ssl_key_location", _opt_str, None, "`ssl.key.location`: the client certificate's private key (PEM)."),
    Setting("COMMERCE_OBSERVE_KAFKA_SSL_KEY_PASSWORD", "kafka_ssl_key_password", _opt_str, None, "`ssl.key.password`: the private key's password, if it has one.", secret=True),
    Setting("COMMERCE_OBSERVE_KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "kafka_ssl_endpoint_identification_algorithm", _choice("https", "none"), "https", "`ssl.endpoint.identification.algorithm`: `https` checks the broker's host name against its certificate, `none` does not."),
    Setting("COMMERCE_OBSERVE_EVENT_STORE", "event_store", _store, None, "Ship commerce events straight to a store: `sqlite:PATH` or Elasticsearch URLs (comma-separated nodes; `https://user:pass@host:9200` works)."),
    Setting("COMMERCE_OBSERVE_ES_API_KEY", "es_api_key", _opt_str, None, "Elasticsearch API key (encoded form) for the store (wins over user and password).", secret=True),
    Setting("COMMERCE_OBSERVE_ES_USERNAME", "es_username", _opt_str, None, "Elasticsearch user for basic auth (credentials in the store URL work too)."),
    Setting("COMMERCE_OBSERVE_ES_PASSWORD", "es_password", _opt_str, None, "Elasticsearch password for basic auth.", secret=True),
    Setting("COMMERCE_OBSERVE_ES_CA_CERTS", "es_ca_certs", _opt_str, None, "CA file (PEM) that verifies Elasticsearch's certificate (default: the system's)."),
    Setting("COMMERCE_OBSERVE_ES_SSL_ASSERT_FINGERPRINT", "es_ssl_assert_fingerprint", _opt_str, None, "SHA-256 fingerprint of Elasticsearch's certificate, instead of a CA file."),
    Setting("COMMERCE_OBSERVE_ES_VERIFY_CERTS", "es_verify_certs", _bool, True, "Verify Elasticsearch's TLS certificate."),
    Setting("COMMERCE_OBSERVE_EVENTS_BOOTSTRAP", "events_bootstrap", _opt_str, None, "Publish commerce events to the Kafka events topic here (read by `commerce-observe ship`)."),
    Setting("COMMERCE_OBSERVE_PROMETHEUS_PORT", "prometheus_port", _int_range(0, 65535), 0, "Serve live commerce metrics for Prometheus on this port (0: off)."),
    Setting("COMMERCE_OBSERVE_PROMETHEUS_HOST", "prometheus_host", _str, "127.0.0.1", "Address the Prometheus endpoint binds: loopback by default; `0.0.0.0` (or a pod IP) to be scraped from outside."),
    Setting("COMMERCE_OBSERVE_ZIPKIN_UI_URL", "zipkin_ui_url", _url, None, "Base URL for trace links to Zipkin (defaults from the Zipkin endpoint)."),
    Setting("COMMERCE_OBSERVE_KIBANA_URL", "kibana_url", _url, None, "Base URL for trace links to Kibana APM."),
    Setting("COMMERCE_OBSERVE_TIMEZONE", "timezone", _zone, "UTC", "The shop's time zone (seasonality, dashboards)."),
)


@dataclass(frozen=True)
class Config:
    """Resolved settings. Build it with :func:`load_config`."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def sample_rate(self) -> float:
        """The share of traces the configured sampler keeps (Elastic APM's ``sample_rate``)."""
        if self.sampler in ("always_off", "parentbased_always_off"):
            return 0.0
        if self.sampler in ("traceidratio", "parentbased_traceidratio"):
            return float(self.sampler_arg)
        return 1.0

    @property
    def zipkin_ui(self) -> str | None:
        """Base URL for trace links to Zipkin: the UI setting, else the Zipkin endpoint without its ``/api/`` path."""
        if self.zipkin_ui_url:
            return str(self.zipkin_ui_url)
        if self.zipkin_endpoint:
            return str(self.zipkin_endpoint).split("/api/", 1)[0]
        return None

    #: What was wrong and replaced by its default (``load_config(lenient=True)`` only).
    problems: tuple[str, ...] = ()

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with secrets and URL credentials hidden, for logs and the demo."""
        out: dict[str, Any] = {}
        for setting in SETTINGS:
            value = self.values.get(setting.attr)
            out[setting.env] = "***" if setting.secret and value else _shown(value)
        return out

    def __repr__(self) -> str:
        return f"Config({self.redacted()!r})"


def _shown(value: Any) -> Any:
    return redact_credentials(value) if isinstance(value, str) else value


_BY_ATTR = {s.attr: s for s in SETTINGS}
_PREFIX = "COMMERCE_OBSERVE_"


def _as_text(value: Any) -> str | None:
    """An override written as the environment variable would hold it (None: unset)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (tuple, list, set, frozenset)):
        return ",".join(f"{item[0]}={item[1]}" if isinstance(item, tuple) and len(item) == 2 else str(item)
                        for item in value)
    raise ValueError(f"expected text, a number or a list, not {type(value).__name__}")


def _invalid(setting: Setting[Any], source: str, raw: str, exc: Exception) -> str:
    shown = "***" if setting.secret else redact_credentials(raw)
    return f"{source}={shown!r} is invalid: {exc}"


def load_config(env: Mapping[str, str] | None = None, *, lenient: bool = False, **overrides: Any) -> Config:
    """Resolve every setting: environment, then ``overrides`` (by attribute name), then default.

    Empty values are unset. ``lenient``: a bad value is replaced by its default and
    described in :attr:`Config.problems` instead of raising (see the module doc).
    """
    environ = os.environ if env is None else env
    unknown = set(overrides) - set(_BY_ATTR)
    if unknown:
        raise ConfigError("unknown setting(s): " + ", ".join(sorted(unknown)))
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw: str | None = environ.get(setting.env)
        source = setting.env
        if raw is None or not raw.strip():
            source = f"install({setting.attr}=...)"
            try:
                raw = _as_text(overrides.get(setting.attr))
            except ValueError as exc:
                raise ConfigError(f"{source}: {exc}") from None
        value = setting.default
        if raw is not None and raw.strip():
            try:
                value = setting.parse(raw)
            except (ValueError, TypeError) as exc:
                problem = _invalid(setting, source, raw, exc)
                if not lenient:
                    raise ConfigError(problem) from None
                problems.append(f"{problem}; using the default")
        values[setting.attr] = value
    _resolve_cross_settings(environ, overrides, values)
    return Config(values, tuple(problems))


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """``COMMERCE_OBSERVE_*`` variables set but not in the registry, each with the nearest known name."""
    environ = os.environ if env is None else env
    known = [s.env for s in SETTINGS]
    out = []
    for name in sorted(n for n in environ if n.startswith(_PREFIX) and n not in known and not n.startswith(_PREFIX + "TEST_")):
        near = difflib.get_close_matches(name, known, n=1)
        out.append(f"{name} is not a setting" + (f" (did you mean {near[0]}?)" if near else ""))
    return out


def _resolve_cross_settings(environ: Mapping[str, str], overrides: Mapping[str, Any], values: dict[str, Any]) -> None:
    """Settings that stand in for one another, in the documented order.

    ``service.name``: ``OTEL_SERVICE_NAME`` wins over ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES`` (the OpenTelemetry specification), then the Elastic
    agents' ``ELASTIC_APM_SERVICE_NAME``, then code (``install(service_name=...)``): the
    environment wins over code, as for every setting. The sampler: an explicit
    ``OTEL_TRACES_SAMPLER`` (or code) wins over ``ELASTIC_APM_TRANSACTION_SAMPLE_RATE``.
    """
    if not environ.get("OTEL_SERVICE_NAME", "").strip():
        from_resource = dict(values["resource_attributes"]).get("service.name")
        name = from_resource or values["apm_service_name"]
        if name:
            values["service_name"] = name
    rate = values["apm_sample_rate"]
    if rate is not None and not environ.get("OTEL_TRACES_SAMPLER", "").strip() and overrides.get("sampler") in (None, ""):
        values["sampler"] = "parentbased_traceidratio"
        values["sampler_arg"] = rate


def markdown_table() -> str:
    """The README's configuration table, generated from the registry."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        shown = "" if default in (None, "", ()) else f"`{default}`"
        lines.append(f"| `{s.env}` | {shown} | {s.doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
