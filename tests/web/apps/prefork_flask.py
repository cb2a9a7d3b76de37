"""A Flask app for pre-fork servers (gunicorn): ``tests.web.apps.prefork_flask:app``.

Installed at import, so under ``gunicorn --preload`` commerce_observe starts in the
master and every worker inherits it through ``fork``.
"""

from __future__ import annotations

import os
import time

import flask

import commerce_observe.auto  # noqa: F401

app = flask.Flask("prefork")


@app.get("/orders/<order_id>")
def get_order(order_id: str) -> dict[str, object]:
    time.sleep(0.05)  # keeps a sync worker busy so concurrent requests spread over workers
    return {"order_id": order_id, "pid": os.getpid()}
