"""Reports of a failed start-up to the master: the summary, the error's location and the traceback."""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

from .channel import CONTROL
from .logs import LOG_HANDLER


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


def report_failure(kind: str, exc: BaseException | None, message: str) -> None:
    if exc is None:
        text = LOG_HANDLER.last_traceback or ""
    elif kind == "app-load":
        text = app_traceback(exc)
    else:
        text = "".join(traceback.format_exception(exc))
    summary = f"{message}: {type(exc).__name__}: {exc}" if exc is not None else message
    logging.getLogger("corral.worker").error(summary + ("\n" + text if text else ""))
    extra: dict[str, Any] = {"exception": exception_summary(exc), **error_location(exc)} if exc is not None else {}
    CONTROL.send("boot_error", kind=kind, message=summary, traceback=text, **extra)
