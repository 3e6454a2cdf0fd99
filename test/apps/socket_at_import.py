"""An app that opens a socket when it is imported, as a metrics or database client does: a UDP socket
connected to 127.0.0.1:$CORRAL_TEST_UDP_PORT. socket_at_import.conf.py's post_fork opens each worker's own.

GET / answers the pid; GET /send sends the pid as one datagram on the module's socket.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from lifespan_stub import complete_lifespan

CLIENT: dict[str, socket.socket] = {}


def connect() -> None:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(("127.0.0.1", int(os.environ["CORRAL_TEST_UDP_PORT"])))
    CLIENT["socket"] = client


connect()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await complete_lifespan(receive, send)
        return
    status = 200
    body = str(os.getpid()).encode()
    if scope["path"] == "/send":
        try:
            CLIENT["socket"].send(body)
        except OSError as exc:
            status, body = 500, f"{type(exc).__name__}: {exc}".encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
