"""requests: one CLIENT span per ``Session.send``, context injected into the headers.

``Session.send`` is where every requests call ends up (``requests.get``,
``session.post``, redirects followed one by one), holding the fully prepared
request: its headers are final and its URL is absolute, so the injected context
is exactly what goes on the wire. Each redirect hop is its own span, as each is
its own request to a possibly different server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe.agent.instrumentation.web import client

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState


def _send(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = client.sent_request(*args, **kwargs)
    headers = getattr(request, "headers", None)
    url = getattr(request, "url", None)
    if headers is None or not isinstance(url, str):
        return wrapped(*args, **kwargs)
    return client.call_through(client.begin(getattr(request, "method", None), url, headers, state.propagation),
                               wrapped, args, kwargs)


class RequestsInstrumentor(Instrumentor):
    name = "requests"
    module = "requests"
    requirements = ("requests >= 2.20",)

    def patches(self) -> Sequence[Patch]:
        return (Patch("requests.sessions", "Session.send", self.bind(_send)),)


INSTRUMENTOR = RequestsInstrumentor
