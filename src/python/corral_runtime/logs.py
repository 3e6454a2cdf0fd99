"""Log and access records as pino-compatible JSON lines, on a pipe of their own to the master."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any

PINO_LEVELS = {
    logging.DEBUG: 20,
    logging.INFO: 30,
    logging.WARNING: 40,
    logging.ERROR: 50,
    logging.CRITICAL: 60,
}


class RecordChannel:
    """The pipe for this runtime's records (`record_fd`), apart from stdout and stderr.

    Everything the app writes on stdout or stderr is text to the master, so a printed line shaped like
    a record cannot pass for one. The master adds the worker's slot and pid to every record itself.
    The fd is not inherited by the app's subprocesses. Whole records only, under a lock: records
    written from several threads never interleave.
    """

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        # Reentrant: a signal handler that logs may interrupt a write on the same thread.
        self.lock = threading.RLock()
        if fd is not None:
            os.set_inheritable(fd, False)

    def write(self, text: str) -> None:
        if self.fd is None:
            # Run without a master (by hand): the records go to stdout.
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        # json.dumps escapes everything outside ASCII, so this never fails.
        data = memoryview(text.encode())
        with self.lock:
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:
                # The master is gone; the control channel's EOF watcher ends this process.
                pass


# What a record keeps of each field the app controls (a message, an exception's text and stack), so a
# record stays far below the master's limit on one record line (1 MiB) even with every character escaped.
FIELD_LIMIT = 32 * 1024


def capped(text: str) -> str:
    """The field as it is, or its start with the master's marker for a truncated line."""
    if len(text) <= FIELD_LIMIT:
        return text
    rest = text[FIELD_LIMIT:]
    dropped = len(rest) if rest.isascii() else len(rest.encode("utf-8", "surrogatepass"))
    return f"{text[:FIELD_LIMIT]}… [truncated {dropped} bytes]"


class JsonLineHandler(logging.Handler):
    """Writes records as pino-compatible JSON lines; remembers the last traceback for the master."""

    def __init__(self, records: RecordChannel) -> None:
        super().__init__()
        self.records = records
        self.last_traceback: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "level": PINO_LEVELS.get(record.levelno, 30),
                "time": int(record.created * 1000),
                "name": record.name,
                "msg": capped(record.getMessage().rstrip()),
            }
            if record.exc_info:
                self.last_traceback = "".join(traceback.format_exception(*record.exc_info))
                exc_type, exc_value = record.exc_info[0], record.exc_info[1]
                # pino's shape for an error, so the pretty format prints the traceback as lines.
                line["err"] = {
                    "type": exc_type.__name__ if exc_type else "Exception",
                    "message": capped(str(exc_value)),
                    "stack": capped(self.last_traceback),
                }
            self.records.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(level: str, handler: JsonLineHandler) -> None:
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper() if level != "trace" else "DEBUG")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # corral's AccessLog middleware writes the access records instead.
    logging.getLogger("uvicorn.access").disabled = True


ACCESS_LOGGER_NAME = "corral.access"


class BatchedOutput:
    """Access records finished in one turn of the event loop go to the master in one write.

    Under load a write per request wakes the master once per request; one write per loop turn
    lets it read many records at once. Only called from the event loop's thread.
    """

    def __init__(self, records: RecordChannel) -> None:
        self.records = records
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
            self.records.write(data)


def write_access_record(output: BatchedOutput, scope: dict[str, Any], status: int, size: int, started: float, finished: float) -> None:
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
        "msg": f'{client_text} - "{method} {path} HTTP/{http_version}" {status} {duration_ms}ms {size}B',
        "method": method,
        "path": path,
        "status": status,
        "duration": duration_ms,
        "client": client_text,
        "size": size,
        "http_version": http_version,
    }
    output.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


class AccessLog:
    """ASGI middleware: one access record per HTTP request, with its duration and response size.

    uvicorn's own access log has neither. The duration runs to the final body message (so background
    work after the response does not count); the size counts the body bytes sent.
    """

    def __init__(self, app: Any, records: RecordChannel) -> None:
        self.app = app
        self.output = BatchedOutput(records)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        output = self.output
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
                    write_access_record(output, scope, status, size, started, time.perf_counter())

        try:
            await self.app(scope, receive, measured_send)
        finally:
            if not logged:
                # The app raised or returned without finishing: uvicorn answers 500 if nothing was sent.
                write_access_record(output, scope, status or 500, size, started, time.perf_counter())
