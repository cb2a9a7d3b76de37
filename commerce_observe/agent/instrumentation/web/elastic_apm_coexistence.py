"""One transaction per request when elastic-apm's own framework integration is also on.

An application may already use ``elasticapm.contrib.flask.ElasticAPM``, the
``elasticapm.contrib.django`` app or ``elasticapm.contrib.starlette.ElasticAPM``.
Each of those starts an elastic-apm transaction per request, and commerce_observe
exports its SERVER span to Elastic APM as a transaction too: two transactions
per request, with different ids, and only ours matching Zipkin.

The rule: **while commerce_observe traces a web framework in this process, it
owns the request transaction and elastic-apm's framework integration stands
aside.** Concretely, ``elasticapm.base.Client.begin_transaction`` for the
``"request"`` type returns None (elastic-apm's integrations and ``end_transaction``
accept that, as they do when the agent is not recording), counted under
``elastic_apm.request_transaction_suppressed`` and announced once in the log.
The guard is keyed on the framework being *instrumented*, not on a span being
current, because Django sends ``request_started`` (where elastic-apm begins its
transaction) before the handler that opens our span.

To keep elastic-apm's transactions instead, disable ours for that framework:
``COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS=flask`` (or ``django``, ``starlette``);
the guard then lifts. Other transaction types (``celery``, custom ones) are
never touched.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any, Final

from commerce_observe._internal.selfstats import logger, stats
from commerce_observe.agent.instrumentation.base import Instrumentor, Patch

SUPPRESSED: Final = "elastic_apm.request_transaction_suppressed"

_lock = threading.Lock()
_owners: set[str] = set()  # our server integrations currently instrumented
_announced = False


def _caller_module() -> str:
    """The module that called ``begin_transaction`` (for the log line only)."""
    try:
        return str(sys._getframe(2).f_globals.get("__name__", "?"))
    except Exception:
        return "?"


def _announce(origin: str) -> None:
    global _announced
    with _lock:
        if _announced:
            return
        _announced = True
        owners = ",".join(sorted(_owners))
    logger.warning(
        "commerce_observe: elastic-apm's own request transactions (from %s) are suppressed: commerce_observe "
        "traces %s and exports its SERVER span as the one transaction, with the same ids in Zipkin and Elastic "
        "APM. To keep elastic-apm's instead set COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS=%s.",
        origin, owners, owners,
    )


def _begin_transaction(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    transaction_type = args[0] if args else kwargs.get("transaction_type")
    if transaction_type != "request" or not _owners:
        return wrapped(*args, **kwargs)
    stats.incr(SUPPRESSED)
    _announce(_caller_module())
    return None


class ElasticApmCoexistence(Instrumentor):
    """Not in the registry: switched on by the web integrations, see :func:`claim`."""

    name = "elastic_apm_coexistence"
    module = "elasticapm.base"
    requirements = ("elastic-apm >= 6.0",)

    def patches(self) -> Sequence[Patch]:
        return (Patch("elasticapm.base", "Client.begin_transaction", _begin_transaction),)


def claim(owner: str) -> None:
    """``owner`` (a server integration) now traces requests: guard elastic-apm."""
    with _lock:
        first = not _owners
        _owners.add(owner)
    if first:
        ElasticApmCoexistence().enable()


def release(owner: str) -> None:
    """``owner`` stopped tracing requests; lift the guard when none is left."""
    with _lock:
        _owners.discard(owner)
        last = not _owners
    if last:
        ElasticApmCoexistence().disable()


class ServerInstrumentor(Instrumentor):
    """An instrumentor whose library serves requests: it claims the transaction
    while (and only while) it is instrumented."""

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)
        claim(self.name)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        release(self.name)
