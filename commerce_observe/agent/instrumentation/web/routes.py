"""Commerce attributes from a matched route: the one rule, written once.

A web framework tells us, after routing, which route template matched
(``/orders/<order_id>``, ``/orders/{order_id}``, ``orders/<str:order_id>/``) and
the values of its path parameters. The rule that turns those into ``commerce.*``
attributes lives here so that Flask, Django and Starlette cannot drift apart:

* a path parameter named ``order_id`` (or ``orderId``) becomes ``commerce.order.id``;
* a path parameter named ``payment_id`` (or ``paymentId``) becomes
  ``commerce.payment.id``.

Only path parameters count, never the query string or the body: a route template
is declared by the service's authors, so its parameter names are a deliberate
statement of what the value is, while query keys are whatever a client sent.
Values longer than :data:`MAX_ID_LENGTH` are ignored (an id, not a payload).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.events import conventions as cv

#: Path parameter name → attribute. Documented in docs/integrations/*.md.
PARAMETER_ATTRIBUTES: Final[Mapping[str, str]] = {
    "order_id": cv.ORDER_ID,
    "orderId": cv.ORDER_ID,
    "payment_id": cv.PAYMENT_ID,
    "paymentId": cv.PAYMENT_ID,
}

MAX_ID_LENGTH: Final = 128

HTTP_ROUTE: Final = "http.route"


def commerce_attributes(params: Mapping[str, object] | None) -> dict[str, AttributeValue]:
    """The ``commerce.*`` attributes carried by a route's path parameters."""
    out: dict[str, AttributeValue] = {}
    if not params:
        return out
    for name, attribute in PARAMETER_ATTRIBUTES.items():
        value = params.get(name)
        if value is None:
            continue
        text = str(value)
        if text and len(text) <= MAX_ID_LENGTH:
            out[attribute] = text
    return out


def span_name(method: str, route: str | None) -> str:
    """``"GET /orders/{order_id}"`` once the route is known, else just the method.

    The raw path is never part of a name: ``/orders/1``, ``/orders/2``... would
    make one name per order, which Zipkin and Kibana cannot group.
    """
    return f"{method} {route}" if route else method


def route_attributes(route: str | None, params: Mapping[str, object] | None) -> dict[str, AttributeValue]:
    """``http.route`` plus the commerce attributes, for a span or a span start."""
    attrs = commerce_attributes(params)
    if route:
        attrs[HTTP_ROUTE] = route
    return attrs
