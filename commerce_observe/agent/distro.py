"""``opentelemetry-instrument python app.py`` brings up commerce_observe.

OpenTelemetry's auto-instrumentation runs, before the application: the distro
(entry point group ``opentelemetry_distro``), then the configurator
(``opentelemetry_configurator``), then every installed contrib instrumentor
(``opentelemetry_instrumentor``) through the distro's ``load_instrumentor``.
We register both ends:

* :class:`CommerceObserveDistro` and :class:`CommerceObserveConfigurator` both
  call :func:`commerce_observe.install` (idempotent), so whichever of the two the
  environment selects, the result is the same runtime ``import
  commerce_observe.auto`` gives: our tracer provider and exporters, our
  propagator, our integrations;
* the distro skips the contrib instrumentor of every library commerce_observe
  instruments itself (Flask, Django, FastAPI/Starlette, requests, httpx, the
  Kafka clients, pika), so a library is never traced twice. Disabling ours with
  ``COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS`` lets the contrib one load;
  contrib instrumentors for other libraries (databases, caches...) load as usual,
  into our tracer provider.

When another distro is installed too, select ours with
``OTEL_PYTHON_DISTRO=commerce_observe`` (and ``OTEL_PYTHON_CONFIGURATOR=commerce_observe``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from commerce_observe._internal.selfstats import logger, stats

#: Contrib entry point name → the commerce_observe integration that replaces it.
REPLACED: Final[Mapping[str, str]] = {
    "flask": "flask",
    "django": "django",
    "fastapi": "starlette",
    "starlette": "starlette",
    "asgi": "starlette",
    "wsgi": "flask",
    "requests": "requests",
    "httpx": "httpx",
    "kafka": "kafka_python",
    "confluent_kafka": "confluent_kafka",
    "aiokafka": "aiokafka",
    "pika": "pika",
}

SKIPPED: Final = "distro.contrib_instrumentor_skipped"


def _install() -> None:
    from commerce_observe.agent.runtime import install_safely

    install_safely()  # opentelemetry-instrument must not stop the application either


def _disabled() -> frozenset[str]:
    from commerce_observe.agent.runtime import current

    runtime = current()
    return frozenset(runtime.config.disabled_instrumentations) if runtime is not None else frozenset()


class CommerceObserveDistro(BaseDistro):  # type: ignore[misc]
    """The ``opentelemetry_distro`` entry point named ``commerce_observe``."""

    def _configure(self, **kwargs: Any) -> None:
        _install()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        ours = REPLACED.get(str(getattr(entry_point, "name", "")))
        if ours is not None and ours not in _disabled():
            stats.incr(SKIPPED)
            logger.debug("contrib instrumentor %r not loaded: commerce_observe's %r integration covers it",
                         entry_point.name, ours)
            return
        super().load_instrumentor(entry_point, **kwargs)


class CommerceObserveConfigurator:
    """The ``opentelemetry_configurator`` entry point named ``commerce_observe``.

    Duck-typed (``configure(**kwargs)`` is all auto-instrumentation calls) rather
    than derived from the SDK's private ``_BaseConfigurator``.
    """

    def configure(self, **kwargs: Any) -> None:
        _install()
