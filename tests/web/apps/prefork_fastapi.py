"""A FastAPI app for pre-fork servers (uvicorn workers, gunicorn with the uvicorn worker)."""

from __future__ import annotations

import asyncio
import os

import fastapi

import commerce_observe.auto  # noqa: F401

app = fastapi.FastAPI()


@app.get("/orders/{order_id}")
async def get_order(order_id: str) -> dict[str, object]:
    await asyncio.sleep(0.05)
    return {"order_id": order_id, "pid": os.getpid()}
