"""The one place that wires: config, tracer provider, exporters, patches.

``install()`` builds a single :class:`Runtime` (idempotent and thread-safe: a second
call returns the first runtime), binds it behind OpenTelemetry's global API and
enables the integrations; ``shutdown()`` flushes the exporters and undoes all of it,
and is registered to run at interpreter exit. After ``fork`` the export pipeline
re-creates its threads in the child, so pre-fork servers need nothing extra.

Start-up and shutdown never hurt the application. ``install()`` called from code
fails fast on a bad setting (:class:`~commerce_observe.config.ConfigError`);
:func:`install_safely` (``import commerce_observe.auto``, the distro) logs each bad
setting once, uses its default, and never raises. Nothing on the install path waits
for the network: stores open, and busy ports are retried, in the background.
``shutdown()`` returns within ``COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT`` (default 5 s),
whatever a backend does: the flushing runs on a helper thread, and what is still in
flight at the deadline is dropped and counted.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import sampling

from commerce_observe.agent._provider import SwitchableTracerProvider
from commerce_observe._internal.selfstats import logger, stats
from commerce_observe.config import Config, load_config, unknown_variables
from commerce_observe.agent.export.base import Exporter
from commerce_observe.agent import current as _current
from commerce_observe.agent.hub import Hub
from commerce_observe.agent.instrumentation.base import Instrumentor
from commerce_observe.agent.listeners import attach_all
from commerce_observe.agent.state import AgentState

_lock = threading.RLock()
#: Bindings that outlive a runtime: OpenTelemetry's global provider can be set only
#: once per process, so ours is a switch that install/shutdown rebind.
_proxy: SwitchableTracerProvider | None = None
_atexit_registered = False


@dataclass
class Runtime:
    """Everything ``install()`` created, and nothing global besides the bindings.

    ``state`` owns what changes while the agent runs (hub, registries, propagation
    policy, clusters seen); the instrumentors were handed it when enabled.
    """

    config: Config
    tracer_provider: TracerProvider
    pipeline: Any
    exporters: Sequence[Exporter]
    state: AgentState
    instrumentors: list[Instrumentor] = field(default_factory=list)
    #: Undo steps of the log wiring (masking and correlation of every record, ECS formatter).
    log_detachers: list[Callable[[], None]] = field(default_factory=list)
    #: The privacy masker every exit uses (spans, logs, audit records, event documents).
    masker: Any = None
    destinations: list[str] = field(default_factory=list)
    detachers: list[Callable[[], None]] = field(default_factory=list)
    #: Background writers besides the span pipeline (the audit trail, once started):
    #: each takes a timeout in seconds and says whether it caught up.
    flushers: list[Callable[[float], bool]] = field(default_factory=list)

    @property
    def hub(self) -> Hub:
        """The state's hub, where the listeners subscribe."""
        return self.state.hub

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Deliver every span ended and every audit record emitted so far (or time out: False)."""
        ok = bool(self.tracer_provider.force_flush(timeout_millis))
        for flush in list(self.flushers):
            ok = flush(timeout_millis / 1000) and ok
        return ok


def _sampler(config: Config) -> sampling.Sampler:
    ratio = config.sampler_arg
    return {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }[config.sampler]


def _resource(config: Config) -> Resource:
    attrs: dict[str, Any] = dict(config.resource_attributes)
    attrs["service.name"] = config.service_name
    return Resource.create(attrs)


ZIPKIN_DEFAULT = "http://localhost:9411/api/v2/spans"


def _wanted(config: Config, name: str, endpoint_set: bool) -> bool:
    """OTEL_TRACES_EXPORTER names the exporters; unset, a backend is on when its endpoint is set."""
    chosen = config.traces_exporter
    return name in chosen if chosen else endpoint_set


def _exporters(config: Config, resource: Resource) -> tuple[list[Exporter], list[str]]:
    exporters: list[Exporter] = []
    where: list[str] = []
    if _wanted(config, "zipkin", bool(config.zipkin_endpoint)):
        from commerce_observe.agent.export.zipkin import ZipkinExporter

        endpoint = config.zipkin_endpoint or ZIPKIN_DEFAULT
        exporters.append(ZipkinExporter(endpoint, timeout_s=config.zipkin_timeout_ms / 1000))
        where.append(f"Zipkin at {endpoint}")
    if _wanted(config, "otlp", bool(config.otlp_endpoint or config.otlp_traces_endpoint)):
        from commerce_observe.agent.export.otlp import OtlpExporter, OtlpSettings

        settings = OtlpSettings.from_config(config)
        try:
            exporters.append(OtlpExporter(settings))
            where.append(f"OTLP ({settings.protocol}) at {settings.endpoint}")
        except (ImportError, OSError) as exc:  # extra not installed, certificate unreadable: one line, start anyway
            stats.warn("runtime.otlp_unavailable", "OTLP export is off: %s (install commerce-observe[otlp])", exc)
    if "console" in config.traces_exporter:
        from commerce_observe.agent.export.console import ConsoleExporter

        exporters.append(ConsoleExporter())
        where.append("console (stdout)")
    if config.apm_server_url:
        from commerce_observe.agent.export.elastic_apm import ElasticApmExporter

        exporters.append(
            ElasticApmExporter(
                config.apm_server_url,
                config.service_name,
                secret_token=config.apm_secret_token,
                api_key=config.apm_api_key,
                environment=config.apm_environment,
                verify_server_cert=config.apm_verify_server_cert,
                resource=dict(resource.attributes),
                timeout_s=config.apm_server_timeout_s,
                sample_rate=config.sample_rate,
                global_labels=dict(config.apm_global_labels),
            )
        )
        where.append(f"Elastic APM at {config.apm_server_url}")
    return exporters, where


def install(*, exporters: Sequence[Exporter] | None = None, env: dict[str, str] | None = None, lenient: bool = False,
            **overrides: Any) -> Runtime | None:
    """Set everything up once from the environment (and ``overrides``, by setting name).

    ``exporters`` adds exporters of your own (tests use the in-memory one); when no
    backend is configured and none is given, spans go to the embedded default file.
    Returns the runtime, or None when ``COMMERCE_OBSERVE_ENABLED=false``. A bad
    setting raises :class:`~commerce_observe.config.ConfigError`, unless ``lenient``:
    then it is logged once, counted (``config.invalid``) and its default used.
    """
    global _proxy, _atexit_registered
    with _lock:
        installed = _current.runtime()
        if installed is not None:
            return installed
        config = load_config(env, lenient=lenient, **overrides)
        for problem in config.problems:
            stats.incr("config.invalid")
            logger.warning("commerce_observe: %s", problem)
        for typo in unknown_variables(env):
            stats.incr("config.unknown_variable")
            logger.warning("commerce_observe: %s", typo)
        if not config.enabled or config.sdk_disabled:
            return None
        stats.strict = config.strict

        from commerce_observe.agent import _compat
        from commerce_observe.agent.export.pipeline import ExportPipeline
        from commerce_observe.agent.logs import attach_logs
        from commerce_observe.agent.privacy import Masker
        from commerce_observe.agent.propagation import CommercePropagator, policy_for
        from commerce_observe.agent.instrumentation.registry import enable_all

        _compat.check_all()  # private reads of other libraries only inside their checked ranges
        resource = _resource(config)
        chosen, where = _exporters(config, resource)
        chosen.extend(exporters or ())
        if not chosen and not config.traces_exporter:
            from commerce_observe.agent.export.file import FileExporter

            path = os.path.abspath(config.output_file)
            chosen.append(FileExporter(path))
            where.append(f"file {path} (no backend configured; open it in the Zipkin UI with 'Upload JSON')")
            sys.stderr.write(f"commerce_observe: traces go to {path}\n")
        masker = Masker(config.sensitive_fields)
        pipeline = ExportPipeline(
            chosen,
            masker,
            max_queue_size=config.max_queue_size,
            max_export_batch_size=config.max_export_batch_size,
            schedule_delay_ms=config.schedule_delay_ms,
            shutdown_timeout_ms=config.shutdown_timeout_ms,
        )
        provider = TracerProvider(resource=resource, sampler=_sampler(config))
        provider.add_span_processor(pipeline)

        if _proxy is None:
            _proxy = SwitchableTracerProvider()
            trace.set_tracer_provider(_proxy)
            if trace.get_tracer_provider() is not _proxy:
                stats.warn("runtime.foreign_provider", "another tracer provider is global; commerce_observe spans only reach it through commerce_observe tracers")
        _proxy.bind(provider)
        policy = policy_for(config.propagators)  # the formats injection may write
        propagate.set_global_textmap(CommercePropagator(policy=policy))

        log_detachers = attach_logs(config, masker)
        state = AgentState(str(config.service_name), propagation=policy, tracer_provider=provider, pipeline=pipeline)
        runtime = Runtime(config, provider, pipeline, chosen, state, log_detachers=log_detachers, masker=masker,
                          destinations=where)
        _current._set(runtime)  # noqa: SLF001 - the one place that sets it
        runtime.detachers = attach_all(runtime)
        runtime.instrumentors = enable_all(state, config.disabled_instrumentations)
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
        return runtime


def current() -> Runtime | None:
    """The installed runtime, if any."""
    return _current.runtime()


def install_safely() -> Runtime | None:
    """:func:`install` for ``import commerce_observe.auto``: never raises into the application.

    Bad settings are logged once each and replaced by their defaults; if installing
    still fails, that is logged once and counted (``runtime.install_failed``) and
    the application runs without instrumentation.
    """
    try:
        return install(lenient=True)
    except Exception as exc:
        stats.incr("runtime.install_failed")
        logger.warning("commerce_observe: not installed, the application runs without it: %s", exc)
        return None


def shutdown(timeout_millis: int | None = None) -> None:
    """Flush and stop exporters, undo patches and bindings. Safe to call twice.

    Returns within ``timeout_millis`` (default ``COMMERCE_OBSERVE_SHUTDOWN_TIMEOUT``)
    plus a few milliseconds: flushing runs on a helper thread, and whatever has not
    left by the deadline is dropped and counted (``export.<name>.dropped``).
    """
    with _lock:
        runtime = _current.runtime()
        if runtime is None:
            return
        _current._set(None)  # noqa: SLF001
        budget_ms = runtime.config.shutdown_timeout_ms if timeout_millis is None else max(0, timeout_millis)
        from commerce_observe.agent.instrumentation.registry import disable_all

        disable_all(runtime.instrumentors)
        done = threading.Event()
        helper = threading.Thread(target=_drain, args=(runtime, budget_ms, done), name="commerce_observe.shutdown",
                                  daemon=True)
        helper.start()
        if not done.wait(budget_ms / 1000 + 0.05):
            abandon = getattr(runtime.pipeline, "abandon", None)
            lost = abandon() if abandon is not None else 0
            stats.incr("runtime.shutdown_timed_out")
            logger.warning("commerce_observe: shutdown gave up after %d ms; %d spans still in flight were dropped",
                           budget_ms, lost)
        if _proxy is not None:
            _proxy.bind(None)
        from commerce_observe.agent.propagation import CommercePropagator

        propagate.set_global_textmap(CommercePropagator())  # as it was after shutdown: every format
        runtime.hub.clear()
        for undo in reversed(runtime.log_detachers):
            undo()


def _drain(runtime: Runtime, budget_ms: int, done: threading.Event) -> None:
    """The part of shutdown that may wait for backends (on the helper thread)."""
    try:
        for detach in runtime.detachers:
            try:
                detach()
            except Exception as exc:
                stats.record_failure("runtime.detach_failed", "detaching a listener at shutdown failed: %r", exc)
        runtime.tracer_provider.force_flush(budget_ms)
        runtime.tracer_provider.shutdown()
    except Exception as exc:
        stats.record_failure("runtime.shutdown_failed", "shutdown failed: %r", exc)
    finally:
        done.set()
