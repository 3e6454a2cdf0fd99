"""The integration tests' app: each route exercises one behaviour of the worker."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from typing import Any
from urllib.parse import parse_qs

LEAKED: list[bytes] = []


async def respond(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def stream_forever(send: Any) -> None:
    """A server-sent-events response that never ends by itself."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    print("/stream started")
    while True:
        await send({"type": "http.response.body", "body": b"data: tick\n\n", "more_body": True})
        await asyncio.sleep(0.2)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path in ("/sleep", "/block"):
        # Tests wait for this line to know the request has reached a worker.
        print(f"{path} started")
    if path == "/stream":
        await stream_forever(send)
        return
    if path == "/sleep":
        await asyncio.sleep(float(query.get("s", "1")))
    elif path == "/block":
        time.sleep(float(query.get("s", "1")))  # blocks the event loop on purpose
    elif path == "/leak":
        LEAKED.append(b"x" * (int(query.get("mb", "10")) * 1024 * 1024))
    elif path == "/orphan":
        # A shell that backgrounds a short job and exits at once: the job is orphaned, and its
        # zombie is left for whatever reaps orphans in this PID namespace.
        subprocess.run(["sh", "-c", "sleep 0.1 &"], check=True)
    elif path == "/print":
        print(query.get("text", "hello from print"))
    elif path == "/raise":
        raise RuntimeError("raised on purpose")
    elif path == "/random":
        await respond(send, 200, f"{os.getpid()} {random.random()}".encode())
        return
    await respond(send, 200, str(os.getpid()).encode())
