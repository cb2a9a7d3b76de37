"""A Flask app that never imports commerce_observe: run under ``opentelemetry-instrument``.

``opentelemetry-instrument python -m tests.web.apps.plain_flask TRACE_ID`` serves one
request carrying that trace id and prints which runtime traced it.
"""

from __future__ import annotations

import sys

import flask


def main(trace_id: str) -> None:
    app = flask.Flask("plain")

    @app.get("/orders/<order_id>")
    def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    response = app.test_client().get("/orders/ord-auto", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert response.status_code == 200
    runtime = sys.modules.get("commerce_observe.agent.runtime")
    installed = runtime is not None and runtime.current() is not None
    print(f"commerce_observe installed: {installed}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
