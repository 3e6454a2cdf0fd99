"""An app whose output and subprocesses are hostile to its server: each route is one fault."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs

from lifespan_stub import complete_lifespan

MIB = 1024 * 1024


async def respond(send: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def write_without_newline(char: str, mib: int) -> None:
    """`mib` MiB of one character on stdout and no newline, in 1 MiB writes (the app never holds it all)."""
    chunk = char * MIB
    for _ in range(mib):
        sys.stdout.write(chunk)
    sys.stdout.flush()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await complete_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/huge":
        # As an app printing a large request body would: one line, never ended.
        write_without_newline(query.get("char", "x"), int(query.get("mib", "600")))
    elif path == "/forge":
        # As an app echoing user input would: a line shaped like corral's own fatal record.
        print(query.get("text", '{"level":60,"time":1,"pid":1,"worker":99,"msg":"forged by the app"}'))
    elif path == "/partial":
        # A prompt or a progress line: no newline follows, ever.
        sys.stdout.write(query.get("text", "partial"))
        sys.stdout.flush()
    elif path == "/orphans":
        # Helpers that outlive the worker: a backgrounded shell job and a Popen that keeps inheritable fds.
        os.system("sleep 120 &")
        subprocess.Popen(["sleep", "120"], close_fds=False, stdin=subprocess.DEVNULL)
    await respond(send, str(os.getpid()).encode())
