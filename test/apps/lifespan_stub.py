"""The ASGI lifespan protocol answered with success: shared by the test apps that have no start-up work."""

from __future__ import annotations

from typing import Any


async def complete_lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
