"""``OTEL_PROPAGATORS`` limits the trace headers a producer writes, on both of its paths.

No broker: :func:`begin_publish` is driven directly. A record without headers takes
the producer's header-list fast path, one with application headers goes through
:func:`inject`; both get the filter from the one rule they share
(``propagation.api.trace_headers``), and the CloudEvents headers are never filtered.
"""

from __future__ import annotations

import pytest

from commerce_observe.agent import current
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.producer import begin_publish, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders
from commerce_observe.testing import capture

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC_BINARY
CLOUDEVENTS = {sc.H_ID, sc.H_TYPE, sc.H_SOURCE, sc.H_SPECVERSION, sc.H_TIME, sc.H_SEQUENCE}


class _Client:
    """Stands for a producer instance (endpoints are kept per client object)."""


def _written(propagators: str | None, app_headers: list[tuple[str, bytes]] | None) -> set[str]:
    env = {} if propagators is None else {"OTEL_PROPAGATORS": propagators}
    with capture(env=env):
        carrier = KafkaHeaders(None if app_headers is None else list(app_headers))
        publication = begin_publish(endpoint_for(current.state(), _Client(), sc.KAFKA, "test", "127.0.0.1:9092"), "orders",
                                    carrier, FORMATS)
        assert publication is not None
        publication.acked(0, 1)
    return {name for name, _ in carrier.headers or ()} - CLOUDEVENTS - {"app"}


@pytest.mark.parametrize("app_headers", [None, [("app", b"kept")]], ids=["fast path", "through inject"])
def test_propagators_limit_what_a_producer_writes(app_headers: list[tuple[str, bytes]] | None) -> None:
    assert _written(None, app_headers) == {"traceparent", "b3", "elasticapmtraceparent"}
    assert _written("tracecontext", app_headers) == {"traceparent"}
    assert _written("b3,elastic", app_headers) == {"b3", "elasticapmtraceparent"}
    assert _written("none", app_headers) == set()
