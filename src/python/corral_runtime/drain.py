"""Ending a worker's service: max-requests with jitter, and a drain that resets no connection."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any


def draw_request_limit(settings: dict[str, Any]) -> int:
    """gunicorn's max-requests with jitter: each worker draws its own limit; 0 means none."""
    limit = int(settings.get("max_requests") or 0)
    if limit <= 0:
        return 0
    return limit + random.randint(0, int(settings.get("max_requests_jitter") or 0))


def close_after_response(app: Any) -> Any:
    """Wraps an app so every response asks the client to close: the next request on a keep-alive
    connection is answered, with `Connection: close`, instead of finding the connection reset."""

    async def closing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_close(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, send_with_close if scope["type"] == "http" else send)

    return closing_app


async def drain_without_resets(server: Any, deadline: float, graceful_timeout: float) -> None:
    """Stops accepting, lets in-flight requests finish with `Connection: close`, answers the next
    request of each keep-alive connection the same way, and closes connections that stay idle
    for a short grace. gunicorn and uvicorn close idle keep-alive connections at once, which
    resets the requests clients were sending on them at that moment."""
    for listener in getattr(server, "servers", []):
        listener.close()
    idle_grace = min(1.0, graceful_timeout / 2)
    connections = server.server_state.connections
    for connection in list(connections):
        if hasattr(connection, "cycle") and hasattr(connection, "app"):
            connection.app = close_after_response(connection.app)
            cycle = connection.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False
        else:
            connection.shutdown()  # a websocket: uvicorn sends close code 1012
    idle_since: dict[Any, float] = {}
    while connections and time.monotonic() < deadline and not server.force_exit:
        now = time.monotonic()
        for connection in list(connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                idle_since.pop(connection, None)
            elif now - idle_since.setdefault(connection, now) >= idle_grace:
                connection.transport.close()
        await asyncio.sleep(0.05)
