"""An app that ignores SIGTERM once imported, as a misbehaving library might."""

import signal
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        # Installed after corral's handlers, so TERM no longer drains this worker.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
