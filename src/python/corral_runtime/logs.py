"""Log and access records as pino-compatible JSON lines on stdout."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
import traceback
from typing import Any

from . import settings
from .settings import PID

PINO_LEVELS = {
    logging.DEBUG: 20,
    logging.INFO: 30,
    logging.WARNING: 40,
    logging.ERROR: 50,
    logging.CRITICAL: 60,
}


class JsonLineHandler(logging.Handler):
    """Writes records as pino-compatible JSON lines; remembers the last traceback for the master."""

    def __init__(self) -> None:
        super().__init__()
        self.last_traceback: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "level": PINO_LEVELS.get(record.levelno, 30),
                "time": int(record.created * 1000),
                "pid": record.process,
                "worker": settings.SLOT,
                "name": record.name,
                "msg": record.getMessage().rstrip(),
            }
            if record.exc_info:
                self.last_traceback = "".join(traceback.format_exception(*record.exc_info))
                exc_type, exc_value = record.exc_info[0], record.exc_info[1]
                # pino's shape for an error, so pino-pretty prints the traceback as lines.
                line["err"] = {
                    "type": exc_type.__name__ if exc_type else "Exception",
                    "message": str(exc_value),
                    "stack": self.last_traceback,
                }
            sys.stdout.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


LOG_HANDLER = JsonLineHandler()


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    root.handlers = [LOG_HANDLER]
    root.setLevel(level.upper() if level != "trace" else "DEBUG")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # corral's AccessLog middleware writes the access records instead.
    logging.getLogger("uvicorn.access").disabled = True


ACCESS_LOGGER_NAME = "corral.access"


class BatchedOutput:
    """Access records finished in one turn of the event loop go to stdout in one write.

    Under load a write per request wakes the master once per request; one write per loop turn
    lets it read many records at once. Only called from the event loop's thread.
    """

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.scheduled = False
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        self.pending.append(line)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if self.pending:
            data = "".join(self.pending)
            self.pending = []
            sys.stdout.write(data)
            sys.stdout.flush()


ACCESS_OUTPUT = BatchedOutput()


def write_access_record(scope: dict[str, Any], status: int, size: int, started: float, finished: float) -> None:
    """One access record, written directly: the logging module's machinery is not needed on this path.

    Its first fields are fixed, so the master can route access records by prefix without parsing.
    """
    client = scope.get("client")
    client_text = f"{client[0]}:{client[1]}" if client else "-"
    query = scope.get("query_string", b"")
    # uvicorn's scope["path"] already starts with the root path, as its own access log shows it.
    path = scope.get("path", "")
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    method = scope.get("method", "-")
    http_version = scope.get("http_version", "1.1")
    duration_ms = round((finished - started) * 1000, 3)
    record = {
        "level": 30,
        "name": ACCESS_LOGGER_NAME,
        "time": int(time.time() * 1000),
        "pid": PID,
        "worker": settings.SLOT,
        "msg": f'{client_text} - "{method} {path} HTTP/{http_version}" {status} {duration_ms}ms {size}B',
        "method": method,
        "path": path,
        "status": status,
        "duration": duration_ms,
        "client": client_text,
        "size": size,
        "http_version": http_version,
    }
    ACCESS_OUTPUT.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


class AccessLog:
    """ASGI middleware: one access record per HTTP request, with its duration and response size.

    uvicorn's own access log has neither. The duration runs to the final body message (so background
    work after the response does not count); the size counts the body bytes sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0
        logged = False

        async def measured_send(message: dict[str, Any]) -> None:
            nonlocal status, size, logged
            await send(message)
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body", False) and not logged:
                    logged = True
                    write_access_record(scope, status, size, started, time.perf_counter())

        try:
            await self.app(scope, receive, measured_send)
        finally:
            if not logged:
                # The app raised or returned without finishing: uvicorn answers 500 if nothing was sent.
                write_access_record(scope, status or 500, size, started, time.perf_counter())
