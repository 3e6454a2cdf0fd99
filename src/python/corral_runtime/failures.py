"""Why a worker ends before it serves, and the report of a failed start-up to the master.

The steps of a worker's start raise these; main.py alone turns them into exit codes (protocol.EXIT_CODES).
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import WorkerContext


class BootFailure(Exception):
    """The worker cannot start (a server hook, the lifespan start-up, uvicorn's own start): exit boot_failure.

    error: the user's exception, when there is one; without it the report takes the last traceback logged.
    """

    kind = "startup"

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class AppLoadFailure(BootFailure):
    """The app, or a -k worker class, cannot be imported: exit app_load_failure."""

    kind = "app-load"


class MasterGone(Exception):
    """The master has exited (or closed the control channel) before this worker served: exit ok, quietly."""


def error_location(exc: BaseException | None) -> dict[str, Any]:
    """Where the error is: a SyntaxError knows its file and line; otherwise the deepest real frame."""
    if exc is None:
        return {}
    if isinstance(exc, SyntaxError) and exc.filename:
        return {"file": exc.filename, "line": exc.lineno}
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith("<")]
    if not frames:
        return {}
    return {"file": frames[-1].filename, "line": frames[-1].lineno}


# corral's own frames are in this package's files and in the entry script beside it.
RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
ENTRY_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corral_worker.py")
# Frames of the import machinery, not of the app: left out of an import error's traceback.
IMPORT_MACHINERY = (ENTRY_SCRIPT, os.sep + os.path.join("uvicorn", "importer.py"), os.sep + os.path.join("importlib", "__init__.py"))


def is_import_machinery(filename: str) -> bool:
    return filename.startswith(("<frozen", RUNTIME_DIR)) or filename.endswith(IMPORT_MACHINERY)


def app_traceback(exc: BaseException) -> str:
    """The traceback of an import failure, from the app's first frame: a SyntaxError shows just the line."""
    details = traceback.TracebackException.from_exception(exc)
    details.stack = traceback.StackSummary.from_list(
        [frame for frame in details.stack if not is_import_machinery(frame.filename)]
    )
    return "".join(details.format())


def exception_summary(exc: BaseException) -> str:
    """`SyntaxError: invalid syntax`: a SyntaxError's own text repeats the file and line, given apart."""
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return f"{type(exc).__name__}: {text}"


def failure_summary(failure: BootFailure) -> str:
    """`cannot import the app 'x:app': ModuleNotFoundError: No module named 'x'`."""
    exc = failure.error
    return f"{failure.message}: {type(exc).__name__}: {exc}" if exc is not None else failure.message


def failure_traceback(failure: BootFailure) -> str | None:
    """The traceback to show; None when the failure has no exception of its own."""
    exc = failure.error
    if exc is None:
        return None
    return app_traceback(exc) if isinstance(failure, AppLoadFailure) else "".join(traceback.format_exception(exc))


def report_failure(context: WorkerContext, failure: BootFailure) -> None:
    """Logs the failure and sends the master its boot_error."""
    exc = failure.error
    text = failure_traceback(failure)
    if text is None:
        text = context.log_handler.last_traceback or ""
    summary = failure_summary(failure)
    logging.getLogger("corral.worker").error(summary + ("\n" + text if text else ""))
    extra: dict[str, Any] = {"exception": exception_summary(exc), **error_location(exc)} if exc is not None else {}
    context.control.send("boot_error", kind=failure.kind, message=summary, traceback=text, **extra)
