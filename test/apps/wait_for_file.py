"""The test app, whose lifespan start-up waits until the file named by CORRAL_TEST_START_FILE exists.

It lets a test observe corral while its first worker is still starting.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from app import app as serve_http


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                start_file = os.environ["CORRAL_TEST_START_FILE"]
                while not os.path.exists(start_file):
                    await asyncio.sleep(0.05)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await serve_http(scope, receive, send)
