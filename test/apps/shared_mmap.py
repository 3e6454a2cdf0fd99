"""An app that maps a big file at import, shared: its RSS counts the file, its unique memory does not.

Every process that imports this module (each worker, and the test's holder process) maps the file
named by CORRAL_TEST_SHARED_FILE and touches each page, so every page of the file is mapped in
several processes: shared pages, counted in each one's RSS but in nobody's USS.
"""

from __future__ import annotations

import mmap
import os
from typing import Any
from urllib.parse import parse_qs

from lifespan_stub import complete_lifespan

with open(os.environ["CORRAL_TEST_SHARED_FILE"], "rb") as shared_file:
    SHARED = mmap.mmap(shared_file.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
# One byte of each page, copied: the pages are mapped, and only len/PAGESIZE bytes become private.
PAGES_TOUCHED = len(bytes(memoryview(SHARED)[:: mmap.PAGESIZE]))

LEAKED: list[bytes] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await complete_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/leak":
        # Private memory, written so that every page is resident.
        query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
        LEAKED.append(b"x" * (int(query.get("mb", "10")) * 1024 * 1024))
    body = str(os.getpid()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
