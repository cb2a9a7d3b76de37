"""httpx: one CLIENT span per ``Client.send`` / ``AsyncClient.send``.

``send`` is the one public method every httpx call goes through (``client.get``,
``httpx.post``, ``client.stream``) with the request fully built, whatever the
transport: a custom or mock transport, or the in-process ASGI/WSGI transports
that Starlette's ``TestClient`` uses, are traced and propagated the same way.
Redirects followed inside ``send`` are one span, as they are one call for the
caller. With ``stream=True`` the span ends when the response headers arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from commerce_observe.agent.instrumentation.base import Instrumentor, Patch
from commerce_observe.agent.instrumentation.web import client
from commerce_observe.agent.instrumentation.web.client import ClientCall

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState


def _begin(state: AgentState, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ClientCall | None:
    request = client.sent_request(*args, **kwargs)
    headers = getattr(request, "headers", None)
    url = getattr(request, "url", None)
    if headers is None or url is None:
        return None
    return client.begin(getattr(request, "method", None), str(url), headers, state.propagation)


def _send(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return client.call_through(_begin(state, args, kwargs), wrapped, args, kwargs)


def _send_async(state: AgentState, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    async def traced() -> Any:
        call = _begin(state, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.end(exc=exc)
            raise
        call.end(getattr(response, "status_code", None))
        return response

    return traced()


class HttpxInstrumentor(Instrumentor):
    name = "httpx"
    module = "httpx"
    requirements = ("httpx >= 0.23",)

    def patches(self) -> Sequence[Patch]:
        return (
            Patch("httpx", "Client.send", self.bind(_send)),
            Patch("httpx", "AsyncClient.send", self.bind(_send_async)),
        )


INSTRUMENTOR = HttpxInstrumentor
