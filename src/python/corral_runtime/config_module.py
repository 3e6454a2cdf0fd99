"""Running a gunicorn config file as gunicorn does: as the module __config__, its directory on sys.path.

Imports nothing of corral's runtime, so the one-shot config reader (corral_config_dump.py) uses it too.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types


def load_config_module(target: str, *, quiet: bool) -> types.ModuleType:
    """Runs the config file (or imports `python:module`). quiet: what it prints is dropped, because
    the master has shown it once already when it read the file."""
    if target.startswith("python:"):
        return importlib.import_module(target[len("python:"):])
    path = os.path.abspath(target)
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("__config__", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__config__"] = module
    if quiet:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            spec.loader.exec_module(module)
    else:
        spec.loader.exec_module(module)
    return module
