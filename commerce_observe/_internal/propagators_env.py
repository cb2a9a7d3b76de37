"""Importing OpenTelemetry's ``propagate`` module must not fail on ``OTEL_PROPAGATORS``.

``opentelemetry.propagate`` reads ``OTEL_PROPAGATORS`` when it is first imported
and raises ``ValueError`` for a name no installed package registers (a typo such
as ``b3,tracecontxt``, or ``b3`` when nothing provides it). Everything that
imports it, ``commerce_observe`` included, would then fail at import. We register
``b3``, ``b3multi`` and ``elastic`` as ``opentelemetry_propagator`` entry points
(pyproject.toml), and import the module once here, first: if it still fails, it
is imported again with the names that do load (else OpenTelemetry's default),
the variable restored. A name that is simply wrong is reported once, by the
configuration at install; one of ours that does not load is logged here (the
package's entry points are missing). The runtime sets its own propagator anyway.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

VARIABLE = "OTEL_PROPAGATORS"
OTEL_DEFAULT = "tracecontext,baggage"
#: The names the configuration accepts (``config._PROPAGATORS``), which some package should provide.
KNOWN = frozenset({"tracecontext", "baggage", "b3", "b3multi", "elastic", "none"})


def _loadable(name: str) -> bool:
    if name.lower() == "none":
        return True
    try:
        found = list(entry_points(group="opentelemetry_propagator", name=name))
        if found:
            found[0].load()
        return bool(found)
    except Exception:
        return False


def import_propagate_safely() -> None:
    try:
        import opentelemetry.propagate  # noqa: F401
        return
    except Exception as exc:
        raw = os.environ.get(VARIABLE)
        if raw is None:
            raise  # not ours to explain
        problem = exc
    names = [n.strip() for n in raw.split(",") if n.strip()]
    kept = [n for n in names if _loadable(n)]
    os.environ[VARIABLE] = ",".join(kept) or OTEL_DEFAULT
    try:
        import opentelemetry.propagate  # noqa: F401, F811
    finally:
        os.environ[VARIABLE] = raw
    # Names that are simply wrong are reported once, by the configuration at install;
    # ours missing from OpenTelemetry's loading means this package's install is broken.
    ours = [n for n in names if n.lower() in KNOWN and n not in kept]
    if ours:
        logging.getLogger("commerce_observe").warning(
            "commerce_observe: OpenTelemetry cannot load the propagators %s (%s): is commerce-observe installed "
            "(its entry points registered)? OpenTelemetry's own set uses %r instead", ", ".join(ours), problem,
            ",".join(kept) or OTEL_DEFAULT)
