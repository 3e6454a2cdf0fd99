"""Loading the user's app: its directory on sys.path, uvicorn's --env-file, the import itself."""

from __future__ import annotations

import os
import sys
from typing import Any

from .failures import report_failure
from .settings import EXIT_APP_LOAD_FAILURE, SETTINGS


def add_app_dir_to_path() -> None:
    app_dir = SETTINGS.get("app_dir")
    if app_dir and os.path.abspath(app_dir) not in sys.path:
        sys.path.insert(0, os.path.abspath(app_dir))


def load_env_file() -> None:
    """uvicorn's --env-file: loaded before the app is imported, as uvicorn's Config loads it."""
    env_file = SETTINGS.get("uvicorn", {}).get("env_file")
    if env_file:
        from dotenv import load_dotenv  # uvicorn[standard] brings python-dotenv; uvicorn imports it the same way

        load_dotenv(dotenv_path=env_file)


def load_app() -> Any:
    """Import the app (and call its factory); exit 4 with the traceback on any failure."""
    from uvicorn.importer import import_from_string

    add_app_dir_to_path()
    target = SETTINGS["app"]
    try:
        app = import_from_string(target)
        if SETTINGS.get("factory"):
            app = app()
    except BaseException as exc:  # noqa: BLE001 - any failure to import is the app's, reported as such
        report_failure("app-load", exc, f"cannot import the app {target!r}")
        os._exit(EXIT_APP_LOAD_FAILURE)
    return app
