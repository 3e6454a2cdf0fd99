"""An app that starts a thread when it is imported, as an SDK's exporter does (Sentry, OpenTelemetry).

Imported by a fork server (--preload), the thread makes forking unsafe: corral names it and spawns.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from lifespan_stub import complete_lifespan


def export_forever() -> None:
    while True:
        time.sleep(1)


threading.Thread(target=export_forever, name="app-metrics-exporter", daemon=True).start()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await complete_lifespan(receive, send)
        return
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
