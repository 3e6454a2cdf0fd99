"""Loading the user's code: its directory on sys.path, uvicorn's --env-file, a worker class, the app itself.

The one app loader: the worker and `corral --check-config` (main.py's check_app) both run load_env_file
and load_app, so the check imports the app exactly as a worker will.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .app_target import load_app_target
from .failures import AppLoadFailure


def add_app_dir_to_path(settings: dict[str, Any]) -> None:
    app_dir = settings.get("app_dir")
    if app_dir and os.path.abspath(app_dir) not in sys.path:
        sys.path.insert(0, os.path.abspath(app_dir))


def load_env_file(settings: dict[str, Any]) -> None:
    """uvicorn's --env-file: loaded before the app is imported, as uvicorn's Config loads it."""
    env_file = settings.get("uvicorn", {}).get("env_file")
    if env_file:
        from dotenv import load_dotenv  # uvicorn[standard] brings python-dotenv; uvicorn imports it the same way

        load_dotenv(dotenv_path=env_file)


def load_app(settings: dict[str, Any]) -> Any:
    """Imports the app (uvicorn's --factory, or gunicorn's module:create_app(...)); any failure is an AppLoadFailure."""
    add_app_dir_to_path(settings)
    target = str(settings["app"])
    try:
        return load_app_target(target, bool(settings.get("factory")))
    except BaseException as exc:  # noqa: BLE001 - any failure to import is the app's, reported as such
        raise AppLoadFailure(f"cannot import the app {target!r}", exc) from exc


def load_worker_class(settings: dict[str, Any]) -> dict[str, Any]:
    """A UvicornWorker subclass given with -k: imported here as gunicorn's master imports it before
    forking, so its module's start-up code runs in every worker; returns the CONFIG_KWARGS values the
    master left to the worker. A module that no longer imports fails the boot like the app."""
    spec = settings.get("worker_class")
    if not spec:
        return {}
    # Imported only here: a worker without a custom class pays nothing for it.
    from .worker_class import load_in_worker

    try:
        return load_in_worker(spec)
    except BaseException as exc:  # noqa: BLE001 - the class's module is user code
        raise AppLoadFailure(f"cannot import the worker class {spec.get('name')!r}", exc) from exc
