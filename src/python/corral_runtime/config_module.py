"""Running a gunicorn config file as gunicorn does: as the module __config__, its directory on sys.path.

The one loader of the config file: the one-shot config reader (corral_config_dump.py, for the master's
settings and --print-config), the worker's server hooks (hooks.py) and a worker class defined in the
file (worker_class.py) all get the module from here. Imports nothing of corral's runtime, so the
one-shot reader can use it alone.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types

MODULE_NAME = "__config__"


def load_config_module(target: str, *, quiet: bool) -> types.ModuleType:
    """The config file as a module (or `python:module` imported). A file runs once per process: a worker
    whose hooks ran it finds its worker class in the same module, as the one-shot reader does.

    quiet: what the file prints is dropped, because the master has shown it once already when it read
    the file."""
    if target.startswith("python:"):
        return importlib.import_module(target[len("python:"):])
    path = os.path.abspath(target)
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None and getattr(loaded, "__file__", None) == path:
        return loaded
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    if quiet:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            spec.loader.exec_module(module)
    else:
        spec.loader.exec_module(module)
    return module
