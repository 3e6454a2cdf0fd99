"""Loading the user's code: its directory on sys.path, uvicorn's --env-file, a worker class, the app itself."""

from __future__ import annotations

import os
import sys
from typing import Any

from .app_target import load_app_target
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
    """Import the app (uvicorn's --factory, or gunicorn's module:create_app(...)); exit 4 with the traceback on any failure."""
    add_app_dir_to_path()
    target = SETTINGS["app"]
    try:
        app = load_app_target(target, bool(SETTINGS.get("factory")))
    except BaseException as exc:  # noqa: BLE001 - any failure to import is the app's, reported as such
        report_failure("app-load", exc, f"cannot import the app {target!r}")
        os._exit(EXIT_APP_LOAD_FAILURE)
    return app


def load_worker_class() -> dict[str, Any]:
    """A UvicornWorker subclass given with -k: imported here as gunicorn's master imports it before
    forking, so its module's start-up code runs in every worker; returns the CONFIG_KWARGS values the
    master left to the worker. A module that no longer imports fails the boot like the app (exit 4)."""
    spec = SETTINGS.get("worker_class")
    if not spec:
        return {}
    # Imported only here: a worker without a custom class pays nothing for it.
    from .worker_class import load_in_worker

    try:
        return load_in_worker(spec)
    except BaseException as exc:  # noqa: BLE001 - the class's module is user code
        report_failure("app-load", exc, f"cannot import the worker class {spec.get('name')!r}")
        os._exit(EXIT_APP_LOAD_FAILURE)
