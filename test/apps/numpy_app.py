"""numpy at import: its OpenBLAS starts native threads, which stop themselves at a fork (pthread_atfork).

GET / answers "<pid> <a draw from numpy's global generator>", drawn once per process at the first
request: with --preload the generator's state is the fork server's until each child reseeds it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy
import numpy.random  # at import: the preload (or --preload) loads the global generator in the fork server
from lifespan_stub import complete_lifespan

drawn: list[float] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await complete_lifespan(receive, send)
        return
    if not drawn:
        drawn.append(float(numpy.random.random()))
    # A matrix product runs through OpenBLAS: its threads must work in the forked worker.
    product = float((numpy.ones((64, 64)) @ numpy.ones((64, 64)))[0, 0])
    body = f"{os.getpid()} {drawn[0]!r} {product!r}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
