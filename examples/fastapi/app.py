"""A FastAPI app, as most corral users run one."""

from __future__ import annotations

import os

from fastapi import FastAPI

app = FastAPI(title="corral example")


@app.get("/")
async def root() -> dict[str, object]:
    return {"message": "Hello from FastAPI", "pid": os.getpid()}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"item_id": item_id, "q": q}
