"""An app instrumented with prometheus_client in multiprocess mode, as apps behind gunicorn are.

Every request but /metrics counts in app_requests_total; each worker process sets a livesum gauge
(app_live_workers: the live workers, summed) and a liveall gauge (app_worker_up: one series per live
pid). /metrics sums every process's files in $PROMETHEUS_MULTIPROC_DIR with MultiProcessCollector.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

REQUESTS = Counter("app_requests", "Requests served by the app")
LIVE_WORKERS = Gauge("app_live_workers", "Live worker processes", multiprocess_mode="livesum")
WORKER_UP = Gauge("app_worker_up", "1 for each live worker process", multiprocess_mode="liveall")
LIVE_WORKERS.set(1)
WORKER_UP.set(1)


async def respond(send: Any, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        await respond(send, generate_latest(registry), CONTENT_TYPE_LATEST)
        return
    REQUESTS.inc()
    await respond(send, str(os.getpid()).encode(), "text/plain")
